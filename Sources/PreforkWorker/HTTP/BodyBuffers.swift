import Synchronization

/// The request-body bytes a worker holds, across all its connections. Each connection's body is bounded by
/// `MAX_BODY_SIZE`, but not their number: 60 slow uploads of 1 MB doubled a worker's memory. A body that would
/// take the total past `BODY_BUFFER_LIMIT` gets 503 instead of memory.
final class BodyBuffers: Sendable {
    let limit: Int
    private let held = Atomic<Int>(0)

    init(limit: Int) {
        self.limit = limit
    }

    var bytes: Int { held.load(ordering: .relaxed) }

    /// Takes `count` bytes from the budget, or nothing if they do not fit.
    func reserve(_ count: Int) -> Bool {
        var current = held.load(ordering: .relaxed)
        while true {
            guard current + count <= limit else { return false }
            let (exchanged, original) = held.compareExchange(expected: current, desired: current + count, ordering: .relaxed)
            if exchanged { return true }
            current = original
        }
    }

    func release(_ count: Int) {
        if count > 0 { held.subtract(count, ordering: .relaxed) }
    }
}
