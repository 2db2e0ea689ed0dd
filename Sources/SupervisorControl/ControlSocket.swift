import SystemdProtocol
import SupervisorSystem
import CShims
import Glibc
import TimeUnits

/// Where `supervisor status|scale|reload|stop` find a running supervisor, and how they talk to it.
///
/// One request line, one response, then the supervisor closes: `ok`, `refused: why` or `error: why` on
/// the first line, the body after it. Plain text both ways, so `socat - UNIX:path` works too. The socket is
/// mode 0600 in a directory only its owner can write, so only the supervisor's user (and root) can stop or
/// scale it.
package enum ControlSocket {
    /// Where the supervisor listens and its commands ask by default (`RuntimeDirectory.controlSocketPath`).
    package static func defaultPath(environment: [String: String]) -> String {
        RuntimeDirectory.controlSocketPath(environment)
    }

    /// Other users' default control sockets that exist on this host (`/run/prefork/`, `/tmp/prefork-UID/`), for
    /// the message when the default path has none: root in a container (`docker exec -u 0`) looks in /run/prefork
    /// while the image's supervisor, as uid 10001, listens in /tmp/prefork-10001.
    package static func otherDefaults(than path: String) -> [String] {
        var candidates = ["/run/prefork/supervisor.sock"]
        if let directory = opendir("/tmp") {
            while let entry = readdir(directory) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { bytes in
                    String(decoding: bytes.prefix(while: { $0 != 0 }), as: UTF8.self)
                }
                if name.hasPrefix("prefork-"), name.dropFirst(8).allSatisfy(\.isNumber), name.count > 8 {
                    candidates.append("/tmp/\(name)/supervisor.sock")
                }
            }
            closedir(directory)
        }
        return candidates.filter { candidate in
            var info = stat()
            return candidate != path && stat(candidate, &info) == 0 && (info.st_mode & S_IFMT) == S_IFSOCK
        }.sorted()
    }

    /// What a client gets back.
    package enum Outcome: Equatable, Sendable {
        case ok(String)
        case refused(String)
        case error(String)
    }

    /// Splits a response into its outcome and body.
    package static func parse(_ response: String) -> Outcome {
        let newline = response.firstIndex(of: "\n") ?? response.endIndex
        let head = response[..<newline]
        let body = newline < response.endIndex ? String(response[response.index(after: newline)...]) : ""
        if head == "ok" { return .ok(body) }
        if head.hasPrefix("refused: ") { return .refused(String(head.dropFirst(9))) }
        if head.hasPrefix("error: ") { return .error(String(head.dropFirst(7))) }
        return .error("unexpected response from the supervisor: \(head.prefix(80))")
    }

    /// Why a client will not talk to the socket at `path`: someone other than this user (or root) could be
    /// answering in the supervisor's name. Another uid can pre-create `/tmp/prefork-UID/` mode 777 and bind
    /// its own `supervisor.sock` there, then say "ok" to a `stop` that never reached the real supervisor.
    package static func untrustedReason(path: String) -> String? {
        let me = geteuid()
        let directory = path.lastIndex(of: "/").map { String(path[..<$0]) }.map { $0.isEmpty ? "/" : $0 } ?? "."
        var info = stat()
        if lstat(directory, &info) == 0 {
            if info.st_mode & S_IFMT != S_IFDIR {
                return "\(directory) is not a directory"
            }
            if info.st_uid != me && info.st_uid != 0 {
                return "the directory \(directory) belongs to uid \(info.st_uid), not to you (uid \(me)) or root"
            }
            if info.st_mode & 0o022 != 0 && info.st_mode & S_ISVTX == 0 {
                return "the directory \(directory) is writable by other users (mode \(String(info.st_mode & 0o7777, radix: 8)))"
            }
        }
        if lstat(path, &info) == 0 {
            if info.st_mode & S_IFMT != S_IFSOCK { return "\(path) is not a socket" }
            if info.st_uid != me && info.st_uid != 0 {
                return "\(path) belongs to uid \(info.st_uid), not to you (uid \(me)) or root"
            }
        }
        return nil
    }

    /// Sends one request and reads the whole response; the failure says why nobody answered.
    package static func request(_ line: String, path: String, timeout limit: Duration = .seconds(10)) -> Result<String, SystemError> {
        exchange(line, path: path, timeout: limit).map(\.response)
    }

    /// The same, with the pid of the process that answered (`SO_PEERCRED`, in this PID namespace's numbers):
    /// `supervisor stop` waits for that process to end.
    package static func exchange(_ line: String, path: String, timeout limit: Duration = .seconds(10))
        -> Result<(response: String, peer: Int32), SystemError>
    {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return .failure(SystemError("socket")) }
        defer { close(fd) }
        let microseconds = max(1000, limit.inMicroseconds)
        var timeout = timeval(tv_sec: Int(microseconds / 1_000_000), tv_usec: Int(microseconds % 1_000_000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        guard withUnixSocketAddress(path, { connect(fd, $0, $1) }) == 0 else {
            return .failure(SystemError("connect \(path)"))
        }
        // The file checks above can be raced; the kernel's word on who listens cannot.
        var peer: uid_t = 0
        guard prefork_peer_uid(fd, &peer) == 0 else { return .failure(SystemError("SO_PEERCRED on \(path)")) }
        guard peer == geteuid() || peer == 0 else {
            return .failure(SystemError("the process listening on \(path) runs as uid \(peer), not as you (uid \(geteuid())) or root",
                                        errno: EPERM))
        }
        var peerPID: pid_t = 0
        _ = prefork_peer_pid(fd, &peerPID)
        var request = Array((line + "\n").utf8)
        guard request.withUnsafeMutableBytes({ send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) == request.count else {
            return .failure(SystemError("send to \(path)"))
        }
        var response: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = read(fd, &buffer, buffer.count)
            if count < 0, errno == EINTR { continue }
            if count < 0 { return .failure(SystemError("read from \(path)")) }
            if count == 0 { break }
            response += buffer[..<count]
        }
        return .success((String(decoding: response, as: UTF8.self), peerPID))
    }
}

/// The supervisor's end: a listening socket in the supervisor's epoll, and its few short-lived connections,
/// all non-blocking, so a client that connects and says nothing cannot stall the loop.
package final class ControlServer {
    package let fd: Int32
    package let path: String
    private struct Connection {
        var input: [UInt8] = []
        var output: [UInt8] = []
        var deadline: ContinuousClock.Instant
        var answered = false
    }
    private var connections: [Int32: Connection] = [:]
    /// The socket file this server made, so that `close` removes it and not one that replaced it since.
    private var file: (device: UInt, inode: UInt) = (0, 0)

    /// Binds `path`. A socket file nobody listens on (left by a supervisor that died) is replaced; one that
    /// something listens on is not, whoever it is: another supervisor, stopped or not, or another program's
    /// socket given by mistake (a Postgres socket in /tmp).
    package init(path: String) throws(SystemError) {
        self.path = path
        let directory = String(path[..<(path.lastIndex(of: "/") ?? path.startIndex)])
        if !directory.isEmpty, access(directory, F_OK) != 0 {
            guard mkdir(directory, 0o700) == 0 || errno == EEXIST else { throw SystemError("mkdir \(directory)") }
        }
        var info = stat()
        // lstat: a symlink another user planted at /tmp/prefork-UID must not lead the socket elsewhere.
        if !directory.isEmpty, lstat(directory, &info) == 0 {
            guard info.st_mode & S_IFMT == S_IFDIR else {
                throw SystemError("control socket directory \(directory) is not a directory (a symlink?)", errno: ENOTDIR)
            }
            if info.st_uid != geteuid() && info.st_uid != 0 || (info.st_mode & 0o022) != 0 && (info.st_mode & S_ISVTX) == 0 {
                throw SystemError("control socket directory \(directory) is writable by others or not ours", errno: EPERM)
            }
        }
        if lstat(path, &info) == 0 {
            // Only a socket is ever replaced: a path given by mistake must not cost someone a file.
            guard info.st_mode & S_IFMT == S_IFSOCK else {
                throw SystemError("\(path) exists and is not a socket", errno: EEXIST)
            }
            if Self.somethingListens(path) {
                throw SystemError("control socket \(path) is in use: a process listens on it (another supervisor?)",
                                  errno: EADDRINUSE)
            }
            unlink(path)
        }
        let type = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue)
        fd = socket(AF_UNIX, type, 0)
        guard fd >= 0 else { throw SystemError("control socket") }
        let previous = umask(0o177)
        let bound = withUnixSocketAddress(path) { bind(fd, $0, $1) }
        umask(previous)
        guard bound == 0, listen(fd, 16) == 0 else {
            let error = SystemError("bind control socket \(path)")
            Glibc.close(fd)
            throw error
        }
        if lstat(path, &info) == 0 { file = (UInt(info.st_dev), UInt(info.st_ino)) }
    }

    /// A connect that succeeds, or finds the queue full, means a listener; only a refused one means a stale file.
    /// Anything else (no permission to connect) is taken as a listener too: never remove what cannot be checked.
    static func somethingListens(_ path: String) -> Bool {
        let probe = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard probe >= 0 else { return true }
        defer { Glibc.close(probe) }
        if withUnixSocketAddress(path, { connect(probe, $0, $1) }) == 0 { return true }
        return errno != ECONNREFUSED && errno != ENOENT
    }

    package func owns(_ descriptor: Int32) -> Bool { connections[descriptor] != nil }

    /// The socket file is gone or is no longer this server's (tmpfiles ageing /tmp removed it, or someone did):
    /// nobody can reach this server any more, and a new one should be bound (`SupervisorLoop` does at HUP).
    package var isUnreachable: Bool {
        var info = stat()
        guard lstat(path, &info) == 0 else { return true }
        return UInt(info.st_dev) != file.device || UInt(info.st_ino) != file.inode
    }

    /// New connections, for the loop to watch.
    package func accept(now: ContinuousClock.Instant) -> [Int32] {
        var accepted: [Int32] = []
        while connections.count < 64 {
            let connection = Glibc.accept(fd, nil, nil)
            guard connection >= 0 else { break }
            _ = fcntl(connection, F_SETFD, FD_CLOEXEC)
            _ = fcntl(connection, F_SETFL, fcntl(connection, F_GETFL) | O_NONBLOCK)
            connections[connection] = Connection(deadline: now + .seconds(5))
            accepted.append(connection)
        }
        return accepted
    }

    /// Reads what arrived; returns the request line once it is complete. A connection that closed, sent more
    /// than 4 KiB without a newline, or failed is closed.
    package func readable(_ descriptor: Int32) -> String? {
        guard var connection = connections[descriptor], !connection.answered else {
            drain(descriptor)
            return nil
        }
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = read(descriptor, &buffer, buffer.count)
            if count < 0, errno == EINTR { continue }
            if count < 0, errno == EAGAIN { break }
            guard count > 0 else { drop(descriptor); return nil }
            connection.input += buffer[..<count]
            if connection.input.count > 4096 { drop(descriptor); return nil }
            if connection.input.contains(UInt8(ascii: "\n")) { break }
        }
        connections[descriptor] = connection
        guard let newline = connection.input.firstIndex(of: UInt8(ascii: "\n")) else { return nil }
        let line = String(decoding: connection.input[..<newline], as: UTF8.self)
        return line.hasSuffix("\r") ? String(line.dropLast()) : line
    }

    /// Queues the response and writes what the socket takes now; true when the loop must wait for EPOLLOUT.
    package func respond(_ descriptor: Int32, _ response: String) -> Bool {
        guard var connection = connections[descriptor] else { return false }
        connection.answered = true
        connection.output = Array(response.utf8)
        connections[descriptor] = connection
        return flush(descriptor)
    }

    /// Writes more of a pending response; true while some is left.
    @discardableResult
    package func flush(_ descriptor: Int32) -> Bool {
        guard var connection = connections[descriptor] else { return false }
        while !connection.output.isEmpty {
            let written = connection.output.withUnsafeBytes { send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if written < 0, errno == EINTR { continue }
            if written < 0, errno == EAGAIN { connections[descriptor] = connection; return true }
            guard written > 0 else { drop(descriptor); return false }
            connection.output.removeFirst(written)
        }
        drop(descriptor)
        return false
    }

    /// Closes connections past their deadline; the loop's tick calls it.
    package func expire(now: ContinuousClock.Instant) {
        for (descriptor, connection) in connections where connection.deadline <= now { drop(descriptor) }
    }

    package var nextDeadline: ContinuousClock.Instant? { connections.values.map(\.deadline).min() }

    private func drain(_ descriptor: Int32) {
        var buffer = [UInt8](repeating: 0, count: 512)
        if read(descriptor, &buffer, buffer.count) == 0 { drop(descriptor) }
    }

    private func drop(_ descriptor: Int32) {
        connections[descriptor] = nil
        Glibc.close(descriptor)  // also leaves the epoll set
    }

    package func close() {
        for descriptor in connections.keys { Glibc.close(descriptor) }
        connections = [:]
        Glibc.close(fd)
        var info = stat()
        if lstat(path, &info) == 0, UInt(info.st_dev) == file.device, UInt(info.st_ino) == file.inode { unlink(path) }
    }
}
