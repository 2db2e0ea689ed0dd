import Arbiter
import Budget
import Glibc

extension SupervisorSettings {
    /// Settings from flags, then environment variables, then defaults. A flag wins over its variable; the
    /// error's kind says which of the two was wrong. The command is resolved last, so a bad flag is reported
    /// before a missing executable.
    public init(arguments: SupervisorArguments, environment: [String: String],
                defaultWorkerDirectory: String) throws(StartupError) {
        self.init(command: Spawner.Command(path: "", arguments: []), environment: environment)
        let reader = ValueReader(environment: environment)
        let count = { (range: ClosedRange<Int>) in
            { (text: String, name: String) throws(ConfigurationError) -> Int in
                try SettingParser.count(text, name: name, range: range)
            }
        }
        let duration = { (text: String, name: String) throws(ConfigurationError) -> Duration in
            try SettingParser.duration(text, name: name)
        }

        if let workers = try reader.value(arguments.workers, "--workers", "API_WORKERS", count(1...1024)) {
            arbiter.workers = workers
        }
        let address = { (text: String, _: String) throws(ConfigurationError) -> BindAddress in
            try BindAddress(parsing: text)
        }
        if let bind = try reader.value(arguments.bind, "--bind", "BIND", address) {
            self.bind = bind
        } else if let port = try reader.value(nil, "", "PORT", count(0...65535)) {
            self.bind = .tcp(host: "0.0.0.0", port: UInt16(port))
        }
        if let backlog = try reader.value(arguments.backlog, "--backlog", nil, count(1...65535)) {
            self.backlog = Int32(backlog)
        }
        if let graceful = try reader.value(arguments.gracefulTimeout, "--graceful-timeout", "GRACEFUL_TIMEOUT", duration) {
            arbiter.gracefulTimeout = graceful
        }
        if let heartbeat = try reader.value(arguments.timeout, "--timeout", nil, duration) {
            arbiter.heartbeatTimeout = heartbeat == .zero ? nil : heartbeat
        }
        if let boot = try reader.value(arguments.bootTimeout, "--boot-timeout", nil, duration) {
            guard boot > .zero else { throw .usage("--boot-timeout: must be more than 0") }
            arbiter.bootTimeout = boot
        }
        let signals = { (text: String, name: String) throws(ConfigurationError) -> Set<Arbiter<ContinuousClock.Instant>.UserSignal> in
            try SettingParser.relayedSignals(text, name: name)
        }
        if let relayed = try reader.value(arguments.relaySignals, "--relay-signal", "RELAY_SIGNALS", signals) {
            arbiter.relayedSignals = relayed
        }
        if arguments.noNotify {
            arbiter.readiness = .onSpawn
            arbiter.heartbeatTimeout = nil
        }
        do { try arbiter.validate() } catch { throw .configuration(error.description) }
        if let requests = try reader.value(arguments.maxRequests, "--max-requests", "MAX_REQUESTS", count(0...Int(Int32.max))) {
            maxRequests = requests == 0 ? nil : requests
        }
        if let jitter = try reader.value(arguments.maxRequestsJitter, "--max-requests-jitter", "MAX_REQUESTS_JITTER",
                                         count(0...Int(Int32.max))) {
            maxRequestsJitter = jitter
        }
        let size = { (text: String, name: String) throws(ConfigurationError) -> Int in
            try SettingParser.size(text, name: name)
        }
        maxWorkerMemory = try reader.value(arguments.maxWorkerMemory, "--max-worker-memory", "MAX_WORKER_MEMORY", size)
        let path = { (text: String, name: String) throws(ConfigurationError) -> String in
            guard text == "none" || (text.hasPrefix("/") && text.utf8.count < 108) else {
                throw ConfigurationError("\(name): expected an absolute path shorter than 108 bytes, or none, got '\(text)'")
            }
            return text
        }
        let explicitControl = try reader.value(arguments.controlSocket, "--control-socket", "CONTROL_SOCKET", path)
        let control = explicitControl ?? ControlSocket.defaultPath(environment: environment)
        controlSocket = control == "none" ? nil : control
        controlSocketIsExplicit = explicitControl != nil
        metricsBind = try reader.value(arguments.metricsBind, "--metrics-bind", "METRICS_BIND", address)
        if case .unix = metricsBind { throw .usage("--metrics-bind: expected host:port (the admin endpoint is HTTP over TCP)") }

        command = try Self.resolveCommand(arguments.command, environment: environment,
                                          defaultWorkerDirectory: defaultWorkerDirectory)
        cleanup = try Self.cleanup(arguments: arguments, environment: environment, defaultDirectory: defaultWorkerDirectory)
        var flags: [String: String] = [:]
        if let text = arguments.budget { flags["--budget"] = text }
        if let text = arguments.replicas { flags["--replicas"] = text }
        let cleanupPool = cleanup.map { PoolSize(size: $0.poolSize, overflow: $0.maxOverflow) }
        let budget = try BudgetConfiguration.read(workers: arbiter.workers, cleanup: cleanupPool, flags: flags,
                                                  environment: environment)
        self.budget = budget
        budgetWarning = try budget.check()
        arbiter.connections = budget.limits
        do { try arbiter.validate() } catch { throw .configuration(error.description) }
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

/// Reads one setting from its flag or, failing that, its environment variable.
private struct ValueReader {
    var environment: [String: String]

    func value<T>(_ flag: String?, _ flagName: String, _ variable: String?,
                  _ parse: (String, String) throws(ConfigurationError) -> T) throws(StartupError) -> T? {
        if let flag {
            do { return try parse(flag, flagName) } catch { throw .usage(error.description) }
        }
        if let variable, let text = environment[variable], !text.isEmpty {
            do { return try parse(text, variable) } catch { throw .configuration(error.description) }
        }
        return nil
    }
}
