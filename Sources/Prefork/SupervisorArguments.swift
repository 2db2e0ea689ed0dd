/// The supervisor's command line, as text: `supervisor [options] [--] command [args...]`.
///
/// Hand-written rather than ArgumentParser: ArgumentParser discovers options by reflection, which faults
/// about 4 MB of the binary into memory at start, half of the supervisor's 8 MB budget, for eight flags.
public struct SupervisorArguments: Sendable, Equatable {
    public var workers: String?
    public var bind: String?
    public var backlog: String?
    public var gracefulTimeout: String?
    public var timeout: String?
    public var bootTimeout: String?
    public var noNotify = false
    public var cleanupSchedule: String?
    public var cleanupCommand: String?
    public var cleanupTimeout: String?
    public var cleanupJitter: String?
    public var cleanupTimezone: String?
    public var cleanupOnStart = false
    public var noCleanup = false
    public var budget: String?
    public var replicas: String?
    public var maxRequests: String?
    public var maxRequestsJitter: String?
    public var maxWorkerMemory: String?
    public var controlSocket: String?
    public var metricsBind: String?
    /// `--relay-signal USR1 --relay-signal USR2` or `--relay-signal USR1,USR2`, joined with commas.
    public var relaySignals: String?
    public var help = false
    public var command: [String] = []

    public init() {}

    /// Options take their value as `--name value` or `--name=value`. The first argument that is not an
    /// option, or everything after `--`, is the worker command.
    public init(parsing arguments: some Sequence<String>) throws(ConfigurationError) {
        var iterator = arguments.makeIterator()
        while let argument = iterator.next() {
            if argument == "--" {
                while let rest = iterator.next() { command.append(rest) }
                break
            }
            guard argument.hasPrefix("-"), argument != "-" else {
                command.append(argument)
                while let rest = iterator.next() { command.append(rest) }
                break
            }
            var name = argument
            var inlineValue: String?
            if let equals = argument.firstIndex(of: "=") {
                name = String(argument[..<equals])
                inlineValue = String(argument[argument.index(after: equals)...])
            }
            func value() throws(ConfigurationError) -> String {
                if let inlineValue { return inlineValue }
                guard let next = iterator.next() else { throw ConfigurationError("\(name) needs a value") }
                return next
            }
            switch name {
            case "--workers", "-w": workers = try value()
            case "--bind", "-b": bind = try value()
            case "--backlog": backlog = try value()
            case "--graceful-timeout": gracefulTimeout = try value()
            case "--timeout", "-t": timeout = try value()
            case "--boot-timeout": bootTimeout = try value()
            case "--no-notify":
                guard inlineValue == nil else { throw ConfigurationError("--no-notify takes no value") }
                noNotify = true
            case "--cleanup-schedule": cleanupSchedule = try value()
            case "--cleanup-command": cleanupCommand = try value()
            case "--cleanup-timeout": cleanupTimeout = try value()
            case "--cleanup-jitter": cleanupJitter = try value()
            case "--cleanup-timezone": cleanupTimezone = try value()
            case "--cleanup-on-start":
                guard inlineValue == nil else { throw ConfigurationError("--cleanup-on-start takes no value") }
                cleanupOnStart = true
            case "--no-cleanup":
                guard inlineValue == nil else { throw ConfigurationError("--no-cleanup takes no value") }
                noCleanup = true
            case "--budget": budget = try value()
            case "--replicas": replicas = try value()
            case "--max-requests": maxRequests = try value()
            case "--max-requests-jitter": maxRequestsJitter = try value()
            case "--max-worker-memory": maxWorkerMemory = try value()
            case "--control-socket": controlSocket = try value()
            case "--metrics-bind": metricsBind = try value()
            case "--relay-signal": relaySignals = [relaySignals, try value()].compactMap { $0 }.joined(separator: ",")
            case "--help", "-h": help = true
            default: throw ConfigurationError("unknown option '\(name)' (see supervisor --help)")
            }
        }
    }
}
