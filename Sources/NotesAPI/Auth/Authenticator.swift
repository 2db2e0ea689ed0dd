import Glibc
import Logging
import PreforkPostgres
import PreforkRedis
import Synchronization

/// What a bearer token is worth.
public enum AuthOutcome: Sendable, Equatable {
    case user(Int64)
    /// Unknown, expired or revoked.
    case unknownToken
    case rateLimited(retryAfter: Int64)
    /// Too many unknown tokens are being looked up on this worker (`AuthMissGate`).
    case busy
    /// Postgres could not be asked (and Redis did not know).
    case unavailable(String)
}

/// Token → user, cached in Redis, and the per-token rate limit, in one pipelined round trip:
/// `GET auth:<hash>`, `INCR rl:<hash>:<minute>` (and `EXPIRE` once per minute and token). A cache miss asks Postgres and caches the answer
/// (unknown tokens too, briefly). When Redis fails, authentication goes to Postgres and the rate limit is not
/// applied (fails open): a Redis outage must not take the API down. That is logged (at most every 10 s) and
/// counted in `redis_fallbacks_total`; Redis is then left alone for a second before it is tried again, so an
/// outage costs one failed call per second, not one per request.
final class Authenticator: Sendable {
    private let engine: PostgresEngine
    private let redis: RedisClient
    private let settings: APISettings
    private let metrics: APIMetrics
    private let logger: Logger
    /// Monotonic nanoseconds before which Redis is not tried.
    private let redisResumesAt = Atomic<Int64>(0)
    private let lastFallbackLog = Atomic<Int64>(Int64.min / 2)
    private let misses: AuthMissGate
    /// Concurrent misses of one token share one lookup (an expired cache entry under many clients).
    private let lookups = SharedLookups<AuthOutcome>()
    private let health: RedisHealth

    init(engine: PostgresEngine, redis: RedisClient, settings: APISettings, metrics: APIMetrics, logger: Logger,
         health: RedisHealth) {
        self.health = health
        self.engine = engine
        self.redis = redis
        self.settings = settings
        self.metrics = metrics
        self.logger = logger
        misses = AuthMissGate(permits: settings.authMissConcurrency, queue: settings.authMissQueue)
    }

    func authenticate(_ token: String) async -> AuthOutcome {
        let hash = Token.hash(token)
        let now = Int64(time(nil))
        let limit = settings.rateLimitPerMinute
        guard Self.monotonicNanoseconds() >= redisResumesAt.load(ordering: .relaxed) else {
            return await withoutRedis(hash)
        }
        let window = RateLimitWindow(now: now)
        var commands = [["GET", "auth:" + hash]]
        let key = window.key(tokenHash: hash)
        if limit > 0 { commands.append(["INCR", key]) }
        let replies: [RedisValue]
        do {
            replies = try await redis.pipeline(commands)
            // The window's key expires once, when its first INCR made it: the redis.io INCR rate-limit pattern.
            // An EXPIRE with every INCR cost Redis a third more commands. Should this EXPIRE never arrive (the
            // worker killed in between), one key of a past minute stays: it is never counted again.
            if limit > 0, replies[1].integer == 1 {
                _ = try await redis.pipeline([["EXPIRE", key, String(RateLimitWindow.length + 5)]])
            }
        } catch {
            redisFailed(error)
            return await withoutRedis(hash)
        }
        health.observed(up: true)
        let outcome: AuthOutcome
        switch replies[0] {
        case .bulk("-"):
            metrics.authCacheNegativeHits.increment()
            return .unknownToken
        case .bulk(let text) where Int64(text) != nil:
            metrics.authCacheHits.increment()
            outcome = .user(Int64(text)!)
        default:
            metrics.authCacheMisses.increment()
            outcome = await lookups.value(for: hash) { await gatedLookup(hash, cache: true) }
            if case .busy = outcome { return .busy }
        }
        if case .user = outcome, limit > 0, let count = replies[1].integer, RateLimitWindow.exceeds(count: count, limit: limit) {
            metrics.rateLimited.increment()
            return .rateLimited(retryAfter: window.retryAfter(now: now))
        }
        return outcome
    }

    /// Redis is down: every token is a lookup in Postgres, so every lookup takes the miss gate. Without it, a
    /// flood of made-up tokens during a Redis outage held every connection of the worker's pool (39 of 40 with
    /// two workers, measured), where the gate holds `AUTH_MISS_CONCURRENCY`.
    private func withoutRedis(_ hash: String) async -> AuthOutcome {
        await lookups.value(for: hash) { await gatedLookup(hash, cache: false) }
    }

    /// One Postgres lookup through the miss gate, or `.busy` when its queue is full.
    private func gatedLookup(_ hash: String, cache: Bool) async -> AuthOutcome {
        guard await misses.enter() else {
            metrics.authMissesShed.increment()
            return .busy
        }
        let outcome = await fromPostgres(hash, cache: cache)
        misses.leave()
        return outcome
    }

    private func fromPostgres(_ hash: String, cache: Bool) async -> AuthOutcome {
        let result: PostgresResult
        do {
            result = try await engine.query("""
                SELECT user_id, floor(extract(epoch FROM expires_at - now()))::bigint AS ttl
                FROM api_tokens WHERE token_hash = $1 AND (expires_at IS NULL OR expires_at > now())
                """, [hash])
        } catch {
            return .unavailable("\(error)")
        }
        guard let row = result.rows.first, let user = row["user_id"].int else {
            if cache { await store(hash, "-", seconds: settings.negativeCacheTTL) }
            return .unknownToken
        }
        if cache {
            // Never cached past the token's own expiry.
            let ttl = row["ttl"].int.map { Int(max(1, $0)) } ?? Int.max
            await store(hash, String(user), seconds: min(settings.authCacheTTL, ttl))
        }
        return .user(user)
    }

    private func store(_ hash: String, _ value: String, seconds: Int) async {
        do {
            _ = try await redis.command("SET", "auth:" + hash, value, "EX", String(seconds))
        } catch {
            redisFailed(error)
        }
    }

    private func redisFailed(_ error: any Error) {
        metrics.redisFallbacks.increment()
        health.observed(up: false)
        let now = Self.monotonicNanoseconds()
        redisResumesAt.store(now + 1_000_000_000, ordering: .relaxed)
        let last = lastFallbackLog.load(ordering: .relaxed)
        if now - last >= 10_000_000_000,
           lastFallbackLog.compareExchange(expected: last, desired: now, ordering: .relaxed).exchanged {
            logger.warning("redis unavailable: authenticating through Postgres, rate limit not applied",
                           metadata: ["error": "\(error)"])
        }
    }

    static func monotonicNanoseconds() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
    }
}
