import IntegrationSupport
import Foundation
import Testing

/// Black-box tests: the real supervisor binary, the real test worker, real signals and sockets.
/// Serialized: each test runs several processes, and the machine has two cores.
@Suite("Supervisor with real workers", .serialized)
struct LifecycleTests {
    let worker: String

    init() throws { worker = try Binaries.path("test-worker") }

    @Test func workersShareOnePortAndEachAnswersFromItsOwnPid() throws {
        let supervisor = try SupervisorProcess(["--workers", "4", "--", worker])
        let port = try supervisor.port()
        try supervisor.waitForLog("all 4 workers ready")
        let workers = try supervisor.waitForWorkers(4)
        #expect(HTTPClient.answeringPIDs(port: port, count: 4) == Set(workers))
        for pid in workers {
            // Each worker leads its own process group, so a terminal's Ctrl-C reaches only the supervisor.
            #expect(ProcessTable.stat(pid)?[2] == String(pid))
            let environment = ProcessTable.environment(pid)
            #expect(environment["LISTEN_PID"] == String(pid))
            #expect(environment["LISTEN_FDS"] == "1")
            #expect(environment["LISTEN_FDNAMES"] == "http")
            #expect(environment["WATCHDOG_PID"] == String(pid))
        }
        supervisor.signal(SIGTERM)
        #expect(try supervisor.waitForExit() == 0)
    }

    /// Read back from the kernel on the worker's own accepted socket: Nagle off (`IPPROTO_TCP`), and not the
    /// same number at `SOL_SOCKET`, which is `SO_DEBUG` (refused without CAP_NET_ADMIN, so a non-root
    /// worker closed every connection).
    @Test func acceptedConnectionsHaveNagleOffAndNoDebugFlag() throws {
        let supervisor = try SupervisorProcess(["--workers", "1", "--", worker])
        let port = try supervisor.port()
        try supervisor.waitForLog("all 1 workers ready")
        let connection = KeepAliveConnection(port: port)
        let body = try connection.get("/").get().body
        let pid = try #require(Int32(body.split(separator: " ")[1]))
        let options = try AcceptedSocket.options(pid: pid, clientPort: try #require(connection.localPort))
        #expect(options == AcceptedSocket.Options(noDelay: true, debug: false))
        supervisor.signal(SIGTERM)
        #expect(try supervisor.waitForExit() == 0)
    }

    @Test func kernelBacklogIsTheOneAskedForWhileNIOWorkersRun() throws {
        let supervisor = try SupervisorProcess(["--workers", "2", "--backlog", "1536", "--", worker])
        let port = try supervisor.port()
        try supervisor.waitForLog("all 2 workers ready")
        let ss = Process()
        ss.executableURL = URL(fileURLWithPath: "/bin/sh")
        ss.arguments = ["-c", "ss -ltnH 'sport = :\(port)'"]
        let pipe = Pipe()
        ss.standardOutput = pipe
        try ss.run()
        ss.waitUntilExit()
        let line = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        // ss prints State, Recv-Q, Send-Q; for a listening socket Send-Q is the backlog.
        let columns = line.split(separator: " ", omittingEmptySubsequences: true)
        #expect(columns.count >= 3 && columns[2] == "1536", "ss said: \(line)")
        supervisor.signal(SIGTERM)
        #expect(try supervisor.waitForExit() == 0)
    }

    @Test func aKilledWorkerIsReplacedAndTheSlotServesAgain() throws {
        let supervisor = try SupervisorProcess(["--workers", "2", "--", worker])
        let port = try supervisor.port()
        try supervisor.waitForLog("all 2 workers ready")
        let before = try supervisor.waitForWorkers(2)
        kill(before[0], SIGKILL)
        try supervisor.waitForLog("exited with signal 9")
        try supervisor.waitForLog("info: ready ", count: 3)
        let after = try supervisor.waitForWorkers(2)
        #expect(!after.contains(before[0]))
        #expect(after.contains(before[1]))
        #expect(HTTPClient.answeringPID(port: port) != nil)
        supervisor.signal(SIGTERM)
        #expect(try supervisor.waitForExit() == 0)
    }

    @Test func terminateLetsSlowInFlightRequestsFinishThenExitsZero() throws {
        let supervisor = try SupervisorProcess(["--workers", "2", "--graceful-timeout", "5", "--", worker])
        let port = try supervisor.port()
        try supervisor.waitForLog("all 2 workers ready")
        let results = Mutex<[Result<HTTPClient.Response, TestFailure>]>([])
        let group = DispatchGroup()
        for _ in 0..<4 {
            group.enter()
            Thread.detachNewThread {
                let result = HTTPClient.get(port: port, path: "/sleep/800")
                results.withLock { $0.append(result) }
                group.leave()
            }
        }
        usleep(200_000)  // the requests are in flight
        let stoppedAt = Date()
        supervisor.signal(SIGTERM)
        group.wait()
        #expect(try supervisor.waitForExit() == 0)
        let elapsed = Date().timeIntervalSince(stoppedAt)
        let responses = results.withLock { $0 }
        #expect(responses.count == 4)
        for response in responses {
            #expect(throws: Never.self) { let r = try response.get(); #expect(r.status == 200) }
        }
        #expect(elapsed < 4, "a drain of 0.6 s took \(elapsed) s")
        #expect(!supervisor.log.contains("SIGKILL"))
    }

    @Test func aWorkerIgnoringTerminateIsKilledAfterTheGracefulTimeout() throws {
        let supervisor = try SupervisorProcess(["--workers", "1", "--graceful-timeout", "1", "--", worker],
                                               environment: ["TEST_WORKER_IGNORE_TERM": "1"])
        try supervisor.waitForLog("all 1 workers ready")
        let stoppedAt = Date()
        supervisor.signal(SIGTERM)
        #expect(try supervisor.waitForExit() == 0)
        let elapsed = Date().timeIntervalSince(stoppedAt)
        #expect(elapsed >= 0.9 && elapsed < 3, "stop took \(elapsed) s")
        #expect(supervisor.log.contains("sending SIGKILL: graceful timeout expired"))
        #expect(supervisor.log.contains("exited with signal 9"))
    }

    @Test func hangupUnderLoadFailsNoRequestAndReplacesEveryWorker() throws {
        let supervisor = try SupervisorProcess(["--workers", "3", "--", worker])
        let port = try supervisor.port()
        try supervisor.waitForLog("all 3 workers ready")
        let before = Set(try supervisor.waitForWorkers(3))
        let load = RequestLoop(port: port, concurrency: 8)
        usleep(300_000)
        for round in 1...3 {
            supervisor.signal(SIGHUP)
            try supervisor.waitForLog("rolling restart done", count: round)
            usleep(200_000)
        }
        let (succeeded, failures) = load.stop()
        #expect(failures.isEmpty, "\(failures.count) failed: \(failures.prefix(5))")
        #expect(succeeded > 50)
        let after = Set(try supervisor.waitForWorkers(3))
        #expect(after.isDisjoint(with: before))
        #expect(HTTPClient.get(port: port).map(\.body).map { $0.contains("generation 4") } == .success(true))
        supervisor.signal(SIGTERM)
        #expect(try supervisor.waitForExit() == 0)
    }

    @Test func hangupWithABrokenDeployKeepsTheOldWorkers() throws {
        let marker = "/tmp/prefork-broken-deploy-\(getpid())"
        defer { unlink(marker) }
        let supervisor = try SupervisorProcess(["--workers", "2", "--", worker],
                                               environment: ["TEST_WORKER_BOOT_FAIL_IF_EXISTS": marker])
        let port = try supervisor.port()
        try supervisor.waitForLog("all 2 workers ready")
        let before = try supervisor.waitForWorkers(2)
        #expect(FileManager.default.createFile(atPath: marker, contents: nil))
        supervisor.signal(SIGHUP)
        try supervisor.waitForLog("rolling restart aborted, keeping the old workers")
        #expect(try supervisor.waitForWorkers(2) == before)
        #expect(HTTPClient.get(port: port).map(\.body).map { $0.contains("generation 1") } == .success(true))
        supervisor.signal(SIGTERM)
        #expect(try supervisor.waitForExit() == 0)
    }

    @Test func ttinAndTtouChangeTheWorkerCount() throws {
        let supervisor = try SupervisorProcess(["--workers", "2", "--", worker])
        try supervisor.waitForLog("all 2 workers ready")
        supervisor.signal(SIGTTIN)
        try supervisor.waitForLog("workers=3")
        try supervisor.waitForWorkers(3)
        // One signal at a time: the kernel does not queue a second TTOU while the first is pending.
        supervisor.signal(SIGTTOU)
        try supervisor.waitForWorkers(2)
        supervisor.signal(SIGTTOU)
        try supervisor.waitForWorkers(1)
        supervisor.signal(SIGTTOU)
        try supervisor.waitForLog("already at 1 worker")
        #expect(supervisor.children.count == 1)
        supervisor.signal(SIGTERM)
        #expect(try supervisor.waitForExit() == 0)
    }

    @Test func aFirstGenerationThatCannotBootBacksOffThenExits3() throws {
        let startedAt = Date()
        let supervisor = try SupervisorProcess(["--workers", "2", "--", worker],
                                               environment: ["TEST_WORKER_BOOT_FAIL": "1"])
        #expect(try supervisor.waitForExit(timeout: 20) == 3)
        let elapsed = Date().timeIntervalSince(startedAt)
        let delays = supervisor.log.split(separator: "\n").filter { $0.contains("restarting after backoff") && $0.contains("slot=0") }
        #expect(delays.count == 4)
        #expect(delays.first?.contains("delay=100ms") == true)
        #expect(delays.last?.contains("delay=800ms") == true)
        #expect(elapsed >= 1.5, "gave up after \(elapsed) s, before backing off")
        #expect(supervisor.log.contains("first generation cannot boot"))
    }

    @Test func aWorkerWhoseHeartbeatStopsIsAbortedAndReplaced() throws {
        let supervisor = try SupervisorProcess(["--workers", "1", "--timeout", "1", "--", worker],
                                               environment: ["TEST_WORKER_HANG_AFTER": "1500"])
        let port = try supervisor.port()
        try supervisor.waitForLog("all 1 workers ready")
        let first = try supervisor.waitForWorkers(1)[0]
        try supervisor.waitForLog("heartbeat missed, aborting", timeout: 10)
        try supervisor.waitForLog("exited with signal", timeout: 10)
        try supervisor.waitForLog("info: ready ", count: 2)
        #expect(try supervisor.waitForWorkers(1)[0] != first)
        // The replacement hangs after 1.5 s too (same switch), so whoever answers is just not the first one.
        let answering = HTTPClient.answeringPID(port: port)
        #expect(answering != nil && answering != first)
        supervisor.signal(SIGQUIT)
        #expect(try supervisor.waitForExit() == 0)
    }

    @Test func killingTheSupervisorTakesEveryWorkerWithinASecond() throws {
        let supervisor = try SupervisorProcess(["--workers", "3", "--", worker])
        try supervisor.waitForLog("all 3 workers ready")
        let workers = try supervisor.waitForWorkers(3)
        supervisor.signal(SIGKILL)
        _ = try supervisor.waitForExit()
        let deadline = Date().addingTimeInterval(1)
        while workers.contains(where: ProcessTable.isAlive), Date() < deadline { usleep(10_000) }
        #expect(!workers.contains(where: ProcessTable.isAlive))
    }

    @Test func aStrangersNotifyDatagramIsIgnored() throws {
        let supervisor = try SupervisorProcess(["--workers", "1", "--", worker])
        try supervisor.waitForLog("all 1 workers ready")
        let workerPID = try supervisor.waitForWorkers(1)[0]
        let socketPath = try #require(ProcessTable.environment(workerPID)["NOTIFY_SOCKET"])
        // The test process is no child of the supervisor: its WATCHDOG=trigger must change nothing.
        for _ in 0..<3 {
            #expect(UnixDatagram.send("WATCHDOG=trigger\nSTOPPING=1", to: socketPath) > 0)
        }
        let warnings = try supervisor.waitForLog("not a worker of ours")
        usleep(200_000)
        #expect(warnings.count == 1)
        #expect(supervisor.log.split(separator: "\n").filter { $0.contains("not a worker of ours") }.count == 1)
        #expect(try supervisor.waitForWorkers(1) == [workerPID])
        supervisor.signal(SIGTERM)
        #expect(try supervisor.waitForExit() == 0)
    }
}

import Synchronization
