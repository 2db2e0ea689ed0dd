import IntegrationSupport
import Foundation
import Testing

// In the API's integration target, not the supervisor's: these workers use the shared Postgres, which the
// Postgres engine's tests restart while the supervisor's suites run beside them (a restart mid-load gave 500s).

/// Issue 18: Examples/VisitCounter, a worker of someone else's, built as an outside package through the three
/// library products (scripts/test builds it and sets PREFORK_EXAMPLE_BIN), under the real supervisor with the
/// real Postgres and Redis: ready, its routes, a rolling restart without a lost request, a stop that disposes
/// both pools.
@Suite("Your own worker: Examples/VisitCounter", .serialized)
struct ExampleWorkerTests {
    static func backends(_ application: String) -> Int {
        let result = runShell("psql \"$DATABASE_URL\" -Atc \"SELECT count(*) FROM pg_stat_activity WHERE application_name = '\(application)'\"")
        return Int(result.output.trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
    }

    @Test func theExampleServesItsRoutesRestartsAndDisposesItsPools() throws {
        let binary = try #require(ProcessInfo.processInfo.environment["PREFORK_EXAMPLE_BIN"],
                                  "PREFORK_EXAMPLE_BIN (Examples/VisitCounter built; scripts/test builds it) is not set")
        let application = "visit-counter-\(getpid())"
        let supervisor = try SupervisorProcess(["--workers", "2", "--timeout", "3", "--", binary], environment: [
            "DB_POOL_SIZE": "auto", "NO_CLEANUP": "1", "DB_APPLICATION_NAME": application,
        ])
        try supervisor.waitForLog("all 2 workers ready", timeout: 20)
        let port = try supervisor.port()
        let page = "home-\(getpid())"

        let ready = try HTTPClient.get(port: port, path: "/readyz").get()
        #expect(ready.status == 200, "\(ready.body)")
        for expected in 1...3 {
            let counted = try HTTPClient.request(port: port, method: "POST", path: "/visits/\(page)").get()
            #expect(counted.status == 200 && counted.body.contains("\"count\":\(expected)"), "\(counted.status) \(counted.body)")
        }
        let read = try HTTPClient.get(port: port, path: "/visits/\(page)").get()
        #expect(read.status == 200 && read.body.contains("\"count\":3") && read.body.contains("\"cached\":true"), "\(read.body)")
        let hostile = try HTTPClient.get(port: port, path: "/visits/%22%3E").get()
        #expect(hostile.status == 404, "\(hostile.body)")
        #expect(Self.backends(application) >= 2, "each worker's pool holds a warm connection")

        // A rolling restart under load: every request answered, and both workers replaced.
        let before = try supervisor.waitForWorkers(2)
        let load = RequestLoop(port: port, path: "/visits/\(page)", concurrency: 4, keepAlive: true)
        usleep(300_000)
        supervisor.signal(SIGHUP)
        try supervisor.waitForLog("rolling restart done", timeout: 30)
        usleep(300_000)
        let (succeeded, failures) = load.stop()
        #expect(failures.isEmpty, "\(failures.count) failed during the HUP: \(failures.prefix(5))")
        #expect(succeeded > 20)
        #expect(Set(try supervisor.waitForWorkers(2)).isDisjoint(with: before))
        // Two heartbeat timeouts (3 s) under load passed without a missed WATCHDOG=1.
        #expect(!supervisor.log.contains("heartbeat missed"), "\(supervisor.log)")

        supervisor.signal(SIGTERM)
        #expect(try supervisor.waitForExit(timeout: 20) == 0)
        usleep(200_000)
        #expect(Self.backends(application) == 0, "the pools were not disposed")
        #expect(!supervisor.log.contains("graceful timeout"), "\(supervisor.log)")
    }

    /// What the supervisor passes every worker reaches one built on the library: the log format and level, the
    /// request limit, the admin endpoint's scrape; a bad setting is one line and exit 78.
    @Test func theSupervisorsSettingsReachAWorkerBuiltOnTheLibrary() throws {
        let binary = try #require(ProcessInfo.processInfo.environment["PREFORK_EXAMPLE_BIN"])
        let supervisor = try SupervisorProcess(["--workers", "1", "--log-format", "json", "--max-requests", "5",
                                                "--metrics-bind", "127.0.0.1:0", "--", binary],
                                               environment: ["NO_CLEANUP": "1"])
        try supervisor.waitForLog("all 1 workers ready", timeout: 20)
        let port = try supervisor.port()
        let first = try supervisor.waitForWorkers(1)
        // The worker's own lines are JSON too.
        try supervisor.waitForLog("\"logger\":\"visit-counter\",", timeout: 5)
        let scrape = try HTTPClient.get(port: try supervisor.metricsPort(), path: "/metrics").get()
        #expect(scrape.body.contains("prefork_worker_scrape_ok{slot=\"0\"} 1"), "\(scrape.body)")
        for _ in 0..<6 { _ = HTTPClient.get(port: port, path: "/healthz") }
        try supervisor.waitForLog("max-requests", timeout: 10)
        let deadline = Date().addingTimeInterval(10)
        while (try? supervisor.waitForWorkers(1, timeout: 1)) == first, Date() < deadline { usleep(100_000) }
        #expect(try supervisor.waitForWorkers(1) != first, "recycled after MAX_REQUESTS: \(supervisor.log)")
        supervisor.signal(SIGTERM)
        #expect(try supervisor.waitForExit(timeout: 20) == 0)

        let alone = try SupervisorProcess([], environment: ["LOG_LEVEL": "loud"], bindEphemeral: false, executable: binary)
        #expect(try alone.waitForExit(timeout: 10) == 78)
        #expect(alone.log.split(separator: "\n").count == 1 && alone.log.contains("LOG_LEVEL"), "\(alone.log)")
    }

    /// The worker's own configuration error (no DATABASE_URL: one line, exit 78) is the supervisor's exit 78 at
    /// once, not exit 3 after ten identical lines; systemd's RestartPreventExitStatus=78 then applies.
    @Test func aWorkersConfigurationErrorIsTheSupervisorsExit78() throws {
        let binary = try #require(ProcessInfo.processInfo.environment["PREFORK_EXAMPLE_BIN"])
        let supervisor = try SupervisorProcess(["--workers", "2", "--", binary],
                                               environment: ["DATABASE_URL": "", "NO_CLEANUP": "1"])
        #expect(try supervisor.waitForExit(timeout: 10) == 78)
        #expect(supervisor.log.contains("retrying cannot help"), "\(supervisor.log)")
        #expect(!supervisor.log.contains("restarting after backoff"), "\(supervisor.log)")
    }
}
