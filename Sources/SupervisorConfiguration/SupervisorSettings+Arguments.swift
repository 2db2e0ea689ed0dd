import TimeUnits
import SupervisorSystem
import Arbiter
import Budget
import Glibc
import Settings
import ConnectionURL

extension SupervisorSettings {
    /// Settings from flags, then environment variables, then the declared defaults. A flag wins over its
    /// variable; the error's kind says which of the two was wrong. The command is resolved after the values,
    /// so a bad flag is reported before a missing executable, and the workers' environment is checked last,
    /// before anything is bound or spawned.
    package init(arguments: SupervisorArguments, environment: [String: String],
                defaultWorkerDirectory: String) throws(StartupError) {
        self.init(command: Spawner.Command(path: "", arguments: []), environment: environment)
        let reader = SettingsReader(flags: arguments.flags, environment: environment)
        do throws(SettingError) {
            try read(reader)
        } catch {
            throw error.fromFlag ? .usage(error.description) : .configuration(error.description)
        }
        do { try arbiter.validate() } catch { throw .configuration(error.description) }

        command = try Self.resolveCommand(arguments.command, environment: environment,
                                          defaultWorkerDirectory: defaultWorkerDirectory)
        let workerIsOurs = Self.isSameFile(command.path, defaultWorkerDirectory + "/worker")
        cleanup = try Self.cleanup(reader: reader, defaultDirectory: defaultWorkerDirectory, workerIsOurs: workerIsOurs)
        cleanup?.gracefulTimeout = arbiter.gracefulTimeout
        let cleanupPool = cleanup.map { PoolSize(size: $0.poolSize, overflow: $0.maxOverflow) }
        let budget = try BudgetConfiguration.read(workers: arbiter.workers, cleanup: cleanupPool, reader: reader)
        self.budget = budget
        budgetWarning = try budget.check()
        arbiter.connections = budget.limits
        do { try arbiter.validate() } catch { throw .configuration(error.description) }
        try checkWorkerEnvironment(workerIsOurs: workerIsOurs, defaultWorkerDirectory: defaultWorkerDirectory)
    }

    private mutating func read(_ reader: SettingsReader) throws(SettingError) {
        arbiter.workers = try reader[Catalog.workers]
        if let found = reader.found(Catalog.bind) {
            do { bind = try BindAddress(parsing: found.text) } catch {
                throw SettingError("\(found.source): \(error.description)", fromFlag: found.fromFlag)
            }
        } else {
            bind = .tcp(host: HostPortSyntax.everyIPv4Address, port: UInt16(try reader[Catalog.port]))
        }
        socketMode = try reader[Catalog.socketMode]
        if let group = reader.found(Catalog.socketGroup) {
            guard let gid = Self.groupID(group.text) else {
                throw SettingError("\(group.source): no group '\(group.text)' on this system", fromFlag: group.fromFlag)
            }
            socketGroup = gid
        }
        backlog = Int32(try reader[Catalog.backlog])
        arbiter.gracefulTimeout = try reader[Catalog.gracefulTimeout]
        let heartbeat = try reader[Catalog.heartbeatTimeout]
        arbiter.heartbeatTimeout = heartbeat == .zero ? nil : heartbeat
        if let required = reader.found(Catalog.requireHeartbeat), try reader[Catalog.requireHeartbeat] {
            let withoutNotify = try reader[Catalog.noNotify]
            if arbiter.heartbeatTimeout == nil || withoutNotify {
                throw SettingError("\(required.source) needs heartbeats: sd_notify (not --no-notify) and a heartbeat timeout above 0",
                                   fromFlag: required.fromFlag)
            }
            arbiter.requireHeartbeat = true
        }
        arbiter.bootTimeout = try reader[Catalog.bootTimeout]
        if let relayed = reader.found(Catalog.relaySignals) {
            do { arbiter.relayedSignals = try Self.relayedSignals(relayed.text, name: relayed.source) } catch {
                throw SettingError(error.description, fromFlag: relayed.fromFlag)
            }
        }
        if try reader[Catalog.noNotify] {
            let readyAfter = try reader[Catalog.readyAfter]
            if readyAfter >= arbiter.bootTimeout {
                // Named by whichever of the two was given (a flag makes it a usage error, exit 64).
                let given = reader.found(Catalog.readyAfter) ?? reader.found(Catalog.bootTimeout)
                let readyName = reader.found(Catalog.readyAfter)?.source ?? "--ready-after (default \(Catalog.readyAfter.defaultValue.components.seconds) s)"
                let bootName = reader.found(Catalog.bootTimeout)?.source ?? "--boot-timeout (default \(Catalog.bootTimeout.defaultValue.components.seconds) s)"
                throw SettingError("\(readyName) must be shorter than \(bootName), or no worker could ever be ready: "
                                   + "got \(readyAfter) and \(arbiter.bootTimeout)", fromFlag: given?.fromFlag ?? false)
            }
            arbiter.readiness = .alive(for: readyAfter)
            arbiter.heartbeatTimeout = nil
        } else if let readyAfter = reader.found(Catalog.readyAfter) {
            throw SettingError("\(readyAfter.source) applies only with --no-notify (NO_NOTIFY=1): a worker that speaks sd_notify is ready when it says READY=1",
                               fromFlag: readyAfter.fromFlag)
        }
        logLevel = try reader[Catalog.logLevel]
        logFormat = try reader[Catalog.logFormat]
        // Given as flags, they are the workers' too, as uvicorn's --log-level is.
        for setting in [Catalog.logLevel.declaration, Catalog.logFormat.declaration] where reader.found(setting)?.fromFlag == true {
            workerVariables[setting.variables[0]] = reader.flags[setting.name]
        }
        let requests = try reader[Catalog.maxRequests]
        maxRequests = requests == 0 ? nil : requests
        maxRequestsJitter = try reader[Catalog.maxRequestsJitter]
        arbiter.maxWorkerMemory = try reader[Catalog.maxWorkerMemory]
        // Not checked here: the URL is the workers', and a foreign worker's (SQLAlchemy's `postgresql+asyncpg://`) is
        // not libpq's. Ports are counted only from one that reads as libpq's.
        // A Python worker's URL is SQLAlchemy's (postgresql+asyncpg://): its ports are read the same.
        databasePorts = reader.found(Catalog.databaseURL).flatMap {
            try? PostgresURLSyntax(PostgresURLSyntax.withoutDriver($0.text)).tcpPorts
        } ?? []
        if let control = reader.found(Catalog.controlSocket) {
            guard control.text == "none" || (control.text.hasPrefix("/") && control.text.utf8.count < 108) else {
                throw SettingError("\(control.source): expected an absolute path shorter than 108 bytes, or none, got '\(control.text)'",
                                   fromFlag: control.fromFlag)
            }
            controlSocket = control.text == "none" ? nil : control.text
            controlSocketIsExplicit = true
        } else {
            controlSocket = RuntimeDirectory.controlSocketPath(environment)
        }
        if let metrics = reader.found(Catalog.metricsBind) {
            do { metricsBind = try BindAddress(parsing: metrics.text) } catch {
                throw SettingError("\(metrics.source): \(error.description)", fromFlag: metrics.fromFlag)
            }
            if case .unix = metricsBind {
                throw SettingError("\(metrics.source): expected host:port (the admin endpoint is HTTP over TCP)", fromFlag: metrics.fromFlag)
            }
        }
    }

    /// A group name or a numeric gid.
    static func groupID(_ text: String) -> gid_t? {
        if let number = UInt32(text) { return number }
        guard let entry = getgrnam(text) else { return nil }
        return entry.pointee.gr_gid
    }

    /// `USR1`, `USR2`, `SIGUSR1`, comma-separated, or `none`: the signals relayed to the workers.
    package static func relayedSignals(_ text: String, name: String) throws(ConfigurationError) -> Set<Arbiter<ContinuousClock.Instant>.UserSignal> {
        var signals: Set<Arbiter<ContinuousClock.Instant>.UserSignal> = []
        for item in text.split(separator: ",", omittingEmptySubsequences: false) {
            var word = String(item).trimmingSpaces.uppercased()
            if word == "NONE" { continue }
            if word.hasPrefix("SIG") { word.removeFirst(3) }
            guard let signal = Arbiter<ContinuousClock.Instant>.UserSignal(rawValue: word) else {
                throw ConfigurationError("\(name): expected USR1, USR2 or none, got '\(item)' (only these are relayed: "
                    + "the others are the supervisor's own)")
            }
            signals.insert(signal)
        }
        return signals
    }

    /// The first spawn's environment, checked as our worker (and our cleanup) will check it at start: a value
    /// they would refuse is refused here, with exit 78, before five failed boots end the service with exit 3.
    /// Only for our own executables (the default ones, or the same files): another command, uvicorn say, reads
    /// `DATABASE_URL` its own way (`postgresql+asyncpg://` is not a libpq URL).
    private func checkWorkerEnvironment(workerIsOurs: Bool, defaultWorkerDirectory: String) throws(StartupError) {
        // What the spawner gives every child (the job too), then what each kind adds.
        func variables(_ lines: [String]) -> [String: String] {
            Dictionary(lines.map { line in
                let parts = line.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                return (String(parts[0]), parts.count > 1 ? String(parts[1]) : "")
            }, uniquingKeysWith: { $1 })
        }
        let common = variables(workerEnvironment)
        let pools = budget.map { $0.poolEnvironment(connections: $0.budget.perWorker) } ?? []
        if workerIsOurs, let problem = EnvironmentContract.problem(of: .worker, in: common.merging(variables(pools)) { $1 }) {
            throw .configuration("\(problem) (the worker would refuse it: checked before starting any)")
        }
        if let cleanup, Self.isSameFile(cleanup.command.path, defaultWorkerDirectory + "/cleanup") {
            let jobEnvironment = common.merging(variables(cleanup.environment)) { $1 }
            if let problem = EnvironmentContract.problem(of: .cleanup, in: jobEnvironment) {
                throw .configuration("\(problem) (the cleanup job would refuse it; or pass --no-cleanup)")
            }
        }
    }

    static func isSameFile(_ a: String, _ b: String) -> Bool {
        var first = stat()
        var second = stat()
        guard stat(a, &first) == 0, stat(b, &second) == 0 else { return false }
        return first.st_dev == second.st_dev && first.st_ino == second.st_ino
    }

    /// The command after `--`, or the `worker` executable installed beside the supervisor.
    static func resolveCommand(_ command: [String], environment: [String: String],
                               defaultWorkerDirectory: String) throws(StartupError) -> Spawner.Command {
        if let name = command.first {
            guard let path = Spawner.resolve(name, path: environment["PATH"]) else {
                var info = stat()
                if name.contains("/"), stat(name, &info) == 0, info.st_mode & S_IFMT == S_IFDIR {
                    throw .commandNotFound("\(name) is a directory, not a command")
                }
                throw .commandNotFound("command not found or not executable: \(name)")
            }
            return Spawner.Command(path: path, arguments: command)
        }
        let path = defaultWorkerDirectory + "/worker"
        guard Spawner.isExecutableFile(path) else {
            throw .commandNotFound("no command given and no worker executable at \(path)")
        }
        return Spawner.Command(path: path, arguments: [path])
    }
}
