import SupervisorSystem
import Settings

/// The supervisor's command line, as text: `supervisor [options] [--] command [args...]`, read against the
/// settings the supervisor takes as flags (`Catalog.flags(of: .supervisor)`).
package struct SupervisorArguments: Sendable, Equatable {
    /// Flag values by `Setting.name` (`workers`, `metrics-bind`); a switch given is `"true"`.
    package var flags: [String: String] = [:]
    package var help = false
    package var version = false
    package var command: [String] = []
    /// The command was given after `--` (so a first word such as `stat` is a program, not a mistyped command).
    package var commandAfterDashes = false

    package init() {}

    /// Options take their value as `--name value` or `--name=value`. The first argument that is not an
    /// option, or everything after `--`, is the worker command.
    package init(parsing arguments: some Sequence<String>) throws(ConfigurationError) {
        let parser = FlagParser(settings: Catalog.flags(of: .supervisor), stopsAtFirstArgument: true)
        do {
            let parsed = try parser.parse(arguments, program: "supervisor")
            flags = parsed.flags
            help = parsed.switches.contains("help")
            version = parsed.switches.contains("version")
            command = parsed.arguments
            commandAfterDashes = parsed.afterDashes
        } catch {
            throw ConfigurationError(error.description)
        }
    }
}
