import Foundation
import Synchronization

/// Where the binaries under test are: `PREFORK_BIN_DIR`, or the package's release build folder.
///
/// The test worker is built in release mode on purpose: SwiftNIO 2.101's debug builds assert when several
/// processes accept on one socket (another process may take the connection first), release builds do not.
public enum Binaries {
    public static let directory: String = {
        if let directory = ProcessInfo.processInfo.environment["PREFORK_BIN_DIR"] { return directory }
        // Tests/Support/IntegrationSupport/SupervisorProcess.swift, four levels below the repository.
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent()
        return root.appendingPathComponent(".build/release").path
    }()

    public static func path(_ name: String) throws -> String {
        let path = directory + "/" + name
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw TestFailure("\(path) is missing: run scripts/test, or swift build -c release --product \(name)")
        }
        return path
    }

    public static var fixtures: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("SupervisorIntegrationTests/Fixtures").path
    }
}

public struct TestFailure: Error, Equatable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// A supervisor started as a real child process, its stderr collected line by line.
public final class SupervisorProcess: @unchecked Sendable {
    public let process = Process()
    /// The supervisor's control socket (one per test supervisor), for `supervisor status` and friends.
    public let controlSocket: String?
    private static let serial = Atomic<Int>(0)
    private let output = CollectedOutput()
    private let stderrPipe = Pipe()

    /// Starts `supervisor` with `arguments` on 127.0.0.1 and an ephemeral port unless `--bind` is given.
    public init(_ arguments: [String], environment: [String: String] = [:], bindEphemeral: Bool = true,
         executable: String? = nil) throws {
        process.executableURL = URL(fileURLWithPath: try executable ?? Binaries.path("supervisor"))
        // The real `cleanup` sits next to the supervisor under test: a test that does not schedule the job
        // itself must not see it start (at 03:00 UTC) and count it as a worker.
        let cleanup = executable == nil && !arguments.contains { $0.hasPrefix("--cleanup") } ? ["--no-cleanup"] : []
        // A control socket of its own: supervisors of parallel tests must not compete for the default path.
        var control: [String] = []
        if executable == nil, !arguments.contains("--control-socket") {
            let path = "/tmp/prefork-test-\(getpid())-\(Self.serial.add(1, ordering: .relaxed).newValue).sock"
            control = ["--control-socket", path]
            controlSocket = path
        } else if let index = arguments.firstIndex(of: "--control-socket"), index + 1 < arguments.count {
            controlSocket = arguments[index + 1]
        } else {
            controlSocket = nil
        }
        process.arguments = (bindEphemeral ? ["--bind", "127.0.0.1:0"] : []) + cleanup + control + arguments
        var env = ProcessInfo.processInfo.environment
        for key in ["API_WORKERS", "BIND", "PORT", "GRACEFUL_TIMEOUT", "NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID"] {
            env[key] = nil
        }
        env.merge(environment) { $1 }
        process.environment = env
        process.standardError = stderrPipe
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        // Our copy of the write end, so the reader sees end-of-file once the supervisor and its children are gone.
        try? stderrPipe.fileHandleForWriting.close()
        // A thread of its own reads the log with blocking reads, until end-of-file. Not `readabilityHandler`:
        // libdispatch's event loop crashed (SIGSEGV in _dispatch_event_loop_drain) with many of these pipes
        // opening and closing across parallel suites. The thread keeps the pipe, so its descriptor stays open
        // (and cannot be reused) until the read is done.
        let pipe = stderrPipe
        let output = self.output
        Thread.detachNewThread {
            let fd = pipe.fileHandleForReading.fileDescriptor
            var buffer = [UInt8](repeating: 0, count: 65536)
            while true {
                let count = read(fd, &buffer, buffer.count)
                if count < 0, errno == EINTR { continue }
                guard count > 0 else { break }
                output.append(String(decoding: buffer[..<count], as: UTF8.self))
            }
            output.complete()
            withExtendedLifetime(pipe) {}
        }
    }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    public var pid: Int32 { process.processIdentifier }
    public var log: String { output.text }

    public func signal(_ signal: Int32) { kill(pid, signal) }

    /// Waits until the log has `count` lines containing `text`; returns those lines.
    @discardableResult
    public func waitForLog(_ text: String, count: Int = 1, timeout: Double = 10) throws -> [String] {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let lines = log.split(separator: "\n").filter { $0.contains(text) }.map(String.init)
            if lines.count >= count { return lines }
            guard Date() < deadline else {
                throw TestFailure("no \(count)x '\(text)' in the log after \(timeout)s:\n\(log)")
            }
            usleep(10_000)
        }
    }

    /// The port from the "listening on 127.0.0.1:PORT" line.
    public func port() throws -> UInt16 { try port(inLineWith: "listening on ") }

    /// The admin endpoint's port, from the "metrics of the supervisor and every worker on http://127.0.0.1:PORT" line.
    /// Tests bind `--metrics-bind 127.0.0.1:0`: a port picked by the test could be an ephemeral port in use.
    public func metricsPort() throws -> UInt16 { try port(inLineWith: "every worker on http://") }

    private func port(inLineWith text: String) throws -> UInt16 {
        let line = try waitForLog(text).first!
        guard let range = line.range(of: #"127\.0\.0\.1:(\d+)"#, options: .regularExpression),
            let port = UInt16(line[range].split(separator: ":").last!)
        else { throw TestFailure("no port in: \(line)") }
        return port
    }

    /// The port, from `supervisor status --json` once every worker is ready: for a supervisor whose log level
    /// hides the "listening on" line.
    public func portFromStatus(workers: Int, host: String = "127.0.0.1", timeout: Double = 10) throws -> UInt16 {
        guard let controlSocket else { throw TestFailure("no control socket") }
        let deadline = Date().addingTimeInterval(timeout)
        var last = ""
        while Date() < deadline {
            last = runShell("'\(try Binaries.path("supervisor"))' status --json --control-socket '\(controlSocket)'").output
            let prefix = "\"listening\":\"\(host):"
            if last.contains("\"ready\":\(workers),"), let start = last.range(of: prefix),
               let port = UInt16(last[start.upperBound...].prefix(while: \.isNumber)) {
                return port
            }
            usleep(50_000)
        }
        throw TestFailure("not \(workers) ready by status: \(last)\n\(log)")
    }

    /// The exit code, or a failure if it does not exit in time.
    public func waitForExit(timeout: Double = 15) throws -> Int32 {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning {
            guard Date() < deadline else { throw TestFailure("supervisor still running after \(timeout)s:\n\(log)") }
            usleep(10_000)
        }
        // The log is complete once the reader saw end-of-file: every holder of the pipe (the process, and
        // children that die with it) is gone. Bounded, in case a child outlives it on purpose.
        let logDeadline = Date().addingTimeInterval(2)
        while !output.isComplete, Date() < logDeadline { usleep(5_000) }
        return process.terminationStatus
    }

    /// Pids of the supervisor's live children (workers, or anything re-parented to it).
    public var children: [Int32] { ProcessTable.children(of: pid) }

    /// Waits until exactly `count` children run and the arbiter reported `ready` lines for all of them.
    @discardableResult
    public func waitForWorkers(_ count: Int, timeout: Double = 10) throws -> [Int32] {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let children = self.children
            if children.count == count { return children.sorted() }
            guard Date() < deadline else {
                throw TestFailure("expected \(count) workers, have \(children.count) after \(timeout)s:\n\(log)")
            }
            usleep(10_000)
        }
    }
}

/// Reads /proc, the ground truth of who is alive and whose child it is.
public enum ProcessTable {
    public static func stat(_ pid: Int32) -> [String]? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = text.lastIndex(of: ")")
        else { return nil }
        // Fields after the command name, which may hold spaces: state is [0], ppid [1], pgrp [2].
        return text[text.index(after: close)...].split(separator: " ").map(String.init)
    }

    public static func children(of parent: Int32) -> [Int32] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap(Int32.init).filter { pid in
            guard let fields = stat(pid) else { return false }
            return fields[1] == String(parent) && fields[0] != "Z"
        }
    }

    public static func isAlive(_ pid: Int32) -> Bool {
        guard let fields = stat(pid) else { return false }
        return fields[0] != "Z"
    }

    public static func exists(_ pid: Int32) -> Bool { stat(pid) != nil }

    /// A process as the kernel knows it: its pid and its start time, so that a later process given the same pid is
    /// not taken for it.
    public struct Identity: Hashable, Sendable, CustomStringConvertible {
        public var pid: Int32
        public var startTime: String
        public var description: String { "\(pid)" }
    }

    public static func identity(_ pid: Int32) -> Identity? {
        guard let fields = stat(pid), fields.count > 19 else { return nil }
        return Identity(pid: pid, startTime: fields[19])
    }

    /// Every live process below `root` (children, their children, ...), whatever group or session they are in.
    public static func descendants(of root: Int32) -> [Identity] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        var parents: [Int32: Int32] = [:]
        for pid in entries.compactMap(Int32.init) {
            if let fields = stat(pid), fields[0] != "Z", let parent = Int32(fields[1]) { parents[pid] = parent }
        }
        var found: [Int32] = []
        var frontier: Set<Int32> = [root]
        while !frontier.isEmpty {
            let next = parents.filter { frontier.contains($0.value) }.map(\.key)
            found += next
            frontier = Set(next)
        }
        return found.compactMap(identity)
    }

    /// Those of `processes` still running (zombies are not).
    public static func running(_ processes: [Identity]) -> [Identity] {
        processes.filter { process in identity(process.pid) == process && isAlive(process.pid) }
    }

    public static func environment(_ pid: Int32) -> [String: String] {
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/environ") else { return [:] }
        var result: [String: String] = [:]
        for entry in data.split(separator: 0) {
            let text = String(decoding: entry, as: UTF8.self)
            if let equals = text.firstIndex(of: "=") {
                result[String(text[..<equals])] = String(text[text.index(after: equals)...])
            }
        }
        return result
    }
}

/// A child's log as it arrives, shared with the thread that reads it.
final class CollectedOutput: Sendable {
    private let collected = Mutex<(text: String, complete: Bool)>(("", false))
    func append(_ text: String) { collected.withLock { $0.text += text } }
    /// End-of-file: nothing more will come.
    func complete() { collected.withLock { $0.complete = true } }
    var text: String { collected.withLock { $0.text } }
    var isComplete: Bool { collected.withLock { $0.complete } }
}

/// The control socket's protocol from the test side: one line out, the whole response back.
public enum ControlClient {
    public static func request(_ line: String, path: String) -> String? {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8)) }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard connected == 0 else { return nil }
        let bytes = Array((line + "\n").utf8)
        guard write(fd, bytes, bytes.count) == bytes.count else { return nil }
        var response: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = read(fd, &buffer, buffer.count)
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { break }
            response += buffer[..<count]
        }
        return String(decoding: response, as: UTF8.self)
    }

    /// `status json`, decoded.
    public static func status(_ path: String) -> [String: Any]? {
        guard let response = request("status json", path: path), response.hasPrefix("ok\n") else { return nil }
        return try? JSONSerialization.jsonObject(with: Data(response.dropFirst(3).utf8)) as? [String: Any]
    }
}

/// Runs a command line through /bin/sh and returns its exit status and combined output.
public func runShell(_ command: String, environment: [String: String] = [:]) -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/bin/sh")
    process.arguments = ["-c", command + " 2>&1"]
    var env = ProcessInfo.processInfo.environment
    env.merge(environment) { $1 }
    process.environment = env
    let pipe = Pipe()
    process.standardOutput = pipe
    guard (try? process.run()) != nil else { return (-1, "cannot run /bin/sh") }
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}
