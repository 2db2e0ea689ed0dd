import Synchronization

/// At most `permits` Postgres lookups for tokens Redis did not know, per worker, and at most `queue` waiting.
///
/// A valid token is looked up once a minute (then cached); a made-up one every time, since each is new. A
/// flood of distinct unknown tokens thus became one Postgres query per request, and took the pool that valid
/// requests need for their notes. Behind the gate the flood holds `permits` connections at most, and what
/// does not fit in the queue gets 503 at once instead of a connection.
final class AuthMissGate: Sendable {
    private struct State {
        var running = 0
        var waiters: [CheckedContinuation<Bool, Never>] = []
    }

    let permits: Int
    let queue: Int
    private let state = Mutex(State())

    /// - Parameter permits: 0 turns the gate off.
    init(permits: Int, queue: Int) {
        self.permits = permits
        self.queue = queue
    }

    /// True once a permit is held (give it back with `leave`); false when the queue is full.
    func enter() async -> Bool {
        guard permits > 0 else { return true }
        return await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
            let decision: Bool? = state.withLock { state in
                if state.running < permits {
                    state.running += 1
                    return true
                }
                guard state.waiters.count < queue else { return false }
                state.waiters.append(continuation)
                return nil
            }
            if let decision { continuation.resume(returning: decision) }
        }
    }

    func leave() {
        guard permits > 0 else { return }
        // The permit passes straight to the first waiter, if any.
        let next: CheckedContinuation<Bool, Never>? = state.withLock { state in
            if !state.waiters.isEmpty { return state.waiters.removeFirst() }
            state.running -= 1
            return nil
        }
        next?.resume(returning: true)
    }
}
