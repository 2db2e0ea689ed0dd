import Foundation
import IntegrationSupport
import PreforkPostgres
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
        _ = try supervisor.waitForLog("all 1 workers ready")
        _ = try supervisor.waitForLog(#""msg":"ready","generation""#)  // the worker's own line
        let line = try #require(supervisor.log.split(separator: "\n").first {
            $0.contains(#""msg":"ready""#) && $0.contains(#""logger":"worker""#)
        })
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(object["level"] as? String == "info" && object["logger"] as? String == "worker")
        #expect(object["slot"] as? String == "0" && object["generation"] as? String == "1")
        supervisor.signal(SIGTERM)
        #expect(try supervisor.waitForExit() == 0)
        // Issue 16: LOG_FORMAT=json was honoured by the worker and ignored by the supervisor. Every line of
        // both is one JSON object now, the supervisor's lifecycle included.
        var loggers: Set<String> = []
        for line in supervisor.log.split(separator: "\n") {
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            #expect(object != nil, "not JSON: \(line)")
            if let logger = object?["logger"] as? String { loggers.insert(logger) }
        }
        #expect(loggers.isSuperset(of: ["supervisor", "worker"]), "\(loggers)")
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

/// The supervisor's operator features against the real API worker, Postgres and Redis.
@Suite("Budget and metrics with the API worker", .serialized)
struct SupervisorOperationsTests {
    /// `--check-db` reads the real server: the test cluster has the seed's max_connections of 100.
    @Test func checkDBComparesThePlanWithTheRealServer() throws {
        let supervisor = try Binaries.path("supervisor")
        let seed = Services.shell("'\(supervisor)' budget --workers 4 --check-db 2>&1")
        #expect(seed.status == 0, "\(seed.output)")
        #expect(seed.output.contains("server (PostgreSQL "))
        #expect(seed.output.contains("max_connections 100, of which 3 superuser_reserved_connections: 97 for ordinary roles"))
        #expect(seed.output.contains("fits the server: the plan's worst case is 82 (workers 80 + cleanup 2) of the 97"))

        // A plan computed for a larger server than the real one: the arithmetic fits, the server does not.
        let wrong = Services.shell("DB_MAX_CONNECTIONS=500 '\(supervisor)' budget --workers 10 --check-db 2>&1")
        #expect(wrong.status == 1, "\(wrong.output)")
        #expect(wrong.output.contains("note: the plan assumes DB_MAX_CONNECTIONS=500, the server has 100"))
        #expect(wrong.output.contains("does not fit the server: the plan's worst case is 202"))

        let unreachable = Services.shell(
            "DATABASE_URL=postgresql://postgres@127.0.0.1:1/postgres '\(supervisor)' budget --check-db 2>&1")
        #expect(unreachable.status == 69 && unreachable.output.contains("cannot connect to DATABASE_URL"))
    }

    /// Four API workers behind one admin endpoint: every worker's request counters, labelled by slot.
    @Test func theAdminEndpointAggregatesFourAPIWorkers() throws {
        try Services.migrated.get()
        let token = try Services.token(user: Services.uniqueName("metrics"))
        let supervisor = try SupervisorProcess(["--workers", "4", "--metrics-bind", "127.0.0.1:0", "--",
                                                try Binaries.path("worker")], environment: ["RATE_LIMIT_PER_MINUTE": "1000000"])
        let metricsPort = try supervisor.metricsPort()
        let port = try supervisor.port()
        try supervisor.waitForLog("all 4 workers ready", timeout: 20)
        let load = RequestLoop(port: port, path: "/v1/notes", concurrency: 8, headers: ["Authorization": "Bearer \(token)"])
        usleep(1_000_000)
        let (succeeded, failures) = load.stop()
        #expect(failures.isEmpty && succeeded > 100)
        let body = try HTTPClient.get(port: metricsPort, path: "/metrics").get().body
        var perSlot: [Int: Int] = [:]
        for line in body.split(separator: "\n") where line.hasPrefix("http_requests_total{") && line.contains("route=\"/v1/notes\"") {
            guard let slotRange = line.range(of: "slot=\""), let value = Int(line.split(separator: " ").last ?? "") else { continue }
            let slot = Int(line[slotRange.upperBound...].prefix { $0 != "\"" }) ?? -1
            perSlot[slot, default: 0] += value
        }
        #expect(Set(perSlot.keys) == [0, 1, 2, 3], "\(perSlot)")
        #expect(perSlot.values.reduce(0, +) >= succeeded)
        #expect(body.components(separatedBy: "# TYPE http_requests_total counter").count == 2)
        #expect(body.contains("prefork_workers_ready 4"))
        supervisor.signal(SIGTERM)
        #expect(try supervisor.waitForExit() == 0)
    }

    /// API workers asking to be recycled after 300 requests, under authenticated load: nothing lost, and every
    /// recycled worker disposed its pool (no backend left behind).
    @Test func maxRequestsRecyclesAPIWorkersWithoutLosingRequestsOrConnections() throws {
        try Services.migrated.get()
        let token = try Services.token(user: Services.uniqueName("recycle"))
        let applicationName = Services.uniqueName("recycle")
        let supervisor = try SupervisorProcess(["--workers", "2", "--max-requests", "300", "--", try Binaries.path("worker")],
                                               environment: ["DB_APPLICATION_NAME": applicationName,
                                                             "RATE_LIMIT_PER_MINUTE": "1000000"])
        let port = try supervisor.port()
        try supervisor.waitForLog("all 2 workers ready", timeout: 20)
        let load = RequestLoop(port: port, path: "/v1/notes", concurrency: 8, headers: ["Authorization": "Bearer \(token)"])
        try supervisor.waitForLog("notice: recycled ", count: 4, timeout: 60)
        let (succeeded, failures) = load.stop()
        #expect(failures.isEmpty, "\(failures.prefix(5))")
        #expect(succeeded >= 1200)
        #expect(supervisor.log.contains("recycling (max-requests), new worker first"))
        supervisor.signal(SIGTERM)
        #expect(try supervisor.waitForExit() == 0)
        #expect(try Services.backends(applicationName, settleTo: 0) == 0)
    }
}

/// A value shared between threads.
final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value
    init(_ value: Value) { self.value = value }
    func withLock<T>(_ body: (inout Value) -> T) -> T { lock.withLock { body(&value) } }
}
