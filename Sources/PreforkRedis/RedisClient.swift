import Reactor
import ConnectionPool
import CoreMetrics
import PoolCore

/// The hiredis side of the pool: how to open, check and close a Redis connection.
package struct RedisDriver: PoolDriver {
    package let configuration: RedisConfiguration

    package func connect() throws -> RedisConnection { try RedisConnection.connect(configuration) }
    package func ping(_ connection: RedisConnection) -> Bool { connection.ping() }
    package func reset(_ connection: RedisConnection) -> Bool { !connection.isBroken }
    /// Nothing to reset: a finished pipeline leaves the connection clean, a broken one is checked in unhealthy.
    package func needsReset(_ connection: RedisConnection) -> Bool { false }
    package func close(_ connection: RedisConnection) { connection.close() }
}

/// The worker's Redis: the same pool as Postgres (waits up to the pool timeout, never fails at once), every
/// hiredis call on the pool's own threads, never on an event loop.
public final class RedisClient: Sendable {
    package let pool: ConnectionPool<RedisDriver>
    public let configuration: RedisConfiguration

    public init(_ configuration: RedisConfiguration, metrics: (any MetricsFactory)? = nil) {
        self.configuration = configuration
        self.pool = ConnectionPool(name: configuration.name, configuration: configuration.pool,
                                   driver: RedisDriver(configuration: configuration), metrics: metrics)
    }

    /// Several commands in one round trip; error replies come back as `.error` values in their place.
    public func pipeline(_ commands: [[String]]) async throws -> [RedisValue] {
        let lease = try await pool.checkout()
        let connection = lease.connection
        do {
            // Written from here; the replies are read by the reactor's thread as they arrive.
            try connection.send(commands)
            let replies: [RedisValue] = try await withCheckedThrowingContinuation { continuation in
                Reactor.shared.whenReadable(connection.fileDescriptor, timeout: configuration.socketTimeout) { timedOut in
                    if timedOut {
                        continuation.resume(throwing: connection.timedOut())
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
            pool.checkin(lease)
            return replies
        } catch {
            // A broken context is closed, never handed to the next holder.
            pool.checkin(lease, healthy: !connection.isBroken)
            throw error
        }
    }

    /// One command; an error reply is thrown as `RedisError.server`.
    public func command(_ arguments: String...) async throws -> RedisValue {
        let reply = try await pipeline([arguments])[0]
        if case .error(let message) = reply { throw RedisError(kind: .server, message: message) }
        return reply
    }

    /// Closes every connection (leased ones when they come back); true when all closed within `timeout`.
    @discardableResult
    public func close(timeout: Duration = .seconds(5)) async -> Bool {
        await pool.dispose(timeout: timeout)
    }

    public var status: PoolStatus { pool.status }
}
