import ProcessDefaults
import Dispatch
import FoundationEssentials
import Glibc
import LogFormat
import Logging
import NIOCore
import NIOPosix
import Settings
import Synchronization
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
    /// True from SIGTERM on: the worker is leaving, and a readiness route should say 503 (in-flight requests
    /// still finish). Set by the runtime before `beginDraining`, so an application needs no flag of its own.
    public static var isDraining: Bool { draining.load(ordering: .relaxed) }
    static let draining = Atomic(false)

    /// Never returns. `makeApplication` runs after the signals are held (so a SIGTERM that comes during the
    /// boot drains instead of killing) and before anything listens; a configuration error it throws is one
    /// line on stderr and exit 78, as the supervisor documents for its workers (64 for a bad flag).
    ///
    /// - Parameter arguments: the worker's flags (`--bind`, `--log-level`, `--log-format`, `--help`, `--version`),
    ///   read as the supervisor reads its own; the process's arguments by default.
    public static func run<Application: WorkerApplication>(
        name: String = "worker",
        arguments: [String] = Array(CommandLine.arguments.dropFirst()),
        configuration: WorkerConfiguration? = nil,
        logger: Logger? = nil,
        _ makeApplication: (WorkerConfiguration) throws -> Application
    ) -> Never {
        // Before any thread exists: a SIGTERM during start waits for its handler instead of being lost.
        TerminationSignal.holdUntilHandled()
        let fileLimit = ProcessDefaults.apply()
        let environment = ProcessInfo.processInfo.environment
        let flags = parse(arguments, name: name)
        let resolved: WorkerConfiguration
        let application: Application
        do {
            if logger == nil {
                let reader = SettingsReader(flags: flags, environment: environment)
                let level = try reader[Catalog.logLevel]
                let output = try reader[Catalog.logFormat]
                LoggingSystem.bootstrap { label in output.handler(label: label, level: level) }
            }
            resolved = try configuration ?? WorkerConfiguration(environment: environment, flags: flags)
            application = try makeApplication(resolved)
        } catch let error as SettingError {
            exit(name, error.description, code: error.exitCode)
        } catch {
            exit(name, "\(error)", code: EX_CONFIG)
        }
        let logger = logger ?? resolved.logger(label: name)
        if let fileLimit { logger.info("\(fileLimit)") }
        // Swift Concurrency's jobs run on NIO's loop(s), beside the reactor that serves the requests.
        NIOSingletons.groupLoopCountSuggestion = resolved.threads
        NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
        serve(application, configuration: resolved, logger: logger)
    }

    /// The worker's flags; `--help` and `--version` answer and exit, a bad flag is one line and exit 64.
    static func parse(_ arguments: [String], name: String) -> [String: String] {
        let parser = FlagParser(settings: Catalog.flags(of: .worker), stopsAtFirstArgument: false)
        let parsed: FlagParser.Parsed
        do { parsed = try parser.parse(arguments, program: name) } catch { exit(name, error.description, code: EX_USAGE) }
        if parsed.switches.contains("help") {
            print(help(name))
            Glibc.exit(0)
        }
        if parsed.switches.contains("version") {
            print(BuildInfo.line(name))
            Glibc.exit(0)
        }
        if let argument = parsed.arguments.first {
            exit(name, "unexpected argument \(ValueSyntax.shown(argument)) (see \(name) --help)", code: EX_USAGE)
        }
        return parsed.flags
    }

    /// `--help`: the flags and the variables, from their declarations.
    public static func help(_ name: String) -> String {
        """
        USAGE: \(name) [--bind ADDRESS] [--log-level LEVEL] [--log-format text|json]

        Serves HTTP on the socket from LISTEN_FDS (fd 3), else on --bind or PORT; READY=1 once booted, WATCHDOG=1
        while serving; on SIGTERM drains, disposes its pools and exits 0. Exit codes: 0 done, 1 failed,
        64 usage, 78 configuration.

        OPTIONS (environment variables in brackets):
        \(SettingsHelp.options(of: .worker, extra: [("-h, --help", "show this help"), ("    --version", "print the version")]))

        VARIABLES:
        \(SettingsHelp.environment(of: .worker))
        """
    }

    static func exit(_ name: String, _ message: String, code: Int32) -> Never {
        var line = "\(name): \(message)\n"
        line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
        Glibc.exit(code)
    }

    static func serve<Application: WorkerApplication>(_ application: Application, configuration: WorkerConfiguration,
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
