import Foundation
import IntegrationSupport
import Testing

/// A blocking call run on a thread of its own; `value()` waits for it.
final class BlockingCall<T: Sendable>: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)
    private var result: Result<T, any Error>?

    init(_ body: @escaping @Sendable () throws -> T) {
        Thread.detachNewThread { [self] in
            result = Result { try body() }
            done.signal()
        }
    }

    func value() throws -> T {
        done.wait()
        return try result!.get()
    }
}

/// The worker binary over real sockets, against the real Postgres and Redis that scripts/test started.
@Suite("The API worker end to end", .serialized)
struct APIEndToEndTests {
    /// The API worker's accepted socket, read back from the kernel: Nagle off, and no `SO_DEBUG` (the same
    /// option number at the wrong level, which a non-root worker could not set and so closed every connection).
    @Test func acceptedConnectionsHaveNagleOffAndNoDebugFlag() throws {
        let worker = try WorkerProcess()
        let connection = KeepAliveConnection(port: worker.port)
        #expect(try connection.get("/healthz").get().status == 200)
        let options = try AcceptedSocket.options(pid: worker.process.process.processIdentifier,
                                                 clientPort: try #require(connection.localPort))
        #expect(options == AcceptedSocket.Options(noDelay: true, debug: false))
        worker.process.signal(SIGTERM)
        #expect(try worker.process.waitForExit() == 0)
    }

    @Test func everyEndpointAndItsErrors() throws {
        let worker = try WorkerProcess()
        let token = try Services.token(user: Services.uniqueName("alice"))
        let other = try Services.token(user: Services.uniqueName("bob"))

        #expect(try worker.request("GET", "/healthz").status == 200)
        let head = try worker.request("HEAD", "/healthz")
        #expect(head.status == 200 && head.body.isEmpty && head.headers["content-length"] == "15")
        let ready = try worker.request("GET", "/readyz")
        #expect(ready.status == 200 && jsonField(ready.body, "postgres") == "ok" && jsonField(ready.body, "redis") == "ok")

        let created = try worker.request("POST", "/v1/notes", token: token, body: #"{"title":"first","body":"héllo \"x\""}"#)
        #expect(created.status == 201)
        #expect(created.headers["content-type"] == "application/json")
        let id = try #require(jsonField(created.body, "id"))
        #expect(jsonField(created.body, "body") == "héllo \"x\"")
        let fetched = try worker.request("GET", "/v1/notes/\(id)", token: token)
        #expect(fetched.status == 200 && jsonField(fetched.body, "title") == "first")
        #expect(try worker.request("GET", "/v1/notes/\(id)", token: other).status == 404, "another user's note")

        let patched = try worker.request("PATCH", "/v1/notes/\(id)", token: token, body: #"{"title":"renamed"}"#)
        #expect(patched.status == 200 && jsonField(patched.body, "title") == "renamed" && jsonField(patched.body, "body") == "héllo \"x\"")

        for index in 2...5 {
            #expect(try worker.request("POST", "/v1/notes", token: token, body: "{\"title\":\"n\(index)\"}").status == 201)
        }
        let page1 = try worker.request("GET", "/v1/notes?limit=2", token: token)
        #expect(page1.status == 200)
        let cursor = try #require(jsonField(page1.body, "next_cursor"))
        #expect(page1.body.contains("\"n5\"") && page1.body.contains("\"n4\"") && cursor != "null")
        let page2 = try worker.request("GET", "/v1/notes?limit=2&cursor=\(cursor)", token: token)
        #expect(page2.body.contains("\"n3\"") && page2.body.contains("\"n2\""))
        let page3 = try worker.request("GET", "/v1/notes?limit=2&cursor=\(try #require(jsonField(page2.body, "next_cursor")))", token: token)
        #expect(page3.body.contains("\"renamed\"") && jsonField(page3.body, "next_cursor") == "null")

        #expect(try worker.request("DELETE", "/v1/notes/\(id)", token: token).status == 204)
        #expect(try worker.request("GET", "/v1/notes/\(id)", token: token).status == 404, "soft-deleted notes are gone")
        #expect(try worker.request("DELETE", "/v1/notes/\(id)", token: token).status == 404)
        let admin = try Services.admin()
        let row = try admin.execute("SELECT deleted_at IS NOT NULL AS deleted FROM notes WHERE id = $1", [id]).rows.first
        admin.close()
        #expect(row?["deleted"].bool == true, "DELETE is a soft delete")

        // Errors: all JSON, with the right status.
        let missing = try worker.request("GET", "/v1/notes/1")
        #expect(missing.status == 401 && missing.headers["www-authenticate"] == "Bearer" && jsonField(missing.body, "error") == "unauthorized")
        #expect(try worker.request("GET", "/v1/notes/1", token: "nt_unknown").status == 401)
        #expect(try worker.request("GET", "/v1/notes/1", headers: ["Authorization": "Basic abc"]).status == 401)
        let notFound = try worker.request("GET", "/nowhere")
        #expect(notFound.status == 404 && jsonField(notFound.body, "error") == "not_found")
        let wrongMethod = try worker.request("PUT", "/v1/notes/1", token: token, body: "{}")
        #expect(wrongMethod.status == 405 && wrongMethod.headers["allow"] == "GET, PATCH, DELETE")
        for (method, path, body, field) in [
            ("GET", "/v1/notes/abc", nil, "id"), ("GET", "/v1/notes?limit=0", nil, "limit"),
            ("GET", "/v1/notes?limit=101", nil, "limit"), ("GET", "/v1/notes?cursor=x", nil, "cursor"),
            ("POST", "/v1/notes", #"{"body":"no title"}"#, "title"), ("POST", "/v1/notes", #"{"title":""}"#, "title"),
            ("POST", "/v1/notes", #"{"title":"t","body":7}"#, "body"), ("PATCH", "/v1/notes/1", "{}", "title"),
        ] as [(String, String, String?, String)] {
            let response = try worker.request(method, path, token: token, body: body)
            #expect(response.status == 422, "\(method) \(path) \(body ?? ""): \(response.status) \(response.body)")
            #expect(jsonField(response.body, "field") == field, "\(method) \(path): \(response.body)")
        }
        let badJSON = try worker.request("POST", "/v1/notes", token: token, body: "{not json")
        #expect(badJSON.status == 400 && jsonField(badJSON.body, "error") == "invalid_json")

        let metrics = try worker.request("GET", "/metrics")
        #expect(metrics.status == 200 && metrics.headers["content-type"]?.hasPrefix("text/plain") == true)
        for name in ["http_requests_total{", "http_request_duration_seconds_bucket{", "pool_connections{",
                     "auth_cache_total{", "redis_fallbacks_total"] {
            #expect(metrics.body.contains(name), "missing \(name)")
        }
        #expect(metrics.body.contains(#"http_requests_total{method="GET",route="/v1/notes/{id}",status="404"}"#))
    }

    @Test func authenticationIsCachedInRedisUnknownTokensToo() throws {
        let worker = try WorkerProcess()
        let token = try Services.token(user: Services.uniqueName("carol"))
        let path = "/v1/notes?limit=1"
        let misses = try worker.metric(#"auth_cache_total{result="miss"}"#)
        let hits = try worker.metric(#"auth_cache_total{result="hit"}"#)
        #expect(try worker.request("GET", path, token: token).status == 200)
        #expect(try worker.metric(#"auth_cache_total{result="miss"}"#) == misses + 1)
        #expect(try worker.request("GET", path, token: token).status == 200)
        #expect(try worker.request("GET", path, token: token).status == 200)
        #expect(try worker.metric(#"auth_cache_total{result="hit"}"#) == hits + 2)
        #expect(try worker.metric(#"auth_cache_total{result="miss"}"#) == misses + 1, "Postgres was asked once")

        let bogus = "nt_" + Services.uniqueName("bogus")
        let negative = try worker.metric(#"auth_cache_total{result="negative_hit"}"#)
        #expect(try worker.request("GET", path, token: bogus).status == 401)
        #expect(try worker.request("GET", path, token: bogus).status == 401)
        #expect(try worker.metric(#"auth_cache_total{result="negative_hit"}"#) == negative + 1, "the unknown token was cached")

        // An expired token is refused even though a valid one of the same user works.
        let admin = try Services.admin()
        let expired = try Services.token(user: Services.uniqueName("dave"))
        _ = try admin.execute("UPDATE api_tokens SET expires_at = now() - interval '1 second' WHERE user_id = "
            + "(SELECT user_id FROM api_tokens ORDER BY id DESC LIMIT 1)")
        admin.close()
        #expect(try worker.request("GET", path, token: expired).status == 401)
    }

    @Test func rateLimitBoundaryAnswers429WithRetryAfter() throws {
        // The window is the wall-clock minute: start early in one, so six requests fit in it.
        while Int(Date().timeIntervalSince1970) % 60 > 50 { usleep(200_000) }
        let worker = try WorkerProcess(environment: ["RATE_LIMIT_PER_MINUTE": "5"])
        let token = try Services.token(user: Services.uniqueName("erin"))
        for attempt in 1...5 {
            #expect(try worker.request("GET", "/v1/notes?limit=1", token: token).status == 200, "request \(attempt)")
        }
        let limited = try worker.request("GET", "/v1/notes?limit=1", token: token)
        #expect(limited.status == 429 && jsonField(limited.body, "error") == "rate_limited")
        let retryAfter = Int(limited.headers["retry-after"] ?? "") ?? 0
        #expect((1...60).contains(retryAfter))
        #expect(try worker.request("GET", "/v1/notes?limit=1", token: Services.token(user: Services.uniqueName("frank"))).status == 200,
                "the limit is per token")
        #expect(try worker.metric("rate_limited_total") == 1)
    }

    @Test func redisDownReadsStillSucceedThroughPostgres() throws {
        let redis = try PrivateRedis()
        let worker = try WorkerProcess(environment: ["REDIS_URL": redis.url, "REDIS_SOCKET_TIMEOUT": "0.5"])
        let token = try Services.token(user: Services.uniqueName("gina"))
        let created = try worker.request("POST", "/v1/notes", token: token, body: #"{"title":"survives"}"#)
        let id = try #require(jsonField(created.body, "id"))
        #expect(try worker.request("GET", "/v1/notes/\(id)", token: token).status == 200)

        redis.kill()
        for _ in 0..<20 {
            let response = try worker.request("GET", "/v1/notes/\(id)", token: token)
            #expect(response.status == 200, "with Redis down: \(response.status) \(response.body)")
        }
        #expect(try worker.metric("redis_fallbacks_total") >= 1)
        // Issue 18: the requests themselves say Redis is down (a worker without probes never calls /readyz)...
        #expect(try worker.metric("redis_down") == 1)
        // ...and it is degraded, not unready; a load balancer keeps sending the requests it can still serve.
        let degraded = try worker.request("GET", "/readyz")
        #expect(degraded.status == 200 && jsonField(degraded.body, "status") == "degraded"
                && jsonField(degraded.body, "redis") == "down", "\(degraded.status) \(degraded.body)")
        #expect(try worker.metric("redis_down") == 1)
        #expect(worker.process.log.contains("redis unavailable"))

        try redis.start()
        // A request a second later (Redis is left alone that long after a failure) finds it back.
        usleep(1_200_000)
        #expect(try worker.request("GET", "/v1/notes/\(id)", token: token).status == 200)
        #expect(try worker.metric("redis_down") == 0)
        try Self.waitUntilFullyReady(worker)
    }

    /// Issue 18: while Redis is down every token is a Postgres lookup; a flood of made-up ones must still take
    /// the miss gate (AUTH_MISS_CONCURRENCY), not every connection of the pool (it took 39 of 40 before).
    @Test func withRedisDownAFloodOfUnknownTokensHoldsTheMissGateNotThePool() throws {
        let redis = try PrivateRedis()
        let worker = try WorkerProcess(environment: ["REDIS_URL": redis.url, "REDIS_SOCKET_TIMEOUT": "0.5",
                                                     "AUTH_MISS_CONCURRENCY": "2", "AUTH_MISS_QUEUE": "4"])
        redis.kill()
        // Distinct made-up tokens, as a flood sends them (concurrent requests of one token share one lookup).
        var most = 0
        _ = try worker.concurrentRequests("/v1/notes/1", threads: 32, each: 15, token: { thread, index in
            "nt_down\(thread)x\(index)x\(UInt64.random(in: 0 ... .max))"
        }, meanwhile: { most = max(most, try Services.backends(worker.applicationName)) })
        print("Redis down, 32 clients with unknown tokens: at most \(most) Postgres connections of (gate 2)")
        #expect(most <= 4, "the flood held \(most) connections")
        #expect(try worker.metric("auth_misses_shed_total") > 0)
    }

    /// Issue 18: Redis that answers with an error (a wrong password, a database that does not exist) is not
    /// down: starting degraded would hide the mistake. One line, exit 78.
    @Test func aRedisThatRefusesTheConfigurationIsExit78() throws {
        let port = try #require(URL(string: try Services.environment("REDIS_URL"))?.port)
        let worker = try WorkerProcess(environment: ["REDIS_URL": "redis://:wrong@127.0.0.1:\(port)/0"], waitForReady: false)
        #expect(try worker.process.waitForExit() == 78)
        #expect(worker.process.log.contains("Redis refused this configuration"), "\(worker.process.log)")
        #expect(!worker.process.log.contains("info: ready"))
    }

    /// `/readyz` says "ready" (not "degraded") within 5 s, and the `redis_down` gauge is back to 0.
    static func waitUntilFullyReady(_ worker: WorkerProcess) throws {
        let deadline = Date().addingTimeInterval(5)
        while jsonField(try worker.request("GET", "/readyz").body, "status") != "ready" {
            guard Date() < deadline else { Issue.record("not ready after Redis came back: \(worker.process.log)"); break }
            usleep(50_000)
        }
        #expect(try worker.metric("redis_down") == 0)
    }

    /// Issue 18: a worker that starts while Redis is down starts degraded and serves through Postgres, instead of
    /// crash-looping (which, in a restarting deployment, took the whole service down with the cache); it becomes
    /// fully ready when Redis comes.
    @Test func aWorkerBootedWhileRedisIsDownStartsDegradedAndRecovers() throws {
        let redis = try PrivateRedis()
        redis.kill()
        let worker = try WorkerProcess(environment: ["REDIS_URL": redis.url, "REDIS_SOCKET_TIMEOUT": "0.5"])
        #expect(worker.process.log.contains("Redis unavailable at boot: starting degraded"), "\(worker.process.log)")
        let degraded = try worker.request("GET", "/readyz")
        #expect(degraded.status == 200 && jsonField(degraded.body, "status") == "degraded", "\(degraded.body)")
        #expect(try worker.metric("redis_down") == 1)
        let token = try Services.token(user: Services.uniqueName("ivan"))
        let created = try worker.request("POST", "/v1/notes", token: token, body: #"{"title":"no cache"}"#)
        #expect(created.status == 201, "\(created.status) \(created.body)")

        try redis.start()
        try Self.waitUntilFullyReady(worker)
    }

    @Test func unreachablePostgresAtBootMeansNoReadyAndExit1() throws {
        let worker = try WorkerProcess(environment: ["DATABASE_URL": "postgresql://postgres@127.0.0.1:1/postgres"], waitForReady: false)
        #expect(try worker.process.waitForExit() == 1)
        #expect(!worker.process.log.contains("info: ready"))
        #expect(worker.process.log.contains("cannot reach Postgres at boot"))
    }

    @Test func malformedOversizedAndSlowRequestsNeverStallTheWorker() throws {
        let worker = try WorkerProcess(environment: ["HEADER_TIMEOUT": "1", "MAX_BODY_SIZE": "1000"])
        let garbage = try HTTPClient.parse(try HTTPClient.raw(port: worker.port, Array("GARBAGE\r\n\r\n".utf8)).get()).get()
        #expect(garbage.status == 400 && jsonField(garbage.body, "error") == "bad_request")
        #expect(garbage.headers["connection"] == "close")

        let binary = try HTTPClient.raw(port: worker.port, [0, 1, 2, 255, 254, 13, 10, 13, 10]).get()
        #expect(String(decoding: binary, as: UTF8.self).hasPrefix("HTTP/1.1 400"))

        let tooLarge = try worker.request("POST", "/v1/notes", token: "x", body: String(repeating: "a", count: 5000))
        #expect(tooLarge.status == 413 && jsonField(tooLarge.body, "error") == "body_too_large")

        let chunked = "POST /v1/notes HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            + (0..<5).map { _ in "1f4\r\n" + String(repeating: "b", count: 500) + "\r\n" }.joined() + "0\r\n\r\n"
        let chunkedResponse = try HTTPClient.parse(try HTTPClient.raw(port: worker.port, Array(chunked.utf8)).get()).get()
        #expect(chunkedResponse.status == 413)

        // A client that never finishes its request head is cut after HEADER_TIMEOUT, without an answer.
        let started = Date()
        let slow = try HTTPClient.raw(port: worker.port, Array("GET /healthz HTTP/1.1\r\nHost:".utf8), timeout: 5).get()
        let waited = Date().timeIntervalSince(started)
        #expect(slow.isEmpty && waited > 0.8 && waited < 3, "closed after \(waited) s with \(slow.count) bytes")

        // Pipelined requests on one connection, answered in order.
        let pipelined = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /nowhere HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        let answers = String(decoding: try HTTPClient.raw(port: worker.port, Array(pipelined.utf8)).get(), as: UTF8.self)
        #expect(answers.hasPrefix("HTTP/1.1 200") && answers.contains("HTTP/1.1 404"))

        #expect(try worker.request("GET", "/healthz").status == 200, "still serving")
        #expect(ProcessTable.isAlive(worker.process.pid))
    }

    @Test func aConfigurationErrorIsOneLineAndExit78() throws {
        let worker = try WorkerProcess(environment: ["RATE_LIMIT_PER_MINUTE": "lots"], waitForReady: false)
        #expect(try worker.process.waitForExit() == 78)
        let lines = worker.process.log.split(separator: "\n")
        #expect(lines.count == 1 && lines[0].contains("RATE_LIMIT_PER_MINUTE"), "\(worker.process.log)")
    }

    /// A slow request in flight when SIGTERM comes is answered, then the pools are disposed: no backend of
    /// the worker is left in pg_stat_activity.
    @Test func sigtermLetsASlowRequestFinishThenDisposes() async throws {
        let worker = try WorkerProcess()
        let token = try Services.token(user: Services.uniqueName("hank"))
        let created = try worker.request("POST", "/v1/notes", token: token, body: #"{"title":"locked"}"#)
        let id = try #require(jsonField(created.body, "id"))
        #expect(try Services.backends(worker.applicationName) >= 1)

        // Hold the row, so the PATCH waits in Postgres: a request in flight for as long as the test wants.
        let admin = try Services.admin()
        _ = try admin.execute("BEGIN")
        _ = try admin.execute("SELECT id FROM notes WHERE id = $1 FOR UPDATE", [id])
        // On a thread of its own: a task could wait for a cooperative thread that other suites' blocking calls hold.
        // Its client waits 30 s, not 5: it is held on purpose (the lock, the SIGTERM, the drain's start), which on
        // a loaded machine (the non-root pass runs every process-level suite at once) took more than 5 s.
        let patch = BlockingCall {
            try HTTPClient.request(port: worker.port, method: "PATCH", path: "/v1/notes/\(id)",
                                   headers: ["Authorization": "Bearer \(token)"], body: #"{"body":"late"}"#, timeout: 30).get()
        }
        let deadline = Date().addingTimeInterval(5)
        while try admin.execute("SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'",
                                [worker.applicationName]).rows[0]["n"].int != 1 {
            guard Date() < deadline else { throw TestFailure("the PATCH never waited for the lock") }
            usleep(10_000)
        }
        worker.process.signal(SIGTERM)
        try worker.process.waitForLog("draining")
        try await Task.sleep(for: .milliseconds(300))
        #expect(ProcessTable.isAlive(worker.process.pid), "exited with a request in flight")
        _ = try admin.execute("COMMIT")
        admin.close()
        let answer = try patch.value()
        #expect(answer.status == 200 && jsonField(answer.body, "body") == "late")
        #expect(answer.headers["connection"] == "close")
        #expect(try worker.process.waitForExit() == 0)
        #expect(worker.process.log.contains("stopped postgres_disposed=true redis_closed=true"))
        #expect(try Services.backends(worker.applicationName, settleTo: 0) == 0)
    }

    /// The whole system: supervisor + 4 workers under load, then SIGTERM: every accepted request answered,
    /// exit 0, no backend left.
    ///
    /// As root (or with CAP_NET_ADMIN) a socket filter keeps every new connection out, and nothing may be lost.
    /// Without it (a non-root run, as the image runs, on a kernel that requires CAP_NET_ADMIN for filters on TCP
    /// sockets) the accept queue shrinks to one connection instead, and a connection that completes its
    /// handshake in the instant between the last worker's final accept and its close is reset: measured about
    /// one stop in 30 under this load, never more than one connection. That bound is what is checked then.
    @Test func supervisorWithFourWorkersStopsUnderLoadWithoutLosingARequest() throws {
        try Services.migrated.get()
        let token = try Services.token(user: Services.uniqueName("ivy"))
        let applicationName = Services.uniqueName("api-sup")
        let supervisor = try SupervisorProcess(["--workers", "4", "--", try Binaries.path("worker")],
                                               environment: ["DB_APPLICATION_NAME": applicationName, "RATE_LIMIT_PER_MINUTE": "1000000"])
        let port = try supervisor.port()
        try supervisor.waitForLog("all 4 workers ready", timeout: 20)
        let created = try HTTPClient.request(port: port, method: "POST", path: "/v1/notes",
                                             headers: ["Authorization": "Bearer \(token)"], body: #"{"title":"load"}"#).get()
        let id = try #require(jsonField(created.body, "id"))
        let load = RequestLoop(port: port, path: "/v1/notes/\(id)", concurrency: 16, headers: ["Authorization": "Bearer \(token)"])
        let warm = Date().addingTimeInterval(10)
        while load.succeeded < 500, Date() < warm { usleep(10_000) }
        supervisor.signal(SIGTERM)
        #expect(try supervisor.waitForExit(timeout: 20) == 0)
        let (succeeded, failures) = load.stop()
        // After the listener closes, new connections are refused: those requests were never accepted.
        let lost = failures.filter { !$0.hasPrefix("connect:") }
        #expect(succeeded >= 500)
        let filtered = supervisor.log.contains("stop=socket-filter")
        #expect(filtered || supervisor.log.contains("stop=backlog"), "the log names the mechanism")
        #expect(lost.count <= (filtered ? 0 : 1), "accepted requests that failed: \(lost.prefix(5))\n\(supervisor.log)")
        #expect(supervisor.log.components(separatedBy: "stopped generation=").count - 1 == 4, "every worker disposed its pools")
        #expect(try Services.backends(applicationName, settleTo: 0) == 0)
    }

    /// A rolling restart under keep-alive clients that send each request as soon as the previous answer
    /// arrives: a draining worker answers with `Connection: close` and keeps an idle connection open for a
    /// moment, so a request already on its way is served, not reset. (Closing idle connections at once lost
    /// about one request per connection of each drained worker.)
    @Test func rollingRestartUnderKeepAliveClientsLosesNoRequest() throws {
        try Services.migrated.get()
        let token = try Services.token(user: Services.uniqueName("kay"))
        let supervisor = try SupervisorProcess(["--workers", "4", "--", try Binaries.path("worker")],
                                               environment: ["RATE_LIMIT_PER_MINUTE": "1000000"])
        let port = try supervisor.port()
        try supervisor.waitForLog("all 4 workers ready", timeout: 20)
        let created = try HTTPClient.request(port: port, method: "POST", path: "/v1/notes",
                                             headers: ["Authorization": "Bearer \(token)"], body: #"{"title":"kept"}"#).get()
        let id = try #require(jsonField(created.body, "id"))
        let load = RequestLoop(port: port, path: "/v1/notes/\(id)", concurrency: 16,
                               headers: ["Authorization": "Bearer \(token)"], keepAlive: true)
        let warm = Date().addingTimeInterval(10)
        while load.succeeded < 500, Date() < warm { usleep(10_000) }
        supervisor.signal(SIGHUP)
        try supervisor.waitForLog("rolling restart done", timeout: 30)
        usleep(300_000)
        let (succeeded, failures) = load.stop()
        #expect(succeeded >= 500)
        #expect(failures.isEmpty, "\(failures.count) failed: \(failures.prefix(5))")
        supervisor.signal(SIGTERM)
        #expect(try supervisor.waitForExit(timeout: 20) == 0)
    }
}
