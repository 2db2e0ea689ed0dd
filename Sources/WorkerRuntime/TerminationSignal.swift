import Dispatch
import Glibc

/// SIGTERM as a callback on a dispatch queue, never in signal context, so the callback may take locks,
/// allocate and hop to an event loop.
public enum TerminationSignal {
    /// Holds these signals pending until `handle` takes them. Call it first thing in `main`, before any
    /// thread exists, so every thread inherits the mask.
    ///
    /// Without it a TERM that arrives while the process boots is lost: `handle` used to set SIG_IGN and
    /// libdispatch registers its signalfd later, on its manager thread, and a signal that meets SIG_IGN in
    /// between is discarded. The worker then never drained and was killed at the graceful timeout (a stop
    /// during a worker's start took 8 s instead of 0.1). A blocked signal is never discarded: it waits in the
    /// process's pending set, and the signalfd reads it as soon as it exists.
    public static func holdUntilHandled(_ signals: [Int32] = [SIGTERM, SIGUSR1, SIGUSR2]) {
        var mask = sigset_t()
        sigemptyset(&mask)
        for signal in signals { sigaddset(&mask, signal) }
        pthread_sigmask(SIG_BLOCK, &mask, nil)
        // An ignored signal is discarded even while blocked, and SIG_IGN survives exec (a parent that ignores
        // TERM): the default action is safe now that the signal cannot be delivered.
        for signal in signals { Glibc.signal(signal, SIG_DFL) }
    }

    /// Installs the handler; keep the returned source alive for as long as the process should react.
    public static func handle(_ signal: Int32 = SIGTERM, _ body: @escaping @Sendable () -> Void) -> any DispatchSourceSignal {
        var current = sigset_t()
        pthread_sigmask(SIG_BLOCK, nil, &current)
        if sigismember(&current, signal) == 0 {
            // Not held: the default action would end the process before the source sees the signal.
            // (Setting SIG_IGN on a held signal would discard one already pending, so only here.)
            Glibc.signal(signal, SIG_IGN)
        }
        let source = DispatchSource.makeSignalSource(signal: signal, queue: .global())
        source.setEventHandler(handler: body)
        // libdispatch installs its own handler later, on its manager thread. Until then a held signal must
        // stay held: `dispatchMain()` parks the main thread in `sigsuspend` with an empty mask, and a TERM
        // pending then met the default action and ended the process (half of the TERMs sent during a boot).
        let registered = DispatchSemaphore(value: 0)
        source.setRegistrationHandler { registered.signal() }
        source.resume()
        registered.wait()
        return source
    }

}
