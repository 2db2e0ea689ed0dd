import PoolCore

/// The engine's settings, from the environment with the seed's names and defaults.
public struct PostgresConfiguration: Sendable {
    public var url: PostgresURL
    public var pool = PoolConfiguration()
    /// Sent as `application_name` unless the URL names one: it is how `pg_stat_activity` tells pools apart.
    public var applicationName = "prefork"
    /// Server-side `statement_timeout` for every statement of the pool's connections; nil leaves the server's.
    public var statementTimeout: Duration?
    /// Prepare each statement once per connection (`DB_PREPARED_STATEMENTS`, true; false when `DB_PGBOUNCER`
    /// is set): PgBouncer in transaction mode may run the next statement on another server connection, which
    /// does not have it.
    public var preparedStatements = true
    /// `DB_PGBOUNCER`: the URL points at PgBouncer in transaction mode. A server connection is then ours for one
    /// transaction only, so nothing may live in a session: no prepared statements, no startup `options`, no
    /// session-level advisory locks (the cleanup takes its lock in a transaction instead).
    public var behindPgBouncer = false
    /// libpq's `connect_timeout`: a dead host fails a checkout within this instead of the kernel's minutes.
    public var connectTimeout: Duration = .seconds(10)

    public init(url: PostgresURL) {
        self.url = url
    }

    /// `DATABASE_URL`, `DB_POOL_SIZE` (10), `DB_MAX_OVERFLOW` (10), `DB_POOL_TIMEOUT` (30 s), `DB_POOL_RECYCLE`
    /// (3600 s, -1 for never), `DB_POOL_PRE_PING` (true), `DB_STATEMENT_TIMEOUT` (none), `DB_APPLICATION_NAME`,
    /// `DB_PREPARED_STATEMENTS` (true), `DB_PGBOUNCER` (false; true turns prepared statements off).
    /// Errors name the variable, for a one-line message and exit 78.
    public static func fromEnvironment(_ environment: [String: String]) throws(PostgresError) -> PostgresConfiguration {
        guard let urlText = environment["DATABASE_URL"], !urlText.isEmpty else {
            throw PostgresError(kind: .client, message: "DATABASE_URL is not set")
        }
        var configuration = PostgresConfiguration(url: try PostgresURL(urlText))
        func integer(_ name: String, minimum: Int) throws(PostgresError) -> Int? {
            guard let text = environment[name], !text.isEmpty else { return nil }
            guard let value = Int(text), value >= minimum else {
                throw PostgresError(kind: .client, message: "\(name): expected a whole number ≥ \(minimum), got '\(text)'")
            }
            return value
        }
        func seconds(_ name: String) throws(PostgresError) -> Duration? {
            guard let text = environment[name], !text.isEmpty else { return nil }
            guard let value = Double(text), value.isFinite, value > 0 else {
                throw PostgresError(kind: .client, message: "\(name): expected seconds > 0, got '\(text)'")
            }
            return .milliseconds(Int64((value * 1000).rounded()))
        }
        if let size = try integer("DB_POOL_SIZE", minimum: 0) { configuration.pool.size = size }
        if let overflow = try integer("DB_MAX_OVERFLOW", minimum: 0) { configuration.pool.maxOverflow = overflow }
        if let timeout = try seconds("DB_POOL_TIMEOUT") { configuration.pool.timeout = timeout }
        if let text = environment["DB_POOL_RECYCLE"], !text.isEmpty {
            if text == "-1" {
                configuration.pool.recycle = nil
            } else {
                guard let value = Int(text), value > 0 else {
                    throw PostgresError(kind: .client, message: "DB_POOL_RECYCLE: expected seconds > 0 or -1 (never), got '\(text)'")
                }
                configuration.pool.recycle = .seconds(value)
            }
        }
        if let text = environment["DB_POOL_PRE_PING"], !text.isEmpty {
            switch text.lowercased() {
            case "true", "1", "yes", "on": configuration.pool.prePing = true
            case "false", "0", "no", "off": configuration.pool.prePing = false
            default: throw PostgresError(kind: .client, message: "DB_POOL_PRE_PING: expected true or false, got '\(text)'")
            }
        }
        configuration.statementTimeout = try seconds("DB_STATEMENT_TIMEOUT")
        func flag(_ name: String) throws(PostgresError) -> Bool? {
            guard let text = environment[name], !text.isEmpty else { return nil }
            switch text.lowercased() {
            case "true", "1", "yes", "on": return true
            case "false", "0", "no", "off": return false
            default: throw PostgresError(kind: .client, message: "\(name): expected true or false, got '\(text)'")
            }
        }
        if try flag("DB_PGBOUNCER") == true {
            configuration.behindPgBouncer = true
            configuration.preparedStatements = false
            if configuration.statementTimeout != nil {
                throw PostgresError(kind: .client, message: "DB_STATEMENT_TIMEOUT: PgBouncer refuses it as a startup option "
                    + "(DB_PGBOUNCER=1); set it on the role instead: ALTER ROLE ... SET statement_timeout")
            }
        }
        if let prepared = try flag("DB_PREPARED_STATEMENTS") { configuration.preparedStatements = prepared }
        if let name = environment["DB_APPLICATION_NAME"], !name.isEmpty { configuration.applicationName = name }
        do { try configuration.pool.validate() } catch {
            throw PostgresError(kind: .client, message: "DB_POOL_SIZE/DB_MAX_OVERFLOW: \(error)")
        }
        return configuration
    }

    /// libpq parameters placed before the URL, so the URL's own parameters win.
    var connectionDefaults: [(String, String)] {
        var defaults = [
            ("application_name", applicationName),
            ("connect_timeout", String(max(1, connectTimeout.components.seconds))),
        ]
        if let statementTimeout {
            let milliseconds = statementTimeout.components.seconds * 1000 + statementTimeout.components.attoseconds / 1_000_000_000_000_000
            defaults.append(("options", "-c statement_timeout=\(milliseconds)"))
        }
        return defaults
    }
}
