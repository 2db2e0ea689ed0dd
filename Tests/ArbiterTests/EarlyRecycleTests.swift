@testable import Arbiter
import Testing

/// Recycles that were due as soon as a worker was up, and what `status` and `supervisor reload` are told.
@Suite("Early recycles, reload outcomes, status during a stop")
struct EarlyRecycleTests {
    @Test func aRecycleAskedForRightAfterReadyWaitsAndTheWaitDoubles() {
        var harness = Harness.running(workers: 1) { $0.backoff = Backoff(base: .seconds(10), cap: .seconds(30)) }  // 100
        let asked = harness.notify(100, "X_PREFORK_RECYCLE=max-requests")
        #expect(asked.spawns.isEmpty, "not at once: its successor would ask again as soon as it is up")
        #expect(asked.reports.contains { if case .recycleDeferred(slot: 0, pid: 100, _, retryAfter: .seconds(10)) = $0 { true } else { false } })
        #expect(harness.advance(.seconds(9)).spawns.isEmpty)
        #expect(harness.advance(.seconds(1)).spawns == [0])  // 101
        _ = harness.ready(101)
        _ = harness.exit(100, .exited(0))
        let again = harness.notify(101, "X_PREFORK_RECYCLE=max-requests")
        #expect(again.reports.contains { if case .recycleDeferred(slot: 0, pid: 101, _, retryAfter: .seconds(20)) = $0 { true } else { false } })
        #expect(harness.advance(.seconds(20)).spawns == [0])  // 102
        _ = harness.ready(102)
        _ = harness.exit(101, .exited(0))
        _ = harness.advance(.seconds(5))
        let late = harness.notify(102, "X_PREFORK_RECYCLE=max-requests")
        #expect(late.spawns == [0], "a worker that served a while is recycled at once, and the count starts over")
        #expect(harness.arbiter.slots[0].earlyRecycles == 0)
    }

    @Test func aWorkerOverTheMemoryLimitFromItsFirstMeasurementWaits() {
        var harness = Harness.running(workers: 2) {
            $0.maxWorkerMemory = 100
            $0.recycleRetryDelay = .seconds(10)
        }
        let fresh = harness.run(harness.arbiter.measured(pid: 100, residentBytes: 150, now: harness.now))
        #expect(fresh.spawns.isEmpty)
        #expect(fresh.reports.contains { if case .recycleDeferred(slot: 0, pid: 100, _, retryAfter: .seconds(10)) = $0 { true } else { false } })
        // A worker that was under the limit once grew: recycled at once.
        #expect(harness.run(harness.arbiter.measured(pid: 101, residentBytes: 50, now: harness.now)).isEmpty)
        let grown = harness.run(harness.arbiter.measured(pid: 101, residentBytes: 150, now: harness.now))
        #expect(grown.spawns == [1])
    }

    @Test func theLastReloadsOutcomeAndTheServingGenerationsAreKept() {
        var harness = Harness.running(workers: 2) { $0.bootTimeout = .seconds(10) }  // 100, 101
        _ = harness.signal(.hangup)  // 102 boots for slot 0
        #expect(harness.arbiter.lastReload?.outcome == .rolling)
        _ = harness.exit(102, .exited(1))
        #expect(harness.arbiter.lastReload?.generation == 2)
        #expect(harness.arbiter.lastReload?.outcome == .aborted("new worker pid 102 ended (exit code 1) before it was ready"))
        #expect(harness.arbiter.servingGenerations == [1])
        #expect(harness.arbiter.statusLine == "2/2 workers ready, generation 1 (the rolling restart to generation 2 was aborted)")
        _ = harness.signal(.hangup)  // generation 3: 103
        _ = harness.signal(.hangup)  // generation 4 supersedes it
        #expect(harness.arbiter.lastReload?.generation == 4)
        _ = harness.ready(104)
        #expect(harness.arbiter.servingGenerations == [1, 4])
        #expect(harness.arbiter.statusLine == "reloading to generation 4: 1/2 slots replaced")
        _ = harness.ready(105)
        #expect(harness.arbiter.lastReload?.outcome == .finished)
        #expect(harness.arbiter.statusLine == "2/2 workers ready, generation 4")
        _ = harness.signal(.hangup)
        _ = harness.signal(.terminate)
        #expect(harness.arbiter.lastReload?.outcome == .aborted("the supervisor is stopping"))
    }

    @Test func duringAStopEachSlotShowsItsDrainingWorker() {
        var harness = Harness.running(workers: 2)
        _ = harness.signal(.terminate)
        var states = harness.arbiter.slotStatuses(now: harness.now)
        #expect(states.map(\.state) == [.stopping, .stopping])
        #expect(states.map(\.pid) == [100, 101])
        _ = harness.exit(100, .exited(0))
        states = harness.arbiter.slotStatuses(now: harness.now)
        #expect(states[0].pid == nil && states[0].status == "stopped" && states[1].pid == 101)
    }

    /// Found by the randomized test: the first generation's spawns go out together; when one fails and that
    /// ends the boot, the spawns after it still run, and the supervisor exited with their workers alive.
    @Test func aBootThatFailsWhileSpawnsAreOutWaitsForTheirWorkers() {
        var harness = Harness { $0.workers = 2; $0.bootAttempts = 1 }
        var actions = harness.arbiter.start(now: harness.now)
        #expect(actions.spawns == [0, 1])
        actions = harness.arbiter.spawnFailed(slot: 0, generation: 1, error: "EAGAIN", now: harness.now)
        #expect(actions.exitCode == nil, "slot 1's spawn is still out")
        let spawned = harness.arbiter.spawned(slot: 1, generation: 1, pid: 100, now: harness.now)
        #expect(spawned.signals(.terminate) == [100])
        #expect(harness.exit(100, .exited(0)).exitCode == BootFailure.exitCode)
    }
}
