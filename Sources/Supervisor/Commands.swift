import Arbiter
import Budget
import Glibc
import SupervisorControl
import SupervisorConfiguration
import SupervisorSystem
import Settings
import TimeUnits

/// `supervisor budget|status|scale|reload|stop`: the operator's commands. A subcommand is recognised only as
/// the first argument; a worker command of the same name is run with `supervisor -- status`.
enum Commands {
    static let names = Set(CommandHelp.names + ["help"])

    /// The command a mistyped first word probably meant (`stat`, `statsu`, `Status`), or nil. Without `--` the
    /// first word that is not a command is the worker program: `supervisor stat` started `/usr/bin/stat` as four
    /// workers on port 8080. A program with such a name still runs after `--`.
    static func meant(_ word: String) -> String? {
        guard !names.contains(word), !word.contains("/"), !word.hasPrefix("-") else { return nil }
        let lower = word.lowercased()
        return names.sorted().first { name in
            lower == name || (lower.count >= 3 && name.hasPrefix(lower)) || (lower.count >= 4 && editDistance(lower, name) == 1)
                || (lower.count == name.count && lower.count >= 4 && isOneSwap(lower, name))
        }
    }

    private static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        var previous = Array(0...b.count)
        for (i, x) in a.enumerated() {
            var current = [i + 1]
            for (j, y) in b.enumerated() {
                current.append(min(previous[j + 1] + 1, current[j] + 1, previous[j] + (x == y ? 0 : 1)))
            }
            previous = current
        }
        return previous[b.count]
    }

    private static func isOneSwap(_ a: String, _ b: String) -> Bool {
        let pairs = Array(zip(a, b)).enumerated().filter { $0.element.0 != $0.element.1 }
        guard pairs.count == 2, pairs[1].offset == pairs[0].offset + 1 else { return false }
        return pairs[0].element.0 == pairs[1].element.1 && pairs[0].element.1 == pairs[1].element.0
    }

    /// Exit codes of the commands (docs/signals.md).
    enum Code {
        static let ok: Int32 = 0
        /// The budget does not fit, or the supervisor refused the request.
        static let refused: Int32 = 1
        static let usage: Int32 = EX_USAGE
        /// No supervisor answers on the control socket, or no database for --check-db.
        static let unavailable: Int32 = EX_UNAVAILABLE
        /// `reload` or `stop` did not come to an end within --timeout (EX_TEMPFAIL: ask again later).
        static let timedOut: Int32 = EX_TEMPFAIL
        static let configuration: Int32 = EX_CONFIG
    }

    static func run(_ name: String, _ arguments: [String], environment: [String: String]) -> Int32 {
        if name == "help" { return help(arguments) }
        guard let program = Program(rawValue: name) else { return usage("no command '\(name)'") }
        let parser = FlagParser(settings: Catalog.flags(of: program), switches: ["--help": "help", "-h": "help"],
                                stopsAtFirstArgument: false)
        let parsed: FlagParser.Parsed
        do { parsed = try parser.parse(arguments, program: "supervisor \(name)") } catch {
            return usage("\(name): \(error.description)")
        }
        if parsed.switches.contains("help") {
            print(CommandHelp.text(name) ?? helpText)
            return Code.ok
        }
        let reader = SettingsReader(flags: parsed.flags, environment: environment)
        let positional = parsed.arguments
        do throws(SettingError) {
            switch program {
            case .budget:
                guard positional.isEmpty else { return usage("budget takes no arguments, got '\(positional[0])'") }
                return budget(reader)
            case .schedule:
                guard positional.count <= 1 else { return usage("schedule takes one expression; quote it: supervisor schedule '0 3 * * *'") }
                return try ScheduleCommand.run(positional.first, reader: reader)
            case .healthcheck:
                guard positional.isEmpty else { return usage("healthcheck takes no arguments") }
                return try HealthCheck.run(reader)
            case .status:
                guard positional.isEmpty else { return usage("status takes no arguments") }
                return control(.status(json: try reader[Catalog.statusJSON]), reader: reader)
            case .scale:
                let range = Catalog.workers.range
                // The counts' one syntax: `+1` is not a count (it was read as 1, and scaled down).
                guard positional.count == 1, let workers = ValueSyntax.count(positional[0], range: range) else {
                    return usage("usage: supervisor scale N (\(range.lowerBound) to \(range.upperBound))")
                }
                return control(.scale(workers: workers), reader: reader)
            case .reload:
                guard positional.isEmpty else { return usage("reload takes no arguments") }
                let wait = try reader[Catalog.noWait] ? nil : try reader[Catalog.reloadTimeout]
                return OutcomeWait.reload(reader: reader, wait: wait)
            case .stop:
                guard positional.isEmpty else { return usage("stop takes no arguments") }
                let wait = try reader[Catalog.noWait] ? nil : try reader[Catalog.stopTimeout]
                return OutcomeWait.stop(reader: reader, wait: wait)
            case .supervisor, .worker, .migrate, .createToken, .cleanup:
                return usage("no command '\(name)'")
            }
        } catch {
            report("\(name): \(error.description)")
            return error.fromFlag ? Code.usage : Code.configuration
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

    /// `--control-socket`, `CONTROL_SOCKET`, else where the supervisor puts it by default.
    static func controlPath(_ reader: SettingsReader) -> String {
        (try? reader[Catalog.controlSocket]) ?? ControlSocket.defaultPath(environment: reader.environment)
    }

    /// Sends one request and prints the body of an `ok`; `body` gets it instead when given.
    /// - Parameter timeout: how long the supervisor may take to answer (a `--timeout` caps it).
    static func control(_ request: ControlRequest, reader: SettingsReader, timeout: Duration = .seconds(10),
                        body: ((String) -> Void)? = nil) -> Int32 {
        let path = controlPath(reader)
        if let reason = ControlSocket.untrustedReason(path: path) {
            report("refusing to use the control socket \(path): \(reason); another user could answer in the supervisor's name")
            return Code.unavailable
        }
        switch ControlSocket.request(request.line, path: path, timeout: timeout) {
        case .failure(let error) where error.errno == EAGAIN || error.errno == EWOULDBLOCK:
            // It accepted the connection (the kernel did), so it runs, but its loop did not answer: stopped with
            // SIGSTOP, or starved. What was asked stays queued and may still happen when it resumes.
            report("the supervisor at \(path) did not answer within \(ValueSyntax.describe(timeout)) (stopped, or busy?); "
                + "the request may still take effect when it resumes")
            return Code.timedOut
        case .failure(let error) where error.errno == EPERM:
            report("refusing to use the control socket \(path): \(error.call); another user could answer in the supervisor's name")
            return Code.unavailable
        case .failure(let error):
            let others = reader.isGiven(Catalog.controlSocket) ? [] : ControlSocket.otherDefaults(than: path)
            let found = others.isEmpty ? "" : "; another user's supervisor may be at \(others.joined(separator: ", "))"
            report("no supervisor answers at \(path): \(error) (is it running? pass --control-socket\(found))")
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

    static func budget(_ reader: SettingsReader) -> Int32 {
        let configuration: BudgetConfiguration
        let checkDB: Bool
        do throws(StartupError) {
            let workers: Int
            var cleanup: PoolSize?
            do throws(SettingError) {
                checkDB = try reader[Catalog.checkDatabase]
                workers = try reader[Catalog.workers]
                if try !reader[Catalog.noCleanup] {
                    cleanup = PoolSize(size: try reader[Catalog.cleanupPoolSize], overflow: try reader[Catalog.cleanupMaxOverflow])
                }
                // What the supervisor would refuse, the plan does not call fitting: the pools' own rules.
                if try reader[Catalog.poolSize] != .auto, let problem = try EnvironmentContract.poolProblem(of: .worker, reader) {
                    throw SettingError(problem)
                }
                if let cleanup, cleanup.total < 1 {
                    throw SettingError("CLEANUP_DB_POOL_SIZE + CLEANUP_DB_MAX_OVERFLOW must be at least 1")
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
            code = max(code, checkDatabase(configuration.budget, environment: reader.environment))
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
