import LogFormat
import NIOCore
import NIOHTTP1

/// A whole response. Every error body is JSON: `{"error":"code","message":"...","field":"..."}`.
public struct Response: Sendable {
    public var status: HTTPResponseStatus
    public var headers: [(String, String)]
    public var body: ByteBuffer

    public init(status: HTTPResponseStatus, contentType: String = "application/json", headers: [(String, String)] = [],
                body: ByteBuffer) {
        self.status = status
        self.headers = [("content-type", contentType)] + headers
        self.body = body
    }

    private static let allocator = ByteBufferAllocator()

    public static func json(_ status: HTTPResponseStatus, _ text: String, headers: [(String, String)] = []) -> Response {
        Response(status: status, headers: headers, body: allocator.buffer(string: text))
    }

    public static func noContent() -> Response {
        Response(status: .noContent, body: allocator.buffer(capacity: 0))
    }

    public static func text(_ status: HTTPResponseStatus, _ text: String, contentType: String) -> Response {
        Response(status: status, contentType: contentType, body: allocator.buffer(string: text))
    }

    public static func bytes(_ bytes: [UInt8], contentType: String) -> Response {
        Response(status: .ok, contentType: contentType, body: allocator.buffer(bytes: bytes))
    }

    public static func error(_ status: HTTPResponseStatus, _ code: String, _ message: String, field: String? = nil,
                             headers: [(String, String)] = []) -> Response {
        var text = "{\"error\":\(JSONText.quoted(code)),\"message\":\(JSONText.quoted(message))"
        if let field { text += ",\"field\":\(JSONText.quoted(field))" }
        text += "}"
        return json(status, text, headers: headers)
    }

    public static func validation(_ field: String, _ message: String) -> Response {
        error(.unprocessableEntity, "validation_failed", message, field: field)
    }
}
