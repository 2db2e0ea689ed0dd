import Foundation
import IntegrationSupport
import Postgres
import Testing

/// The worker's operator commands and its life under the supervisor.
@Suite("Worker commands, logs and heartbeat", .serialized)
struct OperationsTests {
    /// Two `migrate` at once on an empty database: both succeed, each migration is applied once.
    @Test func concurrentMigrationsApplyOnce() throws {
        let database = "migrate_\(getpid())_\(UInt32.random(in: 0 ... .max))"
        let admin = try Services.admin()
        _ = try admin.execute("CREATE DATABASE \(database)")
        defer {
            _ = try? admin.execute("DROP DATABASE \(database) WITH (FORCE)")
            admin.close()
        }
        let base = try Services.environment("DATABASE_URL")
        let url = String(base[..<base.lastIndex(of: "/")!]) + "/" + database
        let worker = try Binaries.path("worker")
        let results = Locked<[(Int32, String)]>([])
        let group = DispatchGroup()
        for _ in 0..<2 {
            group.enter()
            Thread.detachNewThread {
                let result = Services.shell("DATABASE_URL='\(url)' '\(worker)' migrate 2>&1")
                results.withLock { $0.append(result) }
                group.leave()
            }
        }
        group.wait()
        let outputs = results.withLock { $0 }
        #expect(outputs.allSatisfy { $0.0 == 0 }, "\(outputs)")
        #expect(outputs.filter { $0.1.contains("applied migrations 1, 2") }.count == 1, "\(outputs)")
        #expect(outputs.filter { $0.1.contains("schema up to date") }.count == 1, "\(outputs)")
        let check = try PostgresConnection.connect(url: try PostgresURL(url), defaults: [])
        defer { check.close() }
        #expect(try check.execute("SELECT count(*) AS n FROM schema_migrations").rows[0]["n"].int == 2)
        #expect(Services.shell("DATABASE_URL='\(url)' '\(worker)' migrate 2>&1").output.contains("schema up to date"))
    }

    @Test func createTokenPrintsOnlyTheTokenAndStoresItsHash() throws {
        let user = Services.uniqueName("token-user")
        let worker = try Binaries.path("worker")
        let (status, output) = Services.shell("'\(worker)' create-token --user '\(user)' --ttl never 2>/dev/null")
        let token = output.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(status == 0 && token.hasPrefix("nt_") && !token.contains("\n"))
        let admin = try Services.admin()
        defer { admin.close() }
        let rows = try admin.execute("""
            SELECT t.token_hash, t.expires_at IS NULL AS never FROM api_tokens t JOIN users u ON u.id = t.user_id
            WHERE u.name = $1
            """, [user]).rows
        #expect(rows.count == 1 && rows[0]["never"].bool == true)
        #expect(rows[0]["token_hash"].string?.count == 64 && rows[0]["token_hash"].string != token, "only the hash is stored")

        let bad = Services.shell("'\(worker)' create-token --user x --ttl soon 2>&1")
        #expect(bad.status == 64 && bad.output.contains("--ttl"))
        let missing = Services.shell("'\(worker)' create-token 2>&1")
        #expect(missing.status == 64 && missing.output.contains("--user"))
        let noDatabase = Services.shell("env -u DATABASE_URL '\(worker)' migrate 2>&1")
        #expect(noDatabase.status == 78 && noDatabase.output.contains("DATABASE_URL"))
    }

    @Test func jsonLogsCarryTheSlot() throws {
        try Services.migrated.get()
        let supervisor = try SupervisorProcess(["--workers", "1", "--", try Binaries.path("worker")],
                                               environment: ["LOG_FORMAT": "json"])
        let line = try supervisor.waitForLog(#""msg":"ready""#).first!
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(object["level"] as? String == "info" && object["logger"] as? String == "worker")
        #expect(object["slot"] as? String == "0" && object["generation"] as? String == "1")
        supervisor.signal(SIGTERM)
        #expect(try supervisor.waitForExit() == 0)
    }

    /// The heartbeat comes from the event loop at half of WATCHDOG_USEC: with a 1 s timeout the worker lives on.
    @Test func heartbeatKeepsAWorkerAlive() throws {
        try Services.migrated.get()
        let supervisor = try SupervisorProcess(["--workers", "1", "--timeout", "1", "--", try Binaries.path("worker")])
        try supervisor.waitForLog("all 1 workers ready")
        let first = try supervisor.waitForWorkers(1)
        usleep(2_500_000)
        #expect(try supervisor.waitForWorkers(1) == first, "the worker was replaced:\n\(supervisor.log)")
        #expect(!supervisor.log.contains("heartbeat"), "\(supervisor.log)")
        #expect(try HTTPClient.get(port: try supervisor.port(), path: "/healthz").get().status == 200)
        supervisor.signal(SIGTERM)
        #expect(try supervisor.waitForExit() == 0)
    }
}

/// A value shared between threads.
final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value
    init(_ value: Value) { self.value = value }
    func withLock<T>(_ body: (inout Value) -> T) -> T { lock.withLock { body(&value) } }
}
