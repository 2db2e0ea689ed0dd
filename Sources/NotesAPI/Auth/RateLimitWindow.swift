/// The fixed one-minute window of the rate limit: which Redis counter a request increments, and how long a
/// rejected client should wait. Pure, with the time passed in.
public struct RateLimitWindow: Sendable, Equatable {
    /// Seconds since the epoch at the window's start.
    public let start: Int64
    public static let length: Int64 = 60

    public init(now epochSeconds: Int64) {
        start = epochSeconds - epochSeconds % Self.length
    }

    /// One counter per token and window; it expires on its own shortly after the window ends.
    public func key(tokenHash: String) -> String {
        "rl:\(tokenHash.prefix(32)):\(start / Self.length)"
    }

    /// `Retry-After` for a rejected request: the seconds until the next window, at least 1.
    public func retryAfter(now epochSeconds: Int64) -> Int64 {
        max(1, start + Self.length - epochSeconds)
    }

    /// Whether the `count`-th request of this window is over a limit of `limit` per minute (0: no limit).
    public static func exceeds(count: Int64, limit: Int) -> Bool {
        limit > 0 && count > Int64(limit)
    }
}
