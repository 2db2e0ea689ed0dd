import API
import ConnectionPool
import Synchronization
import Glibc
import Logging
import NIOConcurrencyHelpers
import NIOCore
import WorkerRuntime

/// Boot, serve, drain, dispose: the order the seed asks for, and the sd_notify messages that tell the
/// supervisor (or systemd) where the worker is.
final class WorkerLifecycle: Sendable {
    private enum Phase {
        case booting
        case serving(HTTPServer)
        case stopping
    }

    private let settings: APISettings
    private let logger: Logger
    private let group: any EventLoopGroup
    private let target: ListenTarget
    private let application: Application
    private let notifier = Notifier()
    private let phase = NIOLockedValueBox(Phase.booting)

    init(settings: APISettings, logger: Logger, group: any EventLoopGroup, target: ListenTarget) {
        self.settings = settings
        self.logger = logger
        self.group = group
        self.target = target
        self.application = Application(settings: settings, logger: logger,
                                       requestLimit: RequestLimit { getenv($0).map { String(cString: $0) } })
    }

    /// READY=1 only once the listener is up and Postgres has answered a round trip; Redis is tried too, and a
    /// worker that cannot reach it starts degraded rather than not at all.
    func start() async {
        let server: HTTPServer
        do {
            server = try await HTTPServer.start(on: target, responder: application,
                                                maxBodySize: settings.maxBodySize, headerTimeout: settings.headerTimeout,
                                                bodyTimeout: settings.bodyTimeout, bodyBufferLimit: settings.bodyBufferLimit)
        } catch {
            logger.critical("cannot listen", metadata: ["on": "\(target)", "error": "\(error)"])
            exit(1)
        }
        let redisError: String?
        do {
            redisError = try await application.checkDependencies()
        } catch {
            logger.critical("cannot reach Postgres at boot", metadata: ["error": "\(error)"])
            await application.engine.dispose(timeout: .seconds(1))
            await application.redis.close(timeout: .seconds(1))
            exit(1)
        }
        let stopped: Bool = phase.withLockedValue { phase in
            if case .stopping = phase { return true }
            phase = .serving(server)
            return false
        }
        if stopped {
            await shutdown(server: server)
            return
        }
        if let path = getenv("PREFORK_METRICS_SOCKET").map({ String(cString: $0) }), !path.isEmpty {
            // The supervisor's admin endpoint collects every worker's metrics here; without it, /metrics on the
            // shared port still works, for whichever worker answers.
            let application = self.application
            do {
                try await PrivateMetrics.serve(path: path, group: group) { application.metrics.exposition() }
            } catch {
                logger.warning("cannot serve metrics to the supervisor", metadata: ["path": "\(path)", "error": "\(error)"])
            }
        }
        if let redisError {
            logger.warning("Redis unavailable at boot: starting degraded, requests go to Postgres until it answers",
                           metadata: ["error": "\(redisError)"])
        }
        startHeartbeat()
        notifier.ready(status: "serving on \(target)" + (redisError == nil ? "" : ", degraded: Redis unavailable"))
        logger.info("ready", metadata: [
            "on": "\(server.port.map { "port \($0)" } ?? "\(target)")",
            "postgres_pool": "\(settings.postgres.pool.size)+\(settings.postgres.pool.maxOverflow)",
            "redis_pool": "\(settings.redis.pool.size)",
        ])
    }

    /// `WATCHDOG=1` from the reactor's thread, the one that serves every request: if a handler blocks it, the
    /// heartbeat stops and the supervisor replaces the worker; a timer thread of its own would beat on.
    private func startHeartbeat() {
        guard let interval = notifier.heartbeatInterval else { return }
        let period = Duration.nanoseconds(interval.nanoseconds)
        let notifier = self.notifier
        let next = Mutex(ContinuousClock.now)
        Reactor.shared.everyTick {
            let now = ContinuousClock.now
            let due = next.withLock { next in
                guard now >= next else { return false }
                next = now + period
                return true
            }
            if due { notifier.heartbeat() }
        }
    }

    /// SIGTERM: from any phase, once.
    func terminate() {
        let server: HTTPServer? = phase.withLockedValue { phase in
            switch phase {
            case .serving(let server):
                phase = .stopping
                return server
            case .booting:
                // `start` sees this and shuts down once its listener exists.
                phase = .stopping
                return nil
            case .stopping:
                return nil
            }
        }
        guard let server else { return }
        Task { await shutdown(server: server) }
    }

    /// STOPPING=1, /readyz 503, stop accepting, finish in-flight requests within the graceful timeout, close
    /// idle keep-alive connections, dispose the Postgres engine, then close Redis, exit 0.
    private func shutdown(server: HTTPServer) async {
        notifier.stopping(status: "draining")
        application.beginDraining()
        logger.info("draining", metadata: ["connections": "\(server.openConnections)"])
        // Leave part of the graceful timeout for disposing the pools before the supervisor's KILL.
        let graceful = settings.gracefulTimeout
        let drainLimit = graceful > .seconds(2) ? graceful - .seconds(1) : graceful / 2
        let drained = await server.drain(timeout: drainLimit)
        if !drained { logger.warning("graceful timeout: closed the connections still open") }
        let disposed = await application.engine.dispose(timeout: .seconds(1))
        let closed = await application.redis.close(timeout: .seconds(1))
        logger.info("stopped", metadata: ["postgres_disposed": "\(disposed)", "redis_closed": "\(closed)"])
        exit(0)
    }
}
