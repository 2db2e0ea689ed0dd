import LogFormat
import Logging
import Postgres
import Redis
import Settings

/// A setting that is missing or invalid: `variable: why`, one line, and exit 78 (EX_CONFIG).
public struct SettingsError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Everything the worker reads from its environment, validated once at start.
public struct APISettings: Sendable {
    public var postgres: PostgresConfiguration
    public var redis: RedisConfiguration
    /// Requests per token per minute (`RATE_LIMIT_PER_MINUTE`, 1000); 0 turns the limit off.
    public var rateLimitPerMinute = 1000
    /// How long a token → user lookup stays cached in Redis (`AUTH_CACHE_TTL`, 60 s). A revoked token keeps
    /// working for at most this long.
    public var authCacheTTL = 60
    /// Unknown tokens are cached too, for this long, so a client retrying a bad token cannot hammer Postgres.
    public var negativeCacheTTL = 10
    /// Largest request body (`MAX_BODY_SIZE`, 1 MiB); larger ones get 413 and the connection is closed.
    public var maxBodySize = 1 << 20
    /// A request head must arrive within this of the connection opening or of the previous response
    /// (`HEADER_TIMEOUT`, 10 s): a slow client cannot hold a connection forever. Also the keep-alive idle time.
    public var headerTimeout: Duration = .seconds(10)
    /// A request body must be complete within this of its head (`BODY_TIMEOUT`, 30 s), else 408: a client
    /// sending a byte every few seconds cannot hold a connection and its buffer forever.
    public var bodyTimeout: Duration = .seconds(30)
    /// Request-body bytes the worker buffers across all its connections (`BODY_BUFFER_LIMIT`, 32 MiB or four
    /// maximum bodies, whichever is more); a body past it gets 503 with `Retry-After: 1`.
    public var bodyBufferLimit = 32 << 20
    /// Cache misses (unknown or uncached tokens) looked up in Postgres at once (`AUTH_MISS_CONCURRENCY`, 2), and
    /// how many more may wait (`AUTH_MISS_QUEUE`, 64) before a miss gets 503: a flood of made-up tokens costs one
    /// Postgres query each and must not take the pool that valid requests need. 0 turns the cap off.
    public var authMissConcurrency = 2
    public var authMissQueue = 64
    /// How long a SIGTERM drain may take (`GRACEFUL_TIMEOUT`, 8 s, the supervisor's default; the supervisor
    /// passes its own value, so the worker finishes disposing before the supervisor's KILL).
    public var gracefulTimeout: Duration = .seconds(8)
    /// Event loop threads (`WORKER_THREADS`, 1): the supervisor's processes give the parallelism.
    public var threads = 1
    public var logFormat: LogOutput = .text
    public var logLevel: Logger.Level = .info
    /// One log line per request (`ACCESS_LOG=1`); off by default, it costs more than a cached request.
    public var accessLog = false

    public init(postgres: PostgresConfiguration, redis: RedisConfiguration) {
        self.postgres = postgres
        self.redis = redis
    }

    /// The worker's environment contract first (`EnvironmentContract`, which the supervisor checks before it
    /// starts a worker), then the values.
    public static func fromEnvironment(_ environment: [String: String]) throws(SettingsError) -> APISettings {
        if let problem = EnvironmentContract.problem(of: .worker, in: environment) { throw SettingsError(problem) }
        var postgres: PostgresConfiguration
        do { postgres = try PostgresConfiguration.fromEnvironment(environment) } catch {
            throw SettingsError(error.message)
        }
        if environment["DB_APPLICATION_NAME"]?.isEmpty ?? true { postgres.applicationName = "api-worker" }
        let redis: RedisConfiguration
        do { redis = try RedisConfiguration.fromEnvironment(environment) } catch {
            throw SettingsError(error.message)
        }
        var settings = APISettings(postgres: postgres, redis: redis)
        let reader = SettingsReader(environment: environment)
        do throws(SettingError) {
            settings.rateLimitPerMinute = try reader.count(Catalog.rateLimit) ?? 1000
            if let ttl = try reader.duration(Catalog.authCacheTTL) {
                settings.authCacheTTL = Int(ttl.wholeSecondsRoundedUp)
                settings.negativeCacheTTL = min(settings.negativeCacheTTL, settings.authCacheTTL)
            }
            settings.maxBodySize = try reader.size(Catalog.maxBodySize) ?? (1 << 20)
            settings.headerTimeout = try reader.duration(Catalog.headerTimeout) ?? .seconds(10)
            settings.bodyTimeout = try reader.duration(Catalog.bodyTimeout) ?? .seconds(30)
            settings.bodyBufferLimit = try reader.size(Catalog.bodyBufferLimit) ?? max(32 << 20, 4 * settings.maxBodySize)
            settings.authMissConcurrency = try reader.count(Catalog.authMissConcurrency) ?? 2
            settings.authMissQueue = try reader.count(Catalog.authMissQueue) ?? 64
            settings.gracefulTimeout = try reader.duration(Catalog.gracefulTimeout) ?? .seconds(8)
            settings.threads = try reader.count(Catalog.workerThreads) ?? 1
            settings.logFormat = try reader.choice(Catalog.logFormat) == "json" ? .json : .text
            settings.logLevel = try reader.logLevel()
            settings.accessLog = try reader.isOn(Catalog.accessLog)
        } catch {
            throw SettingsError(error.description)
        }
        return settings
    }
}
