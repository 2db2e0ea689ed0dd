import Foundation
import PoolCore
@testable import PreforkPostgres
import Testing

extension SharedServer {
@Suite("Values, errors and settings", .serialized)
struct ValueTests {
    @Test func commonTypesDecode() async throws {
        let engine = try TestDatabase.engine("values")
        defer { Task { await engine.dispose() } }
        let row = try await engine.query("""
            SELECT 'héllo'::text AS text, 7::int2 AS small, 70000::int4 AS int, 9000000000::int8 AS big,
                   true AS yes, 1.5::float8 AS double, 12345678901234567890.123::numeric AS numeric,
                   '2026-11-27 18:30:00.25+00'::timestamptz AS at, '0b8e9a30-7d43-4b29-9a86-d0c9c1c2b3a4'::uuid AS id,
                   '\\x00ff10'::bytea AS bytes, '{"a": [1, 2]}'::jsonb AS doc, NULL::text AS missing,
                   'NaN'::float8 AS nan, '2026-03-29 01:30:00'::timestamp AS local
            """).rows[0]
        #expect(row["text"] == .text("héllo"))
        #expect(row["small"] == .int(7))
        #expect(row["int"] == .int(70000))
        #expect(row["big"] == .int(9_000_000_000))
        #expect(row["yes"] == .bool(true))
        #expect(row["double"] == .double(1.5))
        #expect(row["numeric"] == .numeric("12345678901234567890.123"))
        #expect(row["at"].date == Date(timeIntervalSince1970: 1_795_804_200.25))
        #expect(row["id"] == .uuid(UUID(uuidString: "0b8e9a30-7d43-4b29-9a86-d0c9c1c2b3a4")!))
        #expect(row["bytes"] == .bytes([0x00, 0xff, 0x10]))
        #expect(row["doc"] == .json(#"{"a": [1, 2]}"#))
        #expect(row["missing"] == .null)
        #expect(row["nan"].double?.isNaN == true)
        #expect(row["local"].date == Date(timeIntervalSince1970: 1_774_747_800))
    }

    /// A narrow result finds columns by comparing names, a wide one (over 16) through a dictionary: both give the
    /// first column of a repeated name, and `.null` for a name the result does not have.
    @Test func columnsByNameInNarrowAndWideResults() async throws {
        let engine = try TestDatabase.engine("columns")
        defer { Task { await engine.dispose() } }
        for width in [2, 17, 40] {
            let columns = (0..<width).map { "\($0) AS c\($0)" } + ["-1 AS c0", "-2 AS \"C1\""]
            let row = try await engine.query("SELECT " + columns.joined(separator: ", ")).rows[0]
            #expect(row["c0"] == .int(0), "width \(width)")
            #expect(row["c1"] == .int(1) && row["C1"] == .int(-2), "width \(width)")
            #expect(row["c\(width - 1)"] == .int(Int64(width - 1)), "width \(width)")
            #expect(row["c\(width)"] == .null && row[""] == .null, "width \(width)")
        }
    }

    @Test func parametersRoundTrip() async throws {
        let engine = try TestDatabase.engine("params")
        defer { Task { await engine.dispose() } }
        let when = Date(timeIntervalSince1970: 1_795_717_800.123456)
        let id = UUID()
        let none: String? = nil
        let row = try await engine.query(
            "SELECT $1::text AS s, $2::int8 AS i, $3::bool AS b, $4::float8 AS d, $5::timestamptz AS t, $6::uuid AS u, $7::bytea AS x, $8::text AS n",
            ["it's; DROP TABLE x", 42, false, 2.25, when, id, PostgresBytes([1, 2, 255]), none]).rows[0]
        #expect(row["s"] == .text("it's; DROP TABLE x"))
        #expect(row["i"] == .int(42))
        #expect(row["b"] == .bool(false))
        #expect(row["d"] == .double(2.25))
        #expect(abs(row["t"].date!.timeIntervalSince(when)) < 0.000_001)
        #expect(row["u"] == .uuid(id))
        #expect(row["x"] == .bytes([1, 2, 255]))
        #expect(row["n"] == .null)
    }

    @Test func serverErrorsCarrySQLStateMessageAndDetail() async throws {
        let engine = try TestDatabase.engine("errors")
        defer { Task { await engine.dispose() } }
        let table = "t_errors_\(getpid())"
        await #expect {
            try await engine.withSession { session in
                _ = try await session.query("CREATE TEMP TABLE \(table) (id int PRIMARY KEY)")
                _ = try await session.query("INSERT INTO \(table) VALUES (1)")
                _ = try await session.query("INSERT INTO \(table) VALUES (1)")
            }
        } throws: { error in
            guard let error = error as? PostgresError else { return false }
            return error.sqlState == "23505" && error.message.contains("duplicate key")
                && error.detail == "Key (id)=(1) already exists." && !error.isDisconnect
        }
        await #expect {
            try await engine.query("SELEC 1")
        } throws: { error in
            (error as? PostgresError)?.sqlState == "42601"
        }
        // The connection is still good after server errors.
        #expect(try await engine.query("SELECT 1 AS one").rows[0]["one"] == .int(1))
    }

    @Test func passwordsNeverAppearInMessages() throws {
        #expect(PostgresURL.redact("postgresql://api:s3cret@db:5432/app?sslmode=require")
            == "postgresql://api:***@db:5432/app?sslmode=require")
        #expect(PostgresURL.redact("postgres://db/app?user=api&password=s3cret&sslmode=disable")
            == "postgres://db/app?user=api&password=***&sslmode=disable")
        let url = try PostgresURL("postgresql://api:s3cret@127.0.0.1:1/app?connect_timeout=1")
        #expect(url.description == "postgresql://api:***@127.0.0.1:1/app?connect_timeout=1")
        #expect {
            try PostgresConnection.connect(url: url, defaults: [])
        } throws: { error in
            let text = "\(error)"
            return !text.contains("s3cret") && (error as? PostgresError)?.kind == .connection
        }
        #expect {
            try PostgresURL("mysql://u:s3cret@h/db")
        } throws: { error in
            "\(error)".contains("postgres://") && !"\(error)".contains("s3cret")
        }
    }

    @Test func transactionsCommitOrRollBack() async throws {
        let engine = try TestDatabase.engine("tx") { $0.pool.size = 1; $0.pool.maxOverflow = 0 }
        defer { Task { await engine.dispose() } }
        let table = "tx_\(getpid())"
        _ = try await engine.query("CREATE TABLE IF NOT EXISTS \(table) (v int)")
        defer { Task { _ = try? await engine.query("DROP TABLE \(table)") } }
        try await engine.transaction { _ = try await $0.query("INSERT INTO \(table) VALUES (1)") }
        await #expect(throws: TestFailure.self) {
            try await engine.transaction { session in
                _ = try await session.query("INSERT INTO \(table) VALUES (2)")
                throw TestFailure("abort")
            }
        }
        #expect(try await engine.query("SELECT array_agg(v)::text AS vs FROM \(table)").rows[0]["vs"] == .text("{1}"))
    }

    @Test func aTransactionStatementTimeoutCancelsTheStatement() async throws {
        let engine = try TestDatabase.engine("timeout")
        defer { Task { await engine.dispose() } }
        await #expect {
            try await engine.transaction(statementTimeout: .milliseconds(100)) { _ = try await $0.query("SELECT pg_sleep(2)") }
        } throws: { error in
            (error as? PostgresError)?.sqlState == "57014"
        }
        let engineWide = try TestDatabase.engine("timeout-wide") { $0.statementTimeout = .milliseconds(100) }
        defer { Task { await engineWide.dispose() } }
        await #expect {
            try await engineWide.query("SELECT pg_sleep(2)")
        } throws: { error in
            (error as? PostgresError)?.sqlState == "57014"
        }
    }

    @Test func settingsComeFromTheEnvironmentWithTheSeedsDefaults() throws {
        let defaults = try PostgresConfiguration.fromEnvironment(["DATABASE_URL": "postgres://h/db"])
        #expect(defaults.pool.size == 10)
        #expect(defaults.pool.maxOverflow == 10)
        #expect(defaults.pool.timeout == .seconds(30))
        #expect(defaults.pool.recycle == .seconds(3600))
        #expect(defaults.pool.prePing)
        let custom = try PostgresConfiguration.fromEnvironment([
            "DATABASE_URL": "postgres://h/db", "DB_POOL_SIZE": "2", "DB_MAX_OVERFLOW": "0", "DB_POOL_TIMEOUT": "1.5",
            "DB_POOL_RECYCLE": "-1", "DB_POOL_PRE_PING": "false",
        ])
        #expect(custom.pool.size == 2 && custom.pool.maxOverflow == 0 && custom.pool.recycle == nil && !custom.pool.prePing)
        #expect(custom.pool.timeout == .milliseconds(1500))
        for (name, value) in [("DB_POOL_SIZE", "ten"), ("DB_MAX_OVERFLOW", "-1"), ("DB_POOL_TIMEOUT", "0"),
                              ("DB_POOL_RECYCLE", "0"), ("DB_POOL_PRE_PING", "maybe")] {
            #expect {
                try PostgresConfiguration.fromEnvironment(["DATABASE_URL": "postgres://h/db", name: value])
            } throws: { error in
                "\(error)".hasPrefix(name)
            }
        }
        #expect(throws: PostgresError.self) { try PostgresConfiguration.fromEnvironment([:]) }
    }
}
}
