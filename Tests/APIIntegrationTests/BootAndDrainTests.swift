import Foundation
import IntegrationSupport
import PreforkPostgres
import Testing

/// A worker takes no request before it can answer (it accepts only once its boot has returned), and no statement
/// outlives its request (at the drain's deadline the statements still running are cancelled in Postgres).
@Suite("Ready before serving, no statement after the drain", .serialized)
struct BootAndDrainTests {
    /// A rolling restart while Postgres accepts no new connection (its postmaster stopped with SIGSTOP: open
    /// backends answer on, connects hang until libpq's connect timeout). The new workers boot against it and take
    /// nothing off the shared queue meanwhile; the old ones keep answering. Before, the new workers accepted
    /// before their pools were up, held what they took until the connect timed out, and answered 503.
    @Test func aRollingRestartWhilePostgresAcceptsNoConnectionKeepsAnswering() throws {
        let postgres = try PrivatePostgres()
        let token = try postgres.token()
        let application = Services.uniqueName("api-boot")
        let supervisor = try SupervisorProcess(["--workers", "2", "--metrics-bind", "127.0.0.1:0", "--", try Binaries.path("worker")],
                                               environment: ["DATABASE_URL": postgres.url, "DB_APPLICATION_NAME": application,
                                                             "RATE_LIMIT_PER_MINUTE": "1000000"])
        try supervisor.waitForLog("all 2 workers ready", timeout: 30)
        let port = try supervisor.port()
        let created = try HTTPClient.request(port: port, method: "POST", path: "/v1/notes", headers: ["Authorization": "Bearer \(token)"],
                                             body: #"{"title":"boot","body":"x"}"#).get()
        let id = try #require(jsonField(created.body, "id"), "\(created.body)")
        let path = "/v1/notes/\(id)"
        // Warm both workers' pools, then stop the postmaster: what is open keeps working, nothing new connects.
        let warm = RequestLoop(port: port, path: path, concurrency: 8, headers: ["Authorization": "Bearer \(token)"])
        usleep(1_500_000)
        _ = warm.stop()
        let postmaster = try #require(postgres.postmaster)
        kill(postmaster, SIGSTOP)
        defer { kill(postmaster, SIGCONT) }

        let load = RequestLoop(port: port, path: path, concurrency: 8, headers: ["Authorization": "Bearer \(token)"])
        supervisor.signal(SIGHUP)
        usleep(6_000_000)  // within libpq's 10 s connect timeout: the new worker of slot 0 is still booting
        let (succeeded, failures) = load.stop()
        let total = succeeded + failures.count
        print("HUP with the postmaster stopped: \(succeeded) of \(total) requests answered 200")
        #expect(total > 100, "too little load to judge: \(total)")
        #expect(Double(succeeded) >= 0.99 * Double(total), "\(failures.prefix(5))\n\(supervisor.log)")
        #expect(!supervisor.log.contains("rolling restart done"), "the new workers cannot have booted yet")

        kill(postmaster, SIGCONT)
        try supervisor.waitForLog("rolling restart done", timeout: 40)
        #expect(!supervisor.log.contains("rolling restart aborted"), "\(supervisor.log)")
        // Every pool of the new generation is back to nothing checked out.
        let metricsPort = try supervisor.metricsPort()
        let deadline = Date().addingTimeInterval(5)
        var checkedOut: [Substring] = []
        repeat {
            let text = (try? HTTPClient.get(port: metricsPort, path: "/metrics").get().body) ?? ""
            checkedOut = text.split(separator: "\n").filter {
                $0.hasPrefix("pool_connections{") && $0.contains("checked_out") && Double($0.split(separator: " ").last ?? "") != 0
            }
            if checkedOut.isEmpty && text.contains("checked_out") { break }
            usleep(100_000)
        } while Date() < deadline
        #expect(checkedOut.isEmpty, "\(checkedOut)")
        supervisor.signal(SIGTERM)
        #expect(try supervisor.waitForExit(timeout: 20) == 0)
    }

    /// One API worker under a supervisor, a note, a transaction that holds the note's row (`FOR UPDATE`) and a
    /// PATCH of that note waiting for it inside Postgres.
    final class BlockedPatch {
        let supervisor: SupervisorProcess
        let application = Services.uniqueName("api-rowlock")
        let id: String
        let holder: PostgresConnection
        let watcher: PostgresConnection
        private let answer = Locked<Result<HTTPClient.Response, TestFailure>?>(nil)

        init(_ flags: [String]) throws {
            try Services.migrated.get()
            let token = try Services.token(user: Services.uniqueName("row-lock"))
            supervisor = try SupervisorProcess(["--workers", "1"] + flags + ["--", try Binaries.path("worker")],
                                               environment: ["DB_APPLICATION_NAME": application])
            try supervisor.waitForLog("all 1 workers ready", timeout: 30)
            let port = try supervisor.port()
            let auth = ["Authorization": "Bearer \(token)"]
            let created = try HTTPClient.request(port: port, method: "POST", path: "/v1/notes", headers: auth,
                                                 body: #"{"title":"before","body":"x"}"#).get()
            id = try #require(jsonField(created.body, "id"), "\(created.body)")
            holder = try Services.admin()
            watcher = try Services.admin()
            _ = try holder.execute("BEGIN")
            _ = try holder.execute("SELECT id FROM notes WHERE id = $1 FOR UPDATE", [id])
            let (id, answer) = (id, answer)
            Thread.detachNewThread {
                let result = HTTPClient.request(port: port, method: "PATCH", path: "/v1/notes/\(id)", headers: auth,
                                                body: #"{"title":"after"}"#, timeout: 20)
                answer.withLock { $0 = result }
            }
            let deadline = Date().addingTimeInterval(10)
            while try watcher.execute("SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'",
                                      [application]).rows[0]["n"].int != 1 {
                guard Date() < deadline else { throw TestFailure("the PATCH never waited for the lock:\n\(supervisor.log)") }
                usleep(20_000)
            }
        }

        /// What the PATCH's client got, once it got something (5 s at most).
        var response: Result<HTTPClient.Response, TestFailure>? {
            let deadline = Date().addingTimeInterval(5)
            while answer.withLock({ $0 }) == nil, Date() < deadline { usleep(20_000) }
            return answer.withLock { $0 }
        }

        /// The lock goes (a PATCH still waiting in a backend would commit now); the note's title after that.
        func releaseAndReadTitle() throws -> String? {
            _ = try holder.execute("COMMIT")
            usleep(200_000)
            return try watcher.execute("SELECT title FROM notes WHERE id = $1", [id]).rows[0]["title"].string
        }

        deinit {
            holder.close()
            watcher.close()
        }
    }

    /// A PATCH blocked on a row lock past the graceful timeout: the worker cancels it in Postgres before its
    /// exit, the client is told it failed, the update is not committed when the lock goes, and no backend of the
    /// worker is left. Before, the worker was killed, and its statement committed later from a backend that
    /// stayed `active` after the worker was gone.
    @Test func aStatementBlockedPastTheGracefulTimeoutIsCancelledNotCommitted() throws {
        let blocked = try BlockedPatch(["--graceful-timeout", "2"])
        let supervisor = blocked.supervisor
        let stopped = Date()
        supervisor.signal(SIGTERM)
        #expect(try supervisor.waitForExit(timeout: 10) == 0)
        #expect(Date().timeIntervalSince(stopped) < 4, "the stop took \(Date().timeIntervalSince(stopped)) s")
        #expect(!supervisor.log.contains("sending SIGKILL"), "the worker was killed, not drained:\n\(supervisor.log)")
        #expect(!supervisor.log.contains("CONTINUATION MISUSE"), "the drain dropped its waiter:\n\(supervisor.log)")
        // With the lock still held: the worker's backend is gone, not left waiting to commit.
        #expect(try Services.backends(blocked.application, settleTo: 0) == 0, "\(supervisor.log)")
        if case .success(let response)? = blocked.response {
            #expect(response.status != 200, "the client was told the PATCH succeeded: \(response.status)")
        }
        #expect(try blocked.releaseAndReadTitle() == "before", "the cut PATCH was committed after all")
    }

    /// A fast stop (QUIT) kills the worker at once, with no drain to cancel anything: its backend sees its client
    /// gone within a second (`client_connection_check_interval`, which the engine sets) and aborts the statement,
    /// so the PATCH is not committed once the lock goes. Before, the backend waited on, and committed it.
    @Test func aFastStopLeavesNoStatementToCommitEither() throws {
        let blocked = try BlockedPatch([])
        blocked.supervisor.signal(SIGQUIT)
        #expect(try blocked.supervisor.waitForExit(timeout: 10) == 0)
        usleep(1_500_000)  // the backend's next check of its client
        #expect(try Services.backends(blocked.application, settleTo: 0) == 0, "a backend of the killed worker waits on")
        #expect(try blocked.releaseAndReadTitle() == "before", "the killed worker's PATCH was committed after all")
    }

    /// The cleanup job at its timeout: SIGTERM, then its batch, stuck behind a lock, is cancelled in Postgres a
    /// second before the SIGKILL would come, and the job exits by itself with no backend left.
    @Test func aCleanupBatchStuckPastItsTimeoutIsCancelled() throws {
        try Services.migrated.get()
        let database = "cleanup_cut_\(getpid())_\(UInt32.random(in: 0 ... .max))"
        let admin = try Services.admin()
        defer { admin.close() }
        _ = try admin.execute("CREATE DATABASE \(database)")
        defer { _ = try? admin.execute("DROP DATABASE \(database) WITH (FORCE)") }
        let base = try Services.environment("DATABASE_URL")
        let url = String(base[..<base.lastIndex(of: "/")!]) + "/" + database
        // Only DATABASE_URL, as in `docker run -e DATABASE_URL=... worker migrate`: no Redis, the pool the supervisor's.
        let migrate = Services.shell("env -u REDIS_URL DB_POOL_SIZE=auto DATABASE_URL='\(url)' '\(try Binaries.path("worker"))' migrate 2>&1")
        #expect(migrate.status == 0, "\(migrate.output)")
        let locker = try PostgresConnection.connect(url: try PostgresURL(url), defaults: [("application_name", "test-locker")])
        defer { locker.close() }
        _ = try locker.execute("BEGIN")
        _ = try locker.execute("LOCK TABLE notes IN ACCESS EXCLUSIVE MODE")

        let application = Services.uniqueName("cleanup-cut")
        let supervisor = try SupervisorProcess(["--workers", "1", "--cleanup-on-start", "--cleanup-schedule", "@yearly",
                                                "--cleanup-timeout", "3", "--", try Binaries.path("test-worker")],
                                               environment: ["DATABASE_URL": url, "DB_APPLICATION_NAME": application])
        try supervisor.waitForLog("cleanup timed out", timeout: 15)
        try supervisor.waitForLog("cleanup finished", timeout: 10)
        #expect(!supervisor.log.contains("killed its process group"), "the job was killed, not cancelled:\n\(supervisor.log)")
        #expect(supervisor.log.contains("cancelling it"), "\(supervisor.log)")
        #expect(try Services.backends(application, settleTo: 0) == 0, "a backend of the job is left:\n\(supervisor.log)")
        _ = try locker.execute("ROLLBACK")
        supervisor.signal(SIGTERM)
        #expect(try supervisor.waitForExit(timeout: 20) == 0)
    }
}
