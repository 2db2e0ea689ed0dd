import TimeUnits
import PoolCore
import Settings

/// The engine's settings, from the environment with the seed's names and defaults.
public struct PostgresConfiguration: Sendable {
    public var url: PostgresURL
    public var pool = PoolConfiguration(
        size: Catalog.poolSize.defaultValue.count!, maxOverflow: Catalog.maxOverflow.defaultValue,
        timeout: Catalog.poolTimeout.defaultValue, recycle: Catalog.poolRecycle.defaultValue, prePing: Catalog.prePing.defaultValue)
    /// Sent as `application_name` unless the URL names one: it is how `pg_stat_activity` tells pools apart.
    public var applicationName = "prefork"
    /// Server-side `statement_timeout` for every statement of the pool's connections; nil leaves the server's.
    public var statementTimeout: Duration?
    /// Prepare each statement once per connection (`DB_PREPARED_STATEMENTS`, true; false when `DB_PGBOUNCER`
    /// is set): PgBouncer in transaction mode may run the next statement on another server connection, which
    /// does not have it.
    public var preparedStatements = true
    /// Single statements outside a transaction share one connection in libpq's pipeline mode, each with its own
    /// sync point (`DB_PIPELINE`, true; false when `DB_PGBOUNCER` is set): PgBouncer before 1.21 does not follow
    /// several transactions queued on one client connection. Transactions and sessions keep a connection of
    /// their own either way.
    public var pipelining = true
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

    /// `DATABASE_URL` and the `DB_*` pool variables (`Catalog`); `applicationName` unless `DB_APPLICATION_NAME` is set.
    /// `DB_PGBOUNCER` turns prepared statements and pipelining off unless `DB_PREPARED_STATEMENTS` and
    /// `DB_PIPELINE` say otherwise.
    /// Errors name the variable, for a one-line message and exit 78.
    public static func fromEnvironment(_ environment: [String: String], applicationName: String = "prefork")
        throws(PostgresError) -> PostgresConfiguration {
        let reader = SettingsReader(environment: environment)
        var configuration: PostgresConfiguration
        do throws(SettingError) {
            guard let urlText = try reader[Catalog.databaseURL] else { throw SettingError("DATABASE_URL is not set", fromFlag: false) }
            if let problem = try EnvironmentContract.poolProblem(of: nil, reader) { throw SettingError(problem, fromFlag: false) }
            // The kind's check passed; libpq's own reading may still refuse it, with its message.
            do { configuration = PostgresConfiguration(url: try PostgresURL(urlText)) } catch {
                throw SettingError(error.message, fromFlag: false)
            }
            configuration.pool.size = try reader[Catalog.poolSize].count!
            configuration.pool.maxOverflow = try reader[Catalog.maxOverflow]
            configuration.pool.timeout = try reader[Catalog.poolTimeout]
            configuration.pool.recycle = try reader[Catalog.poolRecycle]
            configuration.pool.prePing = try reader[Catalog.prePing]
            configuration.statementTimeout = try reader[Catalog.statementTimeout]
            if try reader[Catalog.pgbouncer] {
                configuration.behindPgBouncer = true
                configuration.preparedStatements = false
                configuration.pipelining = false
                configuration.clientCheckInterval = nil
            }
            if let prepared = try reader[Catalog.preparedStatements] { configuration.preparedStatements = prepared }
            if let pipelining = try reader[Catalog.pipeline] { configuration.pipelining = pipelining }
            configuration.applicationName = try reader[Catalog.applicationName] ?? applicationName
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
