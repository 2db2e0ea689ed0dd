import Synchronization

/// `body`'s result, or nil once `timeout` passed first. Returns at the deadline even when `body` is stuck in a
/// call that cannot be cancelled (a blocking libpq round trip, a continuation nobody resumes yet): `body` is
/// cancelled and left to finish on its own. A task group would instead wait for it before returning, which
/// is the hang a deadline is there to prevent. The one deadline race of the readiness check, the HTTP drain
/// and the pool's disposal.
public func first<T: Sendable>(within timeout: Duration, _ body: @escaping @Sendable () async -> T) async -> T? {
    await withCheckedContinuation { (continuation: CheckedContinuation<T?, Never>) in
        let race = Race(continuation)
        let work = Task {
            let value = await body()
            race.finish(value)
        }
        race.timer = Task {
            try? await Task.sleep(for: timeout)
            guard !Task.isCancelled else { return }
            race.finish(nil)
            work.cancel()
        }
    }
}

/// The continuation, resumed once by whichever side comes first; the winner cancels the timer.
private final class Race<T: Sendable>: Sendable {
    private let state: Mutex<(continuation: CheckedContinuation<T?, Never>?, timer: Task<Void, Never>?)>

    init(_ continuation: CheckedContinuation<T?, Never>) { state = Mutex((continuation, nil)) }

    var timer: Task<Void, Never>? {
        get { state.withLock { $0.timer } }
        set {
            let finished = state.withLock { value in
                value.timer = newValue
                return value.continuation == nil
            }
            if finished { newValue?.cancel() }
        }
    }

    func finish(_ value: T?) {
        let (continuation, timer) = state.withLock { value in
            defer { value.continuation = nil }
            return (value.continuation, value.timer)
        }
        guard let continuation else { return }
        if value != nil { timer?.cancel() }
        continuation.resume(returning: value)
    }
}
