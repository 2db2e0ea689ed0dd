@testable import Arbiter
import Testing

@Suite("Restarts, heartbeats and orphans while running")
struct RestartTests {
    /// Two ready workers, pids 100 and 101, in the running phase.
    func running(_ configure: (inout Machine.Configuration) -> Void = { _ in }) -> Harness {
        Harness.running(workers: 2, configure)
    }

    @Test func aReadyWorkerThatDiesIsReplacedAtOnce() {
        var harness = running()
        _ = harness.advance(.seconds(5))
        let actions = harness.exit(100, .signaled(9))
        #expect(actions.reports.first == .exited(slot: 0, pid: 100, status: .signaled(9), expected: false))
        #expect(actions.spawns == [0])
        #expect(harness.pids == [102, 101])
    }

    @Test func crashLoopAfterBootBacksOffUpToTheCapAndNeverExits() {
        var harness = running { $0.bootAttempts = 2 }
        _ = harness.advance(.seconds(5))
        _ = harness.exit(100)
        var delays: [Duration] = []
        for _ in 0..<12 {
            let actions = harness.exit(harness.pids[0]!)
            for case .restartScheduled(_, let after, _) in actions.reports { delays.append(after) }
            #expect(actions.exitCode == nil)
            _ = harness.advance(.seconds(30))
        }
        #expect(delays.prefix(3) == [.milliseconds(100), .milliseconds(200), .milliseconds(400)])
        #expect(delays.last == .seconds(30))
        #expect(harness.arbiter.phase == .running)
    }

    @Test func aWorkerThatLivedPastTheMinimumUptimeForgivesTheSlot() {
        var harness = running()
        _ = harness.advance(.seconds(5))
        _ = harness.exit(100)  // died after serving: restarted at once as 102
        _ = harness.exit(102)  // failure 1 before READY
        _ = harness.advance(.milliseconds(100))
        _ = harness.ready(103)
        _ = harness.advance(.seconds(1))
        let actions = harness.exit(103)
        #expect(actions.spawns == [0])
        #expect(harness.arbiter.slots[0].failures == 0)
    }

    @Test func readyThenDeadAtOnceIsStillACrashLoop() {
        var harness = running()
        _ = harness.advance(.seconds(5))
        _ = harness.exit(100)  // served 5 s: replaced at once by 102
        var delays: [Duration] = []
        for _ in 0..<4 {
            let pid = harness.pids[0]!
            _ = harness.ready(pid)
            _ = harness.advance(.milliseconds(10))
            for case .restartScheduled(_, let after, _) in harness.exit(pid).reports { delays.append(after) }
            _ = harness.advance(.seconds(30))
        }
        #expect(delays == [.milliseconds(100), .milliseconds(200), .milliseconds(400), .milliseconds(800)])
    }

    @Test func aCommandThatExitsAtOnceWithoutNotifyBacksOff() {
        var harness = Harness { $0.readiness = .onSpawn }
        _ = harness.start()
        let actions = harness.exit(100, .exited(0))
        #expect(actions.spawns.isEmpty)
        #expect(actions.reports.contains(.restartScheduled(slot: 0, after: .milliseconds(100), failures: 1)))
    }

    @Test func silentWorkerIsAbortedThenKilledAndReplacedAtOnce() {
        var harness = running {
            $0.heartbeatTimeout = .seconds(30)
            $0.abortGrace = .seconds(2)
        }
        _ = harness.notify(100, "WATCHDOG=1")  // both arm their heartbeats
        _ = harness.notify(101, "WATCHDOG=1")
        _ = harness.advance(.seconds(20))
        _ = harness.notify(101, "WATCHDOG=1")  // 101 keeps beating, 100 does not
        let missed = harness.advance(.seconds(10))
        #expect(missed.reports.contains(.heartbeatMissed(slot: 0, pid: 100, silentFor: .seconds(30))))
        #expect(missed.signals(.abort) == [100])
        #expect(missed.spawns == [0])
        let killed = harness.advance(.seconds(2))
        #expect(killed.signals(.kill) == [100])
        #expect(killed.signals(.abort).isEmpty)
        let reaped = harness.exit(100, .signaled(9))
        #expect(reaped.spawns.isEmpty)
        #expect(harness.arbiter.retirees.isEmpty)
    }

    @Test func heartbeatKeepsAWorkerAlive() {
        var harness = running { $0.heartbeatTimeout = .seconds(30) }
        for _ in 0..<10 {
            let actions = harness.advance(.seconds(15))
            #expect(actions.signals(.abort).isEmpty)
            _ = harness.notify(100, "WATCHDOG=1")
            _ = harness.notify(101, "WATCHDOG=1\nSTATUS=busy")
        }
        #expect(harness.arbiter.slots[1].worker?.status == "busy")
    }

    @Test func watchdogTriggerAbortsAtOnce() {
        var harness = running()
        let actions = harness.notify(100, "WATCHDOG=trigger")
        #expect(actions.signals(.abort) == [100])
        #expect(actions.spawns == [0])
    }

    @Test func noHeartbeatCheckWhenDisabled() {
        var harness = running { $0.heartbeatTimeout = nil }
        #expect(harness.arbiter.nextDeadline == nil)
        #expect(harness.advance(.seconds(86_400)).signals(.abort).isEmpty)
    }

    @Test func orphansAreReportedAndChangeNothing() {
        var harness = running()
        let actions = harness.exit(4242, .exited(0))
        #expect(actions == [.report(.orphanReaped(pid: 4242, status: .exited(0)))])
    }

    @Test func stoppingMessageIsKeptForDisplay() {
        var harness = running()
        _ = harness.notify(100, "STOPPING=1\nSTATUS=draining")
        #expect(harness.arbiter.slots[0].worker?.draining == true)
        #expect(harness.arbiter.slots[0].worker?.status == "draining")
    }

    @Test func malformedNotifyLinesAreSkipped() {
        var harness = running()
        let actions = harness.notify(100, "garbage\nWATCHDOG=1\n\u{FF}")
        #expect(actions.signals(.abort).isEmpty)
        #expect(NotifyMessage(parsing: Array("garbage\nWATCHDOG=1".utf8)).malformedLines == 1)
        #expect(NotifyMessage(parsing: [0xFF, 0xFE]).malformedLines == 1)
    }
}
