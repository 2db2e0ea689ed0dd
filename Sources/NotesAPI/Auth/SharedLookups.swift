import Synchronization

/// Concurrent lookups of one key share one: the first caller runs it, the others wait for its answer.
///
/// A valid token's cache entry expires once a minute (`AUTH_CACHE_TTL`). Under 512 concurrent clients of one
/// token, every request in flight at that instant missed the cache at once, each asked Postgres for the same
/// row, and past the miss gate's queue they were answered 503: valid users refused once a minute. Sharing the
/// lookup makes an expiry cost one query per worker, and only distinct tokens take places in the miss gate.
final class SharedLookups<Value: Sendable>: Sendable {
    private let waiting = Mutex<[String: [CheckedContinuation<Value?, Never>]]>([:])

    /// The value `lookup` returns for `key`, from this caller's run of it or from one already running.
    func value(for key: String, _ lookup: () async -> Value) async -> Value {
        while true {
            let leads = waiting.withLock { table -> Bool in
                guard table[key] == nil else { return false }
                table[key] = []
                return true
            }
            if leads {
                let value = await lookup()
                let followers = waiting.withLock { $0.removeValue(forKey: key) } ?? []
                for follower in followers { follower.resume(returning: value) }
                return value
            }
            // nil: the lookup ended between the two locks; the next turn of the loop runs or joins a new one.
            let shared: Value? = await withCheckedContinuation { continuation in
                let joined = waiting.withLock { table -> Bool in
                    guard table[key] != nil else { return false }
                    table[key]!.append(continuation)
                    return true
                }
                if !joined { continuation.resume(returning: nil) }
            }
            if let shared { return shared }
        }
    }

    /// Keys with a lookup running (for tests).
    var running: Int { waiting.withLock { $0.count } }
}
