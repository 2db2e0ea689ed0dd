@testable import Arbiter
import Testing

@Suite("Graceful and fast stops")
struct StopTests {
    func running(workers: Int = 2) -> Harness {
        Harness.running(workers: workers) { $0.gracefulTimeout = .seconds(8) }
    }

    @Test func terminateSendsTermToEveryWorkerAndExitsZeroWhenAllAreGone() {
        var harness = running()
        let actions = harness.signal(.terminate)
        #expect(actions.signals(.terminate) == [100, 101])
        #expect(actions.upstream.contains("STOPPING=1"))
        #expect(actions.reports.contains(.stopping(fast: false, workers: 2)))
        let first = harness.exit(100, .exited(0))
        #expect(first.spawns.isEmpty)
        #expect(first.exitCode == nil)
        #expect(harness.exit(101, .exited(0)).exitCode == 0)
        #expect(harness.arbiter.phase == .stopped)
    }

    @Test func interruptIsTheSameAsTerminate() {
        var harness = running()
        #expect(harness.signal(.interrupt).signals(.terminate) == [100, 101])
    }

    @Test func workersStillRunningAtTheGracefulTimeoutAreKilled() {
        var harness = running()
        _ = harness.signal(.terminate)
        _ = harness.exit(100, .exited(0))
        #expect(harness.advance(.milliseconds(7999)).signals(.kill).isEmpty)
        let actions = harness.advance(.milliseconds(1))
        #expect(actions.signals(.kill) == [101])
        #expect(harness.exit(101, .signaled(9)).exitCode == 0)
    }

    @Test func secondTerminateMakesItFast() {
        var harness = running()
        _ = harness.signal(.terminate)
        let actions = harness.signal(.terminate)
        #expect(actions.signals(.kill) == [100, 101])
        #expect(actions.reports.contains(.stopping(fast: true, workers: 2)))
    }

    @Test func quitKillsEverythingAtOnce() {
        var harness = running()
        let actions = harness.signal(.quit)
        #expect(actions.signals(.kill) == [100, 101])
        #expect(actions.signals(.terminate).isEmpty)
        _ = harness.exit(100, .signaled(9))
        #expect(harness.exit(101, .signaled(9)).exitCode == 0)
    }

    @Test func nothingIsRestartedOrScaledWhileStopping() {
        var harness = running()
        _ = harness.signal(.terminate)
        #expect(harness.signal(.increase) == [.report(.ignored("TTIN while stopping"))])
        #expect(harness.signal(.hangup).spawns.isEmpty)
        #expect(harness.exit(100, .signaled(11)).spawns.isEmpty)
        #expect(harness.advance(.seconds(1)).spawns.isEmpty)
    }

    @Test func stopDuringBootStopsTheBootingWorkers() {
        var harness = Harness { $0.workers = 2 }
        _ = harness.start()
        let actions = harness.signal(.terminate)
        #expect(actions.signals(.terminate) == [100, 101])
        _ = harness.exit(100, .exited(0))
        #expect(harness.exit(101, .exited(0)).exitCode == 0)
    }

    @Test func anAbortedWorkerKeepsItsShorterKillDeadlineDuringAStop() {
        var harness = Harness {
            $0.workers = 1
            $0.requireHeartbeat = true
            $0.heartbeatTimeout = .seconds(1)
            $0.abortGrace = .seconds(2)
        }
        _ = harness.start()
        _ = harness.ready(100)
        _ = harness.advance(.seconds(1))  // 100 aborted, 101 spawned
        _ = harness.signal(.terminate)
        #expect(harness.advance(.seconds(2)).signals(.kill) == [100])
    }
}
