import Foundation
import IntegrationSupport
import Testing

/// Issue 16: traps between the programs, found when the system was tried as a newcomer and as a migrating
/// uvicorn or gunicorn user would. Each is tried here the way it was found: across the real binaries.
@Suite("One settings surface across the supervisor, the worker and the cleanup", .serialized)
struct SettingsTrapTests {
    let worker: String
    let supervisor: String
    let cleanup: String

    init() throws {
        worker = try Binaries.path("worker")
        supervisor = try Binaries.path("supervisor")
        cleanup = try Binaries.path("cleanup")
    }

    /// `LOG_LEVEL=warn` was taken by the supervisor and refused by the worker: five failed boots, then the
    /// whole service exited 3.
    @Test func logLevelWarnServes() throws {
        try Services.migrated.get()
        let supervisor = try SupervisorProcess(["--workers", "2", "--", worker], environment: ["LOG_LEVEL": "WARN"])
        let port = try supervisor.portFromStatus(workers: 2)
        #expect(try HTTPClient.get(port: port, path: "/healthz").get().status == 200)
        // warn, for the supervisor and its workers alike: no info or notice line is written.
        #expect(!supervisor.log.contains(" info: ") && !supervisor.log.contains(" notice: "), "\(supervisor.log)")
        supervisor.signal(SIGTERM)
        #expect(try supervisor.waitForExit() == 0)
    }

    /// The checked environment is the one the worker and the cleanup get: `--log-level warn` replaces a
    /// `LOG_LEVEL` they would refuse (found by review: the cleanup's check read the supervisor's own).
    @Test func aFlagReplacesTheVariableForTheWorkersAndTheJobToo() throws {
        try Services.migrated.get()
        let supervisor = try SupervisorProcess(["--workers", "1", "--log-level", "warn", "--cleanup-schedule", "@yearly", "--", worker],
                                               environment: ["LOG_LEVEL": "verbose"])
        _ = try supervisor.portFromStatus(workers: 1)
        supervisor.signal(SIGTERM)
        #expect(try supervisor.waitForExit() == 0)
    }

    /// A value the worker would refuse stops the supervisor at once, before any worker is spawned.
    @Test(arguments: [
        (["LOG_LEVEL": "verbose"], "LOG_LEVEL: expected trace, debug, info"),
        (["DB_POOL_SIZE": "ten"], "DB_POOL_SIZE: expected auto or a whole number"),
        (["RATE_LIMIT_PER_MINUTE": "lots"], "RATE_LIMIT_PER_MINUTE: expected a whole number"),
        (["HEADER_TIMEOUT": "soon"], "HEADER_TIMEOUT: expected a duration"),
        (["REDIS_URL": "redis://:se%ZZcret@localhost"], "REDIS_URL: the password has invalid percent-encoding"),
        (["MAX_BODY_SIZE": "2M", "BODY_BUFFER_LIMIT": "1M"], "BODY_BUFFER_LIMIT: must be at least MAX_BODY_SIZE"),
    ] as [([String: String], String)])
    func aValueTheWorkerWouldRefuseIsExit78BeforeAnySpawn(environment: [String: String], message: String) throws {
        let started = Date()
        let supervisor = try SupervisorProcess(["--workers", "4", "--", worker], environment: environment)
        #expect(try supervisor.waitForExit(timeout: 5) == 78)
        #expect(Date().timeIntervalSince(started) < 3)
        let lines = supervisor.log.split(separator: "\n")
        #expect(lines.count == 1 && lines[0].contains(message), "\(supervisor.log)")
        #expect(!supervisor.log.contains("spawned") && !supervisor.log.contains("se%ZZcret"))
    }

    /// The durations the supervisor takes, the worker takes: `GRACEFUL_TIMEOUT=8s` and `1.5h` no longer exit 78.
    @Test func theWorkerAloneTakesTheSupervisorsDurations() throws {
        try Services.migrated.get()
        let worker = try WorkerProcess(environment: ["GRACEFUL_TIMEOUT": "8s", "DB_POOL_RECYCLE": "1.5h",
                                                     "HEADER_TIMEOUT": "10s", "AUTH_CACHE_TTL": "1m", "LOG_LEVEL": "Info"])
        #expect(try worker.request("GET", "/healthz").status == 200)
        worker.process.signal(SIGTERM)
        #expect(try worker.process.waitForExit() == 0)
    }

    /// `cleanup` ignored `LOG_LEVEL`; `--log-level` and `--version` exist on all three.
    @Test func theCleanupReadsTheLogSettingsAsTheOthersDo() throws {
        try Services.migrated.get()
        let quiet = Services.shell("LOG_LEVEL=warn '\(cleanup)' 2>&1")
        #expect(quiet.status == 0 && !quiet.output.contains("info:"), "\(quiet.output)")
        let loud = Services.shell("LOG_LEVEL=warn '\(cleanup)' --log-level info 2>&1")
        #expect(loud.status == 0 && (loud.output.contains("info: done") || loud.output.contains("info: skipped")), "\(loud.output)")
        let json = Services.shell("LOG_FORMAT=json '\(cleanup)' 2>&1")
        #expect(json.status == 0 && json.output.hasPrefix("{"), "\(json.output)")
        let refused = Services.shell("LOG_LEVEL=verbose '\(cleanup)' 2>&1")
        #expect(refused.status == 78 && refused.output.contains("LOG_LEVEL: expected trace"), "\(refused.output)")
        let badFlag = Services.shell("'\(worker)' --log-level verbose 2>&1")
        #expect(badFlag.status == 64 && badFlag.output.contains("--log-level: expected trace"), "\(badFlag.output)")
        for binary in [supervisor, worker, cleanup] {
            let version = Services.shell("'\(binary)' --version 2>&1")
            #expect(version.status == 0 && version.output.contains(" 0.") && version.output.contains("(commit "),
                    "\(binary): \(version.output)")
        }
    }

    /// The default cleanup follows our worker; in front of another program it is not scheduled unless asked
    /// for, and that program's `DATABASE_URL` (SQLAlchemy's `postgresql+asyncpg://`) is not ours to check.
    @Test func aForeignWorkersEnvironmentIsNotOursToCheck() throws {
        let supervisor = try SupervisorProcess(["--workers", "1", "--control-socket", "none", "--budget", "off", "--",
                                                try Binaries.path("test-worker")],
                                               environment: ["DATABASE_URL": "postgresql+asyncpg://u:p@h/db", "RATE_LIMIT_PER_MINUTE": "lots"],
                                               executable: self.supervisor)
        try supervisor.waitForLog("all 1 workers ready")
        #expect(!supervisor.log.contains("cleanup"), "\(supervisor.log)")
        supervisor.signal(SIGTERM)
        #expect(try supervisor.waitForExit() == 0)
    }
}
