import Foundation
import IntegrationSupport
import PreforkPostgres
import Testing

/// The `cleanup` binary against the real Postgres.
@Suite("The cleanup job", .serialized)
struct CleanupJobTests {
    static let lockKey: Int64 = 0x636c_6561_6e75_7021

    /// A user of the test's own, with notes and tokens of every age.
    static func seed(_ admin: PostgresConnection, oldNotes: Int, recentNotes: Int = 2, liveNotes: Int = 2) throws -> Int64 {
        let user = try admin.execute("INSERT INTO users (name) VALUES ($1) RETURNING id", [Services.uniqueName("cleanup")]).rows[0]["id"].int!
        _ = try admin.execute("""
            INSERT INTO notes (user_id, title, deleted_at)
            SELECT $1::bigint, 'old', now() - interval '40 days' FROM generate_series(1, $2::int)
            UNION ALL SELECT $1::bigint, 'recent', now() - interval '10 days' FROM generate_series(1, $3::int)
            UNION ALL SELECT $1::bigint, 'live', NULL FROM generate_series(1, $4::int)
            """, [String(user), String(oldNotes), String(recentNotes), String(liveNotes)])
        _ = try admin.execute("""
            INSERT INTO api_tokens (user_id, token_hash, expires_at) VALUES
                ($1::bigint, md5(random()::text) || $1, now() - interval '1 day'),
                ($1::bigint, md5(random()::text) || $1, now() - interval '1 second'),
                ($1::bigint, md5(random()::text) || $1, now() + interval '1 day'),
                ($1::bigint, md5(random()::text) || $1, NULL)
            """, [String(user)])
        return user
    }

    static func count(_ admin: PostgresConnection, _ sql: String, _ user: Int64) throws -> Int64 {
        try admin.execute(sql, [String(user)]).rows[0][0].int ?? -1
    }

    static func cleanup(_ arguments: String = "", environment: String = "") throws -> (status: Int32, output: String) {
        Services.shell("\(environment) '\(try Binaries.path("cleanup"))' \(arguments) 2>&1")
    }

    @Test func exactlyTheExpiredRowsGo() throws {
        try Services.migrated.get()
        let admin = try Services.admin()
        defer { admin.close() }
        let user = try Self.seed(admin, oldNotes: 5)
        let (status, output) = try Self.cleanup(environment: "CLEANUP_BATCH_SIZE=2")
        #expect(status == 0, "\(output)")
        #expect(output.contains("info: done"))
        #expect(try Self.count(admin, "SELECT count(*) FROM notes WHERE user_id = $1 AND title = 'old'", user) == 0)
        #expect(try Self.count(admin, "SELECT count(*) FROM notes WHERE user_id = $1 AND title = 'recent'", user) == 2)
        #expect(try Self.count(admin, "SELECT count(*) FROM notes WHERE user_id = $1 AND title = 'live'", user) == 2)
        #expect(try Self.count(admin, "SELECT count(*) FROM api_tokens WHERE user_id = $1", user) == 2, "the two expired tokens went")
        let run = try admin.execute("SELECT outcome, notes_deleted FROM job_runs ORDER BY id DESC LIMIT 1").rows[0]
        #expect(run["outcome"].string == "succeeded" && (run["notes_deleted"].int ?? 0) >= 5)
    }

    @Test func anotherReplicaHoldingTheLockMeansSkipped() throws {
        try Services.migrated.get()
        let admin = try Services.admin()
        defer { admin.close() }
        _ = try admin.execute("SELECT pg_advisory_lock($1)", [String(Self.lockKey)])
        let (status, output) = try Self.cleanup()
        _ = try admin.execute("SELECT pg_advisory_unlock($1)", [String(Self.lockKey)])
        #expect(status == 0 && output.contains("skipped") && output.contains("another cleanup holds the lock"), "\(output)")
    }

    @Test func ifDueSkipsARecentSuccessfulRun() throws {
        try Services.migrated.get()
        #expect(try Self.cleanup().status == 0)
        let (status, output) = try Self.cleanup("--if-due 1h")
        #expect(status == 0 && output.contains("skipped") && output.contains("--if-due 3600 s"), "\(output)")
        let due = try Self.cleanup("--if-due 1s", environment: "sleep 1.1;")
        #expect(due.status == 0 && due.output.contains("info: done"), "\(due.output)")
        let bad = try Self.cleanup("--if-due later")
        #expect(bad.status == 64 && bad.output.contains("--if-due"))
        let config = try Self.cleanup(environment: "CLEANUP_BATCH_SIZE=0")
        #expect(config.status == 78 && config.output.contains("CLEANUP_BATCH_SIZE"))
    }

    /// SIGTERM mid-run: the batch in progress finishes, the run is recorded as interrupted with exactly the
    /// rows it deleted, and the lock is free again.
    @Test func sigtermMidRunLeavesConsistentDataAndReleasesTheLock() throws {
        try Services.migrated.get()
        let admin = try Services.admin()
        defer { admin.close() }
        let user = try Self.seed(admin, oldNotes: 60_000, recentNotes: 0, liveNotes: 0)
        let before = try Self.count(admin, "SELECT count(*) FROM notes WHERE deleted_at < now() - interval '30 days' AND $1 > 0", user)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try Binaries.path("cleanup"))
        process.environment = ProcessInfo.processInfo.environment.merging(["CLEANUP_BATCH_SIZE": "100"]) { $1 }
        process.standardError = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(10)
        while (try admin.execute("SELECT coalesce(max(notes_deleted), 0) AS n FROM job_runs WHERE outcome = 'running'").rows[0]["n"].int ?? 0) < 500 {
            guard Date() < deadline else { throw TestFailure("the run never got going") }
            usleep(5_000)
        }
        kill(process.processIdentifier, SIGTERM)
        while process.isRunning { usleep(10_000) }
        #expect(process.terminationStatus == 0)
        let run = try admin.execute("SELECT outcome, notes_deleted FROM job_runs ORDER BY id DESC LIMIT 1").rows[0]
        #expect(run["outcome"].string == "interrupted")
        let after = try Self.count(admin, "SELECT count(*) FROM notes WHERE deleted_at < now() - interval '30 days' AND $1 > 0", user)
        #expect(after > 0, "it stopped before the end")
        #expect(before - after == run["notes_deleted"].int, "job_runs says exactly what went")
        #expect(try admin.execute("SELECT pg_try_advisory_lock($1) AS ok", [String(Self.lockKey)]).rows[0]["ok"].bool == true)
        _ = try admin.execute("SELECT pg_advisory_unlock($1)", [String(Self.lockKey)])
        // Finish the job for the other tests.
        #expect(try Self.cleanup(environment: "CLEANUP_BATCH_SIZE=10000").status == 0)
    }
}
