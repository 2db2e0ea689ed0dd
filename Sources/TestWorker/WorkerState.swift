import Glibc
import NIOCore

/// Connections and drain state of the test worker. Everything runs on the one event loop, which is what
/// makes the unchecked Sendable sound: every method asserts it.
final class WorkerState: @unchecked Sendable {
    let eventLoop: any EventLoop
    let drainDelay: TimeAmount
    let notifier: WorkerNotifier
    var serverChannel: (any Channel)?
    private var connections: [ObjectIdentifier: (channel: any Channel, busy: () -> Bool)] = [:]
    private(set) var draining = false

    init(eventLoop: any EventLoop, drainDelay: TimeAmount, notifier: WorkerNotifier) {
        self.eventLoop = eventLoop
        self.drainDelay = drainDelay
        self.notifier = notifier
    }

    func opened(_ channel: any Channel, busy: @escaping () -> Bool) {
        eventLoop.assertInEventLoop()
        if draining {
            channel.close(promise: nil)
            return
        }
        connections[ObjectIdentifier(channel)] = (channel, busy)
    }

    func closed(_ channel: any Channel) {
        eventLoop.assertInEventLoop()
        connections[ObjectIdentifier(channel)] = nil
        finishIfDrained()
    }

    /// SIGTERM: stop accepting (the other workers keep taking connections from the shared queue), let
    /// in-flight requests finish, close idle keep-alive connections, then exit 0.
    func beginDrain() {
        eventLoop.assertInEventLoop()
        guard !draining else { return }
        draining = true
        notifier.stopping()
        serverChannel?.close(promise: nil)
        for (_, connection) in connections where !connection.busy() {
            connection.channel.close(promise: nil)
        }
        finishIfDrained()
    }

    private func finishIfDrained() {
        guard draining, connections.isEmpty else { return }
        eventLoop.scheduleTask(in: drainDelay) {
            exit(0)
        }
    }
}

