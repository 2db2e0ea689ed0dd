import Synchronization
import Glibc
import NIOCore
import WorkerRuntime

/// Connections and drain state of the test worker. Everything runs on the one event loop, which is what
/// makes the unchecked Sendable sound: every method asserts it.
final class WorkerState: @unchecked Sendable {
    let eventLoop: any EventLoop
    let drainDelay: TimeAmount
    let notifier: WorkerNotifier
    var serverChannel: (any Channel)?
    /// The inherited listening socket, and how to serve a connection accepted from it during a drain.
    var listenerFD: Int32?
    var adopt: (@Sendable (Int32) -> EventLoopFuture<Void>)?
    private var connections: [ObjectIdentifier: (channel: any Channel, idle: () -> Bool)] = [:]
    private(set) var draining = false
    /// The listener is closed: no accepted connection can still be on its way to `opened`.
    private var listenerClosed = false

    init(eventLoop: any EventLoop, drainDelay: TimeAmount, notifier: WorkerNotifier) {
        self.eventLoop = eventLoop
        self.drainDelay = drainDelay
        self.notifier = notifier
    }

    /// `idle` is true only between two requests of a keep-alive connection. A connection that has not sent
    /// its first request yet is not idle: it was accepted from the shared queue, its request is on the way,
    /// and closing it would reset a request no other worker can answer any more.
    func opened(_ channel: any Channel, idle: @escaping () -> Bool) {
        eventLoop.assertInEventLoop()
        connections[ObjectIdentifier(channel)] = (channel, idle)
    }

    func closed(_ channel: any Channel) {
        eventLoop.assertInEventLoop()
        connections[ObjectIdentifier(channel)] = nil
        finishIfDrained()
    }

    /// SIGTERM: stop accepting (the other workers keep taking connections from the shared queue), let
    /// in-flight requests finish and answer them with `Connection: close`, close keep-alive connections still
    /// idle 250 ms later, then exit 0. A connection that never sends a request is cut by the supervisor's
    /// graceful timeout.
    func beginDrain() {
        eventLoop.assertInEventLoop()
        guard !draining else { return }
        draining = true
        notifier.stopping()
        if let serverChannel {
            let stopped = if let listenerFD, let adopt {
                Listener.stopAccepting(serverChannel, fd: listenerFD, adopt: adopt)
            } else {
                Listener.stopAccepting(serverChannel)
            }
            stopped.whenComplete { _ in
                self.listenerClosed = true
                self.finishIfDrained()
            }
        } else {
            listenerClosed = true
        }
        // Idle keep-alive connections close after a grace, not at once: a busy client's next request may be on
        // its way already, and a close with it unread is a reset (40 failed requests over 5 HUPs). One that
        // comes within the grace is answered with `Connection: close`, as the API worker does.
        eventLoop.scheduleTask(in: .milliseconds(250)) {
            for (_, connection) in self.connections where connection.idle() {
                connection.channel.close(promise: nil)
            }
        }
        finishIfDrained()
    }

    private func finishIfDrained() {
        guard draining, listenerClosed, connections.isEmpty else { return }
        eventLoop.scheduleTask(in: drainDelay) {
            exit(0)
        }
    }
}


/// Requests answered by this worker, for its metrics.
final class ServedCounter: Sendable {
    private let count = Atomic<Int>(0)
    func increment() { count.add(1, ordering: .relaxed) }
    var value: Int { count.load(ordering: .relaxed) }
}
