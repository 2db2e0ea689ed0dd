import Foundation
import MetricsTestKit
import PoolCore
@testable import PreforkPostgres
import Testing

/// Single statements of concurrent callers share connections in libpq's pipeline mode, each with its own sync
/// point. Against a real Postgres: answers never cross, a failure stays with its statement, a lost connection
/// fails exactly what was in flight on it, and a slow statement holds up nobody for long.
extension SharedServer {
@Suite("Pipelined statements", .serialized)
struct PipelineTests {
    @Test func interleavedStatementsGetTheirOwnResults() async throws {
        let metrics = TestMetrics()
        var configuration = PostgresConfiguration(url: try TestDatabase.url())
        configuration.applicationName = "interleaved-\(getpid())"
        configuration.pool.timeout = .seconds(60)
        let engine = PostgresEngine(configuration, metrics: metrics)
        let wrong = try await withThrowingTaskGroup(of: Int.self) { group in
            for task in 0..<512 {
                group.addTask {
                    var wrong = 0
                    for round in 0..<5 {
                        let tag = "\(task)-\(round)-\(UInt32.random(in: 0 ... .max))"
                        let row = try await engine.query("SELECT $1::text AS tag, $2::int8 * 2 AS doubled", [tag, Int64(task)]).rows[0]
                        if row["tag"] != .text(tag) || row["doubled"] != .int(Int64(task * 2)) { wrong += 1 }
                    }
                    return wrong
                }
            }
            return try await group.reduce(0, +)
        }
        #expect(wrong == 0)
        let pool = [("pool", configuration.applicationName)]
        let roundTrips = try metrics.expectCounter("pool_round_trips_total", pool).totalValue
        let statements = try metrics.expectCounter("pool_statements_total", pool).totalValue
        #expect(statements == 512 * 5)
        #expect(roundTrips * 4 < statements, "\(statements) statements in \(roundTrips) writes: hardly shared")
        #expect(engine.status.total <= 20)
        await engine.dispose()
    }

    /// A constraint violation among concurrent inserts fails only its own insert: the others, sent in the same
    /// writes, commit.
    @Test func aFailingStatementFailsOnlyItsOwnCaller() async throws {
        let engine = try TestDatabase.engine("pipeline-fail") { $0.pool.timeout = .seconds(60) }
        let table = "pipeline_fail_\(getpid())"
        _ = try await engine.query("DROP TABLE IF EXISTS \(table)")
        _ = try await engine.query("CREATE TABLE \(table) (id int PRIMARY KEY)")
        _ = try await engine.query("INSERT INTO \(table) SELECT g * 1000 FROM generate_series(0, 19) g")
        // Every tenth insert repeats a key that is there: 20 duplicates among 200.
        let outcomes = await withTaskGroup(of: (Int, (any Error)?).self) { group -> [(Int, (any Error)?)] in
            for task in 0..<200 {
                group.addTask {
                    let id = task % 10 == 0 ? task / 10 * 1000 : task + 1
                    do {
                        _ = try await engine.query("INSERT INTO \(table) (id) VALUES ($1)", [Int64(id)])
                        return (task, nil)
                    } catch {
                        return (task, error)
                    }
                }
            }
            return await group.reduce(into: []) { $0.append($1) }
        }
        #expect(outcomes.count == 200)
        for (task, error) in outcomes {
            if task % 10 == 0 {
                #expect((error as? PostgresError)?.sqlState == "23505", "task \(task): \(String(describing: error))")
            } else {
                #expect(error == nil, "task \(task) failed: \(String(describing: error))")
            }
        }
        #expect(try await engine.query("SELECT count(*) AS n FROM \(table)").rows[0]["n"] == .int(20 + 180))
        _ = try await engine.query("DROP TABLE \(table)")
        await engine.dispose()
    }

    /// A statement whose Prepare fails (a column that is not there) fails alone, however many callers send it
    /// at once, and the next one of the same text gets the same clear error.
    @Test func aStatementThatCannotBePreparedFailsAlone() async throws {
        let engine = try TestDatabase.engine("pipeline-prepare")
        let outcomes = await withTaskGroup(of: (Int, Result<PostgresResult, any Error>).self) { group in
            for task in 0..<60 {
                group.addTask {
                    do {
                        let sql = task % 3 == 0 ? "SELECT no_such_column FROM pg_class WHERE oid = $1" : "SELECT $1::int8 AS v"
                        return (task, .success(try await engine.query(sql, [Int64(task)])))
                    } catch {
                        return (task, .failure(error))
                    }
                }
            }
            return await group.reduce(into: [:]) { $0[$1.0] = $1.1 }
        }
        for (task, outcome) in outcomes {
            switch outcome {
            case .success(let result):
                #expect(task % 3 != 0 && result.rows[0]["v"] == .int(Int64(task)))
            case .failure(let error):
                #expect(task % 3 == 0 && (error as? PostgresError)?.sqlState == "42703", "task \(task): \(error)")
            }
        }
        await #expect { _ = try await engine.query("SELECT no_such_column FROM pg_class WHERE oid = $1", [Int64(1)]) } throws: {
            ($0 as? PostgresError)?.sqlState == "42703"
        }
        await engine.dispose()
    }

    /// A statement libpq itself refuses (more than 65,535 parameters) fails alone: the connection, and the
    /// statements sent with it, carry on.
    @Test func aStatementLibpqRefusesFailsAlone() async throws {
        let engine = try TestDatabase.engine("pipeline-refused") { $0.pool.size = 1; $0.pool.maxOverflow = 0 }
        let many = [any PostgresBindable](repeating: Int64(1), count: 70_000)
        let outcomes = await withTaskGroup(of: (Int, Bool).self) { group -> [Int: Bool] in
            for task in 0..<21 {
                group.addTask {
                    let result = await outcome {
                        task == 10 ? try await engine.query("SELECT $1::int8 AS v", many)
                                   : try await engine.query("SELECT $1::int8 AS v", [Int64(task)])
                    }
                    if case .success(let rows) = result { return (task, rows.rows[0]["v"] == .int(Int64(task))) }
                    return (task, false)
                }
            }
            return await group.reduce(into: [:]) { $0[$1.0] = $1.1 }
        }
        #expect(outcomes.count == 21)
        for (task, ok) in outcomes { #expect(ok == (task != 10), "task \(task)") }
        #expect(try await engine.query("SELECT 5 AS five").rows[0]["five"] == .int(5))
        await engine.dispose()
    }

    /// A slow statement does not hold up the fast ones that come after it: they take another connection.
    @Test func aSlowStatementHoldsUpNobody() async throws {
        let engine = try TestDatabase.engine("pipeline-slow")
        _ = try await engine.query("SELECT 1")
        let slow = Task { try await engine.query("SELECT pg_sleep(3)") }
        try await Task.sleep(for: .milliseconds(200))
        let started = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for task in 0..<50 {
                group.addTask {
                    let value = try await engine.query("SELECT $1::int8 AS v", [Int64(task)]).rows[0]["v"]
                    #expect(value == .int(Int64(task)))
                }
            }
            try await group.waitForAll()
        }
        #expect(started.duration(to: .now) < .seconds(2), "the fast statements waited for the slow one")
        _ = try await slow.value
        await engine.dispose()
    }

    /// A backend terminated with statements in flight on its connection: exactly those fail, each with a clear
    /// connection error, at once; none hangs, none is answered twice; the next statement gets a new connection.
    @Test func aLostConnectionFailsExactlyTheStatementsInFlight() async throws {
        let engine = try TestDatabase.engine("pipeline-lost") { $0.pool.size = 1; $0.pool.maxOverflow = 0 }
        let name = engine.configuration.applicationName
        let admin = try TestDatabase.admin()
        let started = ContinuousClock.now
        // pg_sleep holds the connection's results; 20 statements queue behind it (the pool has one connection).
        let outcomes = await withTaskGroup(of: Result<PostgresResult, any Error>.self) { group in
            group.addTask { await outcome { try await engine.query("SELECT pg_sleep(10)") } }
            try? await Task.sleep(for: .milliseconds(200))
            for task in 0..<20 {
                group.addTask { await outcome { try await engine.query("SELECT $1::int8 AS v", [Int64(task)]) } }
            }
            try? await Task.sleep(for: .milliseconds(300))
            _ = try? admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1", [name])
            return await group.reduce(into: []) { $0.append($1) }
        }
        #expect(outcomes.count == 21)
        for outcome in outcomes {
            guard case .failure(let error) = outcome else { Issue.record("answered after its backend was terminated: \(outcome)"); continue }
            let postgres = error as? PostgresError
            #expect(postgres?.isDisconnect == true, "\(error)")
            #expect(!"\(error)".isEmpty)
        }
        #expect(started.duration(to: .now) < .seconds(5), "the statements waited for the slow one's 10 s")
        #expect(try await engine.query("SELECT 7 AS seven").rows[0]["seven"] == .int(7))
        await engine.dispose()
    }

    @Test func offBehindPgBouncerUnlessAskedFor() throws {
        let url = try TestDatabase.url().value
        #expect(try PostgresConfiguration.fromEnvironment(["DATABASE_URL": url]).pipelining)
        #expect(try !PostgresConfiguration.fromEnvironment(["DATABASE_URL": url, "DB_PGBOUNCER": "1"]).pipelining)
        #expect(try !PostgresConfiguration.fromEnvironment(["DATABASE_URL": url, "DB_PIPELINE": "false"]).pipelining)
        #expect(try PostgresConfiguration.fromEnvironment(["DATABASE_URL": url, "DB_PGBOUNCER": "1", "DB_PIPELINE": "1"]).pipelining)
        #expect(throws: PostgresError.self) { try PostgresConfiguration.fromEnvironment(["DATABASE_URL": url, "DB_PIPELINE": "sometimes"]) }
    }
}
}

func outcome<T>(_ body: () async throws -> T) async -> Result<T, any Error> {
    do { return .success(try await body()) } catch { return .failure(error) }
}
