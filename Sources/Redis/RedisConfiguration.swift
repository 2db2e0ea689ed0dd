import PoolCore

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
        var configuration = RedisConfiguration(url: try RedisURL(text))
        if let text = environment["REDIS_POOL_SIZE"], !text.isEmpty {
            guard let size = Int(text), size >= 1 else {
                throw RedisError(kind: .client, message: "REDIS_POOL_SIZE: expected a whole number ≥ 1, got '\(text)'")
            }
            configuration.pool.size = size
        }
        func seconds(_ name: String) throws(RedisError) -> Duration? {
            guard let text = environment[name], !text.isEmpty else { return nil }
            guard let value = Double(text), value.isFinite, value > 0 else {
                throw RedisError(kind: .client, message: "\(name): expected seconds > 0, got '\(text)'")
            }
            return .milliseconds(Int64((value * 1000).rounded()))
        }
        if let timeout = try seconds("REDIS_POOL_TIMEOUT") { configuration.pool.timeout = timeout }
        if let timeout = try seconds("REDIS_SOCKET_TIMEOUT") { configuration.socketTimeout = timeout }
        if let timeout = try seconds("REDIS_CONNECT_TIMEOUT") { configuration.connectTimeout = timeout }
        return configuration
    }
}
