import LogFormat
import Logging
import Postgres
import Redis

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

    public static func fromEnvironment(_ environment: [String: String]) throws(SettingsError) -> APISettings {
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
        let reader = EnvironmentReader(environment: environment)
        if let value = try reader.integer("RATE_LIMIT_PER_MINUTE", minimum: 0) { settings.rateLimitPerMinute = value }
        if let value = try reader.integer("AUTH_CACHE_TTL", minimum: 1) {
            settings.authCacheTTL = value
            settings.negativeCacheTTL = min(settings.negativeCacheTTL, value)
        }
        if let value = try reader.integer("MAX_BODY_SIZE", minimum: 1) { settings.maxBodySize = value }
        if let value = try reader.seconds("HEADER_TIMEOUT") { settings.headerTimeout = value }
        if let value = try reader.seconds("BODY_TIMEOUT") { settings.bodyTimeout = value }
        settings.bodyBufferLimit = max(settings.bodyBufferLimit, 4 * settings.maxBodySize)
        if let value = try reader.integer("BODY_BUFFER_LIMIT", minimum: 1) {
            guard value >= settings.maxBodySize else {
                throw SettingsError("BODY_BUFFER_LIMIT: must be at least MAX_BODY_SIZE (\(settings.maxBodySize)), got \(value)")
            }
            settings.bodyBufferLimit = value
        }
        if let value = try reader.integer("AUTH_MISS_CONCURRENCY", minimum: 0) { settings.authMissConcurrency = value }
        if let value = try reader.integer("AUTH_MISS_QUEUE", minimum: 0) { settings.authMissQueue = value }
        if let value = try reader.seconds("GRACEFUL_TIMEOUT") { settings.gracefulTimeout = value }
        if let value = try reader.integer("WORKER_THREADS", minimum: 1) { settings.threads = min(value, 256) }
        if let text = reader.text("LOG_FORMAT") {
            guard let format = LogOutput(rawValue: text.lowercased()) else {
                throw SettingsError("LOG_FORMAT: expected text or json, got '\(text)'")
            }
            settings.logFormat = format
        }
        if let text = reader.text("LOG_LEVEL") {
            guard let level = Logger.Level(rawValue: text.lowercased()) else {
                throw SettingsError("LOG_LEVEL: expected trace, debug, info, notice, warning, error or critical, got '\(text)'")
            }
            settings.logLevel = level
        }
        if let value = try reader.flag("ACCESS_LOG") { settings.accessLog = value }
        return settings
    }
}

/// Typed reads of environment variables; every error names its variable.
struct EnvironmentReader {
    let environment: [String: String]

    func text(_ name: String) -> String? {
        guard let text = environment[name], !text.isEmpty else { return nil }
        return text
    }

    func integer(_ name: String, minimum: Int) throws(SettingsError) -> Int? {
        guard let text = text(name) else { return nil }
        guard let value = Int(text), value >= minimum else {
            throw SettingsError("\(name): expected a whole number ≥ \(minimum), got '\(text)'")
        }
        return value
    }

    func seconds(_ name: String) throws(SettingsError) -> Duration? {
        guard let text = text(name) else { return nil }
        guard let value = Double(text), value.isFinite, value > 0 else {
            throw SettingsError("\(name): expected seconds > 0, got '\(text)'")
        }
        return .milliseconds(Int64((value * 1000).rounded()))
    }

    func flag(_ name: String) throws(SettingsError) -> Bool? {
        guard let text = text(name) else { return nil }
        switch text.lowercased() {
        case "1", "true", "yes", "on": return true
        case "0", "false", "no", "off": return false
        default: throw SettingsError("\(name): expected true or false, got '\(text)'")
        }
    }
}
