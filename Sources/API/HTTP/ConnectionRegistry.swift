import NIOConcurrencyHelpers
import NIOCore

/// The worker's open connections, across its event loops, for a drain: who is still open, and a callback
/// when the last one closes.
final class ConnectionRegistry: Sendable {
    private struct State {
        var connections: [ObjectIdentifier: NIOLoopBound<HTTPConnectionHandler>] = [:]
        var draining = false
        var whenEmpty: (@Sendable () -> Void)?
    }

    private let state = NIOLockedValueBox(State())

    /// Registers an accepted connection; false when the worker is already draining (the connection still
    /// gets its request answered, with `Connection: close`).
    func add(_ handler: NIOLoopBound<HTTPConnectionHandler>, id: ObjectIdentifier) -> Bool {
        state.withLockedValue { state in
            state.connections[id] = handler
            return !state.draining
        }
    }

    func remove(_ id: ObjectIdentifier) {
        let callback: (@Sendable () -> Void)? = state.withLockedValue { state in
            state.connections[id] = nil
            guard state.draining, state.connections.isEmpty, let callback = state.whenEmpty else { return nil }
            state.whenEmpty = nil
            return callback
        }
        callback?()
    }

    var count: Int { state.withLockedValue { $0.connections.count } }

    /// Tells every connection to finish; `whenEmpty` runs once none is left (at once if none is open).
    func drain(whenEmpty: @escaping @Sendable () -> Void) {
        let (handlers, callNow): ([NIOLoopBound<HTTPConnectionHandler>], Bool) = state.withLockedValue { state in
            state.draining = true
            if state.connections.isEmpty { return ([], true) }
            state.whenEmpty = whenEmpty
            return (Array(state.connections.values), false)
        }
        for handler in handlers {
            handler.eventLoop.execute { handler.value.drain() }
        }
        if callNow { whenEmpty() }
    }

    /// The graceful timeout passed: close whatever is still open.
    func closeAll() {
        let handlers = state.withLockedValue { Array($0.connections.values) }
        for handler in handlers {
            handler.eventLoop.execute { handler.value.forceClose() }
        }
    }
}
