import Glibc
import NIOCore
import TimeUnits
import WorkerRuntime

/// What only this SwiftNIO worker needs from the runtime, kept here so the library has no NIO in it.
extension Notifier {
    /// Sends `WATCHDOG=1` from `eventLoop` itself, so a loop blocked by a stuck handler stops the heartbeat
    /// and the supervisor notices; a timer thread of its own would keep beating for a dead loop.
    @discardableResult
    func startHeartbeat(on eventLoop: any EventLoop) -> RepeatedTask? {
        guard let interval = heartbeatInterval else { return nil }
        return eventLoop.scheduleRepeatedTask(initialDelay: .zero, delay: .nanoseconds(Int64(interval.inNanoseconds))) { _ in
            self.heartbeat()
        }
    }
}

extension InheritedSocket {
    /// Puts the accept queue back to the size the supervisor asked for.
    ///
    /// SwiftNIO's `withBoundSocket` calls `listen(fd, 128)` on an adopted socket before any channel option
    /// applies, and the backlog belongs to the socket, not to the process, so every worker that starts would
    /// shrink the queue all workers share to 128 (`ss -ltn` shows it). Calling `listen` again on a listening
    /// socket only changes the backlog. The size comes from `LISTEN_BACKLOG` (set by our supervisor); under
    /// systemd, which does not pass it, `SOMAXCONN` is systemd's own default for `Backlog=`.
    static func restoreBacklog(_ fd: Int32, environment backlog: String?) {
        let size = backlog.flatMap { Int32($0) }.map { max(1, $0) } ?? SOMAXCONN
        _ = listen(fd, size)
    }
}
