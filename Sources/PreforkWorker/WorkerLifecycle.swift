import Reactor
import Glibc
import Logging
import LogFormat
import NIOConcurrencyHelpers
import NIOPosix
import Synchronization
import TimeUnits
import WorkerRuntime

/// Boot, serve, drain, dispose: the order the seed asks for, and the sd_notify messages that tell the
/// supervisor (or systemd) where the worker is.
final class WorkerLifecycle<Application: WorkerApplication>: Sendable {
    private enum Phase {
        case booting
        case serving(HTTPServer)
        case stopping
    }

    private let configuration: WorkerConfiguration
    private let logger: Logger
    private let application: Application
    private let responder: CountingResponder<Application>
    private let notifier = Notifier()
    private let phase = NIOLockedValueBox(Phase.booting)

    init(configuration: WorkerConfiguration, application: Application, logger: Logger) {
        self.configuration = configuration
        self.application = application
        self.responder = CountingResponder(application, limit: RequestLimit(maximum: configuration.maxRequests, jitter: configuration.maxRequestsJitter))
        self.logger = logger
    }

    /// The listener first (a port in use fails before the boot), then the application's boot, and only then
    /// accepting and READY=1: a worker whose boot waits on the database takes no request it cannot answer.
    func start() async {
        let target = configuration.listen
        let server: HTTPServer
        do {
            server = try await HTTPServer.open(on: target, responder: responder,
                                                maxBodySize: configuration.maxBodySize,
                                                headerTimeout: configuration.headerTimeout,
                                                bodyTimeout: configuration.bodyTimeout,
                                                bodyBufferLimit: configuration.bodyBufferLimit)
        } catch {
            logger.critical("cannot listen", metadata: ["on": "\(target)", "error": "\(error)"])
            exit(1)
        }
        let status: String?
        do {
            status = try await application.boot()
        } catch let error as ConfigurationError {
            // Retrying cannot help: exit 78, which the supervisor turns into its own exit 78 at first boot.
            logger.critical("boot refused the configuration", metadata: ["error": "\(error)"])
            await application.dispose()
            exit(EX_CONFIG)
        } catch {
            logger.critical("boot failed", metadata: ["error": "\(error)"])
            await application.dispose()
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
        if let path = configuration.metricsSocket {
            // The supervisor's admin endpoint collects every worker's metrics here (it counts a worker that does
            // not answer as a failed scrape); without it, an application's /metrics still works, for whichever
            // worker answers.
            let application = self.application
            let responder = self.responder
            do {
                try await PrivateMetrics.serve(path: path, group: MultiThreadedEventLoopGroup.singleton) {
                    let own = application.metricsExposition() ?? []
                    let counted = Array("""
                        # HELP worker_requests_total Requests answered by this worker.
                        # TYPE worker_requests_total counter
                        worker_requests_total \(responder.count)

                        """.utf8)
                    return own + counted
                }
            } catch {
                logger.warning("cannot serve metrics to the supervisor", metadata: ["path": "\(path)", "error": "\(error)"])
            }
        }
        do { try await server.startAccepting() } catch {
            logger.critical("cannot accept", metadata: ["on": "\(target)", "error": "\(error)"])
            await application.dispose()
            exit(1)
        }
        // A SIGTERM since the boot returned has begun the drain: no READY=1 after its STOPPING=1.
        let draining: Bool = phase.withLockedValue { phase in
            if case .stopping = phase { return true }
            return false
        }
        if draining { return }
        startHeartbeat()
        // Logged (and its line written, unless stderr is stalled) before READY=1: the supervisor's "all ready"
        // comes after every worker's own "ready" in a log they share.
        logger.info("ready", metadata: ["on": "\(server.port.map { "port \($0)" } ?? "\(target)")"])
        LogSink.shared.flush(timeout: .milliseconds(100))
        notifier.ready(status: "serving on \(target)" + (status.map { ", \($0)" } ?? ""))
    }

    /// `WATCHDOG=1` from the reactor's thread, the one that serves every request: if a handler blocks it, the
    /// heartbeat stops and the supervisor replaces the worker; a timer thread of its own would beat on.
    private func startHeartbeat() {
        guard let interval = notifier.heartbeatInterval else { return }
        let period = interval
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

    /// STOPPING=1, the application told, stop accepting, finish in-flight requests within the drain's time,
    /// close idle keep-alive connections, let the application dispose its pools (which cancels what the cut
    /// requests still run in Postgres), exit 0: all before the supervisor's SIGKILL.
    private func shutdown(server: HTTPServer) async {
        notifier.stopping(status: "draining")
        Worker.draining.store(true, ordering: .relaxed)
        application.beginDraining()
        logger.info("draining", metadata: ["connections": "\(server.openConnections)"])
        let drained = await server.drain(timeout: configuration.drainLimit)
        if !drained {
            logger.warning("graceful timeout: closed the connections still open, cancelling their statements")
        }
        let application = self.application
        if await first(within: configuration.disposeLimit, { await application.dispose() }) == nil {
            logger.warning("the pools were not disposed in time: exiting before the supervisor's SIGKILL")
        }
        exit(0)
    }
}
