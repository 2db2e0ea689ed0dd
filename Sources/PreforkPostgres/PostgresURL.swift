import ConnectionURL

/// `DATABASE_URL` as libpq reads it (`postgres://` or `postgresql://`, with libpq's parameters such as
/// `sslmode` and `application_name` in the query), checked first so that libpq never quotes a password back
/// (`PostgresURLSyntax`), and the same URL made safe to print.
public struct PostgresURL: Sendable, Equatable, CustomStringConvertible {
    public let value: String

    public init(_ text: String) throws(PostgresError) {
        do {
            _ = try PostgresURLSyntax(text)
        } catch {
            throw PostgresError(kind: .client, message: error.description)
        }
        value = text
    }

    /// The URL with its password replaced, for every log line and error message.
    public var description: String { Self.redact(value) }

    /// `message` (libpq's, say) with every form of this URL's password replaced by `***`.
    public func redact(message: String) -> String { PostgresURLSyntax.redact(message, url: value) }

    /// Replaces the password in `user:password@` and in a `password=` parameter with `***`.
    public static func redact(_ text: String) -> String {
        PostgresURLSyntax.redactURLShapes(text)
    }
}
