import Foundation
import IntegrationSupport
import Testing

/// `supervisor healthcheck`, the image's HEALTHCHECK: unhealthy while no worker is ready, and it finds the
/// supervisor's address however it was given (PORT=0, `[::]`).
@Suite("The healthcheck asks the supervisor")
struct HealthCheckTests {
    func healthcheck(_ supervisor: SupervisorProcess, _ arguments: String = "", environment: String = "env -u PORT -u BIND")
        throws -> (status: Int32, output: String) {
        runShell("\(environment) '\(try Binaries.path("supervisor"))' healthcheck --control-socket '\(supervisor.controlSocket!)' "
            + "\(arguments) 2>&1")
    }

    /// A worker that takes 3 s to boot accepts nothing meanwhile: the check says so at once, instead of waiting for
    /// its timeout on a connection nobody accepts.
    @Test func unhealthyAtOnceWhileNoWorkerIsReady() throws {
        let supervisor = try SupervisorProcess(["--workers", "1", "--", try Binaries.path("test-worker")],
                                               environment: ["TEST_WORKER_BOOT_DELAY": "3000"])
        _ = try supervisor.port()
        let started = Date()
        let booting = try healthcheck(supervisor)
        #expect(booting.status == 1 && booting.output.contains("no worker is ready (booting: 0/1 workers ready)"), "\(booting)")
        #expect(Date().timeIntervalSince(started) < 1.5)
        try supervisor.waitForLog("all 1 workers ready")
        let ready = try healthcheck(supervisor)
        #expect(ready.status == 0, "\(ready)")
        supervisor.signal(SIGTERM)
        #expect(try supervisor.waitForExit() == 0)
    }

    /// PORT=0 (or `--bind :0`): only the supervisor knows the port it got; BIND and PORT cannot say it.
    @Test func findsAPortPickedByTheKernel() throws {
        let supervisor = try SupervisorProcess(["--workers", "1", "--", try Binaries.path("test-worker")],
                                               environment: ["PORT": "0"], bindEphemeral: false)
        try supervisor.waitForLog("all 1 workers ready")
        let port = try supervisor.portFromStatus(workers: 1, host: "0.0.0.0")
        #expect(port != 0)
        let check = try healthcheck(supervisor, environment: "PORT=0")
        #expect(check.status == 0, "\(check)\n\(supervisor.log)")
        supervisor.signal(SIGTERM)
        #expect(try supervisor.waitForExit() == 0)
    }

    /// `--bind [::]:PORT` takes IPv4 too, as uvicorn's and gunicorn's do on Linux: IPv4 clients, and the check.
    @Test func anIPv6WildcardAlsoTakesIPv4() throws {
        let supervisor = try SupervisorProcess(["--workers", "1", "--bind", "[::]:0", "--", try Binaries.path("test-worker")],
                                               bindEphemeral: false)
        try supervisor.waitForLog("all 1 workers ready")
        let line = try supervisor.waitForLog("listening on [::]:").first!
        let port = try #require(line.range(of: #"\[::\]:(\d+)"#, options: .regularExpression).flatMap { UInt16(line[$0].dropFirst(5)) })
        guard case .success(let response) = HTTPClient.get(port: port, path: "/") else {
            Issue.record("no answer over IPv4 on [::]:\(port)\n\(supervisor.log)")
            return
        }
        #expect(response.status == 200)
        let check = try healthcheck(supervisor, environment: "BIND='[::]:\(port)'")
        #expect(check.status == 0, "\(check)")
        supervisor.signal(SIGTERM)
        #expect(try supervisor.waitForExit() == 0)
    }
}
