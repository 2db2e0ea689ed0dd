import Reactor
import TimeUnits
import ConnectionPool
import CoreMetrics
import PoolCore

/// The libpq side of the pool: how to open, check, reset and close a Postgres connection.
package struct PostgresDriver: PoolDriver {
    package let configuration: PostgresConfiguration

    package func connect() throws -> PostgresConnection {
        let connection = try PostgresConnection.connect(url: configuration.url, defaults: configuration.connectionDefaults)
        connection.preparesStatements = configuration.preparedStatements
        // A SET, not a startup option: a server before 14 would refuse the unknown option, and the connection.
        if let interval = configuration.clientCheckInterval, connection.serverVersion >= 140_000 {
            _ = try connection.execute("SET client_connection_check_interval = \(max(1, interval.inMilliseconds))")
        }
        return connection
    }
    package func ping(_ connection: PostgresConnection) -> Bool { connection.ping() }
    package func reset(_ connection: PostgresConnection) -> Bool { connection.resetForReuse() }
    package func needsReset(_ connection: PostgresConnection) -> Bool { connection.needsReset }
    package func close(_ connection: PostgresConnection) { connection.close() }
    package func cancel(_ connection: PostgresConnection) { connection.cancelRunningStatement() }
}

/// The database engine every worker and the cleanup job use: SQLAlchemy's QueuePool contract over libpq,
/// with an async API; every libpq call runs on the pool's own threads.
public final class PostgresEngine: Sendable {
    package let pool: ConnectionPool<PostgresDriver>
    public let configuration: PostgresConfiguration
    private let multiplexer: Multiplexer<PostgresDriver, PostgresLane>?

    /// - Parameter metrics: where the pool's metrics go (the process-wide `MetricsSystem` by default).
    public init(_ configuration: PostgresConfiguration, metrics: (any MetricsFactory)? = nil) {
        self.configuration = configuration
        self.pool = ConnectionPool(name: configuration.applicationName, configuration: configuration.pool,
                                   driver: PostgresDriver(configuration: configuration), metrics: metrics)
        let pool = self.pool
        multiplexer = configuration.pipelining ? Multiplexer(pool: pool) { try PostgresLane($0.connection, pool: pool) } : nil
    }

    /// One statement, in its own implicit transaction: with pipelining (`DB_PIPELINE`), on the connection the
    /// statements of other callers share (`PostgresLane`), else on a connection of its own.
    public func query(_ sql: String, _ parameters: [any PostgresBindable] = []) async throws -> PostgresResult {
        if let multiplexer {
            let texts = parameters.map(\.postgresText)
            return try await withCheckedThrowingContinuation { continuation in
                let call = PostgresLane.Call(sql: sql, parameters: texts, continuation: continuation)
                if Reactor.shared.inReactor {
                    multiplexer.submit(call)
                } else {
                    Reactor.shared.execute { multiplexer.submit(call) }
                }
            }
        }
        return try await withSession { try await $0.query(sql, parameters) }
    }

    /// A connection for several statements; it goes back (rolled back if a transaction was left open) after.
    public func withSession<T: Sendable>(_ body: (PostgresSession) async throws -> T) async throws -> T {
        try await pool.withConnection { lease in
            try await body(PostgresSession(lease: lease, pool: pool))
        }
    }

    /// `BEGIN`, the body, `COMMIT`; `ROLLBACK` if the body throws. `statementTimeout` applies to this
    /// transaction only (`SET LOCAL`, which also works behind PgBouncer in transaction mode).
    public func transaction<T: Sendable>(statementTimeout: Duration? = nil,
                                         _ body: (PostgresSession) async throws -> T) async throws -> T {
        try await withSession { session in
            _ = try await session.query("BEGIN")
            do {
                if let statementTimeout {
                    let ms = statementTimeout.inMilliseconds
                    _ = try await session.query("SET LOCAL statement_timeout = \(ms)")
                }
                let result = try await body(session)
                _ = try await session.query("COMMIT")
                return result
            } catch {
                _ = try? await session.query("ROLLBACK")
                throw error
            }
        }
    }

    /// Closes every connection (leased ones when they come back) and refuses new checkouts; true when all
    /// were closed within `timeout`. The seed's shutdown step: dispose the engine before exit. A statement still
    /// running on a leased connection is cancelled on the server (`PQcancel`): nothing it started outlives
    /// the process, and a statement cut this way is rolled back, not committed later.
    @discardableResult
    public func dispose(timeout: Duration = .seconds(10)) async -> Bool {
        await pool.dispose(timeout: timeout)
    }

    public var status: PoolStatus { pool.status }
}

/// A leased connection, valid inside `withSession` or `transaction`.
public struct PostgresSession: Sendable {
    let lease: ConnectionPool<PostgresDriver>.Lease
    let pool: ConnectionPool<PostgresDriver>

    public func query(_ sql: String, _ parameters: [any PostgresBindable] = []) async throws -> PostgresResult {
        let connection = lease.connection
        let texts = parameters.map(\.postgresText)
        do {
            guard let statement = connection.preparedStatement(for: sql) else {
                try connection.send(sql, texts)
                return try await reply(connection)
            }
            if !statement.isPrepared {
                try connection.sendPrepare(statement.name, sql, parameterCount: texts.count)
                _ = try await reply(connection)
                connection.markPrepared(sql, name: statement.name)
            }
            do {
                try connection.sendPrepared(statement.name, texts)
                return try await reply(connection)
            } catch let error as PostgresError where error.sqlState == "0A000" || error.sqlState == "26000" {
                // "cached plan must not change result type" after a schema change, or a statement the session
                // does not have: forget it and run the statement unnamed, as asyncpg re-prepares.
                connection.forgetPrepared(sql)
                try connection.send(sql, texts)
                return try await reply(connection)
            }
        } catch let error as PostgresError {
            if error.isDisconnect { pool.disconnected() }
            throw error
        }
    }

    /// The result of what was just sent: sent from the caller's thread (it never blocks), read by the reactor's
    /// thread as it arrives.
    private func reply(_ connection: PostgresConnection) async throws -> PostgresResult {
        pool.recordRoundTrip(statements: 1)
        if connection.flushPending {
            return try await pool.runBlocking { try connection.receive() }
        }
        return try await withCheckedThrowingContinuation { continuation in
            Reactor.shared.whenReadable(connection.socket) { timedOut in
                // Without a deadline, only a socket that could not be watched (closed by libpq, or refused by epoll:
                // ENOMEM, max_user_watches) ends here: fail the statement rather than wait for ever.
                if timedOut {
                    continuation.resume(throwing: PostgresError(
                        kind: .connection, message: "cannot wait for the reply: the socket cannot be watched", isDisconnect: true))
                    return true
                }
                switch connection.consume() {
                case .pending: return false
                case .finished(let outcome):
                    continuation.resume(with: outcome.mapError { $0 as any Error })
                    return true
                }
            }
        }
    }

    /// The backend serving this session, as `pg_stat_activity.pid` shows it.
    public var backendPID: Int32 { lease.connection.backendPID }
}
