import Foundation
import Synchronization
import IntegrationSupport
import Testing

/// Issue 25: the operator-fault probes (`../shared/reviews/operator-faults-2026-12.md`) that did not hold, each
/// against the real supervisor and test workers.
@Suite("Operator faults", .serialized)
struct OperatorFaultTests {
    let worker: String
    let supervisorPath: String

    init() throws {
        worker = try Binaries.path("test-worker")
        supervisorPath = try Binaries.path("supervisor")
    }

    /// Supervisors started by `launch`: a test that fails half-way must not leave one running (`reap`).
    static let launched = Mutex<[Process]>([])

    /// SIGKILL for every launched supervisor still running (its workers follow through PDEATHSIG).
    func reap() {
        for process in Self.launched.withLock({ list in defer { list = [] }; return list }) where process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    /// `supervisor status --json` parsed, or nil when nobody answers.
    func status(_ socket: String) -> [String: Any]? {
        let result = runShell("'\(supervisorPath)' status --json --control-socket '\(socket)'")
        guard result.status == 0, let data = result.output.data(using: .utf8) else { return nil }
        return (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
    }

    func readyPIDs(_ socket: String) -> [Int32] {
        let slots = status(socket)?["slots"] as? [[String: Any]] ?? []
        return slots.compactMap { $0["state"] as? String == "ready" ? ($0["pid"] as? NSNumber)?.int32Value : nil }
    }

    /// Polls until `count` workers are ready (none of them in `excluding`); the pids.
    func waitReady(_ socket: String, count: Int, excluding: Set<Int32> = [], timeout: Double = 15) throws -> [Int32] {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            let pids = readyPIDs(socket)
            if pids.count == count, excluding.isDisjoint(with: pids) { return pids }
            usleep(50_000)
        }
        throw TestFailure("\(count) ready workers not seen within \(timeout) s: \(status(socket) ?? [:])")
    }

    /// A supervisor whose stderr is `stderr` (a pipe the test controls), started through `sh -c` so that the
    /// shell can set its signal dispositions and limits first (`prefix`).
    func launch(_ arguments: [String], stderr: Int32, prefix: String = "", environment: [String: String] = [:]) throws
        -> (process: Process, socket: String)
    {
        let socket = "/tmp/prefork-fault-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sock"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        let quoted = ([supervisorPath, "--bind", "127.0.0.1:0", "--no-cleanup", "--control-socket", socket] + arguments)
            .map { "'\($0)'" }.joined(separator: " ")
        process.arguments = ["-c", "\(prefix) exec \(quoted)"]
        var env = ProcessInfo.processInfo.environment
        for key in ["API_WORKERS", "BIND", "PORT", "NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID"] { env[key] = nil }
        env.merge(environment) { $1 }
        process.environment = env
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle(fileDescriptor: stderr, closeOnDealloc: false)
        try process.run()
        Self.launched.withLock { $0.append(process) }
        return (process, socket)
    }

    func waitExit(_ process: Process, timeout: Double) -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning, Date() < deadline { usleep(20_000) }
        guard !process.isRunning else {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            return nil
        }
        return process.terminationStatus
    }

    /// A pipe whose buffer is one page: full after a few dozen lines.
    func smallPipe() throws -> (read: Int32, write: Int32) {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw TestFailure("pipe") }
        _ = fcntl(fds[1], 1031 /* F_SETPIPE_SZ */, 4096)
        _ = fcntl(fds[0], F_SETFD, FD_CLOEXEC)
        return (fds[0], fds[1])
    }

    func queuedBytes(_ fd: Int32) -> Int32 {
        var count: Int32 = 0
        _ = ioctl(fd, UInt(FIONREAD), &count)
        return count
    }

    func signalMask(_ pid: Int32, _ field: String) -> UInt64? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        let line = text.split(separator: "\n").first { $0.hasPrefix(field + ":") }
        return line.flatMap { UInt64($0.split(separator: "\t").last ?? "", radix: 16) }
    }

    // MARK: D1

    /// The old worker of a slot ends while its successor boots (HUP): the stop still ends within its bounds and
    /// no SIGKILL goes to a reaped pid. Before, the successor was counted twice and TERM, TERM, QUIT never ended it.
    @Test(arguments: [SIGKILL, SIGTERM])
    func anOldWorkerThatEndsWhileItsSuccessorBootsLeavesTheStopBounded(signal: Int32) throws {
        let supervisor = try SupervisorProcess(["--workers", "2", "--timeout", "3", "--", worker],
                                               environment: ["TEST_WORKER_BOOT_DELAY": "1500"])
        try supervisor.waitForLog("all 2 workers ready")
        let socket = try #require(supervisor.controlSocket)
        let slot0 = try #require(((status(socket)?["slots"] as? [[String: Any]])?.first?["pid"] as? NSNumber)?.int32Value)
        supervisor.signal(SIGHUP)
        try supervisor.waitForLog("spawned generation=2")
        kill(slot0, signal)
        try supervisor.waitForLog("rolling restart done", timeout: 20)
        let after = try waitReady(socket, count: 2)
        #expect(Set(after).count == 2)
        let slots = status(socket)?["slots"] as? [[String: Any]] ?? []
        #expect(slots.allSatisfy { $0["state"] as? String == "ready" }, "\(slots)")
        supervisor.signal(SIGTERM)
        #expect(try supervisor.waitForExit(timeout: 6) == 0, "\(supervisor.log)")
        #expect(!supervisor.log.contains("sending SIGKILL"), "\(supervisor.log)")
    }

    // MARK: D2

    /// stderr is a pipe nobody reads, full: the loop still answers `status`, replaces a killed worker and stops
    /// on TERM. Before, the first blocked log write froze all of it until someone read the pipe.
    /// Two test workers recycled every few requests under load, with stderr a one-page pipe nobody reads, once
    /// the pipe is full: each recycle is a handful of lifecycle lines, and the page fills within a second.
    func supervisorWithAFullLogPipe(_ extra: [String] = []) throws -> (process: Process, socket: String, load: RequestLoop, log: Int32) {
        let pipe = try smallPipe()
        let (process, socket) = try launch(["--workers", "2", "--timeout", "3", "--max-requests", "3"] + extra + ["--", worker],
                                           stderr: pipe.write)
        close(pipe.write)
        _ = try waitReady(socket, count: 2)
        let port = try #require((status(socket)?["listening"] as? String)?.split(separator: ":").last.flatMap { UInt16($0) })
        let load = RequestLoop(port: port, concurrency: 4)
        let deadline = Date().addingTimeInterval(10)
        // Full: the next line (about 150 bytes, written whole or not at all) would block.
        while queuedBytes(pipe.read) < 3800, Date() < deadline { usleep(50_000) }
        #expect(queuedBytes(pipe.read) >= 3800, "the pipe never filled")
        return (process, socket, load, pipe.read)
    }

    @Test func aLogPipeNobodyReadsStopsNeitherTheLoopNorAStop() throws {
        defer { reap() }
        let (process, socket, load, log) = try supervisorWithAFullLogPipe()
        defer { close(log) }
        usleep(500_000)  // more lines are dropped meanwhile
        let started = Date()
        #expect(status(socket) != nil, "status did not answer with a full log pipe")
        #expect(Date().timeIntervalSince(started) < 2)
        let (succeeded, failures) = load.stop()
        #expect(succeeded > 50, "\(failures.prefix(3))")
        let victims = try waitReady(socket, count: 2)
        kill(victims[0], SIGKILL)
        _ = try waitReady(socket, count: 2, excluding: [victims[0]], timeout: 10)
        kill(process.processIdentifier, SIGTERM)
        #expect(waitExit(process, timeout: 8) == 0, "the supervisor did not stop with a full log pipe")
    }

    // MARK: D3

    /// The log reader goes away: nothing dies of SIGPIPE. Our workers ignore it themselves; a foreign worker gets
    /// SIGPIPE as the supervisor inherited it (ignored under systemd's IgnoreSIGPIPE=yes), where the spawn used to
    /// reset it to its default.
    @Test func aClosedLogPipeEndsNoProcess() throws {
        let pipe = try smallPipe()
        defer { reap() }
        let (process, socket) = try launch(["--workers", "2", "--timeout", "3", "--", worker], stderr: pipe.write)
        close(pipe.write)
        let first = try waitReady(socket, count: 2)
        close(pipe.read)
        for pid in first { #expect((signalMask(pid, "SigIgn") ?? 0) & (1 << (UInt64(SIGPIPE) - 1)) != 0, "pid \(pid)") }
        kill(first[0], SIGKILL)
        let second = try waitReady(socket, count: 2, excluding: [first[0]])
        #expect(runShell("'\(supervisorPath)' reload --control-socket '\(socket)'").status == 0)
        _ = try waitReady(socket, count: 2, excluding: Set(second))
        // Only the one this test killed: none died of SIGPIPE at a log line.
        let slots = status(socket)?["slots"] as? [[String: Any]] ?? []
        #expect(slots.reduce(0) { $0 + ($1["restarts"] as? Int ?? 0) } == 1, "a worker died: \(slots)")
        kill(process.processIdentifier, SIGTERM)
        #expect(waitExit(process, timeout: 8) == 0)
    }

    @Test(arguments: [true, false])
    func aForeignWorkerGetsSIGPIPEAsTheSupervisorInheritedIt(ignored: Bool) throws {
        let log = Pipe()
        defer { reap() }
        let (process, socket) = try launch(["--workers", "1", "--no-notify", "--ready-after", "0.2", "--", "/bin/sleep", "60"],
                                           stderr: log.fileHandleForWriting.fileDescriptor,
                                           prefix: ignored ? "trap '' PIPE;" : "trap - PIPE;")
        try? log.fileHandleForWriting.close()
        let pid = try #require(try waitReady(socket, count: 1).first)
        let ignoredInWorker = (signalMask(pid, "SigIgn") ?? 0) & (1 << (UInt64(SIGPIPE) - 1)) != 0
        #expect(ignoredInWorker == ignored)
        kill(process.processIdentifier, SIGTERM)
        #expect(waitExit(process, timeout: 8) == 0)
    }

    // MARK: D5

    /// `supervisor reload` waits for the outcome and says when it failed; `status` shows what serves and the last
    /// reload; `supervisor stop` returns once the supervisor is gone.
    @Test func reloadAndStopReportTheirOutcome() throws {
        let marker = "/tmp/prefork-broken-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let supervisor = try SupervisorProcess(["--workers", "2", "--boot-timeout", "5", "--", worker],
                                               environment: ["TEST_WORKER_BOOT_FAIL_IF_EXISTS": marker])
        try supervisor.waitForLog("all 2 workers ready")
        let socket = try #require(supervisor.controlSocket)
        _ = FileManager.default.createFile(atPath: marker, contents: nil)
        defer { unlink(marker) }
        let broken = runShell("'\(supervisorPath)' reload --control-socket '\(socket)'")
        #expect(broken.status == 1, "\(broken.output)")
        #expect(broken.output.contains("the rolling restart to generation 2 was aborted, the old workers keep serving"),
                "\(broken.output)")
        let after = try #require(status(socket))
        #expect(after["serving_generations"] as? [Int] == [1])
        #expect((after["summary"] as? String)?.contains("generation 1 (the rolling restart to generation 2 was aborted)") == true,
                "\(after)")
        let record = after["last_reload"] as? [String: Any]
        #expect(record?["generation"] as? Int == 2 && record?["outcome"] as? String == "aborted", "\(after)")
        #expect(runShell("'\(supervisorPath)' status --control-socket '\(socket)'").output.contains("last reload: generation 2 aborted"))

        unlink(marker)
        let fixed = runShell("'\(supervisorPath)' reload --control-socket '\(socket)'")
        #expect(fixed.status == 0 && fixed.output.contains("generation 3 serves in every slot"), "\(fixed.output)")
        #expect(status(socket)?["serving_generations"] as? [Int] == [3])

        let noWait = runShell("'\(supervisorPath)' reload --no-wait --control-socket '\(socket)'")
        #expect(noWait.status == 0 && !noWait.output.contains("serves in every slot"), "\(noWait.output)")
        try supervisor.waitForLog("rolling restart done", count: 2, timeout: 20)

        let stop = runShell("'\(supervisorPath)' stop --control-socket '\(socket)'")
        #expect(stop.status == 0 && stop.output.contains("stopped"), "\(stop.output)")
        // Gone by the time `stop` returned: at most a zombie waiting for this test to reap it.
        let state = ProcessTable.stat(supervisor.pid)?[2]
        #expect(state == nil || state == "Z", "the supervisor was still \(state ?? "?") after stop returned")
        #expect(try supervisor.waitForExit() == 0)
    }

    // MARK: D6

    /// A memory limit below what a fresh worker uses: recycles back off with a warning instead of looping
    /// (the probes saw 99 recycles in 15 s).
    @Test func aMemoryLimitBelowAFreshWorkerBacksOff() throws {
        let supervisor = try SupervisorProcess(["--workers", "1", "--max-worker-memory", "40M", "--", worker],
                                               environment: ["TEST_WORKER_ALLOCATE_MB": "64"])
        try supervisor.waitForLog("all 1 workers ready")
        try supervisor.waitForLog("a fresh worker is already over --max-worker-memory", timeout: 10)
        sleep(8)
        let recycles = supervisor.log.components(separatedBy: "recycling (memory").count - 1
        #expect(recycles <= 2, "\(recycles) recycles in 8 s:\n\(supervisor.log)")
        supervisor.signal(SIGTERM)
        #expect(try supervisor.waitForExit() == 0)
    }

    // MARK: D10

    /// A low soft limit on open files is raised to the hard limit, for the supervisor and so for its workers.
    @Test func theSoftOpenFilesLimitIsRaisedToTheHardLimit() throws {
        let log = Pipe()
        defer { reap() }
        let (process, socket) = try launch(["--workers", "1", "--", worker], stderr: log.fileHandleForWriting.fileDescriptor,
                                           prefix: "ulimit -Sn 256;")
        try? log.fileHandleForWriting.close()
        let pid = try #require(try waitReady(socket, count: 1).first)
        let limits = try String(contentsOfFile: "/proc/\(pid)/limits", encoding: .utf8)
        let line = try #require(limits.split(separator: "\n").first { $0.hasPrefix("Max open files") })
        let numbers = line.split(separator: " ").compactMap { Int($0) }
        #expect(numbers.count == 2 && numbers[0] == numbers[1] && numbers[0] > 256, "\(line)")
        kill(process.processIdentifier, SIGTERM)
        #expect(waitExit(process, timeout: 8) == 0)
        let text = String(decoding: log.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(text.contains("open files: raised the soft limit from 256 to the hard limit"), "\(text)")
    }

    // MARK: D13

    /// A control socket removed from under the supervisor (tmpfiles' ageing of /tmp) comes back at HUP.
    @Test func aRemovedControlSocketComesBackAtHangup() throws {
        let supervisor = try SupervisorProcess(["--workers", "1", "--", worker])
        try supervisor.waitForLog("all 1 workers ready")
        let socket = try #require(supervisor.controlSocket)
        unlink(socket)
        #expect(status(socket) == nil)
        supervisor.signal(SIGHUP)
        try supervisor.waitForLog("was gone: bound it again")
        #expect(status(socket) != nil)
        supervisor.signal(SIGTERM)
        #expect(try supervisor.waitForExit() == 0)
    }

    // MARK: D8

    /// The SwiftNIO test worker finishes keep-alive clients' requests at a drain: three rolling restarts under 8
    /// keep-alive clients lose none (before, about 8 per HUP).
    @Test func rollingRestartsUnderKeepAliveClientsLoseNothing() throws {
        let supervisor = try SupervisorProcess(["--workers", "2", "--", worker])
        try supervisor.waitForLog("all 2 workers ready")
        let load = RequestLoop(port: try supervisor.port(), concurrency: 8, keepAlive: true)
        for round in 1...3 {
            usleep(300_000)
            supervisor.signal(SIGHUP)
            try supervisor.waitForLog("rolling restart done", count: round, timeout: 20)
        }
        usleep(300_000)
        let (succeeded, failures) = load.stop()
        #expect(failures.isEmpty, "\(failures.count) failed: \(failures.prefix(5))")
        #expect(succeeded > 100)
        supervisor.signal(SIGTERM)
        #expect(try supervisor.waitForExit() == 0)
    }

    // MARK: D14

    /// A regular file where the unix listening socket should go is named as such, not as an address in use.
    @Test func aRegularFileAtTheUnixSocketPathIsNamed() throws {
        let path = "/tmp/prefork-regular-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sock"
        _ = FileManager.default.createFile(atPath: path, contents: Data("keep me".utf8))
        defer { unlink(path) }
        let result = runShell("'\(supervisorPath)' --no-cleanup --bind 'unix:\(path)' -- sleep 5")
        #expect(result.status == 71)
        #expect(result.output.contains("the path exists and is not a socket"), "\(result.output)")
        #expect((try? String(contentsOfFile: path, encoding: .utf8)) == "keep me")
    }

    // MARK: D11

    static var pidsControllerIsOurs: Bool {
        getuid() == 0 && access("/sys/fs/cgroup/pids/cgroup.procs", W_OK) == 0
    }

    /// Workers that cannot create a thread die of a trap (SIGILL) with no word of why, or wait forever in
    /// libdispatch's retry (each holding part of the limit, so none dies): the supervisor names the cgroup's pids
    /// limit that refused them, within a second, whichever happens. Root, with a cgroup v1 pids hierarchy (the unit test of `TaskLimit`
    /// covers the reading everywhere).
    @Test(.enabled(if: pidsControllerIsOurs, "needs root and a writable cgroup v1 pids hierarchy"))
    func aWorkerThatCannotCreateAThreadIsExplained() throws {
        let group = "/sys/fs/cgroup/pids/prefork-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        guard mkdir(group, 0o755) == 0 else { throw TestFailure("mkdir \(group): \(String(cString: strerror(errno)))") }
        defer { rmdir(group) }
        try "10".write(toFile: group + "/pids.max", atomically: false, encoding: .utf8)
        let logPath = NSTemporaryDirectory() + "prefork-d11-\(getpid()).log"
        let fd = open(logPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        defer { unlink(logPath) }
        defer { reap() }
        let (process, _) = try launch(["--workers", "4", "--", worker], stderr: fd, prefix: "echo $$ > '\(group)/cgroup.procs';")
        close(fd)
        let deadline = Date().addingTimeInterval(10)
        var log = ""
        while Date() < deadline, !log.contains("refused") {
            usleep(100_000)
            log = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
        }
        kill(process.processIdentifier, SIGTERM)
        #expect(waitExit(process, timeout: 10) != nil)
        #expect(log.contains("the cgroup's pids.max (10 in \(group)) refused"), "\(log)")
        #expect(log.contains("a worker that cannot create a thread dies of a trap or waits for one forever"))
    }

    // MARK: Found by the break-it probe

    /// `stop extra` was a stop: every command takes exactly its words.
    @Test func controlCommandsTakeExactlyTheirWords() throws {
        let supervisor = try SupervisorProcess(["--workers", "1", "--", worker])
        try supervisor.waitForLog("all 1 workers ready")
        let socket = try #require(supervisor.controlSocket)
        for line in ["stop extra", "reload reload", "status garbage", "status json x", "ping pong", "last-reload 2"] {
            let response = ControlClient.request(line, path: socket) ?? ""
            #expect(response.hasPrefix("error: usage: "), "\(line): \(response)")
        }
        #expect(ControlClient.request("status json", path: socket)?.hasPrefix("ok\n{") == true)
        #expect(supervisor.process.isRunning)
        supervisor.signal(SIGTERM)
        #expect(try supervisor.waitForExit() == 0)
    }

    /// `supervisor stop` returns once the process is gone, not once its control socket is: with a stalled log the
    /// last moments (the last lines' bounded flush) held the metrics port, and a restart at once got exit 71.
    @Test func stopReturnsOnceThePortsAreFreeEvenWithAStalledLog() throws {
        let metricsPort = try Loopback.freePort()
        defer { reap() }
        let (process, socket, load, log) = try supervisorWithAFullLogPipe(["--metrics-bind", "127.0.0.1:\(metricsPort)"])
        defer { close(log) }
        _ = load.stop()
        let stop = runShell("'\(supervisorPath)' stop --control-socket '\(socket)'")
        #expect(stop.status == 0 && stop.output.contains("stopped"), "\(stop.output)")
        let state = ProcessTable.stat(process.processIdentifier)?[2]
        #expect(state == nil || state == "Z", "still \(state ?? "?") after stop returned")
        #expect(Loopback.canBind(metricsPort), "the metrics port is still taken after stop returned")
    }
}
