import ProcessDefaults
import Dispatch
import FoundationEssentials
import Glibc
import LogFormat
import Logging
import NIOCore
import NIOPosix
import Settings
import WorkerRuntime

/// A worker process under the supervisor (or systemd, or alone): the whole life of one, around an application.
///
///     Worker.run { configuration in
///         try MyApplication(environment: ProcessInfo.processInfo.environment)
///     }
///
/// It serves HTTP/1.1 on the socket from `LISTEN_FDS` (fd 3), or on `PORT` when run alone; calls the
/// application's `boot` and only then accepts its first connection and sends `READY=1`; sends `WATCHDOG=1` from the thread that serves the
/// requests; on SIGTERM sends `STOPPING=1`, stops accepting, finishes the requests in flight within the graceful
/// timeout, calls `dispose` and exits 0. USR1 and USR2 are logged, never fatal. It counts the requests it answers
/// (`MAX_REQUESTS`: it asks the supervisor for a replacement at the limit) and serves them with the application's
/// metrics to the supervisor (`PREFORK_METRICS_SOCKET`). Logs go to stderr as `LOG_LEVEL` and `LOG_FORMAT` say,
/// which the supervisor passes on from its own flags.
public enum Worker {
    /// Never returns. `makeApplication` runs after the signals are held (so a SIGTERM that comes during the
    /// boot drains instead of killing) and before anything listens; a configuration error it throws is one
    /// line on stderr and exit 78, as the supervisor documents for its workers.
    public static func run<Application: WorkerApplication>(
        name: String = "worker",
        configuration: WorkerConfiguration? = nil,
        logger: Logger? = nil,
        _ makeApplication: (WorkerConfiguration) throws -> Application
    ) -> Never {
        // Before any thread exists: a SIGTERM during start waits for its handler instead of being lost.
        TerminationSignal.holdUntilHandled()
        let fileLimit = ProcessDefaults.apply()
        let environment = ProcessInfo.processInfo.environment
        let resolved: WorkerConfiguration
        let application: Application
        do {
            if logger == nil {
                let reader = SettingsReader(environment: environment)
                let level = try reader[Catalog.logLevel]
                let output = try reader[Catalog.logFormat]
                LoggingSystem.bootstrap { label in output.handler(label: label, level: level) }
            }
            resolved = try configuration ?? WorkerConfiguration(environment: environment)
            application = try makeApplication(resolved)
        } catch {
            var line = "\(name): \(error)\n"
            line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
            exit(78)
        }
        var logger = logger ?? Logger(label: name)
        if let slot = resolved.slot { logger[metadataKey: "slot"] = "\(slot)" }
        if let generation = resolved.generation { logger[metadataKey: "generation"] = "\(generation)" }
        if let fileLimit { logger.info("\(fileLimit)") }
        // Swift Concurrency's jobs run on one event loop, beside the reactor that serves the requests.
        NIOSingletons.groupLoopCountSuggestion = 1
        NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
        serve(application, configuration: resolved, logger: logger)
    }

    /// The same, for a worker that has made its own choices of executor and logging (the API worker).
    package static func serve<Application: WorkerApplication>(_ application: Application, configuration: WorkerConfiguration,
                                                               logger: Logger) -> Never {
        let lifecycle = WorkerLifecycle(configuration: configuration, application: application, logger: logger)
        let termination = TerminationSignal.handle { lifecycle.terminate() }
        // USR1/USR2 (relayed with `supervisor --relay-signal`, or sent by hand) must not end a worker by their
        // default action: logs go to stderr, so there is nothing to reopen; they are acknowledged in the log.
        let userSignals = [SIGUSR1, SIGUSR2].map { signal in
            TerminationSignal.handle(signal) {
                logger.info("SIG\(signal == SIGUSR1 ? "USR1" : "USR2") received: nothing to reopen (logs go to stderr)")
            }
        }
        Task { await lifecycle.start() }
        withExtendedLifetime((termination, userSignals)) { dispatchMain() }
    }
}
