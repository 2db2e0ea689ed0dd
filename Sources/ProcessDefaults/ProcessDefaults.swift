import CShims
import Glibc

/// What every worker program of ours sets up before anything else, whoever started it (the supervisor,
/// systemd, a shell).
public enum ProcessDefaults {
    /// Ignores SIGPIPE: a log reader or client that goes away makes a write fail with EPIPE, which the code
    /// handles, instead of ending the process at its next log line. Raises the soft open-files limit to the
    /// hard one, so that client sockets do not starve the pools of descriptors. Returns what to log about the
    /// limit, once logging is set up (nil when there is nothing to say).
    public static func apply() -> String? {
        signal(SIGPIPE, SIG_IGN)
        return raiseFileLimit()
    }

    /// The limit part alone (the supervisor ignores SIGPIPE its own way, remembering how it was inherited).
    public static func raiseFileLimit() -> String? {
        var from: UInt64 = 0
        var to: UInt64 = 0
        switch prefork_raise_file_limit(&from, &to) {
        case 1: return "open files: raised the soft limit from \(from) to the hard limit, \(to)"
        case 0: return from < 4096 ? "open files: the limit is \(from) (soft = hard); each client and pool connection takes one" : nil
        default: return "open files: could not raise the soft limit \(from) to \(to): \(String(cString: strerror(errno)))"
        }
    }
}
