import LogFormat
import Logging
import PreforkPostgres
import PreforkRedis
import Settings

/// Everything the worker reads from its environment, validated once at start.
public struct APISettings: Sendable {
    public var postgres: PostgresConfiguration
    public var redis: RedisConfiguration
    /// Requests per token per minute (`RATE_LIMIT_PER_MINUTE`); 0 turns the limit off.
    public var rateLimitPerMinute = Catalog.rateLimit.defaultValue
    /// How long a token → user lookup stays cached in Redis, in whole seconds (`AUTH_CACHE_TTL`). A revoked token
    /// keeps working for at most this long.
    public var authCacheTTL = Int(Catalog.authCacheTTL.defaultValue.wholeSecondsRoundedUp)
    /// Unknown tokens are cached too, for this long (at most `authCacheTTL`), so a client retrying a bad token
    /// cannot hammer Postgres.
    public var negativeCacheTTL = 10
    /// Cache misses (unknown or uncached tokens) looked up in Postgres at once (`AUTH_MISS_CONCURRENCY`), and
    /// how many more may wait (`AUTH_MISS_QUEUE`) before a miss gets 503: a flood of made-up tokens costs one
    /// Postgres query each and must not take the pool that valid requests need. 0 turns the cap off.
    public var authMissConcurrency = Catalog.authMissConcurrency.defaultValue
    public var authMissQueue = Catalog.authMissQueue.defaultValue
    /// One log line per request (`ACCESS_LOG=1`); off by default, it costs more than a cached request.
    public var accessLog = Catalog.accessLog.defaultValue

    public init(postgres: PostgresConfiguration, redis: RedisConfiguration) {
        self.postgres = postgres
        self.redis = redis
    }

    /// The worker's environment contract first (`EnvironmentContract`, which the supervisor checks before it
    /// starts a worker), then the values.
    public static func fromEnvironment(_ environment: [String: String]) throws(SettingError) -> APISettings {
        if let problem = EnvironmentContract.problem(of: .worker, in: environment) { throw SettingError(problem) }
        let postgres: PostgresConfiguration
        do { postgres = try PostgresConfiguration.fromEnvironment(environment, applicationName: "api-worker") } catch {
            throw SettingError(error.message)
        }
        let redis: RedisConfiguration
        do { redis = try RedisConfiguration.fromEnvironment(environment) } catch {
            throw SettingError(error.message)
        }
        var settings = APISettings(postgres: postgres, redis: redis)
        let reader = SettingsReader(environment: environment)
        settings.rateLimitPerMinute = try reader[Catalog.rateLimit]
        settings.authCacheTTL = Int(try reader[Catalog.authCacheTTL].wholeSecondsRoundedUp)
        settings.negativeCacheTTL = min(settings.negativeCacheTTL, settings.authCacheTTL)
        settings.authMissConcurrency = try reader[Catalog.authMissConcurrency]
        settings.authMissQueue = try reader[Catalog.authMissQueue]
        settings.accessLog = try reader[Catalog.accessLog]
        return settings
    }
}
