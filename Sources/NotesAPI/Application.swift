import TimeUnits
import Logging
import LogFormat
import NIOConcurrencyHelpers
import NIOHTTP1
import PoolCore
import PreforkPostgres
import PreforkWorker
import PreforkRedis
import Synchronization
import WorkerRuntime

/// The seed's API: routes to answers, with authentication, rate limit, metrics and readiness.
public final class Application: WorkerApplication {
    public let engine: PostgresEngine
    public let redis: RedisClient
    public let metrics: APIMetrics
    let settings: APISettings
    let logger: Logger
    /// Failures that repeat per request are logged once per kind and window, then summarised.
    let failures = LogThrottle()
    let authenticator: Authenticator
    let notes: NoteStore
    let redisHealth: RedisHealth

    public init(settings: APISettings, logger: Logger, metrics: APIMetrics = APIMetrics()) {
        self.settings = settings
        self.logger = logger
        self.metrics = metrics
        engine = PostgresEngine(settings.postgres, metrics: metrics.factory)
        redis = RedisClient(settings.redis, metrics: metrics.factory)
        redisHealth = RedisHealth(gauge: metrics.redisDown)
        authenticator = Authenticator(engine: engine, redis: redis, settings: settings, metrics: metrics, logger: logger,
                                      health: redisHealth)
        notes = NoteStore(engine: engine)
    }

    /// SIGTERM: `/readyz` answers 503 from now on, so a load balancer stops sending new requests.

    /// Postgres must answer before READY=1; Redis may not (the worker then starts degraded).
    public func boot() async throws -> String? {
        let redisError: String?
        do {
            redisError = try await checkDependencies()
        } catch let error as ConfigurationError {
            throw error
        } catch {
            throw BootFailure(description: "cannot reach Postgres at boot: \(error)")
        }
        if let redisError {
            logger.warning("Redis unavailable at boot: starting degraded, requests go to Postgres until it answers",
                           metadata: ["error": "\(redisError)"])
        }
        logger.info("pools warm", metadata: [
            "postgres_pool": "\(settings.postgres.pool.size)+\(settings.postgres.pool.maxOverflow)",
            "redis_pool": "\(settings.redis.pool.size)",
        ])
        return redisError == nil ? nil : "degraded: Redis unavailable"
    }

    /// The Postgres engine first (statements still running are cancelled), then Redis: the seed's order on
    /// shutdown. Within the 750 ms the runtime gives it by default, so the exit comes before the SIGKILL.
    public func dispose() async {
        let disposed = await engine.dispose(timeout: .milliseconds(500))
        let closed = await redis.close(timeout: .milliseconds(250))
        logger.info("stopped", metadata: ["postgres_disposed": "\(disposed)", "redis_closed": "\(closed)"])
    }

    public func metricsExposition() -> [UInt8]? { metrics.exposition() }

    struct BootFailure: Error, CustomStringConvertible {
        var description: String
    }

    /// The first Postgres round trip, said while it waits and bounded: a server that accepts connections and
    /// never answers (a hung host, a proxy in front of a dead one) left the worker silent until the boot
    /// timeout, five times over: about 5 minutes of `not ready` lines and not one that named Postgres.
    func checkPostgres() async throws {
        let limit = max(settings.postgres.connectTimeout * 2, .seconds(10))
        let target = settings.postgres.url.description
        let waiting = Task { [logger] in
            var waited = 0
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(5))
                guard !Task.isCancelled else { return }
                waited += 5
                logger.warning("boot: waiting for Postgres at \(target): no answer after \(waited) s (giving up after \(Int(limit.inSeconds)) s)")
            }
        }
        defer { waiting.cancel() }
        let outcome: Result<Void, any Error>? = await first(within: limit) { [engine] in
            do {
                _ = try await engine.query("SELECT 1")
                return .success(())
            } catch {
                return .failure(error)
            }
        }
        switch outcome {
        case .success?: return
        case .failure(let error)?: throw error
        case nil: throw BootFailure(description: "Postgres at \(target) did not answer within \(Int(limit.inSeconds)) s")
        }
    }

    /// The boot check before READY=1: a Postgres round trip, which must succeed, and a Redis one, which may not.
    /// Requests fall back to Postgres without Redis (the authentication cache and the rate limit are Redis'),
    /// so a Redis outage must not keep a worker from starting: every worker of a restarting deployment would
    /// crash-loop, and the whole service would go down with a cache. Returns why Redis did not answer, if it did
    /// not; the worker then starts degraded. The connections stay in the pools.
    ///
    /// Redis that answers with an error (NOAUTH, WRONGPASS, an invalid database) is not down but refusing this
    /// configuration: that is a `ConfigurationError` (exit 78), not a degraded start that would hide it.
    public func checkDependencies() async throws -> String? {
        try await checkPostgres()
        // One connection of its own, outside the pool, whose error keeps its kind (the pool's says only why it
        // could not connect). Blocking, bounded by the connect and socket timeouts: nothing is served yet.
        let outcome: Result<Void, RedisError>? = await first(within: .seconds(5)) { [configuration = redis.configuration] in
            do throws(RedisError) {
                let connection = try RedisConnection.connect(configuration)
                defer { connection.close() }
                _ = try connection.command(["PING"])
                return .success(())
            } catch {
                return .failure(error)
            }
        }
        let redisError: String?
        switch outcome {
        case .success?:
            // Warm the pool as before: the first request then finds a connection.
            redisError = (try? await redis.command("PING")) == nil ? "the pool could not connect" : nil
        case .failure(let error)? where error.kind == .server:
            throw ConfigurationError("REDIS_URL: Redis refused this configuration: \(error.message)")
        case .failure(let error)?: redisError = "\(error)"
        case nil: redisError = "no answer within 5 s"
        }
        redisHealth.observed(up: redisError == nil)
        return redisError
    }

    // MARK: Responder

    public func immediateResponse(to request: Request) -> Response? {
        let route = Route(method: request.method, path: request.path)
        let response: Response
        switch route {
        case .healthz:
            response = .json(.ok, "{\"status\":\"ok\"}")
        case .metrics:
            response = .bytes(metrics.exposition(), contentType: "text/plain; version=0.0.4; charset=utf-8")
        case .notFound:
            response = .error(.notFound, "not_found", "no route for \(request.path)")
        case .methodNotAllowed(let allow):
            response = .error(.methodNotAllowed, "method_not_allowed", "\(request.method) is not allowed here",
                              headers: [("allow", allow)])
        default:
            return nil
        }
        finished(request, route: route, response: response, started: .now)
        return response
    }

    public func response(to request: Request) async -> Response {
        let started = ContinuousClock.now
        let route = Route(method: request.method, path: request.path)
        let response: Response
        if route == .readyz {
            response = await readiness()
        } else {
            response = await authenticated(request, route: route)
        }
        finished(request, route: route, response: response, started: started)
        return response
    }

    private func finished(_ request: Request, route: Route, response: Response, started: ContinuousClock.Instant) {
        let duration = started.duration(to: .now)
        metrics.record(method: request.method.rawValue, route: route.label, status: response.status.code, duration: duration)
        if settings.accessLog {
            logger.info("request", metadata: [
                "method": "\(request.method.rawValue)", "path": "\(request.path)", "status": "\(response.status.code)",
                "ms": "\(Double(duration.inNanoseconds / 1000) / 1000)",
            ])
        }
    }

    // MARK: Routes

    private func authenticated(_ request: Request, route: Route) async -> Response {
        guard let token = request.bearerToken else {
            let message = request.headers.contains(name: "authorization")
                ? "the Authorization header is not \"Bearer <token>\"" : "missing bearer token"
            return .error(.unauthorized, "unauthorized", message, headers: [("www-authenticate", "Bearer")])
        }
        switch await authenticator.authenticate(token) {
        case .user(let user):
            return await notesRoute(route, request: request, user: user)
        case .unknownToken:
            return .error(.unauthorized, "unauthorized", "unknown or expired token",
                          headers: [("www-authenticate", "Bearer error=\"invalid_token\"")])
        case .rateLimited(let retryAfter):
            return .error(.tooManyRequests, "rate_limited",
                          "more than \(settings.rateLimitPerMinute) requests this minute", headers: [("retry-after", String(retryAfter))])
        case .busy:
            return .error(.serviceUnavailable, "busy", "too many unknown tokens are being checked on this worker; retry",
                          headers: [("retry-after", "1")])
        case .unavailable(let reason):
            failures.log("database_unavailable", level: .error, "database unavailable: answering 503",
                         metadata: ["error": "\(reason)"], to: logger)
            return .error(.serviceUnavailable, "database_unavailable", "the database is unavailable", headers: [("retry-after", "1")])
        }
    }

    private func notesRoute(_ route: Route, request: Request, user: Int64) async -> Response {
        do {
            switch route {
            case .createNote:
                switch NoteInput.parse(request.body, creating: true) {
                case .success(let input):
                    let note = try await notes.create(user: user, title: input.title!, body: input.body ?? "")
                    return .json(.created, note)
                case .failure(let failure): return Self.response(for: failure)
                }
            case .getNote(let text):
                guard let id = positiveID(text) else { return .validation("id", "must be a positive integer") }
                guard let note = try await notes.get(user: user, id: id) else { return Self.noteNotFound }
                return .json(.ok, note)
            case .listNotes:
                var limit = 20
                if let text = request.queryValue("limit") {
                    guard let value = Int(text), (1...100).contains(value) else {
                        return .validation("limit", "must be an integer from 1 to 100")
                    }
                    limit = value
                }
                var before: Int64?
                if let text = request.queryValue("cursor"), !text.isEmpty {
                    guard let value = positiveID(text) else { return .validation("cursor", "is not a cursor this API gave") }
                    before = value
                }
                let page = try await notes.list(user: user, before: before, limit: limit)
                let next = page.nextCursor.map { "\"\($0)\"" } ?? "null"
                return .json(.ok, "{\"items\":[\(page.items.joined(separator: ","))],\"next_cursor\":\(next)}")
            case .updateNote(let text):
                guard let id = positiveID(text) else { return .validation("id", "must be a positive integer") }
                switch NoteInput.parse(request.body, creating: false) {
                case .success(let input):
                    guard let note = try await notes.update(user: user, id: id, title: input.title, body: input.body) else {
                        return Self.noteNotFound
                    }
                    return .json(.ok, note)
                case .failure(let failure): return Self.response(for: failure)
                }
            case .deleteNote(let text):
                guard let id = positiveID(text) else { return .validation("id", "must be a positive integer") }
                return try await notes.delete(user: user, id: id) ? .noContent() : Self.noteNotFound
            default:
                return .error(.notFound, "not_found", "no route for \(request.path)")
            }
        } catch {
            return databaseFailure(error)
        }
    }

    private static let noteNotFound = Response.error(.notFound, "not_found", "no such note")

    private static func response(for failure: NoteInput.Failure) -> Response {
        switch failure {
        case .invalidJSON: .error(.badRequest, "invalid_json", "the body is not valid JSON")
        case .invalid(let field, let message): .validation(field, "\(field) \(message)")
        }
    }

    /// Pool exhaustion and a server that is down are 503 with `Retry-After` (the client may retry, another
    /// worker or replica may do better); anything else is a 500, logged.
    private func databaseFailure(_ error: any Error) -> Response {
        switch error {
        case PoolError.timedOut:
            failures.log("database_busy", level: .warning, "no database connection free within the pool timeout: answering 503",
                         to: logger)
            return .error(.serviceUnavailable, "database_busy", "no database connection free within the pool timeout",
                          headers: [("retry-after", "1")])
        case PoolError.connectFailed, PoolError.disposed:
            failures.log("database_unavailable", level: .error, "database unavailable: answering 503",
                         metadata: ["error": "\(error)"], to: logger)
            return .error(.serviceUnavailable, "database_unavailable", "the database is unavailable", headers: [("retry-after", "1")])
        case let error as PostgresError where error.kind == .connection:
            failures.log("database_unavailable", level: .error, "database unavailable: answering 503",
                         metadata: ["error": "\(error)"], to: logger)
            return .error(.serviceUnavailable, "database_unavailable", "the database is unavailable", headers: [("retry-after", "1")])
        default:
            failures.log("internal", level: .error, "request failed: answering 500", metadata: ["error": "\(error)"], to: logger)
            return .error(.internalServerError, "internal", "internal error")
        }
    }

    /// Ready (200) while Postgres answers within 2 s and the worker is not draining. Redis down is `degraded`,
    /// still 200: requests are served through Postgres meanwhile, and a load balancer that pulled every pod on a
    /// cache outage would turn it into a full one. The `redis_down` gauge says the same to monitoring.
    private func readiness() async -> Response {
        if Worker.isDraining {
            return .json(.serviceUnavailable, "{\"status\":\"draining\"}")
        }
        async let postgres = Self.check(within: .seconds(2)) { [engine] in _ = try await engine.query("SELECT 1") }
        async let redis = Self.check(within: .seconds(2)) { [redis] in _ = try await redis.command("PING") }
        let (postgresError, redisError) = await (postgres, redis)
        redisHealth.observed(up: redisError == nil)
        let status = postgresError != nil ? "unavailable" : redisError != nil ? "degraded" : "ready"
        let body = "{\"status\":\"\(status)\",\"postgres\":\"\(postgresError == nil ? "ok" : "down")\","
            + "\"redis\":\"\(redisError == nil ? "ok" : "down")\"}"
        return .json(postgresError == nil ? .ok : .serviceUnavailable, body)
    }

    /// nil when `body` finished in time, else why not. Returns at the deadline even if `body` is stuck in a
    /// call that cannot be cancelled (a blocking round trip), which is left to finish on its own.
    private static func check(within limit: Duration, _ body: @escaping @Sendable () async throws -> Void) async -> String? {
        let outcome: String?? = await first(within: limit) {
            do { try await body() } catch { return "\(error)" }
            return nil
        }
        return outcome ?? "no answer within \(limit)"
    }
}
