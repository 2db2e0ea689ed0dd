import Glibc
import NIOCore

/// Stopping a shared listener without resetting a connection.
public enum Listener {
    /// Stops accepting on `server` and closes it; the future completes once it is closed.
    ///
    /// Closing at once is not safe with SwiftNIO: a connection the kernel already handed over is registered
    /// in a task queued on the event loop, and if the server channel is closed before that task runs,
    /// NIO's accept handler closes the new connection, and the client sees a reset for a request no other
    /// worker can answer any more. So: stop reading accepts first (`autoRead = false`), then close on a later
    /// turn of the loop, after the queued registrations; those connections are then served normally.
    /// Connections still in the kernel's queue stay there for the other workers, since the socket is shared.
    public static func stopAccepting(_ server: any Channel) -> EventLoopFuture<Void> {
        let eventLoop = server.eventLoop
        return server.setOption(ChannelOptions.autoRead, value: false).flatMap {
            eventLoop.flatSubmit { server.close() }
        }.recover { _ in }
    }

    /// The same, and the connections waiting in the kernel's accept queue are taken and served instead of
    /// being left there.
    ///
    /// When every worker stops at once (a deploy), the last one to close the shared socket makes the kernel
    /// reset every connection still queued: clients that completed the handshake and sent their request get
    /// a reset, as with uvicorn or gunicorn. Here each worker, right before closing, accepts everything
    /// queued (non-blocking, until EAGAIN) and hands each connection to `adopt`, then closes in the same turn
    /// of the loop. Connections that arrive between the last accept and the close would still be reset
    /// (measured: one in about fifteen stops under load); the supervisor closes that window by making the
    /// shared socket drop new connection attempts before it signals the workers (`closeListener`).
    ///
    /// - Parameters:
    ///   - fd: the listening socket `server` was made from.
    ///   - adopt: serves an accepted connection; the returned future completes once it is registered.
    public static func stopAccepting(_ server: any Channel, fd: Int32,
                                     adopt: @escaping @Sendable (Int32) -> EventLoopFuture<Void>) -> EventLoopFuture<Void> {
        let eventLoop = server.eventLoop
        return server.setOption(ChannelOptions.autoRead, value: false).flatMap {
            eventLoop.flatSubmit {
                var adopted: [EventLoopFuture<Void>] = []
                while true {
                    // NIO made the listening socket non-blocking: this never waits.
                    let connection = accept(fd, nil, nil)
                    if connection < 0 {
                        if errno == EINTR || errno == ECONNABORTED { continue }
                        break
                    }
                    _ = fcntl(connection, F_SETFD, FD_CLOEXEC)
                    adopted.append(adopt(connection))
                }
                let closed = server.close()
                return EventLoopFuture.andAllComplete(adopted + [closed.recover { _ in }], on: eventLoop)
            }
        }.recover { _ in }
    }
}
