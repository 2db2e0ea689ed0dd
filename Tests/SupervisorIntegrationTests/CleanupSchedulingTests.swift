import Foundation
import IntegrationSupport
import Testing

/// The supervisor's scheduler with real processes: a shell script stands in for the cleanup job.
@Suite("Scheduling the cleanup job", .serialized)
struct CleanupSchedulingTests {
    static var job: String { Binaries.fixtures + "/cleanup_job.sh" }

    /// The job's log, as lines.
    static func lines(_ path: String) -> [String] {
        ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    static func until(_ timeout: Double = 10, _ condition: () -> Bool) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while !condition() {
            guard Date() < deadline else { throw TestFailure("condition not met within \(timeout) s") }
            usleep(20_000)
        }
    }

    func supervisor(_ flags: [String], mode: String = "quick", environment: [String: String] = [:]) throws
        -> (SupervisorProcess, String) {
        let log = NSTemporaryDirectory() + "job-\(getpid())-\(UInt32.random(in: 0 ... .max)).log"
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        var env = ["JOB_LOG": log, "JOB_MODE": mode]
        env.merge(environment) { $1 }
        let process = try SupervisorProcess(["--workers", "1", "--cleanup-command", Self.job] + flags
                                            + ["--", try Binaries.path("test-worker")], environment: env)
        return (process, log)
    }

    @Test func runsOnItsScheduleWithItsOwnSmallPool() throws {
        let (supervisor, log) = try supervisor(["--cleanup-schedule", "@every 1s"],
                                               environment: ["DB_POOL_SIZE": "10", "DB_MAX_OVERFLOW": "10",
                                                             "CLEANUP_DB_MAX_OVERFLOW": "0"])
        try Self.until { Self.lines(log).filter { $0.hasPrefix("end") }.count >= 2 }
        let starts = Self.lines(log).filter { $0.hasPrefix("start") }
        #expect(starts.allSatisfy { $0.hasSuffix(" 1 0") }, "DB_POOL_SIZE=1 DB_MAX_OVERFLOW=0 whatever the workers use: \(starts)")
        try supervisor.waitForLog("cleanup finished with exit code 0")
        try supervisor.waitForLog("cleanup scheduled")
        supervisor.signal(SIGTERM)
        #expect(try supervisor.waitForExit() == 0)
    }

    @Test func aSlowRunIsNotOverlapped() throws {
        let (supervisor, log) = try supervisor(["--cleanup-schedule", "@every 1s"], mode: "slow")
        try supervisor.waitForLog("cleanup still running, this run is skipped", count: 2, timeout: 15)
        try Self.until(15) { Self.lines(log).contains { $0.hasPrefix("end") } }
        var running = 0
        for line in Self.lines(log) {
            if line.hasPrefix("start") { running += 1 }
            if line.hasPrefix("end") { running -= 1 }
            #expect(running <= 1, "two runs at once: \(Self.lines(log))")
        }
        supervisor.signal(SIGTERM)
        #expect(try supervisor.waitForExit() == 0)
    }

    @Test func aRunIgnoringTermIsKilledAfterTheTimeoutWithItsChildren() throws {
        let (supervisor, log) = try supervisor(["--cleanup-schedule", "@yearly", "--cleanup-on-start",
                                                "--cleanup-timeout", "1"], mode: "stubborn")
        try Self.until { Self.lines(log).contains { $0.hasPrefix("child") } }
        let child = Int32(Self.lines(log).first { $0.hasPrefix("child") }!.split(separator: " ")[1])!
        try supervisor.waitForLog("cleanup timed out", timeout: 5)
        try supervisor.waitForLog("cleanup did not stop after SIGTERM, killed its process group", timeout: 5)
        try supervisor.waitForLog("cleanup finished with signal 9", timeout: 5)
        try Self.until(5) { !ProcessTable.isAlive(child) }
        #expect(!Self.lines(log).contains { $0.hasPrefix("end") })
        supervisor.signal(SIGTERM)
        #expect(try supervisor.waitForExit() == 0)
    }

    @Test func aStopInterruptsTheRunningJobAndWaitsForIt() throws {
        let (supervisor, log) = try supervisor(["--cleanup-schedule", "@yearly", "--cleanup-on-start"], mode: "slow")
        try Self.until { Self.lines(log).contains { $0.hasPrefix("start") } }
        let started = Date()
        supervisor.signal(SIGTERM)
        #expect(try supervisor.waitForExit() == 0)
        #expect(Date().timeIntervalSince(started) < 2, "the slow job (2.5 s) was interrupted, not waited out")
        #expect(supervisor.log.contains("cleanup finished with"))
    }

    /// A job that ignores SIGTERM holds a graceful stop for the graceful timeout; a second TERM kills its group.
    @Test func aSecondTermKillsAStubbornJobAtOnce() throws {
        let (supervisor, log) = try supervisor(["--cleanup-schedule", "@yearly", "--cleanup-on-start",
                                                "--graceful-timeout", "30"], mode: "stubborn")
        try Self.until { Self.lines(log).contains { $0.hasPrefix("child") } }
        supervisor.signal(SIGTERM)
        try supervisor.waitForLog("graceful stop")
        usleep(300_000)
        #expect(ProcessTable.isAlive(supervisor.pid), "waits for the job")
        let started = Date()
        supervisor.signal(SIGTERM)
        #expect(try supervisor.waitForExit() == 0)
        #expect(Date().timeIntervalSince(started) < 2)
        #expect(supervisor.log.contains("cleanup finished with signal 9"))
    }

    /// systemd's `STATUS=` carries the next run.
    @Test func theNextRunIsInTheStatus() throws {
        let path = "/tmp/prefork-cleanup-status-\(getpid())"
        unlink(path)
        let server = try UnixDatagram.bound(path)
        defer { close(server); unlink(path) }
        var tv = timeval(tv_sec: 0, tv_usec: 200_000)
        setsockopt(server, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let supervisor = try SupervisorProcess(["--workers", "1", "--cleanup-command", Self.job, "--cleanup-schedule",
                                                "30 4 * * *", "--cleanup-timezone", "Europe/Berlin", "--",
                                                try Binaries.path("test-worker")], environment: ["NOTIFY_SOCKET": path])
        var messages: [String] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        let deadline = Date().addingTimeInterval(10)
        while !messages.contains(where: { $0.hasPrefix("STATUS=1/1 workers ready") }), Date() < deadline {
            let count = recv(server, &buffer, buffer.count, 0)
            if count > 0 { messages.append(String(decoding: buffer[..<count], as: UTF8.self)) }
        }
        let status = try #require(messages.first { $0.hasPrefix("STATUS=1/1 workers ready") })
        // 04:30 in Berlin is 02:30 or 03:30 UTC.
        #expect(status.contains("; next cleanup 20") && status.contains(":30:00Z"), "\(status)")
        supervisor.signal(SIGTERM)
        #expect(try supervisor.waitForExit() == 0)
    }

    @Test func badSchedulesZonesAndCommandsAreRefusedAtStart() throws {
        let worker = try Binaries.path("test-worker")
        for (flags, environment, code, message) in [
            (["--cleanup-schedule", "0 25 * * *"], [:], Int32(64), "hour field '25'"),
            (["--cleanup-command", Self.job], ["CLEANUP_SCHEDULE": "@sometimes"], 78, "CLEANUP_SCHEDULE: invalid schedule"),
            (["--cleanup-timezone", "Mars/Base"], [:], 64, "unknown time zone"),
            (["--cleanup-command", Self.job], ["CRON_TZ": "../etc"], 78, "CRON_TZ"),
            (["--cleanup-command", "/nonexistent/cleanup"], [:], 127, "--cleanup-command"),
            (["--cleanup-timeout", "0"], [:], 64, "--cleanup-timeout"),
        ] as [([String], [String: String], Int32, String)] {
            let process = try SupervisorProcess(flags + ["--", worker], environment: environment)
            #expect(try process.waitForExit() == code, "\(flags) \(environment): \(process.log)")
            #expect(process.log.contains(message), "\(process.log)")
            #expect(process.log.split(separator: "\n").count == 1)
        }
    }
}
