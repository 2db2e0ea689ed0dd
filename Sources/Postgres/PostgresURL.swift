/// `DATABASE_URL` as libpq reads it (`postgres://` or `postgresql://`, with libpq's parameters such as
/// `sslmode` and `application_name` in the query), and the same URL made safe to print.
public struct PostgresURL: Sendable, Equatable, CustomStringConvertible {
    public let value: String

    public init(_ text: String) throws(PostgresError) {
        guard text.hasPrefix("postgres://") || text.hasPrefix("postgresql://") else {
            throw PostgresError(kind: .client, message: "DATABASE_URL must start with postgres:// or postgresql://, got '\(Self.redact(text))'")
        }
        value = text
    }

    /// The URL with its password replaced, for every log line and error message.
    public var description: String { Self.redact(value) }

    /// Replaces the password in `user:password@` and in a `password=` parameter with `***`.
    public static func redact(_ text: String) -> String {
        var result = text
        if let scheme = result.firstRange(of: "://") {
            let rest = result[scheme.upperBound...]
            if let at = rest.firstIndex(of: "@"), let colon = rest[..<at].firstIndex(of: ":") {
                result.replaceSubrange(rest.index(after: colon)..<at, with: "***")
            }
        }
        var output = ""
        var remaining = Substring(result)
        while let range = remaining.firstRange(of: "password=") {
            output += remaining[..<range.upperBound] + "***"
            remaining = remaining[range.upperBound...]
            remaining = remaining.drop { $0 != "&" && $0 != " " }
        }
        return output + remaining
    }
}
