import CSystemd
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

    /// nil when `MAX_REQUESTS` is unset or 0; the supervisor validated the values it passes.
    public init?(environment: (String) -> String?) {
        guard let text = environment("MAX_REQUESTS"), let maximum = Int(text), maximum > 0 else { return nil }
        let jitter = environment("MAX_REQUESTS_JITTER").flatMap { Int($0) }.map { max(0, $0) } ?? 0
        limit = maximum + (jitter > 0 ? Int.random(in: 0...jitter) : 0)
    }

    /// Counts one request; on the one that reaches the limit, asks to be recycled.
    public func served(_ count: Int = 1) {
        let total = served.add(count, ordering: .relaxed).newValue
        if total >= limit, total - count < limit {
            _ = sd_notify(0, "X_PREFORK_RECYCLE=max-requests\nSTATUS=asked to be recycled after \(total) requests")
        }
    }
}
