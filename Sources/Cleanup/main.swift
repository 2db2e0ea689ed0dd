import ProcessDefaults
import Dispatch
import FoundationEssentials
import Glibc
import LogFormat
import Logging
import PreforkPostgres
import Settings
import TimeUnits
import Schedule
import Synchronization
import WorkerRuntime

/// `cleanup [--if-due DURATION]`: the nightly job. Exit codes: 0 done, skipped or interrupted by SIGTERM;
/// 1 failed (or cut: its batch was cancelled at the end of the grace after SIGTERM); 64 bad flag; 78 bad setting.
enum CleanupCommand {
    static var help: String {
        """
        USAGE: cleanup [--if-due DURATION] [--log-level LEVEL] [--log-format text|json]

        Deletes notes soft-deleted longer ago than CLEANUP_RETENTION_DAYS, and expired tokens, in batches. One run at
        a time across replicas (an advisory lock; the others log "skipped" and exit 0). SIGTERM: the current batch
        finishes, the run is recorded as interrupted, the lock is released; a batch still running a second before
        GRACEFUL_TIMEOUT ends is cancelled in Postgres and rolled back (exit 1). The supervisor sets DB_POOL_SIZE and
        DB_MAX_OVERFLOW from CLEANUP_DB_POOL_SIZE and CLEANUP_DB_MAX_OVERFLOW.
        Exit codes: 0 done, skipped or interrupted; 1 failed; 64 usage; 78 configuration.

        OPTIONS (environment variables in brackets):
        \(SettingsHelp.options(of: .cleanup, extra: [("-h, --help", "show this help"), ("    --version", "print the version")]))

        VARIABLES:
        \(SettingsHelp.environment(of: .cleanup))
        """
    }

    static func duration(_ text: String) -> Duration? {
        Schedule.seconds(text).map { .seconds($0) }
    }

    /// The flags; `--help` and `--version` answer and exit, a bad flag is one line and exit 64.
    static func flags(_ arguments: [String]) -> (flags: [String: String], ifDue: Duration?) {
        let parsed: FlagParser.Parsed
        do { parsed = try FlagParser(settings: Catalog.flags(of: .cleanup), stopsAtFirstArgument: false).parse(arguments, program: "cleanup") } catch {
            fail(error.description, code: EX_USAGE)
        }
        if parsed.switches.contains("help") {
            print(help)
            Glibc.exit(0)
        }
        if parsed.switches.contains("version") {
            print(BuildInfo.line("cleanup"))
            Glibc.exit(0)
        }
        if let argument = parsed.arguments.first { fail("unexpected argument \(ValueSyntax.shown(argument)) (see cleanup --help)", code: EX_USAGE) }
        let ifDue: Duration?
        do {
            ifDue = try SettingsReader(flags: parsed.flags, environment: [:])[Catalog.ifDue].map { text in
                guard let duration = duration(text) else {
                    throw SettingError("--if-due: expected whole seconds of a duration (at most 366d) such as 20h, 1.5h, 90m or 3600s, got \(ValueSyntax.shown(text))", fromFlag: true)
                }
                return duration
            }
        } catch {
            fail("\(error)", code: EX_USAGE)
        }
        return (parsed.flags, ifDue)
    }

    static func run(_ arguments: [String]) -> Never {
        let (flags, ifDue) = self.flags(arguments)
        let fileLimit = ProcessDefaults.apply()
        let environment = ProcessInfo.processInfo.environment
        let settings: CleanupSettings
        do { settings = try CleanupSettings.read(flags: flags, environment: environment) } catch {
            fail("\(error)", code: error.exitCode)
        }
        LoggingSystem.bootstrap { settings.logFormat.handler(label: $0, level: settings.logLevel) }
        let logger = Logger(label: "cleanup")
        if let fileLimit { logger.info("\(fileLimit)") }
        let stop = StopFlag()
        let engine = PostgresEngine(settings.postgres)
        let termination = TerminationSignal.handle {
            stop.set()
            logger.notice("SIGTERM: finishing the current batch")
            // A batch that would outlast the grace (a lock it waits for) is cancelled in Postgres before the
            // SIGKILL, and rolled back: no statement of the job runs on once the job is gone.
            Task {
                try? await Task.sleep(for: settings.stopGrace.workLimit)
                logger.warning("the batch did not finish in time: cancelling it", metadata: [
                    "after": "\(settings.stopGrace.workLimit.inMilliseconds)ms"])
                await engine.dispose(timeout: settings.stopGrace.disposeLimit)
                Glibc.exit(1)
            }
        }
        Task {
            let job = CleanupJob(engine: engine, settings: settings, logger: logger, stopRequested: stop)
            let started = ContinuousClock.now
            var code: Int32 = 0
            do {
                let outcome = try await job.run(ifDue: ifDue)
                let ms = "\(started.duration(to: .now).inMilliseconds)"
                switch outcome {
                case .skipped(let why):
                    logger.info("skipped", metadata: ["why": "\(why)"])
                case .succeeded(let notes, let tokens):
                    logger.info("done", metadata: ["notes_deleted": "\(notes)", "tokens_deleted": "\(tokens)", "ms": "\(ms)"])
                case .interrupted(let notes, let tokens):
                    logger.notice("interrupted", metadata: ["notes_deleted": "\(notes)", "tokens_deleted": "\(tokens)", "ms": "\(ms)"])
                }
            } catch {
                logger.error("failed", metadata: ["error": "\(error)"])
                code = 1
            }
            await engine.dispose(timeout: .seconds(5))
            withExtendedLifetime(termination) {}
            Glibc.exit(code)
        }
        dispatchMain()
    }
}

/// SIGTERM's request to stop after the current batch.
final class StopFlag: Sendable {
    private let flag = Atomic<Bool>(false)
    func set() { flag.store(true, ordering: .relaxed) }
    var isSet: Bool { flag.load(ordering: .relaxed) }
}

func fail(_ message: String, code: Int32) -> Never {
    var line = "cleanup: \(message)\n"
    line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
    Glibc.exit(code)
}

// Before any thread exists: a SIGTERM during start waits for its handler instead of being lost.
TerminationSignal.holdUntilHandled()
CleanupCommand.run(Array(CommandLine.arguments.dropFirst()))
