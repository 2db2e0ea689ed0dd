@testable import Arbiter
import Testing

/// Heartbeats follow sd_notify's protocol: the first WATCHDOG=1 arms the timeout. gunicorn says READY=1 and never
/// WATCHDOG=1, as most `Type=notify` daemons do; holding it to a heartbeat aborted a healthy gunicorn every 30 s.
@Suite("Heartbeats armed by the first WATCHDOG=1")
struct HeartbeatTests {
    func running(_ configure: (inout Machine.Configuration) -> Void = { _ in }) -> Harness {
        Harness.running(workers: 1) {
            $0.heartbeatTimeout = .seconds(30)
            configure(&$0)
        }
    }

    @Test func aWorkerThatNeverPingsIsJudgedByItsExitAlone() {
        var harness = running()
        #expect(harness.arbiter.nextDeadline == nil, "nothing to wake up for")
        #expect(harness.advance(.seconds(86_400)).signals(.abort).isEmpty)
        #expect(harness.arbiter.slotStatuses(now: harness.now)[0].heartbeatAge == nil)
        #expect(harness.pids == [100])
    }

    @Test func theFirstWatchdogArmsTheTimeout() {
        var harness = running()
        _ = harness.advance(.seconds(100))
        _ = harness.notify(100, "WATCHDOG=1")
        #expect(harness.advance(.seconds(29)).signals(.abort).isEmpty)
        let missed = harness.advance(.seconds(1))
        #expect(missed.reports.contains(.heartbeatMissed(slot: 0, pid: 100, silentFor: .seconds(30))))
        #expect(missed.signals(.abort) == [100])
    }

    @Test func aPingDuringTheBootArmsItFromReadyOn() {
        var harness = Harness {
            $0.heartbeatTimeout = .seconds(30)
            $0.bootTimeout = .seconds(60)
        }
        _ = harness.start()
        _ = harness.notify(100, "WATCHDOG=1")
        // Silent for 45 s while it boots: the boot timeout judges a booting worker, not the heartbeat.
        #expect(harness.advance(.seconds(45)).signals(.abort).isEmpty)
        _ = harness.ready(100)
        #expect(harness.advance(.seconds(29)).signals(.abort).isEmpty, "the timeout counts from READY")
        #expect(harness.advance(.seconds(1)).signals(.abort) == [100])
    }

    @Test func requiredHeartbeatsApplyFromReadyOn() {
        var harness = running { $0.requireHeartbeat = true }
        #expect(harness.advance(.seconds(29)).signals(.abort).isEmpty)
        #expect(harness.advance(.seconds(1)).signals(.abort) == [100])
    }

    @Test func requiringHeartbeatsNeedsNotifyAndATimeout() {
        var configuration = Machine.Configuration.example
        configuration.requireHeartbeat = true
        configuration.heartbeatTimeout = nil
        #expect(throws: ConfigurationError.self) { try configuration.validate() }
        configuration.heartbeatTimeout = .seconds(30)
        configuration.readiness = .alive(for: .seconds(5))
        #expect(throws: ConfigurationError.self) { try configuration.validate() }
        configuration.readiness = .notify
        #expect(throws: Never.self) { try configuration.validate() }
    }

    @Test func aStallDoesNotArmAHeartbeatThatWasNeverArmed() {
        var harness = running()
        _ = harness.run(harness.arbiter.resumed(afterStall: .seconds(7), now: harness.now))
        #expect(harness.advance(.seconds(3600)).signals(.abort).isEmpty)
    }

    /// A shell wrapper that did not `exec`, or a master's worker: a process in the worker's group speaks for it.
    @Test func aProcessInTheWorkersGroupSpeaksForIt() {
        var harness = Harness { $0.heartbeatTimeout = .seconds(30) }
        _ = harness.start()
        let ready = harness.run(harness.arbiter.notified(pid: 555, processGroup: 100, message: NotifyMessage(parsing: Array("READY=1".utf8)),
                                                         now: harness.now))
        #expect(ready.reports.contains(.ready(slot: 0, pid: 100, after: .zero)))
        _ = harness.run(harness.arbiter.notified(pid: 555, processGroup: 100, message: NotifyMessage(parsing: Array("WATCHDOG=1".utf8)),
                                                 now: harness.now))
        #expect(harness.advance(.seconds(30)).signals(.abort) == [100], "armed by the group's ping")
    }

    @Test func aProcessInAnotherGroupIsAStranger() {
        var harness = Harness()
        _ = harness.start()
        let actions = harness.run(harness.arbiter.notified(pid: 555, processGroup: 555, message: NotifyMessage(parsing: Array("READY=1".utf8)),
                                                           now: harness.now))
        #expect(actions == [.report(.strangerNotify(pid: 555))])
    }
}
