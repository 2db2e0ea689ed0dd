import CShims
import Glibc

/// The two systemd protocols the supervisor speaks as a service, written out rather than linked.
///
/// libsystemd would bring libgcrypt, libgpg-error, liblz4, liblzma, libzstd and libcap into PID 1, about 1 MB
/// of resident memory for what sd_notify(3) and sd_listen_fds(3) document as a datagram and three environment
/// variables. Workers do link libsystemd (`WorkerRuntime`); both ends speak the same documented protocol.
enum SystemdProtocol {
    /// The first descriptor systemd passes (`SD_LISTEN_FDS_START`).
    static let listenFDsStart: Int32 = 3

    /// `sd_listen_fds(1)`: how many sockets were passed to *this* process, with the variables unset so that
    /// no child mistakes them for its own. Zero when none were, or when `LISTEN_PID` names another process.
    static func takeListenFDs(environment: [String: String]) throws(ConfigurationError) -> Int32 {
        defer {
            unsetenv("LISTEN_PID")
            unsetenv("LISTEN_FDS")
            unsetenv("LISTEN_FDNAMES")
        }
        guard let pidText = environment["LISTEN_PID"], let countText = environment["LISTEN_FDS"] else { return 0 }
        guard let pid = Int32(pidText), pid > 0 else { throw ConfigurationError("LISTEN_PID: not a pid: '\(pidText)'") }
        guard pid == getpid() else { return 0 }
        guard let count = Int32(countText), count >= 0, count < 1024 else {
            throw ConfigurationError("LISTEN_FDS: not a descriptor count: '\(countText)'")
        }
        for fd in listenFDsStart..<(listenFDsStart + count) where fcntl(fd, F_SETFD, FD_CLOEXEC) != 0 {
            throw ConfigurationError("LISTEN_FDS: fd \(fd) is not open")
        }
        return count
    }

    /// True when `fd` is a listening stream socket (`sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 1)`).
    static func isListeningStreamSocket(_ fd: Int32) -> Bool {
        var type: Int32 = 0
        var accepting: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &length) == 0 else { return false }
        length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &length) == 0 else { return false }
        return type == Int32(SOCK_STREAM.rawValue) && accepting != 0
    }

    /// `sd_notify(0, message)`: one datagram to `NOTIFY_SOCKET`, a path or an abstract name (`@...`).
    /// Returns false when it could not be sent; the caller has nothing better to do than go on.
    ///
    /// Never blocks: a datagram queue holds only `net.unix.max_dgram_qlen` messages (often 10), and a manager
    /// that stops reading must not freeze PID 1 in `sendto`, deaf to the signals that would stop it.
    @discardableResult
    static func notify(_ message: String, socketPath: String) -> Bool {
        guard !socketPath.isEmpty, socketPath.utf8.count <= maximumUnixSocketPath else { return false }
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        let payload = Array(message.utf8)
        let sent = withUnixSocketAddress(socketPath) {
            sendto(fd, payload, payload.count, Int32(MSG_NOSIGNAL) | Int32(MSG_DONTWAIT), $0, $1)
        }
        return sent == payload.count
    }

    /// `sd_watchdog_enabled(0, &usec)`: the watchdog interval systemd asks this process to keep, if any.
    static func watchdogMicroseconds(environment: [String: String]) -> UInt64? {
        guard let text = environment["WATCHDOG_USEC"], let microseconds = UInt64(text), microseconds > 0 else {
            return nil
        }
        if let pid = environment["WATCHDOG_PID"], Int32(pid) != getpid() { return nil }
        return microseconds
    }
}
