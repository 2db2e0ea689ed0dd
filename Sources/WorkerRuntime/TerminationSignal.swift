import Dispatch
import Glibc

/// SIGTERM as a callback on a dispatch queue, never in signal context, so the callback may take locks,
/// allocate and hop to an event loop.
public enum TerminationSignal {
    /// Installs the handler; keep the returned source alive for as long as the process should react.
    public static func handle(_ signal: Int32 = SIGTERM, _ body: @escaping @Sendable () -> Void) -> any DispatchSourceSignal {
        // The default action would end the process before the source sees the signal.
        Glibc.signal(signal, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: signal, queue: .global())
        source.setEventHandler(handler: body)
        source.resume()
        return source
    }

    /// Ignores the signal altogether (the test worker's `TEST_WORKER_IGNORE_TERM`).
    public static func ignore(_ signal: Int32 = SIGTERM) {
        Glibc.signal(signal, SIG_IGN)
    }
}
