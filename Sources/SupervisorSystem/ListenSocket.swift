import SystemdProtocol
import CShims
import Glibc

/// The one listening socket every worker shares, bound once by the supervisor or handed down by systemd.
///
/// Binding once is what makes a prefork pool work: the kernel queues connections on one socket and whichever
/// worker calls `accept` first takes the next one, so a worker that is restarting or draining costs no
/// connection as long as one other worker (or its successor) accepts.
package struct ListenSocket: Sendable {
    package let fd: Int32
    /// For logs: the address actually bound (port 0 resolved).
    package let description: String
    /// A unix socket file we created and remove at exit.
    package let unixPath: String?

    /// Takes the socket systemd passed (`LISTEN_FDS`, `LISTEN_PID`), or nil when it passed none. The variables
    /// are unset, so they never reach a worker by accident.
    package static func inherited(environment: [String: String]) throws(ConfigurationError) -> ListenSocket? {
        let count: Int32
        do { count = try SystemdProtocol.takeListenFDs(environment: environment) } catch { throw ConfigurationError(error.description) }
        if count == 0 { return nil }
        let fd = SystemdProtocol.listenFDsStart
        guard SystemdProtocol.isListeningStreamSocket(fd) else {
            throw ConfigurationError("LISTEN_FDS: fd \(fd) is not a listening stream socket")
        }
        // Descriptors after the first are not ours to pass on; close them so no worker inherits them.
        if count > 1 { for extra in (fd + 1)..<(fd + count) { close(extra) } }
        return ListenSocket(fd: fd, description: "\(localAddress(fd)) (from systemd)", unixPath: nil)
    }

    /// Binds and listens. `SO_REUSEADDR` lets a restarted supervisor bind while old connections sit in TIME_WAIT.
    /// A unix socket gets `mode` (0666 by default, as uvicorn's: the folder is the access control) and
    /// `group`; a proxy under another uid could not connect to the 0755 that the umask left.
    package static func bind(_ address: BindAddress, backlog: Int32, mode: UInt32 = 0o666,
                            group: gid_t? = nil) throws(SystemError) -> ListenSocket {
        switch address {
        case .unix(let path): return try bindUnix(path: path, backlog: backlog, mode: mode, group: group)
        case .tcp(let host, let port): return try bindTCP(host: host, port: port, backlog: backlog)
        }
    }

    private static func bindTCP(host: String, port: UInt16, backlog: Int32) throws(SystemError) -> ListenSocket {
        var hints = addrinfo()
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &list)
        guard status == 0, let first = list else {
            // The resolver's own words; EAI_SYSTEM alone puts its reason in errno.
            if status == EAI_SYSTEM { throw SystemError("resolve \(host)") }
            throw SystemError("resolve \(host): \(String(cString: gai_strerror(status)))", errno: 0)
        }
        defer { freeaddrinfo(list) }
        var lastError = SystemError("bind \(host):\(port)", errno: EADDRNOTAVAIL)
        var entry: UnsafeMutablePointer<addrinfo>? = first
        while let info = entry {
            entry = info.pointee.ai_next
            let fd = socket(info.pointee.ai_family, info.pointee.ai_socktype | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { lastError = SystemError("socket"); continue }
            var one: Int32 = 1
            _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
            if info.pointee.ai_family == AF_INET6 {
                // [::] takes IPv4 connections too, as uvicorn's and gunicorn's do on Linux (whatever the host's
                // net.ipv6.bindv6only says): `--bind [::]:8000` must not leave IPv4 clients and the healthcheck out.
                var zero: Int32 = 0
                _ = setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &zero, socklen_t(MemoryLayout<Int32>.size))
            }
            guard Glibc.bind(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 else {
                lastError = SystemError("bind \(BindAddress.tcp(host: host, port: port))")
                close(fd)
                continue
            }
            guard listen(fd, backlog) == 0 else {
                lastError = SystemError("listen")
                close(fd)
                continue
            }
            return ListenSocket(fd: fd, description: localAddress(fd), unixPath: nil)
        }
        throw lastError
    }

    private static func bindUnix(path: String, backlog: Int32, mode: UInt32, group: gid_t?) throws(SystemError) -> ListenSocket {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SystemError("socket") }
        // A socket file left by a crashed run blocks bind; remove it only if it is a socket nobody answers on.
        var info = stat()
        if lstat(path, &info) == 0 {
            // EADDRINUSE would blame a listener that does not exist: say what is there instead.
            guard info.st_mode & S_IFMT == S_IFSOCK else {
                close(fd)
                throw SystemError("bind unix:\(path): the path exists and is not a socket (it is never replaced)", errno: EEXIST)
            }
            if !unixSocketAnswers(path) { unlink(path) }
        }
        let result = withUnixSocketAddress(path) { Glibc.bind(fd, $0, $1) }
        guard result == 0 else {
            let error = SystemError("bind unix:\(path)")
            close(fd)
            throw error
        }
        // Before listen: nobody can connect yet, so nobody connects under the umask's mode.
        if let group, chown(path, uid_t.max, group) != 0 {
            let error = SystemError("chown unix:\(path) to group \(group)")
            close(fd)
            unlink(path)
            throw error
        }
        guard chmod(path, mode_t(mode)) == 0 else {
            let error = SystemError("chmod unix:\(path)")
            close(fd)
            unlink(path)
            throw error
        }
        guard listen(fd, backlog) == 0 else {
            let error = SystemError("listen")
            close(fd)
            throw error
        }
        return ListenSocket(fd: fd, description: "unix:\(path)", unixPath: path)
    }

    private static func unixSocketAnswers(_ path: String) -> Bool {
        let probe = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard probe >= 0 else { return false }
        defer { close(probe) }
        return withUnixSocketAddress(path) { connect(probe, $0, $1) == 0 }
    }

    /// `getsockname` in words: `127.0.0.1:8080`, `[::1]:8080` or `unix:/path`.
    static func localAddress(_ fd: Int32) -> String {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let ok = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) == 0 }
        }
        guard ok else { return "fd \(fd)" }
        var host = [CChar](repeating: 0, count: Int(NI_MAXHOST))
        var service = [CChar](repeating: 0, count: 32)
        switch Int32(storage.ss_family) {
        case AF_INET, AF_INET6:
            let status = withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    getnameinfo($0, length, &host, socklen_t(host.count), &service, socklen_t(service.count),
                                NI_NUMERICHOST | NI_NUMERICSERV)
                }
            }
            guard status == 0 else { return "fd \(fd)" }
            let hostText = String(decoding: host.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            let port = String(decoding: service.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            return Int32(storage.ss_family) == AF_INET6 ? "[\(hostText)]:\(port)" : "\(hostText):\(port)"
        case AF_UNIX:
            let path = withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr_un.self, capacity: 1) { pointer in
                    withUnsafeBytes(of: pointer.pointee.sun_path) { bytes in
                        String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
                    }
                }
            }
            return "unix:\(path)"
        default:
            return "fd \(fd)"
        }
    }
}

extension ListenSocket {
    /// How a stop keeps new connections out of the queue that the workers drain before they close.
    package enum StopMechanism: String, Sendable {
        /// A socket filter drops every SYN: nothing is queued after the workers' last accept, none is reset.
        case filter = "socket-filter"
        /// The kernel allows no socket filter without CAP_NET_ADMIN (a non-root service or container on some
        /// kernels): the accept queue shrinks to one connection, so only a connection that completes its
        /// handshake between the last worker's final accept and its close can be reset.
        case backlog = "backlog"
        /// The socket is systemd's (socket activation): it outlives this supervisor, and connections that arrive
        /// during a stop or a restart wait in its queue for the next start, which is what the socket unit is for.
        /// Neither a filter nor a shrunk backlog may stay behind on it: both did, and the next instance then
        /// refused every connection (the filter) or queued almost none (a backlog of 0, which the API worker
        /// never raises again since it does not re-listen).
        case kept = "socket-activation"

        /// For the log and `supervisor status`.
        package var explanation: String {
            switch self {
            case .filter: "a socket filter drops new connections"
            case .backlog: "the accept queue shrinks to one connection (this kernel allows a socket filter only with CAP_NET_ADMIN)"
            case .kept: "the socket stays as systemd made it; new connections wait in its queue for the next start"
            }
        }
    }

    /// Tried on the socket itself at start (an accept-all filter, attached and detached), so the log says
    /// before the first stop which way it will go.
    package var stopMechanism: StopMechanism { prefork_can_filter_connections(fd) == 1 ? .filter : .backlog }

    /// Makes the socket stop queueing new connections, for every process holding it
    /// (`prefork_refuse_new_connections`); the mechanism that took effect, or nil with errno set.
    package func refuseNewConnections() -> StopMechanism? {
        switch prefork_refuse_new_connections(fd) {
        case Int32(PREFORK_REFUSED_BY_FILTER): .filter
        case Int32(PREFORK_REFUSED_BY_BACKLOG): .backlog
        default: nil
        }
    }
}
