/// A decoded reply. Error replies are values too: in a pipeline one command's error must not hide the
/// others' replies; `RedisClient.command` turns it into a thrown `RedisError`.
public enum RedisValue: Sendable, Equatable {
    case null
    case status(String)
    case integer(Int64)
    case bulk(String)
    case array([RedisValue])
    case error(String)

    public var string: String? {
        switch self {
        case .bulk(let text), .status(let text): text
        case .integer(let value): String(value)
        default: nil
        }
    }

    public var integer: Int64? {
        switch self {
        case .integer(let value): value
        case .bulk(let text): Int64(text)
        default: nil
        }
    }

    public var isNull: Bool { self == .null }
}
