@testable import Arbiter
import ManualClock
import TimeUnits

typealias TestInstant = ManualInstant

typealias Machine = Arbiter<TestInstant>
typealias Action = Machine.Action
/// How a process ended (Swift Testing has an `ExitStatus` of its own).
typealias ProcessEnd = ExitStatus

/// Plays the shell: answers each `.spawn` with a new pid (or a failure, when asked) the way the real loop
/// does, before the next action, and returns every action in the order the shell would see them.
struct Harness {
    var arbiter: Machine
    var now = TestInstant.zero
    var nextPID: Int32 = 100
    /// Spawns fail while this is set, with this message.
    var spawnError: String?
    /// The wall clock the cleanup job sees, in milliseconds; it moves with `now`.
    var wall: Int64 = 0
    /// The cleanup job's pid once it is started.
    var cleanupPID: Int32 = 900

    init(cleanup: CleanupJob? = nil, _ configure: (inout Machine.Configuration) -> Void = { _ in }) {
        var configuration = Machine.Configuration.example
        configure(&configuration)
        arbiter = Machine(configuration: configuration, now: .zero, cleanup: cleanup)
    }

    mutating func start() -> [Action] { run(arbiter.start(now: now)) }

    mutating func advance(_ duration: Duration) -> [Action] {
        now = now.advanced(by: duration)
        wall += duration.inMilliseconds
        return run(arbiter.tick(now: now, wall: wall))
    }

    mutating func notify(_ pid: Int32, _ text: String) -> [Action] {
        run(arbiter.notified(pid: pid, message: NotifyMessage(parsing: Array(text.utf8)), now: now))
    }

    mutating func ready(_ pids: Int32...) -> [Action] {
        pids.flatMap { notify($0, "READY=1") }
    }

    mutating func exit(_ pid: Int32, _ status: ExitStatus = .exited(1)) -> [Action] {
        run(arbiter.exited(pid: pid, status: status, now: now))
    }

    mutating func signal(_ signal: Machine.ControlSignal) -> [Action] {
        run(arbiter.received(signal, now: now))
    }

    mutating func run(_ actions: [Action]) -> [Action] {
        var all: [Action] = []
        for action in actions {
            all.append(action)
            if case .startCleanup = action {
                all += run(arbiter.cleanupStarted(pid: cleanupPID, now: now))
                continue
            }
            guard case .spawn(let slot, let generation, _) = action else { continue }
            if let spawnError {
                all += run(arbiter.spawnFailed(slot: slot, generation: generation, error: spawnError, now: now))
            } else {
                let pid = nextPID
                nextPID += 1
                all += run(arbiter.spawned(slot: slot, generation: generation, pid: pid, now: now))
            }
        }
        return all
    }

    /// `workers` ready workers (pids 100, 101, ...) in the running phase.
    static func running(workers: Int = 2, _ configure: (inout Machine.Configuration) -> Void = { _ in }) -> Harness {
        var harness = Harness {
            $0.workers = workers
            configure(&$0)
        }
        _ = harness.start()
        for pid in harness.pids.compactMap({ $0 }) { _ = harness.ready(pid) }
        return harness
    }

    /// `workers` ready workers and a cleanup job running as pid 900 (run at start, then hourly).
    static func runningWithCleanup(workers: Int = 1) -> Harness {
        var configuration = CleanupJob.Configuration { $0 + 3600 }
        configuration.runOnStart = true
        var harness = Harness(cleanup: CleanupJob(configuration: configuration, now: 0)) { $0.workers = workers }
        _ = harness.start()
        for pid in harness.pids.compactMap({ $0 }) { _ = harness.ready(pid) }
        _ = harness.advance(.zero)
        return harness
    }

    /// The serving worker's pid in each slot.
    var pids: [Int32?] { arbiter.slots.map { $0.worker?.pid } }
}

extension Array where Element == Action {
    var spawns: [Int] {
        compactMap { if case .spawn(let slot, _, _) = $0 { slot } else { nil } }
    }

    func signals(_ signal: Machine.WorkerSignal) -> [Int32] {
        compactMap { if case .signal(let pid, signal) = $0 { pid } else { nil } }
    }

    var upstream: [String] {
        compactMap { if case .notifyUpstream(let message) = $0 { message } else { nil } }
    }

    var reports: [Machine.Report] {
        compactMap { if case .report(let report) = $0 { report } else { nil } }
    }

    var exitCode: Int32? {
        compactMap { if case .exit(let code) = $0 { code } else { nil } }.first
    }
}

extension Arbiter.Configuration {
    /// A configuration like the supervisor's defaults (one worker; 8 s to drain, 30 s of heartbeat, 60 s to boot),
    /// written out: the arbiter's tests do not depend on the settings' declarations.
    static var example: Self {
        Self(workers: 1, workerRange: 1...1024, gracefulTimeout: .seconds(8), heartbeatTimeout: .seconds(30), bootTimeout: .seconds(60))
    }
}
