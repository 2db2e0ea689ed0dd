@testable import Arbiter
import Testing

@Suite("Booting the first generation")
struct BootTests {
    @Test func startSpawnsEverySlotInGenerationOne() {
        var harness = Harness { $0.workers = 4 }
        let actions = harness.start()
        #expect(actions.spawns == [0, 1, 2, 3])
        #expect(actions.contains(.report(.spawned(slot: 0, pid: 100, generation: 1))))
        #expect(harness.pids == [100, 101, 102, 103])
        #expect(harness.arbiter.phase == .booting(since: .zero))
        #expect(actions.upstream == ["STATUS=booting: 0/4 workers ready"])
    }

    @Test func readyOnlyWhenEverySlotIsReady() {
        var harness = Harness { $0.workers = 2 }
        _ = harness.start()
        harness.now = harness.now.advanced(by: .milliseconds(30))
        let first = harness.ready(100)
        #expect(first.reports.contains(.ready(slot: 0, pid: 100, after: .milliseconds(30))))
        #expect(!first.upstream.contains("READY=1"))
        let second = harness.ready(101)
        #expect(second.reports.contains(.allReady(workers: 2, after: .milliseconds(30))))
        #expect(second.upstream.contains("READY=1"))
        #expect(harness.arbiter.phase == .running)
    }

    @Test func withoutNotifyAWorkerIsReadyOnceSpawned() {
        var harness = Harness {
            $0.workers = 2
            $0.readiness = .onSpawn
        }
        let actions = harness.start()
        #expect(actions.reports.contains(.allReady(workers: 2, after: .zero)))
        #expect(harness.arbiter.phase == .running)
        // No heartbeat is expected from a worker that does not speak sd_notify.
        #expect(harness.arbiter.nextDeadline == nil)
        #expect(harness.advance(.seconds(3600)).isEmpty)
    }

    @Test func withoutNotifyAWorkerThatDiesBeforeItsUptimeIsAFailedBoot() {
        var harness = Harness {
            $0.workers = 1
            $0.readiness = .alive(for: .seconds(2))
            $0.bootAttempts = 2
        }
        _ = harness.start()
        let first = harness.advance(.milliseconds(500)) + harness.exit(100)
        #expect(first.reports.contains(.restartScheduled(slot: 0, after: .milliseconds(100), failures: 1)))
        #expect(!first.reports.contains { if case .ready = $0 { true } else { false } })
        _ = harness.advance(.milliseconds(100))
        let second = harness.advance(.milliseconds(500)) + harness.exit(101)
        #expect(second.exitCode == 3)
    }

    /// Issue 18: a worker's configuration error (exit 78 before READY=1) became exit 3 after five attempts per
    /// slot, so a unit's RestartPreventExitStatus=78 never applied. Now the supervisor stops at once with 78.
    @Test func aWorkerThatExits78BeforeItIsReadyStopsTheFirstGenerationWith78() {
        var harness = Harness { $0.workers = 2 }
        _ = harness.start()
        let refused = harness.exit(100, .exited(78))
        #expect(refused.reports.contains(.workerRefusedConfiguration(slot: 0, pid: 100)))
        #expect(refused.signals(.terminate) == [101])
        #expect(refused.spawns.isEmpty)
        #expect(harness.exit(101, .exited(0)).exitCode == 78)
    }

    @Test func after78OnceRunningAWorkerIsRestartedAsAnyFailure() {
        var harness = Harness.running(workers: 1)
        _ = harness.advance(.seconds(5))
        let crashed = harness.exit(100, .exited(78))
        #expect(crashed.exitCode == nil)
        #expect(!crashed.reports.contains(.workerRefusedConfiguration(slot: 0, pid: 100)))
    }

    @Test func readyFromAStrangerIsIgnoredAndReportedOnce() {
        var harness = Harness()
        _ = harness.start()
        #expect(harness.notify(999, "READY=1") == [.report(.strangerNotify(pid: 999))])
        #expect(harness.notify(999, "READY=1").isEmpty)
        #expect(harness.arbiter.phase == .booting(since: .zero))
    }

    @Test func failureBeforeReadyBacksOffExponentially() {
        var harness = Harness()
        _ = harness.start()
        let first = harness.exit(100)
        #expect(first.spawns.isEmpty)
        #expect(first.reports.contains(.restartScheduled(slot: 0, after: .milliseconds(100), failures: 1)))
        #expect(harness.arbiter.nextDeadline == TestInstant(offset: .milliseconds(100)))
        #expect(harness.advance(.milliseconds(99)).spawns.isEmpty)
        #expect(harness.advance(.milliseconds(1)).spawns == [0])
        let second = harness.exit(101)
        #expect(second.reports.contains(.restartScheduled(slot: 0, after: .milliseconds(200), failures: 2)))
    }

    @Test func firstGenerationThatCannotBootStopsWithExitCode3() {
        var harness = Harness {
            $0.workers = 2
            $0.bootAttempts = 3
        }
        _ = harness.start()
        _ = harness.ready(101)  // slot 1 is fine; slot 0 crashes at every boot
        var pid: Int32 = 100
        var actions: [Action] = []
        for _ in 0..<3 {
            actions = harness.exit(pid)
            if actions.reports.contains(where: { if case .bootFailed = $0 { true } else { false } }) { break }
            actions = harness.advance(.seconds(1))
            pid = harness.pids[0]!
        }
        #expect(actions.reports.contains(.bootFailed(slot: 0, attempts: 3)))
        #expect(actions.signals(.terminate) == [101])
        #expect(actions.upstream.contains("STOPPING=1"))
        #expect(actions.exitCode == nil)
        #expect(harness.exit(101, .exited(0)).exitCode == 3)
    }

    @Test func bootTimeoutKillsAndCountsAsAFailure() {
        var harness = Harness { $0.bootTimeout = .seconds(10) }
        _ = harness.start()
        #expect(harness.arbiter.nextDeadline == TestInstant(offset: .seconds(10)))
        let actions = harness.advance(.seconds(10))
        #expect(actions.reports.contains(.bootTimedOut(slot: 0, pid: 100)))
        #expect(actions.signals(.kill) == [100])
        #expect(actions.reports.contains(.restartScheduled(slot: 0, after: .milliseconds(100), failures: 1)))
        // The killed worker's exit is expected and starts nothing.
        let reaped = harness.exit(100, .signaled(9))
        #expect(reaped.reports.contains(.exited(slot: 0, pid: 100, status: .signaled(9), expected: true)))
        #expect(reaped.spawns.isEmpty)
    }

    @Test func spawnFailureCountsAsABootFailure() {
        var harness = Harness { $0.bootAttempts = 2 }
        harness.spawnError = "spawn /x: No such file or directory"
        let first = harness.start()
        #expect(first.reports.contains(.spawnFailed(slot: 0, error: "spawn /x: No such file or directory")))
        let second = harness.advance(.milliseconds(100))
        #expect(second.reports.contains(.bootFailed(slot: 0, attempts: 2)))
        #expect(second.exitCode == 3)
    }
}
