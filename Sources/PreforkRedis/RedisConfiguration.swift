import ConnectionURL
import PoolCore
import Settings

/// The Redis client's settings, from the environment with the seed's names and defaults.
public struct RedisConfiguration: Sendable {
    public var url: RedisURL
    /// `REDIS_POOL_SIZE` connections, no overflow; a checkout waits up to `REDIS_POOL_TIMEOUT` for one.
    /// Waiting, not failing at once, is the point: redis-py's pool raises when all are busy, and fails half of
    /// the requests at 64 concurrent connections with the seed's 5.
    public var pool: PoolConfiguration
    /// Read and write timeout of every call (`REDIS_SOCKET_TIMEOUT`): a hung server fails a call, not a request forever.
    public var socketTimeout = Catalog.redisSocketTimeout.defaultValue
    /// `REDIS_CONNECT_TIMEOUT`.
    public var connectTimeout = Catalog.redisConnectTimeout.defaultValue
    public var name = "redis"

    public init(url: RedisURL) {
        self.url = url
        // Redis connections do not age on the server's side the way managed Postgres ones do: no recycle.
        pool = PoolConfiguration(size: Catalog.redisPoolSize.defaultValue, maxOverflow: 0,
                                 timeout: Catalog.redisPoolTimeout.defaultValue, recycle: nil, prePing: true)
    }

    /// Errors name the variable, for a one-line message and exit 78.
    public static func fromEnvironment(_ environment: [String: String]) throws(RedisError) -> RedisConfiguration {
        let reader = SettingsReader(environment: environment)
        do throws(SettingError) {
            guard let text = try reader[Catalog.redisURL] else { throw SettingError("REDIS_URL is not set", fromFlag: false) }
            // The kind's check passed, so the URL parses.
            var configuration = RedisConfiguration(url: try! RedisURL(text))
            configuration.pool.size = try reader[Catalog.redisPoolSize]
            configuration.pool.timeout = try reader[Catalog.redisPoolTimeout]
            configuration.socketTimeout = try reader[Catalog.redisSocketTimeout]
            configuration.connectTimeout = try reader[Catalog.redisConnectTimeout]
            return configuration
        } catch {
            throw RedisError(kind: .client, message: error.description)
        }
    }
}
