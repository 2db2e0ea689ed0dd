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
}
