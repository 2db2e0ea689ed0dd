import Postgres

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

    static func fromEnvironment(_ environment: [String: String]) throws(CleanupSettingsError) -> CleanupSettings {
        var postgres: PostgresConfiguration
        do { postgres = try PostgresConfiguration.fromEnvironment(environment) } catch {
            throw CleanupSettingsError(description: error.message)
        }
        if environment["DB_APPLICATION_NAME"]?.isEmpty ?? true { postgres.applicationName = "cleanup" }
        // One session does everything (the advisory lock is held by it), so a pool of 1 is enough; behind
        // PgBouncer a second connection holds the lock's transaction.
        if postgres.behindPgBouncer, postgres.pool.size + postgres.pool.maxOverflow < 2 {
            throw CleanupSettingsError(description: "DB_POOL_SIZE + DB_MAX_OVERFLOW: behind PgBouncer (DB_PGBOUNCER=1) the "
                + "cleanup needs 2 connections, one to hold its lock's transaction; got \(postgres.pool.size + postgres.pool.maxOverflow)")
        }
        var settings = CleanupSettings(postgres: postgres)
        func integer(_ name: String, _ range: ClosedRange<Int>) throws(CleanupSettingsError) -> Int? {
            guard let text = environment[name], !text.isEmpty else { return nil }
            guard let value = Int(text), range.contains(value) else {
                throw CleanupSettingsError(description: "\(name): expected a whole number from \(range.lowerBound) to \(range.upperBound), got '\(text)'")
            }
            return value
        }
        if let days = try integer("CLEANUP_RETENTION_DAYS", 0...36500) { settings.retentionDays = days }
        if let size = try integer("CLEANUP_BATCH_SIZE", 1...1_000_000) { settings.batchSize = size }
        if let seconds = try integer("CLEANUP_STATEMENT_TIMEOUT", 1...86400) { settings.statementTimeout = .seconds(seconds) }
        return settings
    }
}
