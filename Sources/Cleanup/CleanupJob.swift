import Logging
import PreforkPostgres

/// The nightly cleanup: removes notes soft-deleted longer ago than the retention period, and expired tokens.
///
/// Safe when several replicas run it at once: an advisory lock on a fixed key lets one run, the others log
/// "skipped" and exit 0. On a direct connection it is a session-level lock; behind PgBouncer in transaction
/// mode (`DB_PGBOUNCER=1`) a session lock would stay behind on whichever server connection ran the statement,
/// so the lock is transaction-level, held by a transaction of its own kept open for the run. Safe to kill at any moment: rows go in batches, each in its own short
/// transaction with a statement timeout, and each batch adds its count to the run's `job_runs` row in the same
/// transaction, so what the table says was deleted was deleted.
struct CleanupJob {
    enum Outcome: Equatable {
        case succeeded(notes: Int, tokens: Int)
        case interrupted(notes: Int, tokens: Int)
        case skipped(String)
    }

    /// `hashtext('prefork cleanup')`-like fixed key, shared by every replica.
    static let lockKey: Int64 = 0x636c_6561_6e75_7021  // "cleanup!"

    let engine: PostgresEngine
    let settings: CleanupSettings
    let logger: Logger
    /// Set by SIGTERM: the current batch finishes, then the run stops.
    let stopRequested: StopFlag

    /// - Parameter ifDue: skip when a successful run finished less than this ago.
    func run(ifDue: Duration?) async throws -> Outcome {
        if settings.postgres.behindPgBouncer { return try await runUnderTransactionLock(ifDue: ifDue) }
        return try await engine.withSession { session in
            let locked = try await session.query("SELECT pg_try_advisory_lock($1) AS locked", [Self.lockKey]).rows[0]["locked"].bool
            guard locked == true else {
                return .skipped("another cleanup holds the lock")
            }
            do {
                let outcome = try await runLocked(session, ifDue: ifDue)
                _ = try? await session.query("SELECT pg_advisory_unlock($1)", [Self.lockKey])
                return outcome
            } catch {
                _ = try? await session.query("SELECT pg_advisory_unlock($1)", [Self.lockKey])
                throw error
            }
        }
    }

    /// Behind PgBouncer: one connection holds `BEGIN; pg_try_advisory_xact_lock` for the whole run (PgBouncer
    /// keeps a server connection with its client while a transaction is open), a second one does the work, and
    /// the lock goes with the `COMMIT`, or with the connection if the job dies.
    private func runUnderTransactionLock(ifDue: Duration?) async throws -> Outcome {
        try await engine.withSession { holder in
            _ = try await holder.query("BEGIN")
            do {
                let locked = try await holder.query("SELECT pg_try_advisory_xact_lock($1) AS locked", [Self.lockKey])
                    .rows[0]["locked"].bool
                guard locked == true else {
                    _ = try? await holder.query("ROLLBACK")
                    return .skipped("another cleanup holds the lock")
                }
                let outcome = try await engine.withSession { session in try await runLocked(session, ifDue: ifDue) }
                _ = try await holder.query("COMMIT")
                return outcome
            } catch {
                _ = try? await holder.query("ROLLBACK")
                throw error
            }
        }
    }

    private func runLocked(_ session: PostgresSession, ifDue: Duration?) async throws -> Outcome {
        if let ifDue {
            let seconds = ifDue.components.seconds
            let recent = try await session.query("""
                SELECT extract(epoch FROM now() - max(finished_at))::bigint AS ago FROM job_runs
                WHERE job = 'cleanup' AND outcome = 'succeeded'
                """).rows.first?["ago"].int
            if let recent, recent < seconds {
                return .skipped("the last successful run finished \(recent) s ago (--if-due \(seconds) s)")
            }
        }
        let run = try await session.query("INSERT INTO job_runs (job) VALUES ('cleanup') RETURNING id").rows[0]["id"].int ?? 0
        var notes = 0
        var tokens = 0
        do {
            notes = try await deleteInBatches(session, run: run, column: "notes_deleted", sql: """
                DELETE FROM notes WHERE id IN (
                    SELECT id FROM notes WHERE deleted_at < now() - make_interval(days => $1)
                    ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED)
                """, parameters: [settings.retentionDays, settings.batchSize])
            if !stopRequested.isSet {
                tokens = try await deleteInBatches(session, run: run, column: "tokens_deleted", sql: """
                    DELETE FROM api_tokens WHERE id IN (
                        SELECT id FROM api_tokens WHERE expires_at < now() ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED)
                    """, parameters: [settings.batchSize])
            }
        } catch {
            _ = try? await session.query("ROLLBACK")
            _ = try? await session.query(
                "UPDATE job_runs SET finished_at = now(), outcome = 'failed', error = $2 WHERE id = $1", [run, "\(error)"])
            throw error
        }
        let interrupted = stopRequested.isSet
        _ = try await session.query("UPDATE job_runs SET finished_at = now(), outcome = $2 WHERE id = $1",
                                    [run, interrupted ? "interrupted" : "succeeded"])
        return interrupted ? .interrupted(notes: notes, tokens: tokens) : .succeeded(notes: notes, tokens: tokens)
    }

    /// Batches until one comes back short, or SIGTERM asks to stop; returns the rows deleted.
    private func deleteInBatches(_ session: PostgresSession, run: Int64, column: String, sql: String,
                                 parameters: [any PostgresBindable]) async throws -> Int {
        var total = 0
        let milliseconds = settings.statementTimeout.components.seconds * 1000
        while !stopRequested.isSet {
            _ = try await session.query("BEGIN")
            _ = try await session.query("SET LOCAL statement_timeout = \(milliseconds)")
            let deleted = try await session.query(sql, parameters).affectedRows
            _ = try await session.query("UPDATE job_runs SET \(column) = \(column) + $2 WHERE id = $1", [run, deleted])
            _ = try await session.query("COMMIT")
            total += deleted
            if deleted > 0 { logger.debug("batch", metadata: ["table": "\(column)", "rows": "\(deleted)"]) }
            if deleted < settings.batchSize { break }
        }
        return total
    }
}
