import IntegrationSupport
import Foundation
import Testing

// In the API's integration target, not the supervisor's: these workers use the shared Postgres, which the
// Postgres engine's tests restart while the supervisor's suites run beside them (a restart mid-load gave 500s).

/// The FastAPI stack (benchmarks/python/app.py: FastAPI, SQLAlchemy on asyncpg, redis-py, on the prefork-asgi helper) as
/// the supervisor's workers under the real `uvicorn --fd 3`, and a rolling restart to a version of it that
/// cannot start, with and without sd_notify.
@Suite("Foreign workers: uvicorn", .serialized)
struct ForeignWorkerTests {
    /// A copy of the app in a folder of its own, so a "deploy" can replace it under the running supervisor.
    final class AppFolder {
        let path = NSTemporaryDirectory() + "prefork-uvicorn-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let source = Binaries.fixtures + "/../../../benchmarks/python/app.py"

        init() throws {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: source, toPath: path + "/app.py")
        }

        /// The next version fails while it starts, as a release with a bad import or setting does.
        func deployBrokenVersion() throws {
            let good = try String(contentsOfFile: source, encoding: .utf8)
            try (good + "\nraise RuntimeError('this release cannot start')\n")
                .write(toFile: path + "/app.py", atomically: true, encoding: .utf8)
        }

        /// A route that blocks the event loop, as a synchronous call in an async handler does.
        func addBlockingRoute() throws {
            let good = try String(contentsOfFile: source, encoding: .utf8)
            try (good + "\n\n@api.get('/block')\nasync def block():\n    time.sleep(60)\n")
                .write(toFile: path + "/app.py", atomically: true, encoding: .utf8)
        }

        deinit { try? FileManager.default.removeItem(atPath: path) }
    }

    static func python() throws -> String {
        try #require(ProcessInfo.processInfo.environment["PREFORK_TEST_PYTHON"],
                     "PREFORK_TEST_PYTHON (a Python with uvicorn and the app's packages; scripts/test makes .build/test-venv) is not set")
    }

    static func uvicorn(_ app: AppFolder) throws -> [String] {
        [try python(), "-m", "uvicorn", "--app-dir", app.path, "app:app", "--fd", "3", "--log-level", "warning"]
    }

    /// Of `count` requests made one after another, how many got a 200.
    static func answered(_ count: Int, port: UInt16, path: String = "/healthz") -> Int {
        (0..<count).filter { _ in
            if case .success(let response) = HTTPClient.get(port: port, path: path, timeout: 1) { response.status == 200 } else { false }
        }.count
    }

    /// The HUP to a broken version, and what is answered after it; `flags` choose how readiness is known.
    func rollingRestartToABrokenVersion(_ flags: [String], waitForAbort: Bool) throws -> (answered: Int, log: String) {
        let app = try AppFolder()
        let supervisor = try SupervisorProcess(["--workers", "2", "--boot-timeout", "20"] + flags + ["--"] + Self.uvicorn(app))
        try supervisor.waitForLog("all 2 workers ready", timeout: 40)
        let port = try supervisor.port()
        // Ready on spawn says nothing about serving: wait until uvicorn has imported the app and answers.
        let deadline = Date().addingTimeInterval(20)
        while Self.answered(1, port: port) == 0, Date() < deadline { usleep(100_000) }
        #expect(Self.answered(5, port: port) == 5, "\(supervisor.log)")
        try app.deployBrokenVersion()
        supervisor.signal(SIGHUP)
        if waitForAbort {
            try supervisor.waitForLog("rolling restart aborted, keeping the old workers", timeout: 30)
        } else {
            // Ready on spawn: nothing to wait for but the old workers' exit and the new ones' crash.
            usleep(3_000_000)
        }
        let answered = Self.answered(20, port: port)
        supervisor.signal(SIGTERM)
        _ = try supervisor.waitForExit(timeout: 20)
        return (answered, supervisor.log)
    }

    /// `--no-notify`: uvicorn says nothing, so readiness is an uptime (`--ready-after`). The new worker dies at
    /// import, before it, which is a failed boot: the old workers keep serving every request. 10 s here: on a
    /// loaded 2-core CI machine the broken import took 3.6 s to fail, past the 2 s the default once was.
    @Test func withoutNotifyARollingRestartToABrokenUvicornKeepsTheOldWorkers() throws {
        let (answered, log) = try rollingRestartToABrokenVersion(["--no-notify", "--ready-after", "10"], waitForAbort: true)
        print("uvicorn --no-notify --ready-after 10s: \(answered) of 20 requests answered after the HUP to a broken version")
        #expect(answered == 20, "\(log)")
    }

    /// The behaviour `--ready-after` replaces, kept measurable: ready on spawn, the same HUP replaces both working
    /// workers with crash-looping ones.
    @Test func readyOnSpawnLosesTheServiceToABrokenVersion() throws {
        let (answered, log) = try rollingRestartToABrokenVersion(["--no-notify", "--ready-after", "0"], waitForAbort: false)
        print("uvicorn --no-notify --ready-after 0: \(answered) of 20 requests answered after the HUP to a broken version")
        #expect(answered < 20, "\(log)")
    }

    /// With sd_notify (the app sends READY=1 from its lifespan startup, once Postgres answers): the broken version
    /// never says READY=1 and the rolling restart stops with the old workers serving.
    @Test func withNotifyARollingRestartToABrokenUvicornKeepsTheOldWorkers() throws {
        let (answered, log) = try rollingRestartToABrokenVersion([], waitForAbort: true)
        print("uvicorn with sd_notify: \(answered) of 20 requests answered after the HUP to a broken version")
        #expect(answered == 20, "\(log)")
    }

    /// WATCHDOG=1 comes from uvicorn's event loop, not from a thread beside it: a handler that blocks the loop
    /// stops the heartbeat, and the supervisor aborts and replaces that worker while the other serves on.
    @Test func aBlockedUvicornEventLoopIsReplaced() throws {
        let app = try AppFolder()
        try app.addBlockingRoute()
        let supervisor = try SupervisorProcess(["--workers", "2", "--timeout", "2", "--"] + Self.uvicorn(app))
        try supervisor.waitForLog("all 2 workers ready", timeout: 30)
        let port = try supervisor.port()
        let before = try supervisor.waitForWorkers(2)
        _ = HTTPClient.get(port: port, path: "/block", timeout: 0.5)
        try supervisor.waitForLog("heartbeat missed, aborting", timeout: 10)
        // The slot is refilled at once: a third "ready", then the aborted worker is gone (ABRT, KILL 2 s later).
        try supervisor.waitForLog("info: ready boot=", count: 3, timeout: 30)
        var after: [Int32] = []
        let deadline = Date().addingTimeInterval(10)
        repeat {
            after = try supervisor.waitForWorkers(2, timeout: 10)
            usleep(100_000)
        } while Set(after).intersection(before).count != 1 && Date() < deadline
        #expect(Set(after).intersection(before).count == 1, "one worker replaced: \(before) -> \(after)")
        #expect(Self.answered(10, port: port) == 10)
        supervisor.signal(SIGTERM)
        #expect(try supervisor.waitForExit(timeout: 20) == 0)
    }

    /// The recipe end to end: READY=1 from the lifespan, WATCHDOG=1 from the event loop (a 2 s heartbeat timeout
    /// that never fires), `DB_POOL_SIZE=auto` sized by the supervisor and reaching SQLAlchemy's pool, and
    /// pg_stat_activity under load within the workers' share of the budget.
    @Test func uvicornWithNotifyGetsItsPoolFromTheBudgetAndStaysWithinIt() throws {
        let app = try AppFolder()
        let application = "api-python-\(getpid())"
        // 40 connections, 20 kept in reserve, no cleanup: 20 for 2 workers, 10 each.
        let supervisor = try SupervisorProcess(["--workers", "2", "--timeout", "2", "--"] + Self.uvicorn(app), environment: [
            "DB_POOL_SIZE": "auto", "DB_MAX_CONNECTIONS": "40", "DB_RESERVED_CONNECTIONS": "20", "NO_CLEANUP": "1",
            "DB_APPLICATION_NAME": application,
        ])
        try supervisor.waitForLog("all 2 workers ready", timeout: 30)
        let port = try supervisor.port()
        let workers = try supervisor.waitForWorkers(2)
        let environment = ProcessTable.environment(workers[0])
        let size = try #require(environment["DB_POOL_SIZE"].flatMap(Int.init), "\(environment)")
        let overflow = try #require(environment["DB_MAX_OVERFLOW"].flatMap(Int.init))
        #expect(size + overflow == 10, "DB_POOL_SIZE=\(size) DB_MAX_OVERFLOW=\(overflow)")
        guard case .success(let ready) = HTTPClient.get(port: port, path: "/readyz") else {
            Issue.record("no answer on /readyz: \(supervisor.log)")
            return
        }
        #expect(ready.body.contains("\"pool_size\":\(size)") && ready.body.contains("\"max_overflow\":\(overflow)"), "\(ready.body)")

        let load = RequestLoop(port: port, path: "/readyz", concurrency: 32)
        var most = 0
        for _ in 0..<30 {
            let sample = runShell("psql \"$DATABASE_URL\" -Atc \"SELECT count(*) FROM pg_stat_activity WHERE application_name = '\(application)'\"")
            most = max(most, Int(sample.output.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0)
            usleep(100_000)
        }
        let (succeeded, failures) = load.stop()
        print("uvicorn under load: \(succeeded) requests, at most \(most) Postgres connections of the workers' 20")
        #expect(failures.isEmpty, "\(failures.prefix(5))")
        #expect(most >= 1 && most <= 20)
        // Two heartbeat timeouts have passed under load: WATCHDOG=1 kept coming from both event loops.
        #expect(!supervisor.log.contains("heartbeat missed"), "\(supervisor.log)")
        #expect(try supervisor.waitForWorkers(2) == workers)
        supervisor.signal(SIGTERM)
        #expect(try supervisor.waitForExit(timeout: 20) == 0)
        usleep(200_000)
        let left = runShell("psql \"$DATABASE_URL\" -Atc \"SELECT count(*) FROM pg_stat_activity WHERE application_name = '\(application)'\"")
        #expect(left.output.trimmingCharacters(in: .whitespacesAndNewlines) == "0", "the pools were not disposed: \(left.output)")
    }
}
