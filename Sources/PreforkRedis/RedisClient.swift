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

/// The worker's Redis: the same pool as Postgres (waits up to the pool timeout, never fails at once), and its connections
/// shared by every concurrent caller (`RedisLane`): the commands of many requests go out
/// in one write. Blocking commands (`BLPOP`, `SUBSCRIBE`) would hold up every other caller: this client is not
/// for them. hiredis' blocking calls (connect, ping) run on the pool's own threads, never on an event loop.
public final class RedisClient: Sendable {
    package let pool: ConnectionPool<RedisDriver>
    public let configuration: RedisConfiguration
    private let multiplexer: Multiplexer<RedisDriver, RedisLane>

    public init(_ configuration: RedisConfiguration, metrics: (any MetricsFactory)? = nil) {
        self.configuration = configuration
        self.pool = ConnectionPool(name: configuration.name, configuration: configuration.pool,
                                   driver: RedisDriver(configuration: configuration), metrics: metrics)
        multiplexer = Multiplexer(pool: pool, replyTimeout: configuration.socketTimeout) { RedisLane($0.connection) }
    }

    /// Several commands in one round trip, shared with other callers' commands of the same moment; error replies
    /// come back as `.error` values in their place, and fail nothing else. A lost connection fails the calls in
    /// flight on it with `RedisError` (kind `.io`); the next call gets a new connection.
    public func pipeline(_ commands: [[String]]) async throws -> [RedisValue] {
        guard !commands.isEmpty else { return [] }
        return try await withCheckedThrowingContinuation { continuation in
            let call = RedisLane.Call(commands: commands, continuation: continuation)
            if Reactor.shared.inReactor {
                multiplexer.submit(call)
            } else {
                Reactor.shared.execute { [multiplexer] in multiplexer.submit(call) }
            }
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
