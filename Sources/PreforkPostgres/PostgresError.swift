/// A failure from Postgres or on the way to it, with what a person needs to act on it.
public struct PostgresError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// Could not connect, or the connection was lost.
        case connection
        /// The server answered with an error (SQLSTATE set).
        case server
        /// We refused before sending (bad URL, bad value).
        case client
    }

    public var kind: Kind
    /// The five-character SQLSTATE, e.g. `23505` for a unique violation, `57014` for a statement timeout.
    public var sqlState: String?
    public var message: String
    public var detail: String?
    /// The connection is unusable after this error (server restart, terminated backend, network).
    public var isDisconnect: Bool

    public init(kind: Kind, sqlState: String? = nil, message: String, detail: String? = nil, isDisconnect: Bool = false) {
        self.kind = kind
        self.sqlState = sqlState
        self.message = message
        self.detail = detail
        self.isDisconnect = isDisconnect
    }

    public var description: String {
        var text = sqlState.map { "\($0): \(message)" } ?? message
        if let detail, !detail.isEmpty { text += " (\(detail))" }
        return text
    }
}
