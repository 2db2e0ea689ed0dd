import TimeUnits
import PoolCore
import Settings

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
    /// `client_connection_check_interval` of every connection (Postgres 14 and later; not behind PgBouncer, whose
    /// server connections outlive their clients): a backend whose worker is gone (a fast stop, a SIGKILL) notices
    /// within this while its statement runs, and aborts it, so it is rolled back rather than committed later.
    public var clientCheckInterval: Duration? = .seconds(1)

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
        let reader = SettingsReader(environment: environment)
        do throws(SettingError) {
            guard let size = try reader.countOrAuto(Catalog.poolSize) else {
                throw SettingError("DB_POOL_SIZE: auto is worked out by the supervisor from the connection budget; "
                    + "set a number to run alone", fromFlag: false)
            }
            configuration.pool.size = size
            configuration.pool.maxOverflow = try reader.count(Catalog.maxOverflow) ?? 10
            configuration.pool.timeout = try reader.duration(Catalog.poolTimeout) ?? .seconds(30)
            configuration.pool.recycle = try reader.duration(Catalog.poolRecycle)
            configuration.pool.prePing = try reader.boolean(Catalog.prePing) ?? true
            configuration.statementTimeout = try reader.duration(Catalog.statementTimeout)
            if try reader.isOn(Catalog.pgbouncer) {
                configuration.behindPgBouncer = true
                configuration.preparedStatements = false
                configuration.clientCheckInterval = nil
                if configuration.statementTimeout != nil {
                    throw SettingError("DB_STATEMENT_TIMEOUT: PgBouncer refuses it as a startup option (DB_PGBOUNCER=1); set it "
                        + "on the role instead: ALTER ROLE ... SET statement_timeout", fromFlag: false)
                }
            }
            if let prepared = try reader.boolean(Catalog.preparedStatements) { configuration.preparedStatements = prepared }
            if let name = try reader.text(Catalog.applicationName) { configuration.applicationName = name }
        } catch {
            throw PostgresError(kind: .client, message: error.description)
        }
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
            let milliseconds = statementTimeout.inMilliseconds
            defaults.append(("options", "-c statement_timeout=\(milliseconds)"))
        }
        return defaults
    }
}
