/// SQLAlchemy's QueuePool settings; validated once. Their defaults are the settings' (`DB_POOL_SIZE` and the
/// others in `Catalog`), filled in by the Postgres and Redis configurations.
public struct PoolConfiguration: Sendable, Equatable {
    /// Persistent connections, opened lazily: a ceiling, not a pre-allocation (`DB_POOL_SIZE`).
    public var size: Int
    /// Extra connections under burst, closed as soon as they come back to a full pool (`DB_MAX_OVERFLOW`).
    public var maxOverflow: Int
    /// How long a checkout waits for a connection before it fails (`DB_POOL_TIMEOUT`).
    public var timeout: Duration
    /// A connection older than this is replaced at checkout; nil never (`DB_POOL_RECYCLE`). Managed Postgres
    /// providers cut long-lived connections; replacing them first avoids an error on a stale one.
    public var recycle: Duration?
    /// Check a connection before handing it out (`DB_POOL_PRE_PING`).
    public var prePing: Bool
    /// No pre-ping round trip for a connection used successfully this recently: under load pre-ping then
    /// costs nothing, and a connection that died while idle is still caught. 500 ms, as HikariCP.
    public var pingBypassWindow: Duration = .milliseconds(500)

    public init(size: Int, maxOverflow: Int, timeout: Duration, recycle: Duration?, prePing: Bool) {
        self.size = size
        self.maxOverflow = maxOverflow
        self.timeout = timeout
        self.recycle = recycle
        self.prePing = prePing
    }

    /// The hard limit: connections open or opening never exceed it, whatever the load.
    public var maximum: Int { size + maxOverflow }

    public func validate() throws(PoolConfigurationError) {
        guard size >= 0 else { throw PoolConfigurationError("pool size must not be negative, got \(size)") }
        guard maxOverflow >= 0 else { throw PoolConfigurationError("max overflow must not be negative, got \(maxOverflow)") }
        guard maximum >= 1 else { throw PoolConfigurationError("pool size + max overflow must be at least 1") }
        guard timeout > .zero else { throw PoolConfigurationError("pool timeout must be positive") }
        if let recycle, recycle <= .zero { throw PoolConfigurationError("pool recycle must be positive (or -1 for never)") }
    }
}

public struct PoolConfigurationError: Error, Equatable, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
