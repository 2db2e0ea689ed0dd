/// Why the supervisor refuses to start; each maps to a documented exit code.
package enum StartupError: Error, Equatable {
    /// A bad flag: exit 64 (EX_USAGE).
    case usage(String)
    /// A bad environment value or an impossible combination: exit 78 (EX_CONFIG).
    case configuration(String)
    /// The worker command does not exist or cannot be executed: exit 127, as a shell (and tini) would.
    case commandNotFound(String)
    /// The workers' pools can exceed what Postgres allows: exit 78, with the budget's table under the line.
    case budget(String, table: String)

    package var exitCode: Int32 {
        switch self {
        case .usage: SupervisorExitCode.usage
        case .configuration, .budget: SupervisorExitCode.configuration
        case .commandNotFound: SupervisorExitCode.commandNotFound
        }
    }

    package var message: String {
        switch self {
        case .usage(let text), .configuration(let text), .commandNotFound(let text): text
        case .budget(let text, let table):
            text + "\n" + table + "\n(--budget warn starts anyway; supervisor budget --help shows the arithmetic)"
        }
    }
}
