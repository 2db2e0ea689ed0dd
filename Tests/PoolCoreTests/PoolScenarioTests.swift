import PoolCore
import Testing

@Suite("The QueuePool contract, one scenario each")
struct PoolScenarioTests {
    @Test func connectionsOpenLazilyOnePerCheckout() {
        var sim = Simulator()
        #expect(sim.machine.status.total == 0)
        let request = sim.checkout()
        #expect(sim.connecting == [0])
        sim.connect(0)
        #expect(sim.outcome[request] == .success(0))
        #expect(sim.machine.status.total == 1)
    }

    @Test func aReturnedConnectionIsReusedWithoutAPingInsideTheWindow() {
        var sim = Simulator()
        sim.checkout()
        sim.connect(0)
        sim.advance(.milliseconds(100))
        sim.checkin(0)
        sim.advance(.milliseconds(400))
        let request = sim.checkout()
        #expect(sim.outcome[request] == .success(0))
        #expect(sim.pinging.isEmpty)
    }

    @Test func anIdleConnectionIsPingedAfterTheWindow() {
        var sim = Simulator()
        sim.checkout()
        sim.connect(0)
        sim.checkin(0)
        sim.advance(.milliseconds(501))
        let request = sim.checkout()
        #expect(sim.pinging == [0: request])
        sim.ping(0)
        #expect(sim.outcome[request] == .success(0))
    }

    @Test func aFailedPingReplacesTheConnectionAndEveryOlderOne() {
        var sim = Simulator { $0.size = 3 }
        for _ in 0..<3 { sim.checkout() }
        for id in 0..<3 { sim.connect(id) }
        for id in 0..<3 { sim.checkin(id) }
        sim.advance(.seconds(5))
        let request = sim.checkout()
        let pinged = sim.pinging.keys.first!
        sim.ping(pinged, ok: false)
        // The other two idle connections are as old: closed too, and a fresh one is opened for the request.
        #expect(sim.closing.count == 3)
        #expect(sim.connecting.count == 1)
        #expect(sim.outcome[request] == nil)
        sim.settle()
        #expect(sim.outcome[request] != nil)
        if case .success(let id) = sim.outcome[request] { #expect(id == 3) } else { Issue.record("not served") }
    }

    @Test func withoutPrePingIdleConnectionsAreLeasedDirectly() {
        var sim = Simulator { $0.prePing = false }
        sim.checkout()
        sim.connect(0)
        sim.checkin(0)
        sim.advance(.seconds(60))
        let request = sim.checkout()
        #expect(sim.outcome[request] == .success(0))
    }

    @Test func overflowConnectionsCloseWhenTheyComeBackToAFullPool() {
        var sim = Simulator {
            $0.size = 2
            $0.maxOverflow = 2
        }
        for _ in 0..<4 { sim.checkout() }
        #expect(sim.connecting.count == 4)
        for id in 0..<4 { sim.connect(id) }
        sim.checkin(0)
        sim.checkin(1)
        #expect(sim.closing.isEmpty)
        sim.checkin(2)
        sim.checkin(3)
        #expect(sim.closing == [2, 3])
        #expect(sim.machine.status.idle == 2)
    }

    @Test func checkoutsBeyondTheLimitWaitFirstComeFirstServed() {
        var sim = Simulator {
            $0.size = 1
            $0.maxOverflow = 1
        }
        for _ in 0..<2 { sim.checkout() }
        for id in 0..<2 { sim.connect(id) }
        let third = sim.checkout()
        let fourth = sim.checkout()
        #expect(sim.connecting.isEmpty)
        #expect(sim.machine.status.waiting == 2)
        sim.checkin(1)
        #expect(sim.outcome[third] == .success(1))
        #expect(sim.outcome[fourth] == nil)
        sim.checkin(0)
        #expect(sim.outcome[fourth] == .success(0))
    }

    @Test func aWaiterThatTimesOutGetsAnErrorThatSaysTheLimits() {
        var sim = Simulator.oneConnectionHeld()
        let waiting = sim.checkout()
        sim.apply(sim.machine.timedOut(waiting))
        #expect(sim.outcome[waiting] == .failure(.timedOut(size: 1, maxOverflow: 0, timeout: .seconds(30))))
        #expect(PoolError.timedOut(size: 1, maxOverflow: 0, timeout: .seconds(30)).description
            == "QueuePool limit of size 1 overflow 0 reached, connection timed out, timeout 30.0s: all 1 connections are checked out")
        sim.checkin(0)
        #expect(sim.machine.status.idle == 1)  // nobody is waiting any more
    }

    @Test func oneSweepExpiresExactlyTheOverdueWaiters() {
        var sim = Simulator.oneConnectionHeld()
        let early = sim.checkout()
        sim.advance(.seconds(10))
        let late = sim.checkout()
        #expect(sim.machine.nextTimeout == TestInstant(offset: .seconds(30)))
        sim.advance(.seconds(20))
        sim.apply(sim.machine.expire(now: sim.now))
        #expect(sim.outcome[early] == .failure(.timedOut(size: 1, maxOverflow: 0, timeout: .seconds(30))))
        #expect(sim.outcome[late] == nil)
        #expect(sim.machine.nextTimeout == TestInstant(offset: .seconds(40)))
        sim.checkin(0)
        #expect(sim.outcome[late] == .success(0))
        #expect(sim.machine.nextTimeout == nil)
    }

    @Test func aCancelledWaiterLeavesTheQueue() {
        var sim = Simulator {
            $0.size = 1
            $0.maxOverflow = 0
        }
        sim.checkout()
        sim.connect(0)
        let cancelled = sim.checkout()
        let next = sim.checkout()
        sim.apply(sim.machine.cancelled(cancelled))
        #expect(sim.outcome[cancelled] == .failure(.cancelled))
        sim.checkin(0)
        #expect(sim.outcome[next] == .success(0))
    }

    @Test func aTimeoutAfterTheLeaseChangesNothing() {
        var sim = Simulator()
        let request = sim.checkout()
        sim.connect(0)
        #expect(sim.machine.timedOut(request).isEmpty)
        #expect(sim.held[0] == request)
    }

    @Test func aWaiterThatGivesUpDuringItsPingReturnsTheConnection() {
        var sim = Simulator()
        sim.checkout()
        sim.connect(0)
        sim.checkin(0)
        sim.advance(.seconds(2))
        let request = sim.checkout()
        sim.apply(sim.machine.cancelled(request))
        #expect(sim.outcome[request] == .failure(.cancelled))
        sim.ping(0)
        #expect(sim.held.isEmpty)
        #expect(sim.machine.status.idle == 1)
    }

    @Test func anOldConnectionIsRecycledAtCheckout() {
        var sim = Simulator { $0.recycle = .seconds(3600) }
        sim.checkout()
        sim.connect(0)
        sim.checkin(0)
        sim.advance(.seconds(3600))
        let request = sim.checkout()
        #expect(sim.closing == [0])
        // The replacement waits for the close: the old socket still counts against the limit until then.
        sim.close(0)
        #expect(sim.connecting == [1])
        sim.connect(1)
        #expect(sim.outcome[request] == .success(1))
    }

    @Test func aConnectionRecycledWhileLeasedIsClosedOnCheckin() {
        var sim = Simulator { $0.recycle = .seconds(10) }
        sim.checkout()
        sim.connect(0)
        sim.advance(.seconds(11))
        sim.checkin(0)
        #expect(sim.closing == [0])
    }

    @Test func aDisconnectReplacesEveryOlderConnection() {
        var sim = Simulator { $0.size = 3 }
        for _ in 0..<3 { sim.checkout() }
        for id in 0..<3 { sim.connect(id) }
        sim.checkin(0)
        sim.checkin(1)
        sim.advance(.seconds(1))
        sim.apply(sim.machine.disconnected(now: sim.now))
        #expect(sim.closing == [0, 1])
        sim.checkin(2, healthy: true)  // came back fine, but it is as old: replaced too
        #expect(sim.closing == [0, 1, 2])
    }

    @Test func aBrokenConnectionIsClosedOnCheckin() {
        var sim = Simulator()
        sim.checkout()
        sim.connect(0)
        sim.checkin(0, healthy: false)
        #expect(sim.closing == [0])
        #expect(sim.machine.status.idle == 0)
    }

    @Test func aFailedConnectFailsTheOldestWaiterAtOnce() {
        var sim = Simulator()
        let first = sim.checkout()
        let second = sim.checkout()
        sim.connect(0, ok: false)
        #expect(sim.outcome[first] == .failure(.connectFailed("refused")))
        #expect(sim.outcome[second] == nil)
        #expect(sim.connecting == [1])
        sim.connect(1, ok: false)
        #expect(sim.outcome[second] == .failure(.connectFailed("refused")))
        #expect(sim.connecting.isEmpty)
    }

    @Test func disposeClosesIdleFailsWaitersAndClosesLeasedOnReturn() {
        var sim = Simulator {
            $0.size = 1
            $0.maxOverflow = 1
        }
        for _ in 0..<2 { sim.checkout() }
        for id in 0..<2 { sim.connect(id) }
        sim.checkin(0)
        let waiting = sim.checkout()
        #expect(sim.outcome[waiting] == .success(0))
        let queued = sim.checkout()
        sim.apply(sim.machine.dispose())
        #expect(sim.outcome[queued] == .failure(.disposed))
        let refused = sim.checkout()
        #expect(sim.outcome[refused] == .failure(.disposed))
        sim.checkin(0)
        sim.checkin(1)
        #expect(sim.closing == [0, 1])
        #expect(!sim.machine.isDisposed)
        sim.settle()
        #expect(sim.machine.isDisposed)
    }

    @Test func statusReadsLikeSQLAlchemys() {
        var sim = Simulator()
        for _ in 0..<3 { sim.checkout() }
        for id in 0..<3 { sim.connect(id) }
        sim.checkin(2)
        #expect(sim.machine.status.description
            == "Pool size: 10  Connections in pool: 1 Current Overflow: -7 Current Checked out connections: 2 Waiting: 0")
    }

    @Test func configurationIsValidated() {
        var configuration = PoolConfiguration.seed
        configuration.size = 0
        configuration.maxOverflow = 0
        #expect(throws: PoolConfigurationError("pool size + max overflow must be at least 1")) {
            try configuration.validate()
        }
    }
}
