@testable import Arbiter
import Testing

/// What counts as a restart is decided once: `status` shows each slot's count and `/metrics` counts the
/// `.restarted` reports by cause, so the two cannot disagree (they did: metrics skipped WATCHDOG=trigger and
/// counted a replacement's boot timeout, which restarts nothing).
@Suite("Restarts counted once")
struct RestartCountTests {
    @Test func everyUnplannedEndIsOneRestartWithItsCause() {
        var harness = Harness.running(workers: 1)
        var reports: [Machine.Report] = []
        reports += harness.exit(100, .exited(1)).reports                       // a crash: restarted as 101
        reports += harness.advance(.seconds(1)).reports
        _ = harness.ready(101)
        reports += harness.notify(101, "WATCHDOG=trigger").reports             // asks for it
        reports += harness.exit(101, .signaled(6)).reports
        reports += harness.advance(.seconds(1)).reports
        let booting = harness.pids[0]!
        reports += harness.advance(.seconds(61)).reports                       // never ready: boot timeout
        reports += harness.exit(booting, .signaled(9)).reports
        reports += harness.advance(.seconds(5)).reports
        let next = harness.pids[0]!
        _ = harness.ready(next)
        _ = harness.advance(.seconds(2))
        reports += harness.exit(next, .exited(0)).reports                      // chose to end: not a restart
        let causes = reports.compactMap { report -> RestartCause? in
            if case .restarted(_, let cause) = report { cause } else { nil }
        }
        #expect(causes == [.exit, .watchdog, .bootTimeout])
        #expect(harness.arbiter.slots[0].restarts == causes.count)
    }
}

@Suite("Notify senders reported once")
struct NotifySenderTests {
    @Test func aMalformedSenderIsReportedOnceAndAStrangerToo() {
        var harness = Harness.running(workers: 1)
        #expect(harness.arbiter.malformedNotify(from: 100) == [.report(.malformedNotify(pid: 100))])
        #expect(harness.arbiter.malformedNotify(from: 100).isEmpty)
        #expect(harness.arbiter.malformedNotify(from: 555) == [.report(.malformedNotify(pid: 555))])
        #expect(harness.notify(777, "READY=1").reports == [.strangerNotify(pid: 777)])
        #expect(harness.notify(777, "READY=1").reports.isEmpty)
    }
}
