import ConnectionURL
import PoolCore
import Settings

/// The Redis client's settings, from the environment with the seed's names and defaults.
public struct RedisConfiguration: Sendable {
    public var url: RedisURL
    /// `REDIS_POOL_SIZE` (5) connections, no overflow; a checkout waits up to `REDIS_POOL_TIMEOUT` (5 s) for one.
    /// Waiting, not failing at once, is the point: redis-py's pool raises when all are busy, and fails half of
    /// the requests at 64 concurrent connections with the seed's 5.
    public var pool: PoolConfiguration
    /// Read and write timeout of every call (`REDIS_SOCKET_TIMEOUT`, 2 s): a hung server fails a call, not a request forever.
    public var socketTimeout: Duration = .seconds(2)
    /// `REDIS_CONNECT_TIMEOUT` (2 s).
    public var connectTimeout: Duration = .seconds(2)
    public var name = "redis"

    public init(url: RedisURL) {
        self.url = url
        var pool = PoolConfiguration()
        pool.size = 5
        pool.maxOverflow = 0
        pool.timeout = .seconds(5)
        // Redis connections do not age on the server's side the way managed Postgres ones do.
        pool.recycle = nil
        self.pool = pool
    }

    /// Errors name the variable, for a one-line message and exit 78.
    public static func fromEnvironment(_ environment: [String: String]) throws(RedisError) -> RedisConfiguration {
        guard let text = environment["REDIS_URL"], !text.isEmpty else {
            throw RedisError(kind: .client, message: "REDIS_URL is not set")
        }
        let url: RedisURL
        do { url = try RedisURL(text) } catch { throw RedisError(kind: .client, message: error.description) }
        var configuration = RedisConfiguration(url: url)
        let reader = SettingsReader(environment: environment)
        do throws(SettingError) {
            configuration.pool.size = try reader.count(Catalog.redisPoolSize) ?? 5
            configuration.pool.timeout = try reader.duration(Catalog.redisPoolTimeout) ?? .seconds(5)
            configuration.socketTimeout = try reader.duration(Catalog.redisSocketTimeout) ?? .seconds(2)
            configuration.connectTimeout = try reader.duration(Catalog.redisConnectTimeout) ?? .seconds(2)
        } catch {
            throw RedisError(kind: .client, message: error.description)
        }
        return configuration
    }
}
