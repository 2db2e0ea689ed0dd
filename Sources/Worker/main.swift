import API
import FoundationEssentials
import ArgumentParser
import Dispatch
import Glibc
import LogFormat
import Logging
import NIOCore
import NIOPosix
import Postgres
import Settings
import WorkerRuntime

/// The API worker. `worker` (or `worker serve`) serves; `worker migrate` and `worker create-token` are the
/// operator's tools for the same database. Exit codes: 0, 1 (could not start or failed), 64 (usage), 78
/// (a setting is missing or invalid).
struct WorkerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "The notes API worker: HTTP on the socket from LISTEN_FDS (or --bind), Postgres and Redis pools.",
        discussion: "Settings come from the environment (see the README, or supervisor help settings):\n"
            + SettingsHelp.environment(of: .worker, wrapped: false)
            + "\nDurations: 8, 0.5, 250ms, 8s, 2m, 1.5h, 1d. Exit codes: 0 done, 1 failed, 64 usage, 78 configuration.",
        version: BuildInfo.line("worker"),
        subcommands: [Serve.self, Migrate.self, CreateToken.self],
        defaultSubcommand: Serve.self
    )
}

/// Reads the environment once; a bad setting is one line and exit 78.
func loadSettings() -> APISettings {
    do {
        return try APISettings.fromEnvironment(processEnvironment())
    } catch {
        failure("\(error)", code: 78)
    }
}

func processEnvironment() -> [String: String] {
    ProcessInfo.processInfo.environment
}

func failure(_ message: String, code: Int32) -> Never {
    var line = "worker: \(message)\n"
    line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
    exit(code)
}

/// Runs async work from a synchronous command and exits with its code.
func runToCompletion(_ body: @escaping @Sendable () async -> Int32) -> Never {
    Task {
        exit(await body())
    }
    dispatchMain()
}

// Before any thread exists: a SIGTERM during start waits for its handler instead of being lost.
TerminationSignal.holdUntilHandled()
WorkerCommand.main()
