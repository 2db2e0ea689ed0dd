import CShims
import Arbiter
import Glibc

/// The supervisor's signals, read as data from a signalfd instead of handled in an async handler.
///
/// They are blocked before any child exists, and the spawn shim unblocks them in each child before exec,
/// so the mask never leaks into a worker. Nothing runs in signal context: no races with the loop's state.
package struct SignalChannel {
    package let fd: Int32

    /// The signals the supervisor acts on, SIGCHLD for reaping, USR1/USR2 (relayed only with `--relay-signal`),
    /// and the others whose default action would end the supervisor and, through PDEATHSIG, every worker with
    /// it: an operator's stray `kill -ALRM` or `docker kill --signal PWR` is logged and dropped.
    static let handled: [Int32] = [SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGTTIN, SIGTTOU, SIGCHLD, SIGUSR1, SIGUSR2]
    /// XFSZ comes from a write past `ulimit -f` (the log file): the write fails with EFBIG instead, and the
    /// supervisor lives on. A synchronous fault (SEGV, a real trap) is delivered whatever the mask says.
    static let dropped: [Int32] = [SIGALRM, SIGVTALRM, SIGPROF, SIGIO, SIGPWR, SIGSTKFLT, SIGXCPU, SIGXFSZ, SIGSYS, SIGTRAP]

    /// SIGRTMIN to SIGRTMAX (34 to 64 with glibc, which keeps 32 and 33 for itself): their default action ends
    /// the process, and nothing here uses them; a stray `kill -40` is logged and dropped like the others.
    static var realTime: [Int32] {
        Array(__libc_current_sigrtmin()...__libc_current_sigrtmax())
    }

    package init() throws(SystemError) {
        var mask = sigset_t()
        sigemptyset(&mask)
        for handled in Self.handled + Self.dropped + Self.realTime {
            // An ignored signal is discarded even while blocked, and SIG_IGN survives exec: under `nohup`, or
            // a parent that ignores SIGCHLD (children then reap themselves behind waitpid), we would be deaf.
            signal(handled, SIG_DFL)
            sigaddset(&mask, handled)
        }
        guard sigprocmask(SIG_BLOCK, &mask, nil) == 0 else { throw SystemError("sigprocmask") }
        // A worker that dies while we write to its pipe, or a log reader that goes away, must not kill the
        // supervisor. Workers get SIGPIPE back as the supervisor inherited it.
        _ = prefork_ignore_sigpipe()
        fd = signalfd(-1, &mask, Int32(SFD_CLOEXEC | SFD_NONBLOCK))
        guard fd >= 0 else { throw SystemError("signalfd") }
    }

    package enum Received: Equatable {
        case control(Arbiter<ContinuousClock.Instant>.ControlSignal)
        case childExited
        /// Caught so that it cannot end the supervisor; logged, nothing else.
        case dropped(Int32)
    }

    /// Every signal queued since the last read.
    package func drain() -> [Received] {
        var received: [Received] = []
        var info = signalfd_siginfo()
        let size = MemoryLayout<signalfd_siginfo>.size
        while read(fd, &info, size) == size {
            switch Int32(info.ssi_signo) {
            case SIGTERM: received.append(.control(.terminate))
            case SIGINT: received.append(.control(.interrupt))
            case SIGQUIT: received.append(.control(.quit))
            case SIGHUP: received.append(.control(.hangup))
            case SIGTTIN: received.append(.control(.increase))
            case SIGTTOU: received.append(.control(.decrease))
            case SIGCHLD: received.append(.childExited)
            case SIGUSR1: received.append(.control(.user(.usr1)))
            case SIGUSR2: received.append(.control(.user(.usr2)))
            default: received.append(.dropped(Int32(info.ssi_signo)))
            }
        }
        return received
    }

    /// Reaps every child that has ended, ours or an orphan re-parented to us.
    package static func reap() -> [(pid: Int32, status: ExitStatus)] {
        var reaped: [(Int32, ExitStatus)] = []
        while true {
            var status: Int32 = 0
            let pid = waitpid(-1, &status, WNOHANG)
            if pid < 0, errno == EINTR { continue }
            guard pid > 0 else { return reaped }
            // WIFEXITED/WIFSIGNALED are macros Swift cannot import; this is their glibc definition.
            let termination = status & 0x7f
            if termination == 0 {
                reaped.append((pid, .exited((status >> 8) & 0xff)))
            } else if termination != 0x7f {
                reaped.append((pid, .signaled(termination)))
            }
        }
    }
}
