import SystemdProtocol
import Glibc

/// The listening socket a worker gets from its manager (our supervisor or systemd socket activation).
public enum InheritedSocket {
    /// fd 3 when `LISTEN_FDS`/`LISTEN_PID` say it is ours, else nil. The variables are unset, so a process
    /// this worker starts cannot mistake the socket for its own.
    public static func take() -> Int32? {
        (try? SystemdProtocol.takeListenFDs()).map { $0 >= 1 ? SystemdProtocol.listenFDsStart : nil } ?? nil
    }

}
