import Settings
import Arbiter
import enum Arbiter.ExitStatus
@testable import SupervisorShell
@testable import SupervisorSystem
import Testing

/// Issue 16: the shell only executes. The same `ActionRunner` the loop uses, against a world that records
/// what it is asked to do, driven by replayed event sequences: boots, notifications, signals, exits.
@Suite("The shell against a fake world")
struct ShellTests {
    typealias Machine = Arbiter<ContinuousClock.Instant>

    final class FakeWorld: SupervisorWorld {
        enum Call: Equatable {
            case spawn(slot: Int, environment: [String])
            case signal(Int32, Machine.WorkerSignal)
            case stopAccepting
            case startCleanup
            case signalCleanup(Int32, kill: Bool)
            case upstream(String)
        }
        var calls: [Call] = []
        var reports: [Machine.Report] = []
        var nextPID: Int32 = 100
        var failSpawns = false

        func spawnWorker(slot: Int, generation: Int, extraEnvironment: [String]) -> Result<Int32, SystemError> {
            calls.append(.spawn(slot: slot, environment: extraEnvironment))
            if failSpawns { return .failure(SystemError("fork", errno: 11)) }
            defer { nextPID += 1 }
            return .success(nextPID)
        }
        func send(_ signal: Machine.WorkerSignal, to pid: Int32) { calls.append(.signal(pid, signal)) }
        func stopAccepting() { calls.append(.stopAccepting) }
        func startCleanup() -> Result<Int32, SystemError> {
            calls.append(.startCleanup)
            return .success(900)
        }
        func signalCleanup(pid: Int32, kill: Bool) { calls.append(.signalCleanup(pid, kill: kill)) }
        func notifyUpstream(_ message: String) { calls.append(.upstream(message)) }
        func record(_ report: Machine.Report) { reports.append(report) }

        /// Forgets what was recorded so far.
        func take() -> [Call] {
            defer { calls = [] }
            return calls
        }
    }

    /// A runner with `workers` slots, a budget that gives each worker 13 connections, and a clock of its own.
    struct Replay {
        var runner: ActionRunner
        let world = FakeWorld()
        var now = ContinuousClock.now

        init(workers: Int, budget: ConnectionLimits? = nil, cleanup: CleanupJob? = nil) {
            var configuration = Machine.Configuration(
                workers: workers, workerRange: Catalog.workers.range, gracefulTimeout: Catalog.gracefulTimeout.defaultValue,
                heartbeatTimeout: Catalog.heartbeatTimeout.defaultValue, bootTimeout: Catalog.bootTimeout.defaultValue)
            configuration.connections = budget
            runner = ActionRunner(arbiter: Machine(configuration: configuration, now: now, cleanup: cleanup)) { connections in
                connections == 0 ? [] : ["DB_POOL_SIZE=\(connections - 6)", "DB_MAX_OVERFLOW=6"]
            }
        }

        mutating func start() { runner.perform(runner.arbiter.start(now: now), now: now, on: world) }
        mutating func ready(_ pid: Int32) {
            runner.perform(runner.arbiter.notified(pid: pid, message: NotifyMessage(parsing: Array("READY=1".utf8)), now: now),
                           now: now, on: world)
        }
        mutating func signal(_ signal: Machine.ControlSignal) { runner.perform(runner.arbiter.received(signal, now: now), now: now, on: world) }
        mutating func exit(_ pid: Int32, _ status: ExitStatus = .exited(0)) {
            runner.perform(runner.arbiter.exited(pid: pid, status: status, now: now), now: now, on: world)
        }
        mutating func advance(_ duration: Duration, wall: Int64? = nil) {
            now += duration
            runner.perform(runner.arbiter.tick(now: now, wall: wall), now: now, on: world)
        }
    }

    @Test func aBootSpawnsEachSlotWithItsPoolAndReportsReadyUpstream() {
        var replay = Replay(workers: 2, budget: ConnectionLimits(steady: 80, peak: 98, perWorker: nil))
        replay.start()
        let spawns = replay.world.take().filter { if case .spawn = $0 { true } else { false } }
        #expect(spawns == [.spawn(slot: 0, environment: ["DB_POOL_SIZE=34", "DB_MAX_OVERFLOW=6"]),
                           .spawn(slot: 1, environment: ["DB_POOL_SIZE=34", "DB_MAX_OVERFLOW=6"])])
        replay.ready(100)
        replay.ready(101)
        #expect(replay.world.take().contains(.upstream("READY=1")))
        #expect(replay.world.reports.contains(.allReady(workers: 2, after: .zero)))
    }

    /// The listener is closed and the job told to stop before any worker gets TERM; a second TERM makes both fast.
    @Test func aStopRunsInTheArbitersOrder() {
        var job = CleanupJob.Configuration { $0 + 3600 }
        job.runOnStart = true
        var replay = Replay(workers: 2, cleanup: CleanupJob(configuration: job, now: 0))
        replay.start()
        replay.ready(100)
        replay.ready(101)
        replay.advance(.zero, wall: 0)
        #expect(replay.world.take().contains(.startCleanup))
        replay.signal(.terminate)
        let stop = replay.world.take().filter { if case .upstream = $0 { false } else { true } }
        #expect(stop == [.stopAccepting, .signalCleanup(900, kill: false), .signal(100, .terminate), .signal(101, .terminate)])
        replay.signal(.terminate)
        #expect(replay.world.take() == [.signalCleanup(900, kill: true), .signal(100, .kill), .signal(101, .kill)])
        replay.exit(100, .signaled(9))
        replay.exit(101, .signaled(9))
        #expect(replay.runner.exitCode == nil, "the cleanup is still running")
        replay.exit(900, .signaled(9))
        #expect(replay.runner.exitCode == 0)
    }

    /// A fork that fails is fed back as `spawnFailed`: the slot backs off and is tried again, never in a loop.
    @Test func aFailedSpawnIsFedBackAndRetriedAfterTheBackoff() {
        var replay = Replay(workers: 1)
        replay.world.failSpawns = true
        replay.start()
        #expect(replay.world.take() == [.spawn(slot: 0, environment: [])] + [.upstream("STATUS=booting: 0/1 workers ready")])
        #expect(replay.world.reports.contains { if case .spawnFailed(0, _) = $0 { true } else { false } })
        replay.world.failSpawns = false
        replay.advance(.milliseconds(50))
        #expect(replay.world.take().isEmpty, "still backing off")
        replay.advance(.milliseconds(100))
        #expect(replay.world.take().first == .spawn(slot: 0, environment: []))
    }

    /// A crash is replaced at once when the worker had served a while; the replacement is a new pid.
    @Test func aCrashedWorkerIsReplaced() {
        var replay = Replay(workers: 1)
        replay.start()
        replay.ready(100)
        replay.advance(.seconds(2))
        _ = replay.world.take()
        replay.exit(100, .signaled(11))
        #expect(replay.world.take().contains(.spawn(slot: 0, environment: [])))
        #expect(replay.world.reports.contains(.exited(slot: 0, pid: 100, status: .signaled(11), expected: false)))
    }
}
