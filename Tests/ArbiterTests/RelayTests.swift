@testable import Arbiter
import Testing

/// Issue 15: USR1/USR2 were relayed to every worker, whose default action ends it. Now they go nowhere unless
/// the operator asks, and then only to ready workers.
@Suite("Relayed signals")
struct RelayTests {
    @Test func notRelayedUnlessAskedFor() {
        var harness = Harness.running(workers: 2)
        for signal in Machine.UserSignal.allCases {
            let actions = harness.signal(.user(signal))
            #expect(actions == [.report(.ignored("SIG\(signal.rawValue) is not relayed to the workers (start with --relay-signal \(signal.rawValue) to relay it)"))])
        }
        #expect(harness.pids == [100, 101])
    }

    /// Found by review: `kill -STOP` then `kill -CONT` of the supervisor aborted every worker, whose heartbeats
    /// had waited unread (or unsent) in the notify queue meanwhile.
    @Test func aStallOfTheSupervisorItselfIsNotHeldAgainstTheWorkers() {
        var harness = Harness.running(workers: 2) {
            $0.heartbeatTimeout = .seconds(4)
            $0.requireHeartbeat = true
        }
        let stall = Duration.seconds(7)
        harness.now = harness.now.advanced(by: stall)
        #expect(harness.run(harness.arbiter.resumed(afterStall: stall, now: harness.now)) == [.report(.stalled(stall))])
        #expect(harness.advance(.seconds(3)).isEmpty, "nothing is aborted within a fresh timeout")
        #expect(harness.advance(.seconds(2)).contains { if case .signal(_, .abort) = $0 { true } else { false } },
                "a worker that stays silent is still aborted")
    }

    @Test func relayedToReadyWorkersOnlyAndNoneIsRetired() {
        var harness = Harness.running(workers: 2) { $0.relayedSignals = [.usr1] }
        // A rolling restart: slot 0 gets a booting replacement (102), which must be spared.
        _ = harness.signal(.hangup)
        let actions = harness.signal(.user(.usr1))
        #expect(actions == [
            .signal(pid: 100, .user(.usr1)), .signal(pid: 101, .user(.usr1)),
            .report(.relayed(.usr1, workers: 2, spared: 1)),
        ])
        #expect(harness.arbiter.retirees.isEmpty)
        #expect(harness.signal(.user(.usr2)).count == 1, "USR2 was not asked for")
    }
}
