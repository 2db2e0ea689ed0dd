import ArgumentParser
import Settings

/// `--log-level` and `--log-format` of the worker and the cleanup (the supervisor reads its own with
/// `FlagParser`): checked as their variables are, then set as them (`LogFlags`).
public struct LogOptions: ParsableArguments {
    @Option(name: .customLong("log-level"), help: ArgumentHelp(
        "trace, debug, info, notice, warn(ing), error or critical; wins over LOG_LEVEL.", valueName: "level"))
    public var level: String?

    @Option(name: .customLong("log-format"), help: ArgumentHelp("text or json; wins over LOG_FORMAT.", valueName: "format"))
    public var format: String?

    public init() {}

    public func validate() throws {
        do { try LogFlags.apply(level: level, format: format) } catch { throw ValidationError(error.description) }
    }
}
