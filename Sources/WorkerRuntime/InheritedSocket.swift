import SystemdProtocol
import Glibc

/// The listening socket a worker gets from its manager (our supervisor or systemd socket activation).
public enum InheritedSocket {
    /// fd 3 when `LISTEN_FDS`/`LISTEN_PID` say it is ours, else nil. The variables are unset, so a process
    /// this worker starts cannot mistake the socket for its own.
    public static func take() -> Int32? {
        (try? SystemdProtocol.takeListenFDs()).map { $0 >= 1 ? SystemdProtocol.listenFDsStart : nil } ?? nil
    }

    /// Puts the accept queue back to the size the supervisor asked for.
    ///
    /// SwiftNIO's `withBoundSocket` calls `listen(fd, 128)` on an adopted socket before any channel option
    /// applies, and the backlog belongs to the socket, not to the process, so every worker that starts would
    /// shrink the queue all workers share to 128 (`ss -ltn` shows it). Calling `listen` again on a listening
    /// socket only changes the backlog. The size comes from `LISTEN_BACKLOG` (set by our supervisor); under
    /// systemd, which does not pass it, `SOMAXCONN` is systemd's own default for `Backlog=`.
    public static func restoreBacklog(_ fd: Int32, environment backlog: String?) {
        let size = backlog.flatMap { Int32($0) }.map { max(1, $0) } ?? SOMAXCONN
        _ = listen(fd, size)
    }
}
