import LogFormat
import PreforkPostgres
import Settings
import WorkerRuntime

/// The job's settings: the Postgres engine from the environment (the supervisor sets `DB_POOL_SIZE` and
/// `DB_MAX_OVERFLOW` from `CLEANUP_DB_POOL_SIZE` and `CLEANUP_DB_MAX_OVERFLOW`), and what to delete.
struct CleanupSettings {
    var postgres: PostgresConfiguration
    /// Notes soft-deleted longer ago than this are removed (`CLEANUP_RETENTION_DAYS`).
    var retentionDays = Catalog.retentionDays.defaultValue
    /// Rows per batch, each in its own short transaction (`CLEANUP_BATCH_SIZE`).
    var batchSize = Catalog.batchSize.defaultValue
    /// Each batch's `statement_timeout` (`CLEANUP_STATEMENT_TIMEOUT`): a batch never holds locks for long.
    var statementTimeout = Catalog.cleanupStatementTimeout.defaultValue
    /// `LOG_LEVEL` and `LOG_FORMAT`, read as the supervisor and the worker read them.
    var logLevel = Catalog.logLevel.defaultValue
    var logFormat = Catalog.logFormat.defaultValue
    /// What it has after SIGTERM before the SIGKILL (`GRACEFUL_TIMEOUT`, which the supervisor sets): a batch
    /// still running a second before that is cancelled in Postgres.
    var gracefulTimeout = Catalog.gracefulTimeout.defaultValue

    /// When a batch still running after SIGTERM is cancelled, and how long disposing may take then (`StopGrace`).
    var stopGrace: StopGrace { StopGrace(gracefulTimeout) }

    static func read(flags: [String: String], environment: [String: String]) throws(SettingError) -> CleanupSettings {
        if let problem = EnvironmentContract.problem(of: .cleanup, in: environment) {
            throw SettingError(problem)
        }
        let postgres: PostgresConfiguration
        do { postgres = try PostgresConfiguration.fromEnvironment(environment, applicationName: "cleanup") } catch {
            throw SettingError(error.message)
        }
        var settings = CleanupSettings(postgres: postgres)
        let reader = SettingsReader(flags: flags, environment: environment)
        settings.retentionDays = try reader[Catalog.retentionDays]
        settings.batchSize = try reader[Catalog.batchSize]
        settings.statementTimeout = try reader[Catalog.cleanupStatementTimeout]
        settings.logLevel = try reader[Catalog.logLevel]
        settings.logFormat = try reader[Catalog.logFormat]
        settings.gracefulTimeout = try reader[Catalog.gracefulTimeout]
        return settings
    }
}
