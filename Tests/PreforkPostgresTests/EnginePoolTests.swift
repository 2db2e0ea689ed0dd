import Foundation
import MetricsTestKit
import PoolCore
import Synchronization
@testable import PreforkPostgres
import Testing

/// The pool's contract against a real Postgres: no mocks. Serialized: each test holds up to 20 backends
/// and the cluster allows 100.
extension SharedServer {
@Suite("The Postgres engine's pool against a real Postgres", .serialized)
struct EnginePoolTests {
    @Test func twoHundredTasksOnTenPlusTenNeverHoldMoreThanTwentyBackends() async throws {
        // The pool's own contract: each statement on a connection of its own (pipelining off).
        let engine = try TestDatabase.engine("burst") { $0.pool.timeout = .seconds(60); $0.pipelining = false }
        let name = engine.configuration.applicationName
        let admin = try TestDatabase.admin()
        let sampling = Locked(true)
        let samples = Locked<[Int]>([])
        let sampler = Thread {
            while sampling.withLock({ $0 }) {
                if let count = try? TestDatabase.backends(name, admin: admin) { samples.withLock { $0.append(count) } }
                usleep(2_000)
            }
        }
        sampler.start()
        let results = try await withThrowingTaskGroup(of: Int64.self) { group in
            for task in 0..<200 {
                group.addTask {
                    try await engine.query("SELECT $1::int8 AS v, pg_sleep(0.01)", [Int64(task)]).rows[0]["v"].int ?? -1
                }
            }
            var values: [Int64] = []
            for try await value in group { values.append(value) }
            return values
        }
        sampling.withLock { $0 = false }
        while !sampler.isFinished { usleep(1_000) }
        let seen = samples.withLock { $0 }
        #expect(Set(results) == Set(0..<200))
        #expect(seen.count > 20, "too few samples: \(seen.count)")
        #expect(seen.max() ?? 0 <= 20, "pg_stat_activity showed \(seen.max() ?? 0) backends")
        #expect(seen.max() ?? 0 >= 15, "the burst never used the overflow: max \(seen.max() ?? 0)")
        #expect(engine.status.total <= 20)
        #expect(engine.status.idle <= 10)  // the overflow closed on checkin
        await engine.dispose()
    }

    @Test func aConnectionReturnedInsideATransactionIsRolledBack() async throws {
        let engine = try TestDatabase.engine("rollback") { $0.pool.size = 1; $0.pool.maxOverflow = 0 }
        let table = "rb_\(getpid())"
        _ = try await engine.query("CREATE TABLE IF NOT EXISTS \(table) (v int)")
        let first = try await engine.withSession { session in
            _ = try await session.query("BEGIN")
            _ = try await session.query("INSERT INTO \(table) VALUES (1)")
            return session.backendPID  // returned without COMMIT
        }
        // Back in the pool, the backend is idle, not "idle in transaction".
        let admin = try TestDatabase.admin()
        let state = try admin.execute("SELECT state FROM pg_stat_activity WHERE pid = $1", [String(first)]).rows.first?["state"]
        #expect(state == .text("idle"))
        let (second, rows) = try await engine.withSession { session in
            let rows = try await session.query("SELECT count(*) AS n FROM \(table)").rows[0]["n"].int
            return (session.backendPID, rows)
        }
        #expect(first == second)  // the same connection, reused
        #expect(rows == 0)
        _ = try await engine.query("DROP TABLE \(table)")
        await engine.dispose()
    }

    @Test func terminatedIdleBackendsAreReplacedOnTheNextCheckouts() async throws {
        let engine = try TestDatabase.engine("terminate") { $0.pool.size = 4; $0.pool.maxOverflow = 0 }
        let name = engine.configuration.applicationName
        let before = try await withThrowingTaskGroup(of: Int32.self) { group in
            for _ in 0..<4 {
                group.addTask {
                    try await engine.withSession { session in
                        _ = try await session.query("SELECT pg_sleep(0.05)")
                        return session.backendPID
                    }
                }
            }
            return try await group.reduce(into: Set<Int32>()) { $0.insert($1) }
        }
        #expect(before.count == 4)
        let admin = try TestDatabase.admin()
        _ = try admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1", [name])
        try await Task.sleep(for: .milliseconds(600))  // past the pre-ping bypass window
        var after = Set<Int32>()
        for _ in 0..<8 {
            after.insert(try await engine.withSession { session in
                _ = try await session.query("SELECT 1")
                return session.backendPID
            })
        }
        #expect(after.isDisjoint(with: before))
        #expect(try TestDatabase.backends(name, admin: admin) <= 4)
        await engine.dispose()
    }

    @Test func aRestartMidLoadGivesClearErrorsThenRecoversWithNothingLeaked() async throws {
        let engine = try TestDatabase.engine("restart") { $0.pool.timeout = .seconds(5) }
        let name = engine.configuration.applicationName
        let running = Locked(true)
        let outcomes = Locked<(ok: Int, errors: [String], okAfterRestart: Int)>((0, [], 0))
        let restarted = Locked(false)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<16 {
                group.addTask {
                    while running.withLock({ $0 }), !Task.isCancelled {
                        do {
                            _ = try await engine.query("SELECT 1")
                            let after = restarted.withLock { $0 }
                            outcomes.withLock { $0.ok += 1; if after { $0.okAfterRestart += 1 } }
                        } catch {
                            outcomes.withLock { $0.errors.append("\(error)") }
                            try? await Task.sleep(for: .milliseconds(20))
                        }
                    }
                }
            }
            group.addTask {
                try await Task.sleep(for: .milliseconds(300))
                try await TestDatabase.pgCtl(["restart", "-m", "fast"])
                restarted.withLock { $0 = true }
                try await Task.sleep(for: .milliseconds(1500))
                running.withLock { $0 = false }
            }
            try await group.waitForAll()
        }
        let result = outcomes.withLock { $0 }
        #expect(result.ok > 100)
        #expect(result.okAfterRestart > 50, "did not recover: \(result.okAfterRestart) successes after the restart")
        // During the outage the errors say what happened, no crash and no hang.
        for error in Set(result.errors) {
            let clear = error.contains("terminating connection") || error.contains("could not connect")
                || error.contains("server closed the connection") || error.contains("57P0") || error.contains("08")
                || error.contains("the database system is") || error.contains("Connection refused")
                || error.contains("no connection to the server") || error.contains("connection is closed")
            #expect(clear, "unclear error during the outage: \(error)")
        }
        // After recovery every query works, and the pool holds no more than its limit.
        for _ in 0..<20 { _ = try await engine.query("SELECT 1") }
        let admin = try TestDatabase.admin()
        #expect(try TestDatabase.backends(name, admin: admin) <= 20)
        #expect(engine.status.total <= 20)
        #expect(await engine.dispose(timeout: .seconds(5)))
        #expect(try await TestDatabase.backendsSettle(name, to: 0, admin: admin) == 0)
    }

    @Test func afterDisposeNoBackendRemainsAndCheckoutsAreRefused() async throws {
        let engine = try TestDatabase.engine("dispose") { $0.pipelining = false }  // a connection per statement
        let name = engine.configuration.applicationName
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<12 { group.addTask { _ = try await engine.query("SELECT pg_sleep(0.05)") } }
            try await group.waitForAll()
        }
        let admin = try TestDatabase.admin()
        // The 2 overflow connections are closed at checkin, 10 stay idle. Their server processes leave
        // pg_stat_activity a moment after the close (CI once counted them still there), hence the settle.
        #expect(try await TestDatabase.backendsSettle(name, to: 10, admin: admin) == 10)
        #expect(await engine.dispose(timeout: .seconds(5)))
        #expect(try await TestDatabase.backendsSettle(name, to: 0, admin: admin) == 0)
        await #expect(throws: PoolError.disposed) { try await engine.query("SELECT 1") }
    }

    /// Disposing is the last thing a worker does: a statement still running on a leased connection is cancelled in
    /// Postgres, its holder gets the error, and the connection is closed when it comes back. Nothing it started
    /// runs on, or commits, after the process is gone. The same for a statement on a connection of its own and
    /// for one in a pipeline shared with other callers.
    @Test(arguments: [false, true])
    func disposeCancelsWhatLeasedConnectionsRun(pipelining: Bool) async throws {
        let engine = try TestDatabase.engine(pipelining ? "dispose-pipelined" : "dispose-leased") { $0.pipelining = pipelining }
        let name = engine.configuration.applicationName
        let slow = Task { try await engine.query("SELECT pg_sleep(30)") }
        try await until { engine.status.checkedOut == 1 }
        let admin = try TestDatabase.admin()
        try await TestDatabase.untilOneStatementIsActive(name, admin: admin)
        let started = ContinuousClock.now
        #expect(await engine.dispose(timeout: .seconds(5)))
        #expect(started.duration(to: .now) < .seconds(2))
        await #expect(throws: PostgresError.self) { _ = try await slow.value }
        await #expect(throws: PoolError.disposed) { try await engine.query("SELECT 1") }
        #expect(try await TestDatabase.backendsSettle(name, to: 0, admin: admin) == 0)
    }

    /// A statement sent between two cancels, or before the first reached the server, is cancelled too.
    @Test func disposeCancelsAStatementSentAfterItBegan() async throws {
        let engine = try TestDatabase.engine("dispose-late")
        let name = engine.configuration.applicationName
        let holder = Task {
            try await engine.withSession { session in
                try await Task.sleep(for: .milliseconds(300))  // leased, nothing running yet when dispose begins
                return try await session.query("SELECT pg_sleep(30)")
            }
        }
        try await until { engine.status.checkedOut == 1 }
        let started = ContinuousClock.now
        #expect(await engine.dispose(timeout: .seconds(5)))
        #expect(started.duration(to: .now) < .seconds(2))
        await #expect(throws: PostgresError.self) { _ = try await holder.value }
        #expect(try await TestDatabase.backendsSettle(name, to: 0, admin: try TestDatabase.admin()) == 0)
    }

    @Test func aCheckoutBeyondTheLimitTimesOutWithTheLimitsInTheMessage() async throws {
        let engine = try TestDatabase.engine("limit") {
            $0.pool.size = 1
            $0.pool.maxOverflow = 0
            $0.pool.timeout = .milliseconds(200)
            $0.pipelining = false  // the second statement must wait for a connection, not share the first one's
        }
        let holder = Task { try await engine.query("SELECT pg_sleep(1)") }
        try await until { engine.status.checkedOut == 1 }
        let started = ContinuousClock.now
        await #expect {
            try await engine.query("SELECT 1")
        } throws: { error in
            "\(error)".contains("QueuePool limit of size 1 overflow 0 reached")
        }
        let waited = started.duration(to: .now)
        #expect(waited >= .milliseconds(190) && waited < .milliseconds(800))
        _ = try await holder.value
        await engine.dispose()
    }

    @Test func aCancelledWaiterLeavesTheQueue() async throws {
        let engine = try TestDatabase.engine("cancel") { $0.pool.size = 1; $0.pool.maxOverflow = 0; $0.pipelining = false }
        let holder = Task { try await engine.query("SELECT pg_sleep(0.5)") }
        try await until { engine.status.checkedOut == 1 }
        let waiter = Task { try await engine.query("SELECT 1") }
        try await until { engine.status.waiting == 1 }
        waiter.cancel()
        await #expect(throws: PoolError.cancelled) { try await waiter.value }
        #expect(engine.status.waiting == 0)
        _ = try await holder.value
        #expect(try await engine.query("SELECT 1 AS one").rows[0]["one"] == .int(1))
        await engine.dispose()
    }
}

@Suite("Observability")
struct ObservabilityTests {
    @Test func gaugesCountersAndTheWaitTimerFollowThePool() async throws {
        let metrics = TestMetrics()
        var configuration = PostgresConfiguration(url: try TestDatabase.url())
        configuration.applicationName = "metrics-\(getpid())"
        configuration.pool.size = 1
        configuration.pool.maxOverflow = 0
        configuration.pipelining = false  // the waiter waits for the holder's connection
        let engine = PostgresEngine(configuration, metrics: metrics)
        let pool = [("pool", configuration.applicationName)]
        let holder = Task { try await engine.query("SELECT pg_sleep(0.5)") }
        try await until { engine.status.checkedOut == 1 }
        let waiter = Task { try await engine.query("SELECT 1") }  // waits for the holder's connection
        try await until { engine.status.waiting == 1 }
        // The gauge is recorded right after the state changes, outside the pool's lock: wait for it too.
        try await until { (try? metrics.expectGauge("pool_waiting_checkouts", pool).lastValue) == 1 }
        #expect(try metrics.expectGauge("pool_waiting_checkouts", pool).lastValue == 1)
        #expect(try metrics.expectGauge("pool_connections", pool + [("state", "checked_out")]).lastValue == 1)
        _ = try await holder.value
        _ = try await waiter.value
        #expect(try metrics.expectCounter("pool_checkouts_total", pool).totalValue == 2)
        #expect(try metrics.expectCounter("pool_connects_total", pool).totalValue == 1)
        #expect(try metrics.expectGauge("pool_connections", pool + [("state", "idle")]).lastValue == 1)
        let wait = try metrics.expectTimer("pool_checkout_wait", pool)
        // Both checkouts waited: the first for its connection to open, the second (about 150 ms) for the holder.
        #expect(wait.values.count == 2)
        #expect((wait.values.max() ?? 0) > 50_000_000)  // the second waited for most of the holder's 0.5 s
        #expect(engine.status.description.hasPrefix("Pool size: 1  Connections in pool: 1"))
        await engine.dispose()
    }
}

@Suite("Cancellation mid-statement")
struct CancellationTests {
    @Test func aTaskCancelledDuringItsStatementLeavesTheConnectionUsable() async throws {
        let engine = try TestDatabase.engine("cancel-mid") { $0.pool.size = 1; $0.pool.maxOverflow = 0 }
        let running = Task { try await engine.query("SELECT pg_sleep(0.3)") }
        try await until { engine.status.checkedOut == 1 }
        running.cancel()
        _ = try? await running.value
        // The same (only) connection serves the next statement: nothing of the first is left on it.
        for _ in 0..<3 {
            #expect(try await engine.query("SELECT 2 AS two").rows[0]["two"] == .int(2))
        }
        await engine.dispose()
    }

    @Test func aConnectionReturnedWithAStatementInFlightIsCancelledAndDrained() async throws {
        let engine = try TestDatabase.engine("drain") { $0.pool.size = 1; $0.pool.maxOverflow = 0 }
        // Send without waiting for the reply, then give the connection back: reset must cancel and drain it.
        let started = ContinuousClock.now
        try await engine.withSession { session in
            try session.lease.connection.send("SELECT pg_sleep(30)")
        }
        #expect(try await engine.query("SELECT 3 AS three").rows[0]["three"] == .int(3))
        // Far below the statement's 30 s, with room for a loaded machine (each cancel forks a backend).
        #expect(started.duration(to: .now) < .seconds(10), "the abandoned statement was waited for, not cancelled")
        await engine.dispose()
    }
}
}
