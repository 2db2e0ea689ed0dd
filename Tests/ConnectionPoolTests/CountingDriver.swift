import ConnectionPool
import Synchronization

/// Connections that are numbers, and a record of what the pool did with each: opened, pinged, reset, closed,
/// cancelled. Its failures are switched on by the test.
final class CountingDriver: PoolDriver, Sendable {
    private struct State {
        var next = 0
        var open: Set<Int> = []
        var peakOpen = 0
        var closed: Set<Int> = []
        var cancelled: Set<Int> = []
        var broken: Set<Int> = []
        var dirty: [Int: Bool] = [:]
        var resets = 0
        var failConnects = false
    }

    private let state = Mutex(State())

    func connect() throws -> Int {
        try state.withLock { state in
            if state.failConnects { throw DriverFailure(description: "server down") }
            state.next += 1
            state.open.insert(state.next)
            state.peakOpen = max(state.peakOpen, state.open.count)
            return state.next
        }
    }

    func ping(_ connection: Int) -> Bool { state.withLock { !$0.broken.contains(connection) } }

    func needsReset(_ connection: Int) -> Bool { state.withLock { $0.dirty[connection] != nil } }

    func reset(_ connection: Int) -> Bool {
        state.withLock { state in
            state.resets += 1
            return state.dirty.removeValue(forKey: connection) ?? true
        }
    }

    func close(_ connection: Int) {
        state.withLock { state in
            state.open.remove(connection)
            state.closed.insert(connection)
        }
    }

    func cancel(_ connection: Int) { _ = state.withLock { $0.cancelled.insert(connection) } }

    func failConnects(_ fail: Bool) { state.withLock { $0.failConnects = fail } }
    func breakConnection(_ connection: Int) { _ = state.withLock { $0.broken.insert(connection) } }
    func dirty(_ connection: Int, resetSucceeds: Bool) { state.withLock { $0.dirty[connection] = resetSucceeds } }

    var open: Int { state.withLock { $0.open.count } }
    var peakOpen: Int { state.withLock { $0.peakOpen } }
    var closed: Set<Int> { state.withLock { $0.closed } }
    var cancelled: Set<Int> { state.withLock { $0.cancelled } }
    var resets: Int { state.withLock { $0.resets } }
}

struct DriverFailure: Error, CustomStringConvertible {
    let description: String
}
