import SupervisorSystem
import Settings

/// The supervisor's command line, as text: `supervisor [options] [--] command [args...]`, read against the
/// settings the supervisor takes as flags (`Catalog.flags(of: .supervisor)`).
public struct SupervisorArguments: Sendable, Equatable {
    /// Flag values by `Setting.name` (`workers`, `metrics-bind`); a switch given is `"true"`.
    public var flags: [String: String] = [:]
    public var help = false
    public var version = false
    public var command: [String] = []

    public init() {}

    /// Options take their value as `--name value` or `--name=value`. The first argument that is not an
    /// option, or everything after `--`, is the worker command.
    public init(parsing arguments: some Sequence<String>) throws(ConfigurationError) {
        let parser = FlagParser(settings: Catalog.flags(of: .supervisor), stopsAtFirstArgument: true)
        do {
            let parsed = try parser.parse(arguments, program: "supervisor")
            flags = parsed.flags
            help = parsed.switches.contains("help")
            version = parsed.switches.contains("version")
            command = parsed.arguments
        } catch {
            throw ConfigurationError(error.description)
        }
    }
}
