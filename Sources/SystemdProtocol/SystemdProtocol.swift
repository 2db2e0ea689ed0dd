import Glibc

/// The two systemd protocols, sd_notify(3) and sd_listen_fds(3), written out once for both ends: the supervisor
/// as a service of systemd, and every worker as a service of the supervisor (or of systemd). Their variables
/// (`NOTIFY_SOCKET`, `LISTEN_PID`, `LISTEN_FDS`, `LISTEN_FDNAMES`, `WATCHDOG_USEC`, `WATCHDOG_PID`) are read here
/// and nowhere else, as tini's `parse_env` reads its own.
///
/// Written rather than linked: libsystemd would bring libgcrypt, libgpg-error, liblz4, liblzma, libzstd and libcap
/// into PID 1, about 1 MB of resident memory for what the man pages document as a datagram and a few variables;
/// and its `sd_notify` blocks while the manager's queue is full, which once froze every worker.
public enum SystemdProtocol {
    /// Reads one variable; `environment` of a dictionary, or the process's own.
    public typealias Lookup = @Sendable (String) -> String?

    /// The process's environment, read when asked (a test may set `NOTIFY_SOCKET` after start).
    public static let processEnvironment: Lookup = { name in getenv(name).map { String(cString: $0) } }

    /// The protocol's variable names, for the end that reads them (here) and the end that writes them (the
    /// supervisor's spawner).
    public enum Variable {
        public static let listenPID = "LISTEN_PID"
        public static let listenFDs = "LISTEN_FDS"
        public static let listenFDNames = "LISTEN_FDNAMES"
        public static let notifySocket = "NOTIFY_SOCKET"
        public static let watchdogMicroseconds = "WATCHDOG_USEC"
        public static let watchdogPID = "WATCHDOG_PID"
        public static let all = [listenPID, listenFDs, listenFDNames, notifySocket, watchdogMicroseconds, watchdogPID]
    }

    /// How often to send `WATCHDOG=1` for a manager's `WATCHDOG_USEC`: half of it, as sd_watchdog_enabled(3)
    /// recommends.
    public static func watchdogPingInterval(microseconds: UInt64) -> Duration { .microseconds(Int64(microseconds / 2)) }

    /// The first descriptor systemd passes (`SD_LISTEN_FDS_START`).
    public static let listenFDsStart: Int32 = 3

    /// A variable that breaks the protocol: one line naming it.
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    /// `sd_listen_fds(1)`: how many sockets were passed to *this* process, with the variables unset so that
    /// no child mistakes them for its own. Zero when none were, or when `LISTEN_PID` names another process.
    public static func takeListenFDs(environment: Lookup = processEnvironment) throws(Failure) -> Int32 {
        let pidText = environment(Variable.listenPID)
        let countText = environment(Variable.listenFDs)
        unsetenv(Variable.listenPID)
        unsetenv(Variable.listenFDs)
        unsetenv(Variable.listenFDNames)
        guard let pidText, let countText else { return 0 }
        guard let pid = Int32(pidText), pid > 0 else { throw Failure(description: "LISTEN_PID: not a pid: '\(pidText)'") }
        guard pid == getpid() else { return 0 }
        guard let count = Int32(countText), count >= 0, count < 1024 else {
            throw Failure(description: "LISTEN_FDS: not a descriptor count: '\(countText)'")
        }
        for fd in listenFDsStart..<(listenFDsStart + count) where fcntl(fd, F_SETFD, FD_CLOEXEC) != 0 {
            throw Failure(description: "LISTEN_FDS: fd \(fd) is not open")
        }
        return count
    }

    /// True when `fd` is a listening stream socket (`sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 1)`).
    public static func isListeningStreamSocket(_ fd: Int32) -> Bool {
        var type: Int32 = 0
        var accepting: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &length) == 0 else { return false }
        length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &length) == 0 else { return false }
        return type == Int32(SOCK_STREAM.rawValue) && accepting != 0
    }

    /// `NOTIFY_SOCKET`: a path or an abstract name (`@...`); nil when unset or not one of those.
    public static func notifySocket(environment: Lookup = processEnvironment) -> String? {
        guard let name = environment(Variable.notifySocket), name.hasPrefix("/") || name.hasPrefix("@"),
              name.utf8.count <= maximumUnixSocketPath else { return nil }
        return name
    }

    /// `sd_watchdog_enabled(0, &usec)`: the watchdog interval the manager asks this process to keep, if any.
    public static func watchdogMicroseconds(environment: Lookup = processEnvironment) -> UInt64? {
        guard let text = environment(Variable.watchdogMicroseconds), let microseconds = UInt64(text), microseconds > 0 else {
            return nil
        }
        if let pid = environment(Variable.watchdogPID), Int32(pid) != getpid() { return nil }
        return microseconds
    }

    /// `sd_notify(0, message)`: one datagram to `socket`, without ever blocking the caller for long.
    ///
    /// A datagram queue holds only `net.unix.max_dgram_qlen` messages (often 10, shared by every worker), and a
    /// manager that stops reading must not freeze the sender in `sendto`: PID 1 deaf to its signals, or a worker's
    /// event loop and its requests. A full queue is tried `attempts` times, 10 ms apart (1: never wait). Returns
    /// whether the datagram went out.
    @discardableResult
    public static func notify(_ message: String, socket name: String, attempts: Int = 1) -> Bool {
        guard !name.isEmpty, name.utf8.count <= maximumUnixSocketPath else { return false }
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        let payload = Array(message.utf8)
        for attempt in 0..<max(1, attempts) {
            let sent = withUnixSocketAddress(name) { sendto(fd, payload, payload.count, Int32(MSG_NOSIGNAL), $0, $1) }
            if sent == payload.count { return true }
            if sent >= 0 || (errno != EAGAIN && errno != EINTR) { return false }
            if attempt + 1 < attempts { usleep(10_000) }
        }
        return false
    }

    public static func takeListenFDs(environment: [String: String]) throws(Failure) -> Int32 {
        try takeListenFDs { environment[$0] }
    }

    public static func notifySocket(environment: [String: String]) -> String? { notifySocket { environment[$0] } }

    public static func watchdogMicroseconds(environment: [String: String]) -> UInt64? {
        watchdogMicroseconds { environment[$0] }
    }
}
