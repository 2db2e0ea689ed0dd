import Arbiter
import Budget
import Foundation
import Settings
@testable import SupervisorControl
@testable import SupervisorConfiguration
import Testing

@Suite("Budget settings, sizes, status, metrics merging, control responses")
struct OperationsShellTests {
    @Test func budgetDefaultsFollowTheDatabase() throws {
        let off = try BudgetConfiguration.read(workers: 6, cleanup: nil, flags: [:], environment: [:])
        #expect(off.mode == .off && off.limits == nil)
        #expect(try off.check() == nil)
        let enforced = try BudgetConfiguration.read(workers: 4, cleanup: PoolSize(size: 1, overflow: 1), flags: [:],
                                                    environment: ["DATABASE_URL": "postgres://h/db"])
        #expect(enforced.mode == .enforce)
        #expect(enforced.limits == ConnectionLimits(steady: 80, peak: 98, perWorker: 20))
        #expect(try enforced.check() == nil)
    }

    @Test func aBudgetThatDoesNotFitIsRefusedOrWarned() throws {
        let environment = ["DATABASE_URL": "postgres://h/db"]
        let six = try BudgetConfiguration.read(workers: 6, cleanup: nil, flags: [:], environment: environment)
        #expect(throws: StartupError.self) { try six.check() }
        do { _ = try six.check() } catch {
            #expect(error.exitCode == 78)
            #expect(error.message.hasPrefix("connection budget exceeded: 6 workers × 20 = 120 connections"))
            #expect(error.message.contains("| **Max DB connections** |"))
        }
        let warned = try BudgetConfiguration.read(workers: 6, cleanup: nil, flags: ["--budget": "warn"], environment: environment)
        #expect(try warned.check()?.hasPrefix("connection budget exceeded, starting anyway (--budget warn)") == true)
        #expect(warned.limits == nil)
    }

    @Test func automaticPoolsArePassedToEachWorker() throws {
        let auto = try BudgetConfiguration.read(workers: 6, cleanup: nil, flags: [:], environment: ["DB_POOL_SIZE": "auto"])
        #expect(auto.mode == .enforce && auto.poolIsAuto)
        #expect(auto.budget.pool == PoolSize(size: 7, overflow: 6))
        #expect(auto.limits?.perWorker == nil)
        #expect(auto.poolEnvironment(connections: 13) == ["DB_POOL_SIZE=7", "DB_MAX_OVERFLOW=6"])
        let pinned = try BudgetConfiguration.read(workers: 4, cleanup: nil, flags: [:],
                                                  environment: ["DB_POOL_SIZE": "AUTO", "DB_MAX_OVERFLOW": "5"])
        #expect(pinned.poolEnvironment(connections: 20) == ["DB_POOL_SIZE=15", "DB_MAX_OVERFLOW=5"])
        // Counted pools: the numbers counted reach the worker, the defaults too; none when the budget is off.
        let counted = try BudgetConfiguration.read(workers: 4, cleanup: nil, flags: [:],
                                                   environment: ["DATABASE_URL": "postgresql://app@db/app"])
        #expect(counted.poolEnvironment(connections: 20) == ["DB_POOL_SIZE=10", "DB_MAX_OVERFLOW=10"])
        let given = try BudgetConfiguration.read(workers: 4, cleanup: nil, flags: [:],
                                                 environment: ["DATABASE_URL": "postgresql://app@db/app", "DB_POOL_SIZE": "5"])
        #expect(given.poolEnvironment(connections: 15) == ["DB_POOL_SIZE=5", "DB_MAX_OVERFLOW=10"])
        let fixed = try BudgetConfiguration.read(workers: 4, cleanup: nil, flags: [:], environment: [:])
        #expect(fixed.mode == .off && fixed.poolEnvironment(connections: 20).isEmpty)
        #expect(throws: StartupError.self) {
            try BudgetConfiguration.read(workers: 100, cleanup: nil, flags: [:], environment: ["DB_POOL_SIZE": "auto"])
        }
    }

    @Test(arguments: [
        ([:], ["DB_POOL_SIZE": "ten"], 78), ([:], ["DB_MAX_CONNECTIONS": "0"], 78), ([:], ["REPLICAS": "-1"], 78),
        ([:], ["DB_BUDGET": "strict"], 78), (["--budget": "strict"], [:], 64), (["--replicas": "two"], [:], 64),
    ] as [([String: String], [String: String], Int32)])
    func badBudgetSettingsNameTheirSource(flags: [String: String], environment: [String: String], code: Int32) {
        do {
            _ = try BudgetConfiguration.read(workers: 1, cleanup: nil, flags: flags, environment: environment)
            Issue.record("accepted \(flags) \(environment)")
        } catch {
            #expect(error.exitCode == code)
            let name = (flags.keys.first ?? environment.keys.first)!
            #expect(error.message.hasPrefix(name), "\(error.message)")
        }
    }

    @Test(arguments: [("512M", 512 << 20), ("1G", 1 << 30), ("1.5GiB", 1_610_612_736), ("300000", 300_000),
                      ("64mb", 64 << 20), ("2k", 2048)])
    func sizes(text: String, bytes: Int) throws {
        #expect(ValueSyntax.size(text) == bytes)
    }

    @Test(arguments: ["", "0", "-1M", "lots", "1X", "1e30"])
    func badSizes(text: String) {
        #expect(ValueSyntax.size(text) == nil)
        #expect(Catalog.maxWorkerMemory.kind.problem(text, name: "--max-worker-memory")?.hasPrefix("--max-worker-memory: expected a size") == true)
    }

    @Test func newFlagsParse() throws {
        let arguments = try SupervisorArguments(parsing: [
            "--budget", "warn", "--replicas=2", "--max-requests", "1000", "--max-requests-jitter", "50",
            "--max-worker-memory", "512M", "--control-socket", "none", "--metrics-bind", "127.0.0.1:9100", "--", "w",
        ])
        #expect(arguments.flags["budget"] == "warn" && arguments.flags["replicas"] == "2")
        #expect(arguments.flags["max-requests"] == "1000" && arguments.flags["max-requests-jitter"] == "50")
        #expect(arguments.flags["max-worker-memory"] == "512M" && arguments.flags["control-socket"] == "none")
        #expect(arguments.flags["metrics-bind"] == "127.0.0.1:9100" && arguments.command == ["w"])
    }

    @Test func metricsOfSeveralWorkersAreMergedByFamilyAndLabelledBySlot() {
        let worker = """
            # HELP http_requests_total Requests.
            # TYPE http_requests_total counter
            http_requests_total{route="/a",status="200"} 3
            http_requests_total{route="/b",status="200"} 1
            # TYPE up gauge
            up 1
            loose_metric 7
            """
        let merged = MetricsMerger.merge([(0, worker), (1, worker.replacingOccurrences(of: " 3", with: " 5"))])
        #expect(merged == """
            # HELP http_requests_total Requests.
            # TYPE http_requests_total counter
            http_requests_total{slot="0",route="/a",status="200"} 3
            http_requests_total{slot="0",route="/b",status="200"} 1
            http_requests_total{slot="1",route="/a",status="200"} 5
            http_requests_total{slot="1",route="/b",status="200"} 1
            # TYPE up gauge
            up{slot="0"} 1
            up{slot="1"} 1
            loose_metric{slot="0"} 7
            loose_metric{slot="1"} 7

            """)
        #expect(MetricsMerger.merge([(2, "empty{} 1\n")]) == "empty{slot=\"2\"} 1\n")
    }

    @Test func supervisorMetricsHaveHeadersForEveryFamily() {
        var metrics = SupervisorMetrics()
        metrics.workers = 4
        metrics.restarts = ["exit": 2, "heartbeat": 1]
        metrics.cleanupLastExitCode = 0
        let text = metrics.exposition(scrapes: [(0, true), (1, false)])
        #expect(text.contains("prefork_workers 4\n"))
        #expect(text.contains("prefork_worker_restarts_total{reason=\"exit\"} 2\nprefork_worker_restarts_total{reason=\"heartbeat\"} 1\n"))
        #expect(text.contains("prefork_cleanup_last_exit_code 0\n"))
        #expect(text.contains("prefork_worker_scrape_ok{slot=\"1\"} 0\n"))
        let families = text.split(separator: "\n").filter { $0.hasPrefix("# TYPE ") }.map { $0.split(separator: " ")[2] }
        #expect(Set(families).count == families.count)
    }

    @Test func controlResponsesParse() {
        #expect(ControlSocket.parse("ok\nbody\n") == .ok("body\n"))
        #expect(ControlSocket.parse("refused: too many\n") == .refused("too many"))
        #expect(ControlSocket.parse("error: what\n") == .error("what"))
        #expect(ControlSocket.parse("garbage") == .error("unexpected response from the supervisor: garbage"))
        #expect(ControlSocket.defaultPath(environment: ["RUNTIME_DIRECTORY": "/run/api"]) == "/run/api/supervisor.sock")
        #expect(ControlSocket.defaultPath(environment: ["XDG_RUNTIME_DIR": "/run/user/1000"]) == "/run/user/1000/prefork/supervisor.sock")
    }

    @Test func statusRendersAsATableAndAsJSON() throws {
        var report = StatusReport(
            supervisorPID: 42, summary: "2/2 workers ready, generation 1", workers: 2, ready: 1, generation: 1, retiring: 1,
            slots: [
                .init(.init(slot: 0, state: .ready, pid: 100, generation: 1, uptime: .seconds(3725), restarts: 0,
                            heartbeatAge: .milliseconds(1200), connections: 20, status: "serving \"fine\""),
                      rssBytes: 27_262_976, openConnections: 1),
                .init(.init(slot: 1, state: .restarting, pid: nil, generation: nil, uptime: nil, restarts: 3, heartbeatAge: nil,
                            connections: 0, status: nil),
                      rssBytes: nil, openConnections: nil),
            ],
            cleanup: .init(schedule: "0 3 * * *", zone: "UTC", nextRun: "2026-11-28T03:00:00Z", runningPID: nil,
                           lastResult: "exit code 0", lastExitCode: 0, lastDurationSeconds: 16.2, lastFinished: "2026-11-27T03:00:16Z"),
            budget: "80 of 80", connectionsHeld: 40, connectionsPeak: 98, listenerStop: .backlog)
        report.listening = "127.0.0.1:8080"
        report.orphansSignalled = 3
        report.orphansRunning = 1
        report.trees = "cgroup per worker under /sys/fs/cgroup/x"
        #expect(report.text == """
            supervisor pid 42: 2/2 workers ready, generation 1
            SLOT  PID  GEN  STATE       UPTIME  RESTARTS  HEARTBEAT  RSS      CONNS  STATUS
            0     100  1    ready       62m     0         1.2s ago   26.0 MB  1/20   serving "fine"
            1     -    -    restarting  -       3         -          -        -
            retiring: 1 worker draining
            cleanup: 0 3 * * * (UTC), next 2026-11-28T03:00:00Z; last run 2026-11-27T03:00:16Z: exit code 0 after 16s
            budget: 80 of 80
            listening on 127.0.0.1:8080; at a stop: the accept queue shrinks to one connection (this kernel allows a socket filter only with CAP_NET_ADMIN)
            worker trees: cgroup per worker under /sys/fs/cgroup/x; orphans signalled: 3, 1 still running

            """)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(report.json.utf8)) as? [String: Any])
        let slots = try #require(object["slots"] as? [[String: Any]])
        #expect(slots[0]["status"] as? String == "serving \"fine\"")
        #expect(slots[1]["pid"] is NSNull)
        #expect(slots[0]["open_connections"] as? Int == 1 && slots[0]["connections"] as? Int == 20)
        #expect((object["cleanup"] as? [String: Any])?["last_duration_seconds"] as? Double == 16.2)
        #expect(object["connections_peak"] as? Int == 98)
        #expect(object["listener_stop"] as? String == "backlog")
        #expect(object["listening"] as? String == "127.0.0.1:8080")
        #expect(object["orphans_signalled"] as? Int == 3 && object["orphans_running"] as? Int == 1)
        #expect(object["worker_trees"] as? String == "cgroup per worker under /sys/fs/cgroup/x")
    }
}

extension BudgetConfiguration {
    /// The budget from flags named as on the command line (`--budget`) and variables.
    static func read(workers: Int, cleanup: PoolSize?, flags: [String: String],
                     environment: [String: String]) throws(StartupError) -> BudgetConfiguration {
        let named = Dictionary(uniqueKeysWithValues: flags.map { (String($0.key.drop { $0 == "-" }), $0.value) })
        return try read(workers: workers, cleanup: cleanup, reader: SettingsReader(flags: named, environment: environment))
    }
}

/// The arbiter is platform-free and states EX_CONFIG as a number: it must stay sysexits.h's, which the
/// supervisor, the workers and the cleanup exit with.
@Test func theArbitersConfigurationExitCodeIsSysexits() {
    #expect(BootFailure.configurationExitCode == EX_CONFIG)
    #expect(SupervisorExitCode.configuration == EX_CONFIG)
    #expect(SupervisorExitCode.usage == EX_USAGE)
}

/// A worker's `STATUS=` reaches the operator's terminal: escape sequences in it are shown, not obeyed.
@Test func aWorkersStatusCannotWriteEscapeSequencesToTheTerminal() {
    #expect(StatusReport.printable("ok \u{1B}]0;owned\u{07} \u{9B}2J\tdone é") == "ok ?]0;owned? ?2J?done é")
}
