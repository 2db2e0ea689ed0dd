import Synchronization

/// `MAX_REQUESTS` with `MAX_REQUESTS_JITTER`, as gunicorn has them: after its share of requests a worker asks
/// its supervisor to replace it (`X_PREFORK_RECYCLE=max-requests` over sd_notify), and keeps serving until
/// the supervisor's TERM comes, which is after its successor is ready when the connection budget allows.
///
/// Each worker draws its own limit in `max ... max + jitter`, so workers started together do not all ask
/// together; the supervisor recycles one at a time anyway.
public final class RequestLimit: Sendable {
    public let limit: Int
    private let served = Atomic<Int>(0)
    /// The recycle request went out.
    private let asked = Atomic<Bool>(false)
    private let notifier = Notifier()

    /// nil when `maximum` is 0 (never).
    public init?(maximum: Int, jitter: Int) {
        guard maximum > 0 else { return nil }
        limit = maximum + (jitter > 0 ? Int.random(in: 0...jitter) : 0)
    }

    /// Counts one request; from the one that reaches the limit on, asks to be recycled until the request is out.
    ///
    /// This runs on the request path: one attempt that never waits (libsystemd's `sd_notify` blocked while the
    /// supervisor's queue was full, and with it the request). When the queue is full, the next request asks again.
    public func served(_ count: Int = 1) {
        let total = served.add(count, ordering: .relaxed).newValue
        guard total >= limit, !asked.exchange(true, ordering: .acquiringAndReleasing) else { return }
        let message = "X_PREFORK_RECYCLE=max-requests\nSTATUS=asked to be recycled after \(total) requests"
        if !notifier.send(message, attempts: 1) { asked.store(false, ordering: .releasing) }
    }
}
