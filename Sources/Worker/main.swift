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
import WorkerRuntime

/// The API worker. `worker` (or `worker serve`) serves; `worker migrate` and `worker create-token` are the
/// operator's tools for the same database. Exit codes: 0, 1 (could not start or failed), 64 (usage), 78
/// (a setting is missing or invalid).
struct WorkerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "The notes API worker: HTTP on the socket from LISTEN_FDS (or --bind), Postgres and Redis pools.",
        discussion: """
            Settings come from the environment: DATABASE_URL, REDIS_URL, DB_POOL_SIZE (10), DB_MAX_OVERFLOW (10), \
            DB_POOL_TIMEOUT (30), DB_POOL_RECYCLE (3600), REDIS_POOL_SIZE (5), REDIS_POOL_TIMEOUT (5), \
            RATE_LIMIT_PER_MINUTE (1000), AUTH_CACHE_TTL (60), MAX_BODY_SIZE (1048576), HEADER_TIMEOUT (10), \
            GRACEFUL_TIMEOUT (8), LOG_FORMAT (text|json), LOG_LEVEL (info), ACCESS_LOG (0). See the README.
            Exit codes: 0 done, 1 failed, 64 usage, 78 configuration.
            """,
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

WorkerCommand.main()
