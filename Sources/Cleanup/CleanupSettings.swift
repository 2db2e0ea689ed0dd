import LogFormat
import Postgres
import Settings

/// A setting that is missing or invalid: one line naming the variable, exit 78.
struct CleanupSettingsError: Error, CustomStringConvertible {
    var description: String
}

/// The job's settings: the Postgres engine from the environment (the supervisor sets `DB_POOL_SIZE` and
/// `DB_MAX_OVERFLOW` from `CLEANUP_DB_POOL_SIZE` and `CLEANUP_DB_MAX_OVERFLOW`), and what to delete.
struct CleanupSettings {
    var postgres: PostgresConfiguration
    /// Notes soft-deleted longer ago than this are removed (`CLEANUP_RETENTION_DAYS`, 30).
    var retentionDays = 30
    /// Rows per batch, each in its own short transaction (`CLEANUP_BATCH_SIZE`, 1000).
    var batchSize = 1000
    /// Each batch's `statement_timeout` (`CLEANUP_STATEMENT_TIMEOUT`, 30 s): a batch never holds locks for long.
    var statementTimeout: Duration = .seconds(30)
    /// `LOG_LEVEL` and `LOG_FORMAT`, read as the supervisor and the worker read them.
    var logLevel: LogLevel = .info
    var logFormat: LogOutput = .text
    /// What it has after SIGTERM before the SIGKILL (`GRACEFUL_TIMEOUT`, which the supervisor sets): a batch
    /// still running a second before that is cancelled in Postgres.
    var gracefulTimeout: Duration = .seconds(8)

    /// When a batch still running after SIGTERM is cancelled: a second before the SIGKILL (half the time when short).
    var cancelAfter: Duration { gracefulTimeout > .seconds(2) ? gracefulTimeout - .seconds(1) : gracefulTimeout / 2 }

    static func fromEnvironment(_ environment: [String: String]) throws(CleanupSettingsError) -> CleanupSettings {
        if let problem = EnvironmentContract.problem(of: .cleanup, in: environment) {
            throw CleanupSettingsError(description: problem)
        }
        var postgres: PostgresConfiguration
        do { postgres = try PostgresConfiguration.fromEnvironment(environment) } catch {
            throw CleanupSettingsError(description: error.message)
        }
        if environment["DB_APPLICATION_NAME"]?.isEmpty ?? true { postgres.applicationName = "cleanup" }
        var settings = CleanupSettings(postgres: postgres)
        let reader = SettingsReader(environment: environment)
        do throws(SettingError) {
            settings.retentionDays = try reader.count(Catalog.retentionDays) ?? 30
            settings.batchSize = try reader.count(Catalog.batchSize) ?? 1000
            settings.statementTimeout = try reader.duration(Catalog.cleanupStatementTimeout) ?? .seconds(30)
            settings.logLevel = try reader.logLevel()
            settings.logFormat = try reader.choice(Catalog.logFormat) == "json" ? .json : .text
            settings.gracefulTimeout = try reader.duration(Catalog.gracefulTimeout) ?? .seconds(8)
        } catch {
            throw CleanupSettingsError(description: error.description)
        }
        return settings
    }
}
