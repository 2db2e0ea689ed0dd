/// An instant that moves only when a test says so: the injected time of the pure cores' tests (the arbiter,
/// the pool), as postgres-nio's `MockClock` or swift-nio's `EmbeddedEventLoop.advanceTime(by:)`.
public struct ManualInstant: InstantProtocol {
    public var offset: Duration

    public static let zero = ManualInstant(offset: .zero)

    public init(offset: Duration) {
        self.offset = offset
    }

    public func advanced(by duration: Duration) -> ManualInstant { ManualInstant(offset: offset + duration) }
    public func duration(to other: ManualInstant) -> Duration { other.offset - offset }
    public static func < (lhs: ManualInstant, rhs: ManualInstant) -> Bool { lhs.offset < rhs.offset }
}
