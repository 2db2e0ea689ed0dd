@testable import Arbiter
import Testing

@Suite("Rolling restart (HUP) and scaling (TTIN/TTOU)")
struct ReloadTests {
    func running(workers: Int = 3) -> Harness {
        Harness.running(workers: workers) { $0.bootTimeout = .seconds(10) }
    }

    @Test func hangupReplacesOneSlotAtATimeAndRetiresTheOldOnlyWhenTheNewIsReady() {
        var harness = running()  // 100, 101, 102
        let start = harness.signal(.hangup)
        #expect(start.reports.contains(.reloadStarted(generation: 2)))
        #expect(start.upstream.first == "RELOADING=1")
        #expect(start.spawns == [0])  // only one new worker at a time
        #expect(start.signals(.terminate).isEmpty)  // the old one keeps serving
        #expect(harness.arbiter.slots[0].replacement?.pid == 103)

        let first = harness.ready(103)
        #expect(first.signals(.terminate) == [100])
        #expect(first.spawns == [1])
        #expect(harness.pids == [103, 101, 102])
        let second = harness.ready(104)
        #expect(second.signals(.terminate) == [101])
        #expect(second.spawns == [2])
        let last = harness.ready(105)
        #expect(last.signals(.terminate) == [102])
        #expect(last.reports.contains(.reloadFinished(generation: 2)))
        #expect(last.upstream.contains("READY=1"))
        #expect(harness.arbiter.slots.allSatisfy { $0.worker?.generation == 2 })
        #expect(harness.arbiter.reload == nil)
    }

    @Test func aNewWorkerThatDiesBeforeReadyAbortsTheReloadAndKeepsTheOldOnes() {
        var harness = running()
        _ = harness.signal(.hangup)
        _ = harness.ready(103)  // slot 0 done; 100 retired
        let failed = harness.exit(104, .exited(1))  // slot 1's new worker crashes
        #expect(failed.reports.contains(.reloadAborted(slot: 1, reason: "new worker pid 104 ended (exit code 1) before it was ready")))
        #expect(failed.upstream.contains("READY=1"))
        #expect(failed.spawns.isEmpty)
        #expect(harness.pids == [103, 101, 102])
        #expect(harness.arbiter.reload == nil)
    }

    @Test func aNewWorkerThatNeverGetsReadyIsKilledAndTheReloadAborted() {
        var harness = running()
        _ = harness.signal(.hangup)
        let actions = harness.advance(.seconds(10))
        #expect(actions.signals(.kill) == [103])
        #expect(actions.reports.contains(.reloadAborted(slot: 0, reason: "new worker pid 103 not ready in time")))
        #expect(harness.pids == [100, 101, 102])
        #expect(harness.exit(103, .signaled(9)).spawns.isEmpty)
    }

    @Test func anOldWorkerThatDiesDuringTheReloadComesBackInTheNewGeneration() {
        var harness = running()
        _ = harness.advance(.seconds(5))
        _ = harness.signal(.hangup)  // 103 boots for slot 0
        let crashed = harness.exit(102, .signaled(9))  // slot 2, not reached yet, after serving for 5 s
        #expect(crashed.spawns == [2])
        #expect(harness.arbiter.slots[2].worker?.generation == 2)
        _ = harness.ready(103, 104)  // slot 0 replaced, slot 1's new worker spawned as 105
        _ = harness.ready(105)  // slot 1 replaced; slot 2 already runs generation 2, so done
        #expect(harness.arbiter.reload == nil)
    }

    @Test func hangupWhileBootingIsIgnored() {
        var harness = Harness { $0.workers = 2 }
        _ = harness.start()
        #expect(harness.signal(.hangup) == [.report(.ignored("HUP while the first generation is booting"))])
    }

    @Test func aSecondHangupStartsOverWithTheNewestGeneration() {
        var harness = running()
        _ = harness.signal(.hangup)  // 103 boots as generation 2
        let again = harness.signal(.hangup)
        #expect(again.signals(.terminate) == [103])
        #expect(again.reports.contains(.reloadStarted(generation: 3)))
        #expect(again.spawns == [0])
        #expect(harness.arbiter.slots[0].replacement?.generation == 3)
    }

    @Test func withoutNotifyTheOldWorkerIsRetiredAsSoonAsTheNewOneRuns() {
        var harness = Harness {
            $0.workers = 2
            $0.readiness = .onSpawn
        }
        _ = harness.start()
        let actions = harness.signal(.hangup)
        #expect(actions.spawns == [0, 1])
        #expect(actions.signals(.terminate) == [100, 101])
        #expect(actions.reports.contains(.reloadFinished(generation: 2)))
    }

    /// Issue 18: a HUP to a version that cannot start, with workers that do not speak sd_notify (uvicorn
    /// under `--no-notify`). Ready on spawn, every working worker was retired for a crash-looping one; ready
    /// after an uptime, the new worker that dies first is a failed boot and the old ones keep serving.
    @Test func withoutNotifyAReplacementThatDiesBeforeItsUptimeLeavesTheOldWorkerServing() {
        var harness = Harness {
            $0.workers = 2
            $0.readiness = .alive(for: .seconds(2))
        }
        _ = harness.start()
        #expect(harness.arbiter.nextDeadline == TestInstant(offset: .seconds(2)))
        let ready = harness.advance(.seconds(2))
        #expect(ready.reports.contains(.allReady(workers: 2, after: .seconds(2))))
        let hangup = harness.signal(.hangup)
        #expect(hangup.spawns == [0])
        #expect(hangup.signals(.terminate).isEmpty)
        let died = harness.advance(.milliseconds(800)) + harness.exit(102)
        #expect(died.signals(.terminate).isEmpty)
        #expect(died.reports.contains { if case .reloadAborted = $0 { true } else { false } })
        #expect(harness.pids == [100, 101])
        #expect(harness.advance(.seconds(60)).signals(.terminate).isEmpty)
        #expect(harness.pids == [100, 101])
    }

    @Test func withoutNotifyAReplacementThatLivesItsUptimeReplacesTheOldWorker() {
        var harness = Harness {
            $0.workers = 1
            $0.readiness = .alive(for: .seconds(2))
        }
        _ = harness.start()
        _ = harness.advance(.seconds(2))
        _ = harness.signal(.hangup)
        #expect(harness.advance(.milliseconds(1999)).signals(.terminate).isEmpty)
        let replaced = harness.advance(.milliseconds(1))
        #expect(replaced.signals(.terminate) == [100])
        #expect(replaced.reports.contains(.reloadFinished(generation: 2)))
        #expect(harness.pids == [101])
    }

    @Test func ttinAddsASlotAndTtouRetiresTheLast() {
        var harness = running(workers: 2)
        let more = harness.signal(.increase)
        #expect(more.spawns == [2])
        #expect(more.reports.contains(.scaled(workers: 3)))
        _ = harness.ready(102)
        let less = harness.signal(.decrease)
        #expect(less.signals(.terminate) == [102])
        #expect(less.reports.contains(.scaled(workers: 2)))
        #expect(harness.exit(102, .exited(0)).spawns.isEmpty)
        #expect(harness.arbiter.slots.count == 2)
    }

    @Test func ttouNeverGoesBelowOneWorker() {
        var harness = running(workers: 1)
        #expect(harness.signal(.decrease) == [.report(.ignored("TTOU: already at 1 worker, the minimum"))])
        #expect(harness.arbiter.slots.count == 1)
    }

    @Test func statusLineFollowsThePhase() {
        var harness = running(workers: 2)
        #expect(harness.arbiter.statusLine == "2/2 workers ready, generation 1")
        _ = harness.signal(.hangup)
        #expect(harness.arbiter.statusLine == "reloading to generation 2: 0/2 slots replaced")
        _ = harness.signal(.terminate)
        #expect(harness.arbiter.statusLine == "stopping: 3 workers left")
    }

    /// The probes' D1: the old worker ends (crash, `kill -9`, OOM, even exit 0) while its successor boots. The
    /// successor then took the slot but stayed counted as its replacement too: the stop waited for a second,
    /// phantom worker, sent SIGKILL to a reaped pid, and never ended.
    @Test(arguments: [ProcessEnd.signaled(9), .exited(0)])
    func anOldWorkerThatEndsWhileItsSuccessorBootsLeavesNoPhantom(end: ProcessEnd) {
        var harness = running(workers: 2)  // 100, 101
        _ = harness.advance(.seconds(5))
        _ = harness.signal(.hangup)  // 102 boots for slot 0
        _ = harness.exit(100, end)
        _ = harness.ready(102)
        #expect(harness.arbiter.slots[0].worker?.pid == 102)
        #expect(harness.arbiter.slots[0].replacement == nil)
        #expect(harness.arbiter.slots[0].restarts == (end == .exited(0) ? 0 : 1))
        _ = harness.ready(103)  // slot 1's successor; 101 is retired
        #expect(harness.arbiter.workerPIDs.sorted() == [101, 102, 103])
        let stop = harness.signal(.terminate)
        #expect(stop.signals(.terminate).sorted() == [102, 103])
        _ = harness.exit(101, .exited(0))
        _ = harness.exit(102, .exited(0))
        let last = harness.exit(103, .exited(0))
        #expect(last.exitCode == 0)
        #expect(harness.advance(.seconds(30)).signals(.kill).isEmpty)
    }

    @Test func aRecycledWorkerThatEndsWhileItsSuccessorBootsLeavesNoPhantom() {
        var harness = running(workers: 1)  // 100
        _ = harness.advance(.seconds(5))
        let recycle = harness.notify(100, "X_PREFORK_RECYCLE=requests")
        #expect(recycle.spawns == [0])  // 101 boots
        _ = harness.exit(100, .exited(0))
        let ready = harness.ready(101)
        #expect(ready.reports.contains { if case .recycled(slot: 0, pid: 101, _) = $0 { true } else { false } })
        #expect(harness.arbiter.workerPIDs == [101])
        _ = harness.signal(.terminate)
        #expect(harness.exit(101, .exited(0)).exitCode == 0)
    }
}
