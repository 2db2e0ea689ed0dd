import IntegrationSupport
import Foundation
import Synchronization
import Testing

@Suite("PID 1 duties, foreign workers, startup errors", .serialized)
struct ProcessDutiesTests {
    @Test func anOrphanedGrandchildIsReaped() throws {
        let pidFile = "/tmp/prefork-orphan-\(getpid())"
        defer { unlink(pidFile) }
        // The inner shell starts `sleep` and exits, so sleep is re-parented to the supervisor (subreaper).
        let script = "sh -c 'sleep 0.5 & echo $! > \(pidFile)'; exec sleep 30"
        let supervisor = try SupervisorProcess(["--workers", "1", "--no-notify", "--", "sh", "-c", script])
        try supervisor.waitForLog("all 1 workers ready")
        var orphan: Int32?
        for _ in 0..<200 where orphan == nil {
            orphan = (try? String(contentsOfFile: pidFile, encoding: .utf8)).flatMap {
                Int32($0.trimmingCharacters(in: .whitespacesAndNewlines))
            }
            usleep(10_000)
        }
        let pid = try #require(orphan)
        try supervisor.waitForLog("reaped orphan (exit code 0)", timeout: 5)
        #expect(!ProcessTable.exists(pid), "the orphan is still in the process table (a zombie)")
        supervisor.signal(SIGTERM)
        #expect(try supervisor.waitForExit() == 0)
    }

    @Test func signalsIgnoredByTheParentStillWork() throws {
        // `trap '' HUP` is what nohup does: SIG_IGN survives exec, and an ignored signal never reaches signalfd.
        let supervisor = try SupervisorProcess(
            ["-c", "trap '' HUP USR1; exec \"$0\" \"$@\"", try Binaries.path("supervisor"), "--bind", "127.0.0.1:0",
             "--workers", "1", "--", try Binaries.path("test-worker")],
            bindEphemeral: false, executable: "/bin/sh")
        try supervisor.waitForLog("all 1 workers ready")
        supervisor.signal(SIGHUP)
        try supervisor.waitForLog("rolling restart done")
        supervisor.signal(SIGTERM)
        #expect(try supervisor.waitForExit() == 0)
    }

    @Test func aWorkerThatIsNotOursServesWithNoNotify() throws {
        let script = Binaries.fixtures + "/fd3_server.py"
        let supervisor = try SupervisorProcess(["--workers", "2", "--no-notify", "--", "python3", script])
        let port = try supervisor.port()
        try supervisor.waitForLog("all 2 workers ready")
        let workers = try supervisor.waitForWorkers(2)
        #expect(HTTPClient.answeringPIDs(port: port, count: 2) == Set(workers))
        #expect(ProcessTable.environment(workers[0])["NOTIFY_SOCKET"] == nil)
        supervisor.signal(SIGTERM)
        #expect(try supervisor.waitForExit() == 0)
    }

    @Test func onlyTheSocketReachesAWorker() throws {
        let supervisor = try SupervisorProcess(["--workers", "1", "--no-notify", "--", "sleep", "30"])
        try supervisor.waitForLog("all 1 workers ready")
        let worker = try supervisor.waitForWorkers(1)[0]
        let descriptors = try FileManager.default.contentsOfDirectory(atPath: "/proc/\(worker)/fd").compactMap(Int.init)
        #expect(descriptors.sorted() == [0, 1, 2, 3])
        let target = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(worker)/fd/3")
        #expect(target.hasPrefix("socket:"))
        supervisor.signal(SIGTERM)
        #expect(try supervisor.waitForExit() == 0)
    }

    @Test func theSupervisorReportsUpstreamOverSdNotify() throws {
        let directory = "/tmp/prefork-upstream-\(getpid())"
        try? FileManager.default.removeItem(atPath: directory)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/notify"
        let server = try UnixDatagram.bound(path)
        defer { close(server) }
        var tv = timeval(tv_sec: 0, tv_usec: 200_000)
        setsockopt(server, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        // Read as systemd does, while the supervisor runs: the queue of a datagram socket is short.
        let received = Mutex<[String]>([])
        let reading = Mutex(true)
        let reader = Thread {
            var buffer = [UInt8](repeating: 0, count: 4096)
            while reading.withLock({ $0 }) {
                let count = recv(server, &buffer, buffer.count, 0)
                if count > 0 { received.withLock { $0.append(String(decoding: buffer[..<count], as: UTF8.self)) } }
            }
        }
        reader.start()

        let supervisor = try SupervisorProcess(["--workers", "2", "--", try Binaries.path("test-worker")],
                                               environment: ["NOTIFY_SOCKET": path, "WATCHDOG_USEC": "200000"])
        try supervisor.waitForLog("all 2 workers ready")
        supervisor.signal(SIGHUP)
        try supervisor.waitForLog("rolling restart done")
        usleep(300_000)  // at least two watchdog intervals (half of 200 ms)
        supervisor.signal(SIGTERM)
        #expect(try supervisor.waitForExit() == 0)
        usleep(300_000)
        reading.withLock { $0 = false }
        while !reader.isFinished { usleep(10_000) }
        let messages = received.withLock { $0 }
        #expect(messages.first == "STATUS=booting: 0/2 workers ready")
        // READY=1 only once every worker is: nothing before it but the booting status.
        let ready = try #require(messages.firstIndex(of: "READY=1"))
        #expect(messages[..<ready].allSatisfy { $0.hasPrefix("STATUS=booting: ") }, "\(messages[..<ready])")
        #expect(messages.contains("STATUS=2/2 workers ready, generation 1"))
        let reloading = try #require(messages.firstIndex { $0.hasPrefix("RELOADING=1\nMONOTONIC_USEC=") })
        #expect(messages[reloading...].contains("READY=1"), "READY=1 again after the rolling restart")
        #expect(messages.contains("STATUS=2/2 workers ready, generation 2"))
        #expect(messages.filter { $0 == "WATCHDOG=1" }.count >= 2)
        #expect(messages.firstIndex(of: "READY=1")! < messages.firstIndex(of: "STOPPING=1")!)
    }

    @Test func aManagerThatStopsReadingNeverBlocksTheSupervisor() throws {
        let path = "/tmp/prefork-deaf-manager-\(getpid())"
        unlink(path)
        defer { unlink(path) }
        let deaf = try UnixDatagram.bound(path)
        defer { close(deaf) }
        // Never read: with a 20 ms watchdog the queue is full within a second.
        let supervisor = try SupervisorProcess(["--workers", "1", "--", try Binaries.path("test-worker")],
                                               environment: ["NOTIFY_SOCKET": path, "WATCHDOG_USEC": "40000"])
        try supervisor.waitForLog("all 1 workers ready")
        try supervisor.waitForLog("dropping messages until it can", timeout: 5)
        supervisor.signal(SIGTERM)
        #expect(try supervisor.waitForExit(timeout: 5) == 0)
    }

    @Test func aSocketActivatedSupervisorPassesSystemdsSocketOn() throws {
        // Play systemd: bind, put the socket on fd 3, set LISTEN_PID to the pid that will exec the supervisor.
        let script = """
            import os, socket, sys
            s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", 0)); s.listen(64)
            print(s.getsockname()[1], flush=True)
            os.dup2(s.fileno(), 3); os.set_inheritable(3, True)
            env = dict(os.environ, LISTEN_FDS="1", LISTEN_PID=str(os.getpid()))
            os.execve(sys.argv[1], [sys.argv[1]] + sys.argv[2:], env)
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script, try Binaries.path("supervisor"), "--workers", "2",
                             "--bind", "127.0.0.1:1", "--", try Binaries.path("test-worker")]
        let stdout = Pipe()
        let stderr = Pipe()
        process.standardOutput = stdout
        process.standardError = stderr
        try process.run()
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        let line = String(decoding: stdout.fileHandleForReading.availableData, as: UTF8.self)
        let port = try #require(UInt16(line.trimmingCharacters(in: .whitespacesAndNewlines)))
        var pid: Int32?
        for _ in 0..<300 where pid == nil {
            pid = HTTPClient.answeringPID(port: port)
            usleep(10_000)
        }
        #expect(pid != nil)
        kill(process.processIdentifier, SIGTERM)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        let log = String(decoding: stderr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(log.contains("(from systemd)"))
    }

    @Test(arguments: [
        (["--workers", "zero", "--", "true"], [String: String](), Int32(64), "--workers: expected a whole number"),
        (["--frobnicate"], [:], 64, "unknown option '--frobnicate'"),
        (["--", "true"], ["API_WORKERS": "-3"], 78, "API_WORKERS: expected a whole number"),
        (["--", "true"], ["GRACEFUL_TIMEOUT": "soon"], 78, "GRACEFUL_TIMEOUT: expected a duration such as 8, 0.5, 250ms"),
        (["--", "no-such-command-xyz"], [:], 127, "command not found or not executable: no-such-command-xyz"),
        (["--bind", "127.0.0.1:nope", "--", "true"], [:], 64, "port must be a number"),
        // A mistyped command is not run as the worker program (stat would have been, on port 8080).
        (["stat"], [:], 64, "'stat' is not a command: did you mean 'supervisor status'?"),
        (["Stop"], [:], 64, "did you mean 'supervisor stop'?"),
        (["relaod"], [:], 64, "did you mean 'supervisor reload'?"),
        (["--worker", "4", "--", "true"], [:], 64, "unknown option '--worker' (did you mean --workers?"),
    ])
    func badInputIsOneLineAndADocumentedExitCode(arguments: [String], environment: [String: String],
                                                 code: Int32, message: String) throws {
        let supervisor = try SupervisorProcess(arguments, environment: environment, bindEphemeral: false)
        #expect(try supervisor.waitForExit() == code)
        let lines = supervisor.log.split(separator: "\n")
        #expect(lines.count == 1, "\(supervisor.log)")
        #expect(lines.first?.hasPrefix("supervisor: ") == true)
        #expect(lines.first?.contains(message) == true, "\(supervisor.log)")
    }

    @Test func aPortInUseIsExit71() throws {
        let holder = try SupervisorProcess(["--workers", "1", "--no-notify", "--", "sleep", "30"])
        let port = try holder.port()
        let second = try SupervisorProcess(["--bind", "127.0.0.1:\(port)", "--", "true"], bindEphemeral: false)
        #expect(try second.waitForExit() == 71)
        #expect(second.log.contains("Address already in use"))
        holder.signal(SIGTERM)
        #expect(try holder.waitForExit() == 0)
    }
}
