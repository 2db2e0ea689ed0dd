import ConnectionPool
import Foundation
import PoolCore
import Synchronization
import Testing

/// The pool's shell (its lock, parked checkouts, timers, the threads for blocking calls, dispose) with a driver
/// whose connections are counters: what the shell does with them is checked here, fast and exhaustively; what
/// real servers do with it is checked by the Postgres and Redis engines' tests, against real servers.
///
/// No bound here is tight: these tests share the cooperative thread pool with the integration suites, whose
/// synchronous waits can hold it for seconds, so a deadline is there to end a hang, not to measure speed.
@Suite("The pool's shell with a counting driver")
struct ConnectionPoolTests {
    @Test func twoHundredTasksOnTwoPlusTwoNeverOpenMoreThanFour() async throws {
        let driver = CountingDriver()
        let pool = ConnectionPool(name: "burst", configuration: .small(timeout: .seconds(600)), driver: driver)
        let served = try await withThrowingTaskGroup(of: Int.self) { group in
            for task in 0..<200 {
                group.addTask {
                    try await pool.withConnection { _ in
                        try await Task.sleep(for: .microseconds(200))
                        return task
                    }
                }
            }
            var served: [Int] = []
            for try await task in group { served.append(task) }
            return served
        }
        #expect(Set(served) == Set(0..<200))
        #expect(driver.peakOpen <= 4, "peak \(driver.peakOpen) open against a limit of 2 + 2")
        #expect(await pool.dispose())
        #expect(driver.open == 0)
    }

    @Test func aCheckoutBeyondTheLimitTimesOutWithTheLimitsInTheMessage() async throws {
        let pool = ConnectionPool(name: "full", configuration: .small(timeout: .milliseconds(100)), driver: CountingDriver())
        let held = try await [pool.checkout(), pool.checkout(), pool.checkout(), pool.checkout()]
        let started = ContinuousClock.now
        await #expect(throws: PoolError.timedOut(size: 2, maxOverflow: 2, timeout: .milliseconds(100))) {
            _ = try await pool.checkout()
        }
        #expect(started.duration(to: .now) >= .milliseconds(100))
        #expect(String(describing: PoolError.timedOut(size: 2, maxOverflow: 2, timeout: .milliseconds(100)))
            .contains("QueuePool limit of size 2 overflow 2 reached"))
        held.forEach { pool.checkin($0) }
        #expect(await pool.dispose())
    }

    @Test func aCancelledWaiterLeavesTheQueueAndTheNextWaiterIsServed() async throws {
        let pool = ConnectionPool(name: "queue", configuration: .small(timeout: .seconds(600)), driver: CountingDriver())
        let held = try await [pool.checkout(), pool.checkout(), pool.checkout(), pool.checkout()]
        let cancelled = Task { try await pool.checkout() }
        try await waitUntil { pool.status.waiting == 1 }
        cancelled.cancel()
        await #expect(throws: PoolError.cancelled) { _ = try await cancelled.value }
        #expect(pool.status.waiting == 0)
        let next = Task { try await pool.checkout() }
        try await waitUntil { pool.status.waiting == 1 }
        pool.checkin(held[0])
        let lease = try await next.value
        #expect(lease.connection == held[0].connection, "the returned connection goes to the one waiter left")
        pool.checkin(lease)
        held.dropFirst().forEach { pool.checkin($0) }
        #expect(await pool.dispose())
    }

    @Test func aFailedConnectFailsItsCheckoutWithTheDriversReasonAndTheNextOneConnects() async throws {
        let driver = CountingDriver()
        let pool = ConnectionPool(name: "down", configuration: .small(timeout: .seconds(600)), driver: driver)
        driver.failConnects(true)
        await #expect(throws: PoolError.connectFailed("server down")) { _ = try await pool.checkout() }
        driver.failConnects(false)
        let lease = try await pool.checkout()
        pool.checkin(lease)
        #expect(pool.status.idle == 1 && pool.status.checkedOut == 0)
        #expect(await pool.dispose())
    }

    @Test func aConnectionThatFailsItsPingIsClosedAndReplaced() async throws {
        let driver = CountingDriver()
        var configuration = PoolConfiguration.small(timeout: .seconds(600))
        configuration.pingBypassWindow = .zero
        let pool = ConnectionPool(name: "ping", configuration: configuration, driver: driver)
        let first = try await pool.checkout()
        pool.checkin(first)
        driver.breakConnection(first.connection)
        let second = try await pool.checkout()
        #expect(second.connection != first.connection)
        #expect(driver.closed.contains(first.connection))
        pool.checkin(second)
        #expect(await pool.dispose())
    }

    @Test func anOldConnectionIsRecycledAtItsNextCheckout() async throws {
        let driver = CountingDriver()
        var configuration = PoolConfiguration.small(timeout: .seconds(600))
        configuration.recycle = .milliseconds(50)
        let pool = ConnectionPool(name: "recycle", configuration: configuration, driver: driver)
        let first = try await pool.checkout()
        pool.checkin(first)
        try await Task.sleep(for: .milliseconds(100))
        let second = try await pool.checkout()
        #expect(second.connection != first.connection)
        try await waitUntil { driver.closed.contains(first.connection) }
        pool.checkin(second)
        #expect(await pool.dispose())
    }

    @Test func aReturnedConnectionIsResetAndClosedWhenTheResetFailsOrItIsUnhealthy() async throws {
        let driver = CountingDriver()
        let pool = ConnectionPool(name: "reset", configuration: .small(timeout: .seconds(600)), driver: driver)
        let dirty = try await pool.checkout()
        driver.dirty(dirty.connection, resetSucceeds: false)
        pool.checkin(dirty)
        try await waitUntil { driver.closed.contains(dirty.connection) }
        #expect(driver.resets == 1)
        let unhealthy = try await pool.checkout()
        #expect(unhealthy.connection != dirty.connection)
        pool.checkin(unhealthy, healthy: false)
        try await waitUntil { driver.closed.contains(unhealthy.connection) }
        #expect(driver.resets == 1, "an unhealthy connection is closed, not reset")
        #expect(await pool.dispose())
    }

    @Test func disposeRefusesCheckoutsCancelsWhatIsLeasedAndClosesItOnReturn() async throws {
        let driver = CountingDriver()
        let pool = ConnectionPool(name: "dispose", configuration: .small(timeout: .seconds(600)), driver: driver)
        let idle = try await pool.checkout()
        let leased = try await pool.checkout()
        pool.checkin(idle)
        let disposed = Task { await pool.dispose(timeout: .seconds(120)) }
        try await waitUntil { driver.closed.contains(idle.connection) && driver.cancelled.contains(leased.connection) }
        await #expect(throws: PoolError.disposed) { _ = try await pool.checkout() }
        #expect(!driver.closed.contains(leased.connection), "a leased connection is closed when it comes back")
        pool.checkin(leased)
        #expect(await disposed.value)
        #expect(driver.open == 0)
    }

    @Test func disposeGivesUpAfterItsTimeoutOnAConnectionNeverReturned() async throws {
        let driver = CountingDriver()
        let pool = ConnectionPool(name: "kept", configuration: .small(timeout: .seconds(600)), driver: driver)
        let kept = try await pool.checkout()
        let started = ContinuousClock.now
        #expect(await pool.dispose(timeout: .milliseconds(300)) == false)
        #expect(started.duration(to: .now) >= .milliseconds(300))
        #expect(driver.open == 1)
        _ = kept
    }
}

extension PoolConfiguration {
    /// 2 + 2, pinged, never recycled.
    static func small(timeout: Duration) -> PoolConfiguration {
        PoolConfiguration(size: 2, maxOverflow: 2, timeout: timeout, recycle: nil, prePing: true)
    }
}

/// Polls until `condition` holds, for at most a minute: the pool's effects run on its own threads.
func waitUntil(_ condition: () -> Bool) async throws {
    let deadline = ContinuousClock.now + .seconds(60)
    while !condition() {
        guard ContinuousClock.now < deadline else { throw PoolTestFailure("condition not met within 60 s") }
        try await Task.sleep(for: .milliseconds(5))
    }
}

struct PoolTestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
