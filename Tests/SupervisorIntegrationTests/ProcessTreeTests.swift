import Foundation
import IntegrationSupport
import Testing

/// A worker is a process tree, and the supervisor owns all of it: the programs teams put behind a prefork manager
/// fork (gunicorn's master and its workers, a start script without `exec`, a child that calls setsid, a helper
/// that double-forks). After a HUP, a `kill -9` of the worker and a stop, nothing of an old tree may run on: left
/// alone, such processes kept serving on the shared socket next to their replacement, and outlived the supervisor
/// with their database connections.
///
/// Run as root, the supervisor gives each worker a cgroup (`cgroup.kill`) where it may; as the non-root test user
/// it owns the trees by process group and re-parenting alone. Both runs hold the same checks.
@Suite("Process trees: gunicorn, shell wrappers, setsid, workers that ignore TERM", .serialized)
struct ProcessTreeTests {
    static func python() throws -> String {
        try #require(ProcessInfo.processInfo.environment["PREFORK_TEST_PYTHON"],
                     "PREFORK_TEST_PYTHON (a Python with uvicorn and gunicorn; scripts/test makes .build/test-venv) is not set")
    }

    static var fixtures: String { Binaries.fixtures }

    /// Every request answered 200, by whichever process.
    static func serves(port: UInt16, count: Int = 5) -> Bool {
        (0..<count).allSatisfy { _ in
            if case .success(let response) = HTTPClient.get(port: port, path: "/", timeout: 2) { response.status == 200 } else { false }
        }
    }

    static func waitUntilServing(_ supervisor: SupervisorProcess, port: UInt16, timeout: Double = 30) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while !serves(port: port, count: 1) {
            guard Date() < deadline else { throw TestFailure("nothing answers on port \(port):\n\(supervisor.log)") }
            usleep(100_000)
        }
    }

    /// Waits until none of `processes` runs; the failure names those that still do.
    static func waitUntilGone(_ processes: [ProcessTable.Identity], within timeout: Double, _ what: String,
                              log: @autoclosure () -> String) {
        let deadline = Date().addingTimeInterval(timeout)
        var left = ProcessTable.running(processes)
        while !left.isEmpty, Date() < deadline {
            usleep(50_000)
            left = ProcessTable.running(processes)
        }
        #expect(left.isEmpty, "\(what): still running after \(timeout) s: \(left) of \(processes)\n\(log())")
    }

    /// The one ready worker's pid, from `supervisor status --json`: the supervisor's children also count orphans.
    static func workerPID(_ supervisor: SupervisorProcess, timeout: Double = 30) throws -> Int32 {
        let deadline = Date().addingTimeInterval(timeout)
        var last = ""
        while Date() < deadline {
            last = runShell("'\(try Binaries.path("supervisor"))' status --json --control-socket '\(supervisor.controlSocket!)'").output
            if let status = try? JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: Any],
               let slots = status["slots"] as? [[String: Any]], slots.count == 1,
               slots[0]["state"] as? String == "ready", let pid = slots[0]["pid"] as? Int {
                return Int32(pid)
            }
            usleep(100_000)
        }
        throw TestFailure("no ready worker in status: \(last)\n\(supervisor.log)")
    }

    /// The checks every kind of tree must pass: it serves (for `serveSeconds` with no restart), a HUP leaves none of
    /// the old tree within the graceful timeout, a `kill -9` of the worker leaves none of its tree after the kill
    /// grace, and after TERM nothing the supervisor started is running.
    func holdsItsTrees(_ command: [String], flags: [String] = [], environment: [String: String] = [:],
                       serveSeconds: Double = 3, graceful: Double = 3,
                       whileServing: (SupervisorProcess, Int32) throws -> Void = { _, _ in }) throws -> SupervisorProcess {
        let supervisor = try SupervisorProcess(["--workers", "1", "--graceful-timeout", "\(Int(graceful))"] + flags + ["--"] + command,
                                               environment: environment)
        try supervisor.waitForLog("all 1 workers ready", timeout: 40)
        let port = try supervisor.port()
        try Self.waitUntilServing(supervisor, port: port)
        let first = try Self.workerPID(supervisor)
        usleep(UInt32(serveSeconds * 1_000_000))
        #expect(Self.serves(port: port), "\(supervisor.log)")
        #expect(try Self.workerPID(supervisor) == first, "restarted while serving:\n\(supervisor.log)")
        #expect(!supervisor.log.contains("heartbeat missed"), "\(supervisor.log)")
        try whileServing(supervisor, first)
        var everything = ProcessTable.descendants(of: supervisor.pid)

        // A rolling restart: the old tree is gone within the graceful timeout (and the second it takes to be seen).
        let old = ProcessTable.descendants(of: supervisor.pid)
        supervisor.signal(SIGHUP)
        try supervisor.waitForLog("rolling restart done", timeout: 40)
        Self.waitUntilGone(old, within: graceful + 2, "after a HUP, the old tree", log: supervisor.log)
        try Self.waitUntilServing(supervisor, port: port)
        #expect(Self.serves(port: port), "\(supervisor.log)")

        // kill -9 of the worker itself: what it started is gone after the kill grace (the graceful timeout).
        let second = try Self.workerPID(supervisor)
        let tree = ProcessTable.descendants(of: supervisor.pid)
        everything += tree
        kill(second, SIGKILL)
        Self.waitUntilGone(tree, within: graceful + 2, "after kill -9 of the worker \(second), its tree", log: supervisor.log)
        try Self.waitUntilServing(supervisor, port: port)

        // A stop: nothing the supervisor ever started is left running once it has exited.
        everything += ProcessTable.descendants(of: supervisor.pid)
        supervisor.signal(SIGTERM)
        #expect(try supervisor.waitForExit(timeout: graceful + 15) == 0)
        #expect(ProcessTable.running(everything).isEmpty,
                "left running after the supervisor exited: \(ProcessTable.running(everything))\n\(supervisor.log)")
        return supervisor
    }

    /// gunicorn with its uvicorn workers, under the supervisor's defaults: it says READY=1 and never WATCHDOG=1, and
    /// used to be aborted every 30 s; its workers then kept serving next to the replacement, and outlived a stop.
    @Test func gunicornServesAMinuteAndLeavesNothingBehind() throws {
        let gunicorn = URL(fileURLWithPath: try Self.python()).deletingLastPathComponent().appendingPathComponent("gunicorn").path
        let supervisor = try holdsItsTrees(
            [gunicorn, "-k", "uvicorn.workers.UvicornWorker", "-w", "2", "--chdir", Self.fixtures, "asgi_app:app"],
            serveSeconds: 60, graceful: 8)
        #expect(supervisor.log.contains("orphan of a gone worker"), "the kill -9 left gunicorn's workers behind:\n\(supervisor.log)")
    }

    /// A start script that forgot `exec`: the shell is the worker, uvicorn its child, READY=1 comes from uvicorn
    /// (a process of the worker's group speaks for it).
    @Test func aShellWrapperWithoutExec() throws {
        _ = try holdsItsTrees([Self.fixtures + "/wrapper.sh", try Self.python(), "-m", "uvicorn", "--fd", "3",
                               "--app-dir", Self.fixtures, "--log-level", "warning", "asgi_app:app"],
                              environment: ["ASGI_APP_NOTIFY": "1"])
    }

    /// The server left the worker's process group and session with setsid: signals to the group miss it, and it is
    /// caught once re-parented to the supervisor (or by the worker's cgroup).
    @Test func aServerThatLeftTheGroupWithSetsid() throws {
        _ = try holdsItsTrees([try Self.python(), Self.fixtures + "/tree_worker.py", "setsid-child"])
    }

    /// A helper that double-forked away while its worker runs: with a cgroup per worker it is that worker's and
    /// stays until the worker is gone; with process groups alone it cannot be told from an orphan and is stopped.
    @Test func aDoubleForkedHelper() throws {
        _ = try holdsItsTrees([try Self.python(), Self.fixtures + "/tree_worker.py", "daemon-helper"]) { supervisor, worker in
            let status = runShell("'\(try Binaries.path("supervisor"))' status --control-socket '\(supervisor.controlSocket!)'").output
            // The helper was re-parented to the supervisor: a child of it that is not the worker.
            let helpers = ProcessTable.children(of: supervisor.pid).filter { $0 != worker }
            if status.contains("worker trees: cgroup") {
                #expect(helpers.count == 1, "the helper of a running worker is its own: \(helpers)\n\(supervisor.log)")
            } else {
                #expect(helpers.isEmpty, "without cgroups the helper is an orphan, stopped: \(helpers)\n\(supervisor.log)")
                #expect(supervisor.log.contains("orphan of a gone worker"), "\(supervisor.log)")
            }
        }
    }

    /// A supervisor killed with SIGKILL cannot stop anything: its worker dies with it (`PR_SET_PDEATHSIG`), but the
    /// worker's own children live on, holding the listening socket. With a cgroup per worker the next supervisor
    /// finds them in the dead one's cgroups, kills them, and binds the same port; with process groups alone they
    /// are out of its reach (documented), and the port stays taken.
    @Test func theNextSupervisorEndsWhatAKilledOneLeft() throws {
        let first = try SupervisorProcess(["--workers", "1", "--", try Self.python(), Self.fixtures + "/tree_worker.py", "setsid-child"])
        try first.waitForLog("all 1 workers ready", timeout: 30)
        let port = try first.port()
        try Self.waitUntilServing(first, port: port)
        // Decided apart from the supervisor's own word: can this user make a cgroup beside this process's?
        let cgroups = Self.canMakeCgroups()
        let reported = runShell("'\(try Binaries.path("supervisor"))' status --control-socket '\(first.controlSocket!)'").output
        #expect(reported.contains("worker trees: cgroup") == cgroups, "\(reported)")
        let tree = ProcessTable.descendants(of: first.pid)
        first.signal(SIGKILL)
        _ = try? first.waitForExit(timeout: 5)
        usleep(300_000)
        let left = ProcessTable.running(tree)
        // With cgroups, any supervisor that starts now ends them: a parallel test's may come first.
        #expect(cgroups || !left.isEmpty, "the setsid'd server outlives a SIGKILLed supervisor")
        let second = try SupervisorProcess(["--workers", "1", "--bind", "127.0.0.1:\(port)", "--", try Binaries.path("test-worker")],
                                           bindEphemeral: false)
        defer { for process in ProcessTable.running(tree) { kill(process.pid, SIGKILL) } }
        if cgroups {
            try second.waitForLog("all 1 workers ready", timeout: 10)
            if !left.isEmpty, !second.log.contains("killed what a supervisor that was killed left running") {
                print("the leftovers were ended by another test's supervisor that started first")
            }
            #expect(ProcessTable.running(tree).isEmpty, "\(ProcessTable.running(tree))")
            second.signal(SIGTERM)
            #expect(try second.waitForExit() == 0)
        } else {
            #expect(try second.waitForExit(timeout: 10) == 71, "the port is still held by the leftovers:\n\(second.log)")
        }
    }

    /// Four levels below the worker, each in a session of its own and ignoring TERM, re-parented one at a time as
    /// the one above dies: the whole chain gets one graceful timeout, not one per level (the last level kept
    /// serving next to the replacement for four of them).
    @Test func aChainOfTermIgnoringProcessesGetsOneGraceInAll() throws {
        let supervisor = try SupervisorProcess(["--workers", "1", "--graceful-timeout", "2", "--", try Self.python(),
                                                Self.fixtures + "/tree_worker.py", "chain", "4"])
        try supervisor.waitForLog("all 1 workers ready", timeout: 30)
        let port = try supervisor.port()
        try Self.waitUntilServing(supervisor, port: port)
        let old = ProcessTable.descendants(of: supervisor.pid)
        #expect(old.count == 5, "\(old)")
        let hup = Date()
        supervisor.signal(SIGHUP)
        Self.waitUntilGone(old, within: 10, "after a HUP, the chain", log: supervisor.log)
        #expect(Date().timeIntervalSince(hup) < 3.5, "the chain took \(Date().timeIntervalSince(hup)) s to go")

        try Self.waitUntilServing(supervisor, port: port)
        let worker = try Self.workerPID(supervisor)
        let tree = ProcessTable.descendants(of: supervisor.pid)
        let killed = Date()
        kill(worker, SIGKILL)
        Self.waitUntilGone(tree, within: 10, "after kill -9 of the worker, the chain", log: supervisor.log)
        #expect(Date().timeIntervalSince(killed) < 3.5, "the chain took \(Date().timeIntervalSince(killed)) s to go")
        supervisor.signal(SIGTERM)
        #expect(try supervisor.waitForExit(timeout: 15) == 0)
    }

    /// `sidecar & exec supervisor`, a common entrypoint: the sidecar is the supervisor's child from its first
    /// instant, and no worker's orphan; nor is what it leaves behind later in its (and the supervisor's) process
    /// group. Both are left alone, and the supervisor's stop does not wait for them.
    @Test func aChildStartedBeforeTheSupervisorIsLeftAlone() throws {
        let control = "/tmp/prefork-test-sidecar-\(getpid()).sock"
        // The first sleep is the supervisor's child at once; the second is re-parented to it a second later.
        let script = "sleep 61 & (sleep 1; sleep 62 &) & exec '\(try Binaries.path("supervisor"))' --workers 1 "
            + "--bind 127.0.0.1:0 --no-cleanup --control-socket \(control) -- '\(try Binaries.path("test-worker"))'"
        let supervisor = try SupervisorProcess(["-c", script], bindEphemeral: false, executable: "/bin/sh")
        try supervisor.waitForLog("all 1 workers ready", timeout: 30)
        try supervisor.waitForLog("children started before the supervisor are left alone")
        func sleeps() -> [Int32] {
            ProcessTable.children(of: supervisor.pid).filter {
                ((try? String(contentsOfFile: "/proc/\($0)/cmdline", encoding: .utf8)) ?? "").hasPrefix("sleep\u{0}6")
            }
        }
        usleep(3_000_000)  // the second sleep re-parented, and two sweeps
        let found = sleeps()
        defer { for pid in found { kill(pid, SIGKILL) } }
        #expect(found.count == 2, "both sleeps are the supervisor's children and alive: \(found)\n\(supervisor.log)")
        #expect(!supervisor.log.contains("orphan of a gone worker"), "\(supervisor.log)")
        supervisor.signal(SIGTERM)
        // Foundation's Process sees its child end only once every inherited descriptor is closed, the sleeps' too:
        // watch the process table instead.
        let deadline = Date().addingTimeInterval(15)
        while ProcessTable.isAlive(supervisor.pid), Date() < deadline { usleep(20_000) }
        #expect(!ProcessTable.isAlive(supervisor.pid), "\(supervisor.log)")
        #expect(supervisor.log.contains("stopped exit=0"), "\(supervisor.log)")
        #expect(found.allSatisfy(ProcessTable.isAlive), "not the supervisor's to stop")
        for pid in found { kill(pid, SIGKILL) }
        _ = try supervisor.waitForExit(timeout: 15)
    }

    /// Whether a cgroup can be made in this process's cgroup (v2), as the supervisor's own probe does, found here
    /// through `/proc/self/cgroup` and the cgroup2 mount in `/proc/self/mountinfo`.
    static func canMakeCgroups() -> Bool {
        guard let own = try? String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8)
                .split(separator: "\n").first(where: { $0.hasPrefix("0::") })?.dropFirst(3),
            let mounts = try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8),
            let mount = mounts.split(separator: "\n").first(where: { $0.contains(" - cgroup2 ") })
        else { return false }
        let fields = mount.split(separator: " ")
        let probe = "\(fields[4])\(own == "/" ? "" : String(own))/prefork-test-probe-\(getpid())"
        guard mkdir(probe, 0o755) == 0 else { return false }
        defer { rmdir(probe) }
        return access(probe + "/cgroup.kill", W_OK) == 0
    }

    /// Every process of the tree ignores TERM: the graceful timeout ends with SIGKILL for all of them.
    @Test func aTreeThatIgnoresTerm() throws {
        let supervisor = try holdsItsTrees([try Self.python(), Self.fixtures + "/tree_worker.py", "ignore-term"], graceful: 2)
        #expect(supervisor.log.contains("sending SIGKILL"), "\(supervisor.log)")
    }
}
