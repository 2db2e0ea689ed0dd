import SupervisorSystem
import Arbiter

/// What the supervisor does to the world, one call per kind of action. The loop is the real one (fork and
/// exec, kill, the listener, the cleanup job, sd_notify, the log); `ShellTests` put a recording fake in its
/// place and replay event sequences through the same runner.
protocol SupervisorWorld: AnyObject {
    typealias Machine = Arbiter<ContinuousClock.Instant>

    /// Starts a worker for `slot` with these variables added to the supervisor's environment.
    func spawnWorker(slot: Int, generation: Int, extraEnvironment: [String]) -> Result<Int32, SystemError>
    func send(_ signal: Machine.WorkerSignal, to pid: Int32)
    func stopAccepting()
    /// Starts the cleanup job.
    func startCleanup() -> Result<Int32, SystemError>
    /// SIGTERM, or SIGKILL, to the cleanup job's whole tree.
    func signalCleanup(pid: Int32, kill: Bool)
    func notifyUpstream(_ message: String)
    func record(_ report: Machine.Report)
}

/// The shell's one job: run the arbiter's actions in order and feed back what came of each spawn. It decides
/// nothing (the arbiter did); the only thing it adds is the translation of a spawn's pool ceiling into the
/// worker's pool variables.
struct ActionRunner {
    typealias Machine = Arbiter<ContinuousClock.Instant>

    var arbiter: Machine
    /// `DB_POOL_SIZE`/`DB_MAX_OVERFLOW` for a worker given that many connections (none unless pools are
    /// automatic: otherwise the worker reads the same variables the supervisor did).
    let poolEnvironment: (Int) -> [String]
    /// Set by `.exit`: every worker is gone.
    private(set) var exitCode: Int32?

    init(arbiter: Machine, poolEnvironment: @escaping (Int) -> [String]) {
        self.arbiter = arbiter
        self.poolEnvironment = poolEnvironment
    }

    mutating func perform(_ actions: [Machine.Action], now: ContinuousClock.Instant, on world: some SupervisorWorld) {
        for action in actions {
            switch action {
            case .spawn(let slot, let generation, let connections):
                switch world.spawnWorker(slot: slot, generation: generation, extraEnvironment: poolEnvironment(connections)) {
                case .success(let pid):
                    perform(arbiter.spawned(slot: slot, generation: generation, pid: pid, now: now), now: now, on: world)
                case .failure(let error):
                    perform(arbiter.spawnFailed(slot: slot, generation: generation, error: "\(error)", now: now), now: now, on: world)
                }
            case .signal(let pid, let signal):
                world.send(signal, to: pid)
            case .stopAccepting:
                world.stopAccepting()
            case .startCleanup:
                switch world.startCleanup() {
                case .success(let pid):
                    perform(arbiter.cleanupStarted(pid: pid, now: now), now: now, on: world)
                case .failure(let error):
                    perform(arbiter.cleanupStartFailed(error: "\(error)", now: now), now: now, on: world)
                }
            case .signalCleanup(let pid, let kill):
                world.signalCleanup(pid: pid, kill: kill)
            case .notifyUpstream(let message):
                world.notifyUpstream(message)
            case .report(let report):
                world.record(report)
            case .exit(let code):
                exitCode = code
            }
        }
    }
}
