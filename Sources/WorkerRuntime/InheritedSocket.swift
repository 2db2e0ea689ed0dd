import SystemdProtocol
import Glibc

/// The listening socket a worker gets from its manager (our supervisor or systemd socket activation).
public enum InheritedSocket {
    /// fd 3 when `LISTEN_FDS`/`LISTEN_PID` say it is ours, else nil. The variables are unset, so a process
    /// this worker starts cannot mistake the socket for its own. Variables that name this process but are wrong
    /// (`LISTEN_FDS=abc`, a descriptor that is not open) are an error, as for the supervisor: falling back to an
    /// address of its own would put the worker on 0.0.0.0:8080 instead of the socket it was given.
    public static func take() throws(SystemdProtocol.Failure) -> Int32? {
        try SystemdProtocol.takeListenFDs() >= 1 ? SystemdProtocol.listenFDsStart : nil
    }

}
