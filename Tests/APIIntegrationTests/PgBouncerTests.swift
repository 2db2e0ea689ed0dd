import Foundation
import IntegrationSupport
import PreforkPostgres
import Synchronization
import Testing

/// The API and the cleanup through the PgBouncer `scripts/test` starts (transaction mode, max_client_conn 200,
/// default_pool_size 20), in front of the test Postgres (max_connections 100).
@Suite("Through PgBouncer in transaction mode", .serialized)
struct PgBouncerTests {
    static func through() throws -> [String: String] {
        ["DATABASE_URL": try Services.environment("PGBOUNCER_URL"), "DB_PGBOUNCER": "1"]
    }

    /// The server connections PgBouncer holds: it reaches Postgres over the unix socket, so they are the only
    /// client backends without an address.
    static func serverConnections(_ admin: PostgresConnection) throws -> Int {
        Int(try admin.execute("""
            SELECT count(*) AS n FROM pg_stat_activity
            WHERE backend_type = 'client backend' AND client_addr IS NULL AND pid <> pg_backend_pid()
            """).rows[0]["n"].int ?? -1)
    }

    @Test func theAPIWorksThroughPgBouncer() throws {
        let token = try Services.token(user: Services.uniqueName("pgbouncer"))
        let worker = try WorkerProcess(environment: try Self.through())
        #expect(try worker.request("GET", "/readyz").status == 200)
        let created = try worker.request("POST", "/v1/notes", token: token, body: #"{"title":"through pgbouncer"}"#)
        #expect(created.status == 201)
        let id = try #require(jsonField(created.body, "id"))
        // Many statements in a row, each possibly on another server connection: nothing may be prepared.
        for _ in 0..<20 {
            #expect(try worker.request("GET", "/v1/notes/\(id)", token: token).status == 200)
        }
        #expect(try worker.request("PATCH", "/v1/notes/\(id)", token: token, body: #"{"title":"renamed"}"#).status == 200)
        #expect(try worker.request("GET", "/v1/notes", token: token).status == 200)
        #expect(try worker.request("DELETE", "/v1/notes/\(id)", token: token).status == 204)
        #expect(!worker.process.log.contains("prepared statement"), "\(worker.process.log)")
        worker.process.signal(SIGTERM)
        #expect(try worker.process.waitForExit() == 0)
    }

    @Test func aStatementTimeoutCannotGoThroughPgBouncerAsAStartupOption() throws {
        let worker = try Binaries.path("worker")
        let url = try Services.environment("PGBOUNCER_URL")
        let result = Services.shell("DATABASE_URL='\(url)' DB_PGBOUNCER=1 DB_STATEMENT_TIMEOUT=5 '\(worker)' migrate 2>&1")
        #expect(result.status == 78 && result.output.contains("DB_STATEMENT_TIMEOUT: PgBouncer refuses it"))
    }

    /// The seed's scaling note made real: 2 replicas × 4 workers × (10 + 10) = 160 client connections would be
    /// refused against max_connections 100, but through PgBouncer (200 client slots, a server pool of 20) they
    /// start, serve under load without a failure, and Postgres never sees more than the 20.
    @Test func twoReplicasOfFourWorkersShareTwentyServerConnections() throws {
        try Services.migrated.get()
        let token = try Services.token(user: Services.uniqueName("replicas"))
        var environment = try Self.through()
        environment.merge(["REPLICAS": "2", "PGBOUNCER_MAX_CLIENT_CONN": "200", "PGBOUNCER_POOL_SIZE": "20",
                           "RATE_LIMIT_PER_MINUTE": "1000000"]) { $1 }
        let worker = try Binaries.path("worker")
        let replicas = try (0..<2).map { _ in try SupervisorProcess(["--workers", "4", "--", worker], environment: environment) }
        for replica in replicas { try replica.waitForLog("all 4 workers ready", timeout: 30) }
        #expect(replicas[0].log.contains("of PgBouncer's 200 client slots; Postgres sees at most 20 of the 80"))

        let admin = try Services.admin()
        defer { admin.close() }
        let peak = Mutex(0)
        let done = Mutex(false)
        let sampler = Thread {
            guard let sampling = try? Services.admin() else { return }
            while !done.withLock({ $0 }) {
                if let count = try? Self.serverConnections(sampling) { peak.withLock { $0 = max($0, count) } }
                usleep(50_000)
            }
            sampling.close()
        }
        sampler.start()
        let loads = try replicas.map { replica in
            RequestLoop(port: try replica.port(), path: "/v1/notes", concurrency: 24, headers: ["Authorization": "Bearer \(token)"])
        }
        usleep(4_000_000)
        // PgBouncer's own view at full load, for the record: client connections in, server connections out.
        let port = try Services.environment("TEST_PGBOUNCER_PORT")
        let pools = Services.shell("psql -h 127.0.0.1 -p \(port) -U postgres -X -A -F ' ' -c 'SHOW POOLS' pgbouncer 2>&1").output
        usleep(1_000_000)
        let results = loads.map { $0.stop() }
        done.withLock { $0 = true }
        let failures = results.flatMap(\.failures)
        #expect(failures.isEmpty, "\(failures.prefix(5))")
        #expect(results.allSatisfy { $0.succeeded > 200 }, "\(results.map(\.succeeded))")
        let seen = peak.withLock { $0 }
        #expect(seen >= 1 && seen <= 20, "Postgres saw \(seen) connections from PgBouncer")
        print("two replicas × 4 workers through PgBouncer: \(results.map(\.succeeded)) requests, \(failures.count) failed; "
            + "Postgres saw at most \(seen) connections from PgBouncer; SHOW POOLS at load:\n\(pools)")
        for replica in replicas { replica.signal(SIGTERM) }
        for replica in replicas { #expect(try replica.waitForExit() == 0) }
    }
}

/// In the cleanup's own suite, which runs its tests one at a time: they all take the same lock.
extension CleanupJobTests {
    /// Behind PgBouncer a session lock would stay on a server connection: the cleanup holds a transaction-level
    /// lock in a transaction of its own instead, which a replica's lock (of either kind) still excludes.
    @Test func theCleanupLocksInATransactionThroughPgBouncer() throws {
        try Services.migrated.get()
        let admin = try Services.admin()
        defer { admin.close() }
        let user = try CleanupJobTests.seed(admin, oldNotes: 5)
        let through = "DATABASE_URL='\(try Services.environment("PGBOUNCER_URL"))' DB_PGBOUNCER=1 DB_POOL_SIZE=1 DB_MAX_OVERFLOW=1"

        let replica = try Services.admin()
        _ = try replica.execute("BEGIN")
        _ = try replica.execute("SELECT pg_advisory_xact_lock($1)", [String(CleanupJobTests.lockKey)])
        let skipped = try CleanupJobTests.cleanup(environment: through)
        #expect(skipped.status == 0 && skipped.output.contains("another cleanup holds the lock"), "\(skipped.output)")
        _ = try replica.execute("COMMIT")
        replica.close()

        let ran = try CleanupJobTests.cleanup(environment: through)
        #expect(ran.status == 0, "\(ran.output)")
        #expect(try CleanupJobTests.count(admin, "SELECT count(*) FROM notes WHERE user_id = $1 AND title = 'old'", user) == 0)
        #expect(try CleanupJobTests.count(admin, "SELECT count(*) FROM notes WHERE user_id = $1 AND title = 'recent'", user) == 2)
        // Nothing left behind on PgBouncer's server connections: the lock is free.
        #expect(try admin.execute("SELECT pg_try_advisory_lock($1) AS ok", [String(CleanupJobTests.lockKey)]).rows[0]["ok"].bool == true)
        _ = try admin.execute("SELECT pg_advisory_unlock($1)", [String(CleanupJobTests.lockKey)])

        let tooSmall = try CleanupJobTests.cleanup(environment: through + " DB_MAX_OVERFLOW=0")
        #expect(tooSmall.status == 78 && tooSmall.output.contains("the cleanup needs 2 connections"))
    }
}
