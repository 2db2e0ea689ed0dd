@testable import Arbiter
import Testing

/// The seed's numbers: 4 workers × (10 + 10) against 100 − 20 reserved, a cleanup pool of 2: steady 80, peak 98.
@Suite("Connection budget in the arbiter: scaling, surge or retire-first, recycles")
struct ConnectionLimitTests {
    static let seed = ConnectionLimits(steady: 80, peak: 98, perWorker: 20)
    static let roomy = ConnectionLimits(steady: 80, peak: 120, perWorker: 20)
    static let auto = ConnectionLimits(steady: 80, peak: 98, perWorker: nil)

    /// Ready for 2 s: a recycle asked for sooner after READY is deferred (`earlyRecyclesAreDeferred`).
    func running(_ limits: ConnectionLimits, workers: Int = 4) -> Harness {
        var harness = Harness.running(workers: workers) { $0.connections = limits }
        _ = harness.advance(.seconds(2))
        return harness
    }

    /// Plays the workers until nothing moves: every new worker gets ready, every TERM'd one exits. After every
    /// step, the connections held stay under the peak and at most one slot is without a ready worker.
    func settle(_ harness: inout Harness, _ actions: [Action], serving minimum: Int) -> [Action] {
        var all = actions
        var pending = actions
        while !pending.isEmpty {
            var next: [Action] = []
            for pid in pending.signals(.terminate) {
                next += harness.exit(pid, .exited(0))
            }
            for slot in harness.arbiter.slots {
                for worker in [slot.worker, slot.replacement].compactMap({ $0 }) where worker.readyAt == nil {
                    next += harness.ready(worker.pid)
                }
            }
            #expect(harness.arbiter.connectionsHeld <= (harness.arbiter.configuration.connections?.peak ?? .max))
            #expect(harness.arbiter.readyCount >= minimum)
            all += next
            pending = next
        }
        return all
    }

    @Test func ttinPastTheBudgetIsRefusedWithTheArithmetic() {
        var harness = running(Self.seed)
        let actions = harness.signal(.increase)
        #expect(actions.spawns.isEmpty)
        #expect(actions.reports == [.refused("TTIN: 5 workers × 20 connections = 100 is more than the budget of 80 (see supervisor budget --workers 5 --no-cleanup)")])
        #expect(harness.arbiter.slots.count == 4)
    }

    @Test func scaleWithinTheBudgetAndRefusedBeyondIt() {
        var harness = running(Self.seed)
        let down = harness.run(harness.arbiter.scale(to: 2, now: harness.now))
        #expect(down.signals(.terminate) == [103, 102])
        #expect(down.reports.contains(.scaled(workers: 2)))
        _ = harness.exit(102, .exited(0))
        _ = harness.exit(103, .exited(0))
        let up = harness.run(harness.arbiter.scale(to: 4, now: harness.now))
        #expect(up.spawns == [2, 3])
        #expect(harness.run(harness.arbiter.scale(to: 5, now: harness.now)).reports.first.map {
            if case .refused = $0 { true } else { false }
        } == true)
        #expect(harness.run(harness.arbiter.scale(to: 0, now: harness.now)).reports == [.refused("scale: 0 workers is outside 1 to 1024")])
    }

    @Test func withoutABudgetScalingIsOnlyBoundedByTheSlotLimit() {
        var harness = Harness.running(workers: 4)
        #expect(harness.signal(.increase).spawns == [4])
    }

    @Test func aReloadWhoseSurgeDoesNotFitRetiresFirstOneSlotAtATime() {
        var harness = running(Self.seed)  // 100...103
        let start = harness.signal(.hangup)
        #expect(start.spawns.isEmpty)  // 80 + 20 > 98: no new worker before an old one is gone
        #expect(start.signals(.terminate) == [100])
        #expect(start.reports.contains(.retireFirst(slot: 0, pid: 100, needed: 20, held: 80, peak: 98)))
        #expect(harness.arbiter.readyCount == 3)
        let afterExit = harness.exit(100, .exited(0))
        #expect(afterExit.spawns == [0])
        let all = settle(&harness, harness.ready(104), serving: 3)
        #expect(all.signals(.terminate) == [101, 102, 103])
        #expect(all.reports.contains(.reloadFinished(generation: 2)))
        #expect(harness.arbiter.slots.allSatisfy { $0.worker?.generation == 2 && $0.worker?.readyAt != nil })
        #expect(harness.arbiter.connectionsHeld == 80)
    }

    @Test func aReloadWhoseSurgeFitsStartsTheNewWorkerFirst() {
        var harness = running(Self.roomy)
        let start = harness.signal(.hangup)
        #expect(start.spawns == [0])
        #expect(start.signals(.terminate).isEmpty)
        let all = settle(&harness, start, serving: 4)
        #expect(all.reports.contains(.reloadFinished(generation: 2)))
    }

    @Test func aRetireFirstWorkerThatFailsToBootAbortsTheReload() {
        var harness = running(Self.seed)
        _ = harness.signal(.hangup)
        _ = harness.exit(100, .exited(0))  // 104 boots in slot 0
        let failed = harness.exit(104, .exited(1))
        #expect(failed.reports.contains(.reloadAborted(slot: 0, reason: "the new worker of slot 0 failed before it was ready")))
        #expect(harness.arbiter.reload == nil)
        #expect(harness.pids == [nil, 101, 102, 103])  // the others keep their old workers
        #expect(harness.advance(.milliseconds(100)).spawns == [0])  // slot 0 retries with backoff
    }

    @Test func aHungWorkersSlotWaitsForItsConnectionsBeforeRespawning() {
        var harness = running(Self.seed)
        for pid: Int32 in 100...103 { _ = harness.notify(pid, "WATCHDOG=1") }  // armed, then silent
        let hung = harness.advance(.seconds(31))  // no heartbeats: every worker is abandoned
        #expect(hung.signals(.abort).count == 4)
        #expect(hung.spawns.isEmpty)
        #expect(hung.reports.contains(.waitingForConnections(slot: 0, needed: 20, held: 80, peak: 98)))
        #expect(harness.exit(100, .signaled(6)).spawns == [0])
        #expect(harness.exit(101, .signaled(6)).spawns == [1])
    }

    @Test func aWorkerThatAskedToBeRecycledIsReplacedNewFirstWhenTheSurgeFits() {
        var harness = running(Self.roomy)
        let asked = harness.notify(101, "X_PREFORK_RECYCLE=max-requests")
        #expect(asked.reports.contains(.recycleRequested(slot: 1, pid: 101, reason: .maxRequests)))
        #expect(asked.reports.contains(.recycling(slot: 1, pid: 101, reason: .maxRequests, surge: true)))
        #expect(asked.spawns == [1])
        #expect(asked.signals(.terminate).isEmpty)
        // A second request waits: one recycle at a time, so recycles never line up.
        #expect(harness.notify(102, "X_PREFORK_RECYCLE=max-requests").spawns.isEmpty)
        let ready = harness.ready(104)
        #expect(ready.signals(.terminate) == [101])
        #expect(ready.reports.contains(.recycled(slot: 1, pid: 104, after: .zero)))
        #expect(ready.spawns == [2])  // now the next one
        #expect(harness.arbiter.readyCount == 4)
        let all = settle(&harness, ready, serving: 4)
        #expect(all.signals(.terminate).contains(102))
        #expect(harness.pids == [100, 104, 105, 103])
    }

    @Test func aRecycleRetiresFirstWhenTheSurgeDoesNotFit() {
        var harness = running(Self.seed)
        let asked = harness.notify(102, "X_PREFORK_RECYCLE=max-requests")
        #expect(asked.reports.contains(.recycling(slot: 2, pid: 102, reason: .maxRequests, surge: false)))
        #expect(asked.signals(.terminate) == [102])
        #expect(asked.spawns.isEmpty)
        #expect(harness.exit(102, .exited(0)).spawns == [2])
        #expect(harness.ready(104).reports.contains(.recycled(slot: 2, pid: 104, after: .zero)))
        #expect(harness.arbiter.recycling == nil)
    }

    @Test func aRecycleWhoseNewWorkerFailsKeepsTheOldOneAndRetriesLater() {
        var harness = running(Self.roomy)
        _ = harness.notify(100, "X_PREFORK_RECYCLE=max-requests")
        let failed = harness.exit(104, .exited(1))
        #expect(failed.reports.contains(.recycleAborted(slot: 0, reason: "new worker pid 104 ended (exit code 1) before it was ready")))
        #expect(failed.spawns.isEmpty)
        #expect(harness.pids == [100, 101, 102, 103])
        #expect(harness.arbiter.nextDeadline == harness.now.advanced(by: .seconds(10)))
        #expect(harness.advance(.seconds(10)).spawns == [0])
    }

    /// The shell only measures; the arbiter decides what is over the limit and whom to measure.
    @Test func aWorkerOverItsMemoryLimitIsRecycledByTheArbitersDecision() {
        var harness = running(Self.roomy)
        #expect(harness.arbiter.memoryTargets.isEmpty, "no limit, nothing to measure")
        harness.arbiter.configuration.maxWorkerMemory = 512 << 20
        #expect(harness.arbiter.memoryTargets == [100, 101, 102, 103])
        #expect(harness.run(harness.arbiter.measured(pid: 103, residentBytes: 500 << 20, now: harness.now)).isEmpty)
        let actions = harness.run(harness.arbiter.measured(pid: 103, residentBytes: 600 << 20, now: harness.now))
        let reason = RecycleReason.memory(residentBytes: 600 << 20, limitBytes: 512 << 20)
        #expect(actions.reports.contains(.recycling(slot: 3, pid: 103, reason: reason, surge: true)))
        #expect(reason.description == "memory: 600.0 MB > 512.0 MB" && reason.kind == "memory")
        #expect(!harness.arbiter.memoryTargets.contains(103), "being recycled: not measured again")
        #expect(harness.run(harness.arbiter.measured(pid: 999, residentBytes: 1 << 40, now: harness.now)).isEmpty)
    }

    @Test func aReloadTakesOverFromARecycleInProgress() {
        var harness = running(Self.roomy)
        _ = harness.notify(100, "X_PREFORK_RECYCLE=max-requests")  // 104 boots
        let reload = harness.signal(.hangup)
        #expect(reload.signals(.terminate) == [104])
        #expect(harness.arbiter.recycling == nil)
        let all = settle(&harness, reload, serving: 4)
        #expect(all.reports.contains(.reloadFinished(generation: 2)))
    }

    @Test func automaticPoolsShrinkForMoreWorkersWithoutEverPassingThePeak() {
        var harness = running(Self.auto)
        #expect(harness.arbiter.allotment == 20)
        let more = harness.signal(.increase)
        #expect(more.reports.contains(.resizing(workers: 5, connectionsPerWorker: 16)))
        #expect(more.spawns == [4])  // 80 + 16 = 96 ≤ 98
        _ = settle(&harness, more, serving: 3)
        #expect(harness.arbiter.reload == nil)
        #expect(harness.arbiter.slots.allSatisfy { $0.worker?.connections == 16 && $0.worker?.readyAt != nil })
        #expect(harness.arbiter.connectionsHeld == 80)

        let fewer = harness.run(harness.arbiter.scale(to: 3, now: harness.now))
        #expect(fewer.reports.contains(.resizing(workers: 3, connectionsPerWorker: 26)))
        _ = settle(&harness, fewer, serving: 2)
        #expect(harness.arbiter.slots.allSatisfy { $0.worker?.connections == 26 })
        #expect(harness.arbiter.connectionsHeld == 78)
    }

    @Test func automaticPoolsRefuseScalingWhileTheFirstGenerationBoots() {
        var harness = Harness { $0.workers = 4; $0.connections = Self.auto }
        _ = harness.start()
        let actions = harness.signal(.increase)
        #expect(actions.spawns.isEmpty)
        #expect(actions.reports.first.map { if case .refused = $0 { true } else { false } } == true)
    }

    @Test func automaticPoolsRefuseMoreWorkersThanConnections() {
        var harness = running(ConnectionLimits(steady: 4, peak: 6, perWorker: nil))
        #expect(harness.arbiter.allotment == 1)
        #expect(harness.signal(.increase).reports == [.refused("TTIN: 5 workers cannot have even 1 connection each from a budget of 4")])
    }

    @Test func theConfigurationIsInvalidWhenTheWorkersDoNotFit() {
        var configuration = Machine.Configuration.example
        configuration.workers = 6
        configuration.connections = Self.seed
        #expect(throws: ConfigurationError.self) { try configuration.validate() }
    }
}

@Suite("Connection budget: a surge waits for draining workers instead of retiring first")
struct SurgeWaitTests {
    /// 4 × 20 with a peak of 100: one surge fits, but not while the last replaced worker still drains.
    static let exact = ConnectionLimits(steady: 80, peak: 100, perWorker: 20)

    @Test func aReloadWaitsForTheReplacedWorkerToDrainBeforeTheNextSurge() {
        var harness = Harness.running(workers: 4) { $0.connections = Self.exact }
        #expect(harness.signal(.hangup).spawns == [0])  // 80 + 20 = 100: fits
        let first = harness.ready(104)
        #expect(first.signals(.terminate) == [100])
        #expect(first.spawns.isEmpty)  // 100 (incl. draining 100) + 20 > 100: wait, do not retire 101 first
        #expect(!first.reports.contains { if case .retireFirst = $0 { true } else { false } })
        #expect(harness.arbiter.readyCount == 4)
        #expect(harness.exit(100, .exited(0)).spawns == [1])
    }

    @Test func aRecycleWaitsForTheLastRecycledWorkerToDrain() {
        var harness = Harness.running(workers: 4) { $0.connections = Self.exact }
        _ = harness.advance(.seconds(2))
        _ = harness.notify(100, "X_PREFORK_RECYCLE=max-requests")
        _ = harness.notify(101, "X_PREFORK_RECYCLE=max-requests")
        #expect(harness.arbiter.surgeDecision == .retireFirst, "104 boots beside 100: a second surge would pass the peak")
        let ready = harness.ready(104)
        #expect(ready.signals(.terminate) == [100])
        #expect(ready.spawns.isEmpty)
        #expect(harness.arbiter.recycling == nil)
        #expect(harness.arbiter.surgeDecision == .wait, "100 drains: the next surge waits for its connections")
        let next = harness.exit(100, .exited(0))
        #expect(next.reports.contains(.recycling(slot: 1, pid: 101, reason: .maxRequests, surge: true)))
        #expect(next.spawns == [1])
    }
}
