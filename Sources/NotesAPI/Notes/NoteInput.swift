import FoundationEssentials
import NIOCore

/// A note's fields from a request body, validated; every failure names its field (422), a body that is not
/// JSON is 400.
public struct NoteInput: Sendable, Equatable {
    public var title: String?
    public var body: String?

    /// Limits in Unicode scalars, not characters: a character (grapheme cluster) has no size bound ("a" and
    /// 500,000 combining marks is one), a scalar is at most 4 bytes of UTF-8, so these are byte caps too
    /// (800 bytes and 400,000 bytes).
    public static let maxTitleLength = 200
    public static let maxBodyLength = 100_000

    public enum Failure: Error, Equatable {
        case invalidJSON
        case invalid(field: String, message: String)
    }

    /// - Parameter creating: a new note needs a title; an update needs at least one field.
    public static func parse(_ buffer: ByteBuffer?, creating: Bool) -> Result<NoteInput, Failure> {
        guard let buffer, buffer.readableBytes > 0 else {
            return .failure(.invalid(field: "body", message: "expected a JSON object"))
        }
        let fields: Fields
        do {
            fields = try JSONDecoder().decode(Fields.self, from: Data(buffer.readableBytesView))
        } catch DecodingError.typeMismatch(_, let context) where context.codingPath.isEmpty {
            return .failure(.invalid(field: "body", message: "expected a JSON object"))
        } catch {
            return .failure(.invalidJSON)
        }
        var input = NoteInput()
        if let value = fields.title {
            guard case .string(let title) = value else { return .failure(.invalid(field: "title", message: "must be a string")) }
            // Postgres `text` cannot hold NUL, and libpq would cut the string there: refuse, never store less.
            guard !title.unicodeScalars.contains("\0") else { return .failure(Self.nul("title")) }
            let trimmed = String(title.drop(while: \.isWhitespace).reversed().drop(while: \.isWhitespace).reversed())
            guard !trimmed.isEmpty else { return .failure(.invalid(field: "title", message: "must not be empty")) }
            guard trimmed.unicodeScalars.count <= maxTitleLength else {
                return .failure(.invalid(field: "title", message: "must be at most \(maxTitleLength) Unicode scalars (code points)"))
            }
            input.title = trimmed
        } else if creating {
            return .failure(.invalid(field: "title", message: "is required"))
        }
        if let value = fields.body {
            guard case .string(let body) = value else { return .failure(.invalid(field: "body", message: "must be a string")) }
            guard !body.unicodeScalars.contains("\0") else { return .failure(Self.nul("body")) }
            guard body.unicodeScalars.count <= maxBodyLength else {
                return .failure(.invalid(field: "body", message: "must be at most \(maxBodyLength) Unicode scalars (code points)"))
            }
            input.body = body
        }
        if !creating, input.title == nil, input.body == nil {
            return .failure(.invalid(field: "title", message: "nothing to update: give title or body"))
        }
        return .success(input)
    }

    private static func nul(_ field: String) -> Failure {
        .invalid(field: field, message: "must not contain the NUL character (\\u0000): Postgres text cannot store it")
    }
}

/// The two fields a note body may carry, each absent, a string, or present with another type (which is a 422
/// naming the field, not a 400 for the whole body). Other keys are ignored.
///
/// `JSONDecoder` from FoundationEssentials, not `JSONSerialization`: that one lives in the full Foundation,
/// which links ICU's tables into the binary (about 40 MB of the image) for no other use.
private struct Fields: Decodable {
    enum Value { case string(String), other }

    var title: Value?
    var body: Value?

    private enum Key: String, CodingKey { case title, body }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: Key.self)
        func value(_ key: Key) -> Value? {
            guard container.contains(key) else { return nil }
            return (try? container.decode(String.self, forKey: key)).map(Value.string) ?? .other
        }
        title = value(.title)
        body = value(.body)
    }
}

/// A note id or cursor from the URL: a positive integer, or nil (the caller answers 422 naming the field).
func positiveID(_ text: some StringProtocol) -> Int64? {
    guard let value = Int64(text), value > 0 else { return nil }
    return value
}
