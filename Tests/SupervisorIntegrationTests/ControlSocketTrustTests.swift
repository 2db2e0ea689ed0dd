import IntegrationSupport
import Foundation
import Testing

/// Issue 15: `supervisor stop` trusted whatever answered at the control socket. Another uid could pre-create the
/// directory mode 777, bind its own `supervisor.sock`, and answer "ok" to a stop that never reached the real
/// supervisor. Clients now check the directory, the socket file and the listener's uid (SO_PEERCRED).
///
/// Root only: the test creates a second user (and removes it), which the non-root pass cannot.
@Suite("Control socket trust", .serialized, .enabled(if: geteuid() == 0, "creates a second user with useradd"))
struct ControlSocketTrustTests {
    static let attacker = "prefork-attacker"

    /// A fake supervisor run by the attacker: answers `ok` to anything.
    final class FakeSupervisor {
        let process = Process()
        init(socket path: String, directoryMode: Int?) throws {
            let ready = path + ".ready"
            let script = """
                import os, socket
                path = \(String(reflecting: path))
                d = os.path.dirname(path)
                \(directoryMode.map { "os.makedirs(d, exist_ok=True); os.chmod(d, \($0))" } ?? "pass")
                s = socket.socket(socket.AF_UNIX)
                s.bind(path); os.chmod(path, 0o777); s.listen(4)
                open(\(String(reflecting: ready)), "w").close()
                while True:
                    c, _ = s.accept(); c.recv(100); c.sendall(b"ok\\nstopped (not really)\\n"); c.close()
                """
            process.executableURL = URL(fileURLWithPath: "/usr/sbin/runuser")
            process.arguments = ["-u", ControlSocketTrustTests.attacker, "--", "python3", "-c", script]
            try process.run()
            for _ in 0..<200 where !FileManager.default.fileExists(atPath: ready) { usleep(20_000) }
            guard FileManager.default.fileExists(atPath: ready) else { throw TestFailure("the fake supervisor did not start") }
        }
        deinit {
            process.terminate()
            process.waitUntilExit()
        }
    }

    init() throws {
        let created = runShell("id -u \(Self.attacker) || useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \(Self.attacker)")
        guard created.status == 0 else { throw TestFailure("useradd failed: \(created.output)") }
    }

    func removeAttacker() { _ = runShell("userdel \(Self.attacker)") }

    @Test func aDirectoryPreCreatedByAnotherUserIsRefused() throws {
        defer { removeAttacker() }
        let directory = "/tmp/prefork-trust-\(getpid())"
        defer { _ = runShell("rm -rf \(directory)") }
        let fake = try FakeSupervisor(socket: directory + "/supervisor.sock", directoryMode: 0o777)
        // Before the fix, this answered "stopped (not really)" and exited 0.
        let (status, output) = runShell("\(try Binaries.path("supervisor")) stop --control-socket \(directory)/supervisor.sock")
        #expect(status == 69, "\(output)")
        #expect(output.contains("refusing to use the control socket") && output.contains("belongs to uid"), "\(output)")
        #expect(!output.contains("not really"))
        withExtendedLifetime(fake) {}
    }

    @Test func aListenerOfAnotherUserIsRefusedEvenBehindRootOwnedFiles() throws {
        defer { removeAttacker() }
        // A sticky, world-writable directory owned by root (as /tmp is), and the socket file handed to root: the
        // file checks pass, and only the kernel's SO_PEERCRED tells who listens.
        let directory = "/tmp/prefork-trust-sticky-\(getpid())"
        defer { _ = runShell("rm -rf \(directory)") }
        #expect(runShell("mkdir -m 1777 \(directory)").status == 0)
        let fake = try FakeSupervisor(socket: directory + "/supervisor.sock", directoryMode: nil)
        #expect(runShell("chown root:root \(directory)/supervisor.sock").status == 0)
        let (status, output) = runShell("\(try Binaries.path("supervisor")) status --control-socket \(directory)/supervisor.sock")
        #expect(status == 69, "\(output)")
        #expect(output.contains("runs as uid"), "\(output)")
        withExtendedLifetime(fake) {}
    }
}

/// Issue 15: exit codes that lied.
@Suite("Exit codes", .serialized)
struct ExitCodeTests {
    @Test func aDirectoryAsTheWorkerCommandIs127AtOnce() throws {
        let started = ContinuousClock.now
        let (status, output) = runShell("\(try Binaries.path("supervisor")) --no-cleanup -- /tmp")
        #expect(status == 127, "\(output)")
        #expect(output.contains("/tmp is a directory, not a command"), "\(output)")
        #expect(ContinuousClock.now - started < .seconds(2))
    }

    @Test func anExplicitControlSocketThatCannotBeCreatedIs71() throws {
        let (status, output) = runShell("\(try Binaries.path("supervisor")) --no-cleanup --control-socket /nonexistent/x/ctl.sock -- sleep 5")
        #expect(status == 71, "\(output)")
        #expect(output.contains("control socket /nonexistent/x/ctl.sock (--control-socket): mkdir /nonexistent/x: No such file or directory"), "\(output)")
    }

    /// Found by review: `--control-socket` at an existing file replaced it with a socket, and removed it at exit.
    @Test func aControlSocketPathThatIsAFileIsRefusedAndTheFileKept() throws {
        let path = "/tmp/prefork-precious-\(getpid()).conf"
        #expect(FileManager.default.createFile(atPath: path, contents: Data("data\n".utf8)))
        defer { unlink(path) }
        let (status, output) = runShell("\(try Binaries.path("supervisor")) --no-cleanup --control-socket \(path) -- sleep 5")
        #expect(status == 71, "\(output)")
        #expect(output.contains("exists and is not a socket"), "\(output)")
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "data\n")
    }

    /// Found by review: another program's live socket given as `--control-socket` (a Postgres socket in /tmp)
    /// was taken for a dead supervisor's, removed and replaced; and a supervisor stopped with SIGSTOP lost its
    /// socket to a second one. A socket anything listens on is never replaced.
    @Test func aSocketAnotherProgramListensOnIsKept() throws {
        let path = "/tmp/prefork-other-\(getpid()).sock"
        let listener = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8)) }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        #expect(bound == 0 && listen(listener, 4) == 0)
        var before = stat()
        #expect(lstat(path, &before) == 0)
        defer {
            close(listener)
            unlink(path)
        }
        let (status, output) = runShell("\(try Binaries.path("supervisor")) --no-cleanup --control-socket \(path) -- sleep 5")
        #expect(status == 71, "\(output)")
        #expect(output.contains("is in use: a process listens on it"), "\(output)")
        var after = stat()
        #expect(lstat(path, &after) == 0 && after.st_ino == before.st_ino, "the other program's socket was replaced")
    }

    @Test func scheduleRefusesInstantsOutsideTheCalendar() throws {
        let supervisor = try Binaries.path("supervisor")
        let (status, output) = runShell("\(supervisor) schedule --after 9223372036854775807 '0 0 * * *'")
        #expect(status == 64 && output.contains("from year 1 to year 9999"), "\(output)")
        let batch = runShell("printf 'UTC 9223372036854775807 0 0 * * *\\nUTC 0 0 0 * * *\\n' | \(supervisor) schedule --batch")
        #expect(batch.status == 0 && batch.output.hasSuffix("\n86400\n"), "\(batch.output)")
        // Tabs, as the help writes the lines, or spaces.
        let tabs = runShell("printf 'UTC\\t0\\t@daily\\nUTC 0 @daily\\n' | \(supervisor) schedule --batch")
        #expect(tabs.status == 0 && tabs.output == "86400\n86400\n", "\(tabs.output)")
        // A signed count is not a count: `scale +1` was read as 1, and scaled down.
        let signed = runShell("\(supervisor) scale +1 --control-socket /nonexistent/s.sock 2>&1")
        #expect(signed.status == 64, "\(signed.output)")
    }

    @Test func anUnresolvableBindSaysWhatTheResolverSaid() throws {
        let (status, output) = runShell("\(try Binaries.path("supervisor")) --no-cleanup --bind 999.1.1.1:80 -- sleep 5")
        #expect(status == 71, "\(output)")
        #expect(output.contains("resolve 999.1.1.1: Name or service not known") && !output.contains("Success"), "\(output)")
    }
}
