import Foundation
import PoolCore
@testable import PreforkPostgres
import Testing

extension SharedServer {
@Suite("Prepared statements")
struct PreparedStatementTests {
    static func preparedNames(_ session: PostgresSession) async throws -> [String] {
        try await session.query("SELECT name FROM pg_prepared_statements ORDER BY name").rows.compactMap { $0["name"].string }
    }

    @Test func aStatementIsPreparedOncePerConnectionAndReused() async throws {
        let engine = try TestDatabase.engine("prepared") { $0.pool.size = 1; $0.pool.maxOverflow = 0 }
        try await engine.withSession { session in
            for value in 1...3 {
                let row = try await session.query("SELECT $1::int * 2 AS doubled", [value]).rows[0]
                #expect(row["doubled"] == .int(Int64(value * 2)))
            }
            // The first statement and the catalog query itself; each text once, however often it ran.
            #expect(try await Self.preparedNames(session) == ["prefork_1", "prefork_2"])
        }
        await engine.dispose()
    }

    @Test func offBehindPgBouncer() async throws {
        var configuration = try PostgresConfiguration.fromEnvironment(
            ["DATABASE_URL": try TestDatabase.url().value, "DB_PGBOUNCER": "1"])
        #expect(!configuration.preparedStatements)
        configuration.applicationName = "unprepared-\(getpid())"
        let engine = PostgresEngine(configuration)
        try await engine.withSession { session in
            _ = try await session.query("SELECT 1")
            _ = try await session.query("SELECT 1")
            #expect(try await Self.preparedNames(session).isEmpty)
        }
        await engine.dispose()
    }

    @Test func settings() throws {
        let url = try TestDatabase.url().value
        #expect(try PostgresConfiguration.fromEnvironment(["DATABASE_URL": url]).preparedStatements)
        #expect(try !PostgresConfiguration.fromEnvironment(["DATABASE_URL": url, "DB_PREPARED_STATEMENTS": "false"]).preparedStatements)
        #expect(try PostgresConfiguration.fromEnvironment(
            ["DATABASE_URL": url, "DB_PGBOUNCER": "1", "DB_PREPARED_STATEMENTS": "true"]).preparedStatements,
            "an explicit DB_PREPARED_STATEMENTS wins")
        #expect(throws: PostgresError.self) { try PostgresConfiguration.fromEnvironment(["DATABASE_URL": url, "DB_PGBOUNCER": "maybe"]) }
    }

    /// After a schema change the server refuses the old plan ("cached plan must not change result type"):
    /// the statement is forgotten and run again, unnamed, without the caller seeing an error.
    @Test func aSchemaChangeIsSurvived() async throws {
        let engine = try TestDatabase.engine("replan") { $0.pool.size = 1; $0.pool.maxOverflow = 0 }
        try await engine.withSession { session in
            _ = try await session.query("CREATE TEMPORARY TABLE replan (a int)")
            _ = try await session.query("INSERT INTO replan VALUES (1)")
            #expect(try await session.query("SELECT * FROM replan").columns == ["a"])
            _ = try await session.query("ALTER TABLE replan ADD COLUMN b int DEFAULT 2")
            let after = try await session.query("SELECT * FROM replan")
            #expect(after.columns == ["a", "b"] && after.rows[0]["b"] == .int(2))
            // DDL is never prepared.
            let statements = try await session.query("SELECT statement FROM pg_prepared_statements").rows.compactMap { $0["statement"].string }
            #expect(statements.count == 3, "INSERT, SELECT, and this catalog query: \(statements)")
            #expect(!statements.contains { $0.contains("CREATE") || $0.contains("ALTER") })
        }
        await engine.dispose()
    }
}
}
