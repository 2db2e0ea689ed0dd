import Arbiter
import Budget
import Glibc
import OperatorSurfaces
import SupervisorConfiguration
import SupervisorSystem
import Settings
import TimeUnits

/// `supervisor budget|status|scale|reload|stop`: the operator's commands. A subcommand is recognised only as
/// the first argument; a worker command of the same name is run with `supervisor -- status`.
enum Commands {
    static let names: Set<String> = ["budget", "status", "scale", "reload", "stop", "healthcheck", "schedule", "help"]

    /// Exit codes of the commands (the README's table).
    enum Code {
        static let ok: Int32 = 0
        /// The budget does not fit, or the supervisor refused the request.
        static let refused: Int32 = 1
        static let usage: Int32 = 64
        /// No supervisor answers on the control socket, or no database for --check-db.
        static let unavailable: Int32 = 69
        /// `reload` or `stop` did not come to an end within --timeout (EX_TEMPFAIL: ask again later).
        static let timedOut: Int32 = 75
        static let configuration: Int32 = 78
    }

    /// Each command's options: valued ones, and switches. `budget` takes its settings' flags instead.
    static let options: [String: (valued: Set<String>, switches: Set<String>)] = [
        "status": (["--control-socket"], ["--json"]),
        "scale": (["--control-socket"], []),
        "reload": (["--control-socket", "--timeout"], ["--no-wait"]),
        "stop": (["--control-socket", "--timeout"], ["--no-wait"]),
        "healthcheck": (["--bind", "--path", "--timeout", "--control-socket"], []),
        "schedule": (["--timezone", "--count", "--after"], ["--batch"]),
    ]

    static func run(_ name: String, _ arguments: [String], environment: [String: String]) -> Int32 {
        if name == "help" { return help(arguments) }
        if name == "budget" { return budget(arguments, environment: environment) }
        var options: [String: String] = [:]
        var switches: Set<String> = []
        var positional: [String] = []
        let accepted = Self.options[name] ?? ([], [])
        var iterator = arguments.makeIterator()
        while let argument = iterator.next() {
            var key = argument
            var inline: String?
            if argument.hasPrefix("--"), let equals = argument.firstIndex(of: "=") {
                key = String(argument[..<equals])
                inline = String(argument[argument.index(after: equals)...])
            }
            if accepted.valued.contains(key) {
                guard let value = inline ?? iterator.next() else { return usage("\(key) needs a value") }
                options[key] = value
            } else if accepted.switches.contains(key) || key == "--help" || key == "-h", inline == nil {
                switches.insert(key == "-h" ? "--help" : key)
            } else if argument.hasPrefix("-"), Int(argument) == nil {
                return usage("\(name): unknown option '\(key)' (see supervisor help \(name))")
            } else {
                positional.append(argument)
            }
        }
        if switches.contains("--help") {
            print(CommandHelp.text(name) ?? helpText)
            return Code.ok
        }
        switch name {
        case "schedule":
            guard positional.count <= 1 else { return usage("schedule takes one expression; quote it: supervisor schedule '0 3 * * *'") }
            return ScheduleCommand.run(positional.first, options: options, switches: switches, environment: environment)
        case "healthcheck":
            guard positional.isEmpty else { return usage("healthcheck takes no arguments") }
            return HealthCheck.run(options: options, environment: environment)
        case "status":
            guard positional.isEmpty else { return usage("status takes no arguments") }
            return control(switches.contains("--json") ? "status json" : "status", options: options, environment: environment)
        case "scale":
            let range = Catalog.workers.range
            guard positional.count == 1, let workers = Int(positional[0]), range.contains(workers) else {
                return usage("usage: supervisor scale N (\(range.lowerBound) to \(range.upperBound))")
            }
            return control("scale \(workers)", options: options, environment: environment)
        case "reload", "stop":
            guard positional.isEmpty else { return usage("\(name) takes no arguments") }
            var timeout: Duration = name == "reload" ? .seconds(600) : .seconds(120)
            if let text = options["--timeout"] {
                guard let parsed = DurationSyntax.parse(text), parsed > .zero else {
                    return usage("\(name): --timeout: expected a duration of more than 0 such as 90, 500ms or 10m, got '\(text)'")
                }
                timeout = parsed
            }
            let wait = switches.contains("--no-wait") ? nil : timeout
            return name == "reload" ? OutcomeWait.reload(options: options, environment: environment, wait: wait)
                : OutcomeWait.stop(options: options, environment: environment, wait: wait)
        default:
            guard positional.isEmpty else { return usage("\(name) takes no arguments") }
            return control(name, options: options, environment: environment)
        }
    }

    /// `supervisor help`, `supervisor help COMMAND`, `supervisor help settings [--markdown]`.
    static func help(_ arguments: [String]) -> Int32 {
        switch arguments.first {
        case nil:
            print(helpText)
        case "settings":
            print(arguments.dropFirst().first == "--markdown" ? SettingsHelp.markdownTable() : CommandHelp.settings)
        case let name?:
            guard let text = CommandHelp.text(name) else {
                return usage("help: no command '\(name)'; the commands: \(CommandHelp.names.joined(separator: ", ")), settings")
            }
            print(text)
        }
        return Code.ok
    }

    static func usage(_ message: String) -> Int32 {
        report(message)
        return Code.usage
    }

    static func report(_ message: String) {
        var line = "supervisor: \(message)\n"
        line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
    }

    static func controlPath(options: [String: String], environment: [String: String]) -> String {
        let reader = SettingsReader(flags: options["--control-socket"].map { [Catalog.controlSocket.name: $0] } ?? [:],
                                    environment: environment)
        return (try? reader[Catalog.controlSocket]) ?? ControlSocket.defaultPath(environment: environment)
    }

    /// Sends one request and prints the body of an `ok`; `body` gets it instead when given.
    static func control(_ request: String, options: [String: String], environment: [String: String],
                        body: ((String) -> Void)? = nil) -> Int32 {
        let path = controlPath(options: options, environment: environment)
        if let reason = ControlSocket.untrustedReason(path: path) {
            report("refusing to use the control socket \(path): \(reason); another user could answer in the supervisor's name")
            return Code.unavailable
        }
        switch ControlSocket.request(request, path: path) {
        case .failure(let error) where error.errno == EPERM:
            report("refusing to use the control socket \(path): \(error.call); another user could answer in the supervisor's name")
            return Code.unavailable
        case .failure(let error):
            report("no supervisor answers at \(path): \(error) (is it running? pass --control-socket)")
            return Code.unavailable
        case .success(let response):
            switch ControlSocket.parse(response) {
            case .ok(let text):
                if let body { body(text) } else { print(text, terminator: "") }
                return Code.ok
            case .refused(let why):
                report("refused: \(why)")
                return Code.refused
            case .error(let why):
                report(why)
                return Code.usage
            }
        }
    }

    static func budget(_ arguments: [String], environment: [String: String]) -> Int32 {
        let parser = FlagParser(settings: Catalog.flags(of: .budget),
                                switches: ["--help": "help", "-h": "help", "--check-db": "check-db"], stopsAtFirstArgument: false)
        let configuration: BudgetConfiguration
        let checkDB: Bool
        do throws(StartupError) {
            let parsed: FlagParser.Parsed
            do { parsed = try parser.parse(arguments, program: "supervisor budget") } catch { throw .usage(error.description) }
            if parsed.switches.contains("help") {
                print(CommandHelp.text("budget")!)
                return Code.ok
            }
            guard parsed.arguments.isEmpty else { throw .usage("budget takes no arguments, got '\(parsed.arguments[0])'") }
            checkDB = parsed.switches.contains("check-db")
            let reader = SettingsReader(flags: parsed.flags, environment: environment)
            let workers: Int
            var cleanup: PoolSize?
            do throws(SettingError) {
                workers = try reader[Catalog.workers]
                if try !reader[Catalog.noCleanup] {
                    cleanup = PoolSize(size: try reader[Catalog.cleanupPoolSize], overflow: try reader[Catalog.cleanupMaxOverflow])
                }
            } catch {
                throw error.fromFlag ? .usage(error.description) : .configuration(error.description)
            }
            configuration = try BudgetConfiguration.read(workers: workers, cleanup: cleanup, reader: reader)
        } catch {
            report(error.message)
            return error.exitCode
        }
        print(configuration.table)
        var code = configuration.budget.fits ? Code.ok : Code.refused
        if checkDB {
            code = max(code, checkDatabase(configuration.budget, environment: environment))
        }
        return code
    }

    /// Compares the plan with the real server: its `max_connections`, what only superusers may use, what is
    /// connected now.
    static func checkDatabase(_ budget: ConnectionBudget, environment: [String: String]) -> Int32 {
        let url: String
        do {
            guard let given = try SettingsReader(environment: environment)[Catalog.databaseURL] else {
                report("--check-db needs DATABASE_URL")
                return Code.configuration
            }
            url = given
        } catch {
            report(error.description)
            return Code.configuration
        }
        switch PostgresProbe.facts(url: url) {
        case .failure(let error):
            report("\(error)")
            if case .badURL = error { return Code.configuration }
            return Code.unavailable
        case .success(let server):
            let usable = server.maxConnections - server.superuserReserved - server.roleReserved
            // Behind PgBouncer, Postgres sees its server pools, whatever the clients hold.
            let needed = budget.pgbouncer?.serverConnections ?? budget.workerConnections + budget.cleanupConnections
            print("")
            print("server (PostgreSQL \(server.version)): max_connections \(server.maxConnections), of which "
                + "\(server.superuserReserved) superuser_reserved_connections"
                + (server.roleReserved > 0 ? " and \(server.roleReserved) reserved_connections" : "")
                + ": \(usable) for ordinary roles; \(server.inUse) client connection\(server.inUse == 1 ? "" : "s") open now")
            if server.maxConnections != budget.maxConnections {
                print("note: the plan assumes DB_MAX_CONNECTIONS=\(budget.maxConnections), the server has "
                    + "\(server.maxConnections): set DB_MAX_CONNECTIONS=\(server.maxConnections)")
            }
            let fits = needed <= usable
            let parts = budget.pgbouncer.map { "PgBouncer's server pools \($0.instances) × \($0.poolSize)" }
                ?? "workers \(budget.workerConnections) + cleanup \(budget.cleanupConnections)"
            print((fits ? "fits the server" : "does not fit the server") + ": the plan's worst case is \(needed) "
                + "(\(parts)) of the \(usable) ordinary connections")
            let free = usable - server.inUse
            if needed > free {
                print("now: \(server.inUse) connections are open; if none of them are this service's, "
                    + "only \(max(free, 0)) are free for a new deploy of it")
            }
            return fits ? Code.ok : Code.refused
        }
    }
}
