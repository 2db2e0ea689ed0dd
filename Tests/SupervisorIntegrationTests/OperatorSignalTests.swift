import IntegrationSupport
import Foundation
import Testing

/// Issue 15: `kill -USR1 <supervisor>` ended every worker at once (relayed, and fatal by default). Now no signal
/// an operator sends the supervisor ends a worker that was not asked to stop, ours or a foreign one.
@Suite("Operator signals", .serialized)
struct OperatorSignalTests {
    /// Sends each signal, lets it be handled, and checks the same workers serve every request meanwhile.
    func sendWithoutLoss(_ signals: [Int32], to supervisor: SupervisorProcess, workers: Int,
                         waitFor: (Int32) throws -> Void) throws {
        let port = try supervisor.port()
        let before = try supervisor.waitForWorkers(workers)
        let load = RequestLoop(port: port, concurrency: 4)
        usleep(200_000)
        for signal in signals {
            supervisor.signal(signal)
            try waitFor(signal)
        }
        usleep(300_000)
        let (succeeded, failures) = load.stop()
        #expect(failures.isEmpty, "\(failures.count) failed: \(failures.prefix(5))")
        #expect(succeeded > 20)
        #expect(try supervisor.waitForWorkers(workers) == before, "\(supervisor.log)")
        #expect(!supervisor.log.contains("exited with signal"), "\(supervisor.log)")
        supervisor.signal(SIGTERM)
        #expect(try supervisor.waitForExit() == 0)
    }

    @Test func byDefaultUsr1AndUsr2AndStraySignalsReachNoWorker() throws {
        let supervisor = try SupervisorProcess(["--workers", "2", "--", try Binaries.path("test-worker")])
        try supervisor.waitForLog("all 2 workers ready")
        // 34 and 64 are SIGRTMIN and SIGRTMAX: real-time signals used to end the supervisor and every worker.
        try sendWithoutLoss([SIGUSR1, SIGUSR2, SIGALRM, SIGPWR, SIGIO, SIGXCPU, SIGXFSZ, SIGSYS, SIGTRAP, 34, 40, 64], to: supervisor,
                            workers: 2) { signal in
            switch signal {
            case SIGUSR1: try supervisor.waitForLog("ignored: SIGUSR1 is not relayed to the workers (start with --relay-signal USR1")
            case SIGUSR2: try supervisor.waitForLog("ignored: SIGUSR2 is not relayed")
            default: try supervisor.waitForLog("ignored: signal \(signal)")
            }
        }
        #expect(!supervisor.log.contains("SIGUSR1 received"))
    }

    @Test func relayedOnRequestToOurWorkersWhichSurviveIt() throws {
        let supervisor = try SupervisorProcess(["--workers", "2", "--relay-signal", "USR1", "--relay-signal", "sigusr2", "--",
                                                try Binaries.path("test-worker")])
        try supervisor.waitForLog("all 2 workers ready")
        try sendWithoutLoss([SIGUSR1, SIGUSR2], to: supervisor, workers: 2) { signal in
            let name = signal == SIGUSR1 ? "USR1" : "USR2"
            try supervisor.waitForLog("relayed SIG\(name) to 2 ready workers")
            try supervisor.waitForLog("SIG\(name) received", count: 2)
        }
    }

    /// Found by review: a stopped supervisor froze every worker (sd_notify blocked on the full queue) and, once
    /// continued, aborted them all for heartbeats it had not read.
    @Test func stoppingAndContinuingTheSupervisorKillsNoWorker() throws {
        let supervisor = try SupervisorProcess(["--workers", "4", "--timeout", "2", "--", try Binaries.path("test-worker")])
        try supervisor.waitForLog("all 4 workers ready")
        let port = try supervisor.port()
        let before = try supervisor.waitForWorkers(4)
        supervisor.signal(SIGSTOP)
        // Stopped for two heartbeat timeouts: the workers go on serving meanwhile.
        let load = RequestLoop(port: port, concurrency: 2)
        usleep(4_000_000)
        let (served, failures) = load.stop()
        supervisor.signal(SIGCONT)
        try supervisor.waitForLog("the supervisor did not run for")
        usleep(1_500_000)
        #expect(failures.isEmpty && served > 50, "while stopped: \(served) served, \(failures.prefix(3))")
        #expect(try supervisor.waitForWorkers(4) == before, "\(supervisor.log)")
        #expect(!supervisor.log.contains("heartbeat missed"), "\(supervisor.log)")
        supervisor.signal(SIGTERM)
        #expect(try supervisor.waitForExit() == 0)
    }

    @Test func aBadRelaySignalIsAUsageError() throws {
        let supervisor = try SupervisorProcess(["--relay-signal", "TERM", "--", try Binaries.path("test-worker")])
        #expect(try supervisor.waitForExit() == 64)
        #expect(supervisor.log.contains("--relay-signal: expected USR1, USR2 or none, got 'TERM'"), "\(supervisor.log)")
    }

    /// The real uvicorn, serving on fd 3 with its default handlers: USR1 would end it. The app is the benchmarks'
    /// (benchmarks/python/pid_app.py), which says which process answered.
    @Test func aForeignUvicornWorkerSurvivesUsr1AndUsr2() throws {
        let python = try #require(ProcessInfo.processInfo.environment["PREFORK_TEST_PYTHON"],
                                  "PREFORK_TEST_PYTHON (a Python with uvicorn; scripts/test makes .build/test-venv) is not set")
        let supervisor = try SupervisorProcess(["--workers", "2", "--no-notify", "--", python, "-m", "uvicorn",
                                                "--app-dir", Binaries.fixtures + "/../../../benchmarks/python", "pid_app:app", "--fd", "3",
                                                "--log-level", "warning"])
        try supervisor.waitForLog("all 2 workers ready")
        // uvicorn binds nothing itself; wait until both answer on the supervisor's socket.
        let port = try supervisor.port()
        let workers = try supervisor.waitForWorkers(2)
        #expect(HTTPClient.answeringPIDs(port: port, count: 2) == Set(workers))
        try sendWithoutLoss([SIGUSR1, SIGUSR2], to: supervisor, workers: 2) { signal in
            try supervisor.waitForLog("ignored: SIG\(signal == SIGUSR1 ? "USR1" : "USR2") is not relayed")
        }
    }
}
