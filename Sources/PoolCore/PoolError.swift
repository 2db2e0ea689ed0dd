import TimeUnits
/// Why a checkout failed; the messages say the limits, as SQLAlchemy's do.
public enum PoolError: Error, Equatable, Sendable, CustomStringConvertible {
    /// No connection within the pool timeout.
    case timedOut(size: Int, maxOverflow: Int, timeout: Duration)
    /// `dispose()` was called: the pool hands out nothing any more.
    case disposed
    /// The task waiting for a connection was cancelled.
    case cancelled
    /// Opening a connection for this checkout failed (the server is down, refuses, ...).
    case connectFailed(String)

    public var description: String {
        switch self {
        case .timedOut(let size, let maxOverflow, let timeout):
            let seconds = timeout.inSeconds
            return "QueuePool limit of size \(size) overflow \(maxOverflow) reached, connection timed out, "
                + "timeout \(seconds)s: all \(size + maxOverflow) connections are checked out"
        case .disposed: return "the pool was disposed and gives out no connections"
        case .cancelled: return "the checkout was cancelled"
        case .connectFailed(let reason): return "could not connect: \(reason)"
        }
    }
}
