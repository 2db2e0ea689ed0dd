import Foundation
import NIOCore

/// A note's fields from a request body, validated; every failure names its field (422), a body that is not
/// JSON is 400.
public struct NoteInput: Sendable, Equatable {
    public var title: String?
    public var body: String?

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
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: Data(buffer.readableBytesView), options: [.fragmentsAllowed])
        } catch {
            return .failure(.invalidJSON)
        }
        guard let fields = object as? [String: Any] else {
            return .failure(.invalid(field: "body", message: "expected a JSON object"))
        }
        var input = NoteInput()
        if let value = fields["title"] {
            guard let title = value as? String else { return .failure(.invalid(field: "title", message: "must be a string")) }
            let trimmed = title.trimmingCharacters(in: .whitespacesAndNewlines)
            guard !trimmed.isEmpty else { return .failure(.invalid(field: "title", message: "must not be empty")) }
            guard trimmed.count <= maxTitleLength else {
                return .failure(.invalid(field: "title", message: "must be at most \(maxTitleLength) characters"))
            }
            input.title = trimmed
        } else if creating {
            return .failure(.invalid(field: "title", message: "is required"))
        }
        if let value = fields["body"] {
            guard let body = value as? String else { return .failure(.invalid(field: "body", message: "must be a string")) }
            guard body.count <= maxBodyLength else {
                return .failure(.invalid(field: "body", message: "must be at most \(maxBodyLength) characters"))
            }
            input.body = body
        }
        if !creating, input.title == nil, input.body == nil {
            return .failure(.invalid(field: "title", message: "nothing to update: give title or body"))
        }
        return .success(input)
    }
}

/// A note id or cursor from the URL: a positive integer, or nil (the caller answers 422 naming the field).
func positiveID(_ text: some StringProtocol) -> Int64? {
    guard let value = Int64(text), value > 0 else { return nil }
    return value
}
