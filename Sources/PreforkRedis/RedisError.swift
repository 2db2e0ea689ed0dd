/// Why a Redis call failed. `.io` and `.protocol` leave the connection unusable (it is closed, never reused);
/// `.server` is an error reply on a healthy connection.
public struct RedisError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// Connecting, reading or writing failed, or timed out.
        case io
        /// The reply could not be parsed.
        case `protocol`
        /// The server answered with an error (`-ERR ...`).
        case server
        /// Bad settings or arguments, found before any I/O.
        case client
    }

    public var kind: Kind
    public var message: String

    public init(kind: Kind, message: String) {
        self.kind = kind
        self.message = message
    }

    /// Whether the connection that raised it must be thrown away.
    public var breaksConnection: Bool { kind == .io || kind == .protocol }

    public var description: String { "redis: \(message)" }
}
