@testable import Arbiter
import Testing

/// Issue 16: every decision is the arbiter's. The shell used to close the listener, stop the cleanup job,
/// size a spawn's pool, judge memory, work out slot states and answer commands by scanning reports; now each
/// is an action, an outcome or a query of the core, tested here without a process.
@Suite("Decisions the shell used to make")
struct DecisionTests {
    @Test func aSpawnCarriesItsPoolCeiling() {
        var harness = Harness { $0.workers = 2; $0.connections = ConnectionLimits(steady: 80, peak: 98, perWorker: 20) }
        let started = harness.start()
        let payloads = started.compactMap { if case .spawn(let slot, _, let connections) = $0 { [slot, connections] } else { nil } }
        #expect(payloads == [[0, 20], [1, 20]])
        var uncounted = Harness()
        #expect(uncounted.start().contains(.spawn(slot: 0, generation: 1, connections: 0)))
    }

    /// One stop rule: stop accepting, then stop the job, then TERM every worker, in that order.
    @Test func aGracefulStopClosesTheListenerAndStopsTheJobBeforeAnyWorkerHearsOfIt() {
        var harness = Harness.runningWithCleanup(workers: 2)
        #expect(harness.arbiter.cleanup?.runningPID == 900)
        let stop = harness.signal(.terminate)
        let accepting = stop.firstIndex(of: .stopAccepting)
        let job = stop.firstIndex(of: .signalCleanup(pid: 900, kill: false))
        let firstTerm = stop.firstIndex { if case .signal = $0 { true } else { false } }
        #expect(accepting != nil && job != nil && firstTerm != nil)
        #expect(accepting! < firstTerm! && job! < firstTerm!)
        #expect(stop.signals(.terminate) == [100, 101])
        // The job gets the graceful timeout too, then SIGKILL.
        #expect(harness.advance(.milliseconds(7999)).contains(.signalCleanup(pid: 900, kill: true)) == false)
        #expect(harness.advance(.milliseconds(1)).contains(.signalCleanup(pid: 900, kill: true)))
        // The same from the control socket, and from a failed boot.
        var commanded = Harness.running(workers: 1)
        let (outcome, actions) = commanded.arbiter.command(.stop, now: commanded.now)
        #expect(outcome == .accepted("stopping") && actions.first == .stopAccepting)
    }

    @Test func aSecondStopSignalOrQuitStopsTheJobAtOnceEvenWithNoWorkerLeft() {
        var harness = Harness.runningWithCleanup(workers: 1)
        _ = harness.signal(.terminate)
        let second = harness.signal(.terminate)
        #expect(second.contains(.signalCleanup(pid: 900, kill: true)) && second.signals(.kill) == [100])
        #expect(!second.contains(.stopAccepting), "closed once")

        var quit = Harness.runningWithCleanup(workers: 1)
        #expect(quit.signal(.quit).contains(.signalCleanup(pid: 900, kill: true)))

        // The workers are gone; the supervisor only waits for the cleanup: it does not exit, and TERM again is the
        // job's fast stop; the job's exit is the supervisor's.
        var waiting = Harness.runningWithCleanup(workers: 1)
        _ = waiting.signal(.terminate)
        #expect(waiting.exit(100, .exited(0)).exitCode == nil)
        #expect(waiting.signal(.terminate).contains(.signalCleanup(pid: 900, kill: true)))
        #expect(waiting.signal(.quit).contains(.signalCleanup(pid: 900, kill: true)) == false, "KILL is sent once")
        let end = waiting.exit(900, .signaled(9))
        #expect(end.reports.contains(.cleanupFinished(pid: 900, result: "signal 9", exitCode: 137, milliseconds: 0)))
        #expect(end.exitCode == 0)
        #expect(waiting.arbiter.lastCleanupRun?.exitCode == 137)
    }

    /// The job is a sub-machine: its exit never reaches the workers' books, and its status is in `STATUS=`.
    @Test func theCleanupJobIsRoutedInsideTheArbiter() {
        var harness = Harness.runningWithCleanup(workers: 1)
        #expect(harness.arbiter.nextDeadline == nil || harness.pids == [100])
        let done = harness.exit(900, .exited(0))
        #expect(done.reports == [.cleanupFinished(pid: 900, result: "exit code 0", exitCode: 0, milliseconds: 0)]
            || done.reports.contains(.cleanupFinished(pid: 900, result: "exit code 0", exitCode: 0, milliseconds: 0)))
        #expect(harness.pids == [100] && harness.arbiter.lastCleanupSuccessAt == 0)
        #expect(done.upstream.contains { $0.hasPrefix("STATUS=") && $0.contains("; next cleanup 1970-01-01T01:00:00Z") })
        #expect(harness.advance(.seconds(3600)).contains(.startCleanup))
    }

    /// A run's exit is stamped with the wall clock of the wake-up that saw it, not the last tick's: a run of
    /// 1.3 s between two ticks a second apart was reported as 985 ms, and one of 30 ms as 0 ms.
    @Test func aCleanupRunIsTimedByTheWallClockOfItsExit() {
        var harness = Harness.runningWithCleanup(workers: 1)
        harness.arbiter.observe(wall: 1_300)
        let done = harness.exit(900, .exited(0))
        #expect(done.reports.contains(.cleanupFinished(pid: 900, result: "exit code 0", exitCode: 0, milliseconds: 1_300)))
        #expect(harness.arbiter.lastCleanupRun?.durationMilliseconds == 1_300)
        #expect(harness.arbiter.lastCleanupRun?.finishedAt == 1_300)
    }

    /// A second `stop` over the control socket keeps the graceful stop graceful (a second TERM would kill).
    @Test func aRepeatedStopCommandWaitsOnTheGracefulStop() {
        var harness = Harness.running(workers: 2)
        let (first, actions) = harness.arbiter.command(.stop, now: harness.now)
        #expect(first == .accepted("stopping") && actions.contains(.signal(pid: 100, .terminate)))
        let (second, more) = harness.arbiter.command(.stop, now: harness.now)
        #expect(second == .accepted("already stopping") && more.isEmpty)
        #expect(harness.signal(.terminate).contains(.signal(pid: 100, .kill)), "a TERM after it is still the fast stop")
    }

    @Test func commandsGetTypedOutcomes() {
        var booting = Harness { $0.workers = 2 }
        _ = booting.start()
        #expect(booting.arbiter.command(.reload, now: booting.now).0 == .refused("HUP while the first generation is booting"))

        var harness = Harness.running(workers: 2)
        #expect(harness.arbiter.command(.scale(workers: 2000), now: harness.now).0 == .refused("scale: 2000 workers is outside 1 to 1024"))
        let (scaled, actions) = harness.arbiter.command(.scale(workers: 3), now: harness.now)
        #expect(scaled == .accepted("scaling to 3 workers") && actions.contains(.spawn(slot: 2, generation: 1, connections: 0)))
        #expect(harness.arbiter.command(.reload, now: harness.now).0 == .accepted("rolling restart to generation 2"))
        _ = harness.signal(.terminate)
        #expect(harness.arbiter.command(.scale(workers: 4), now: harness.now).0 == .refused("scale: the supervisor is stopping"))
        #expect(harness.arbiter.command(.reload, now: harness.now).0 == .refused("HUP while stopping"))

        var budgeted = Harness.running(workers: 4) { $0.connections = ConnectionLimits(steady: 80, peak: 98, perWorker: 20) }
        guard case .refused(let why) = budgeted.arbiter.command(.scale(workers: 5), now: budgeted.now).0 else {
            Issue.record("a scale past the budget was accepted")
            return
        }
        #expect(why.hasPrefix("scale: "))
    }

    @Test func slotStatesAreAQueryOfTheCore() {
        var harness = Harness.running(workers: 3) { $0.backoff = Backoff(base: .seconds(1), cap: .seconds(1)) }
        _ = harness.notify(101, "STOPPING=1")
        _ = harness.exit(102, .exited(1))
        let states = harness.arbiter.slotStatuses(now: harness.now).map(\.state)
        #expect(states == [.ready, .draining, .restarting])
        let first = harness.arbiter.slotStatuses(now: harness.now)[0]
        #expect(first.pid == 100 && first.generation == 1 && first.restarts == 0)
        _ = harness.advance(.seconds(2))
        _ = harness.notify(100, "X_PREFORK_RECYCLE=max-requests")
        #expect(harness.arbiter.slotStatuses(now: harness.now)[0].state == .recycling)
        #expect(harness.arbiter.servingWorkers.map(\.pid).contains(100))
    }
}
