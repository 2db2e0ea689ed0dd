import NIOCore
import NIOHTTP1

/// A response as HTTP/1.1 bytes: status line, the response's own headers, `content-length`, and
/// `connection` when the connection closes after it (or stays open for an HTTP/1.0 client).
enum ResponseEncoder {
    static func encode(_ response: Response, version: HTTPVersion, close: Bool, omitBody: Bool, into output: inout [UInt8]) {
        output.reserveCapacity(output.count + 160 + response.body.readableBytes)
        output.append(contentsOf: version.minor == 0 ? http10 : http11)
        output.append(contentsOf: statusLine(response.status))
        for (name, value) in response.headers {
            output.append(contentsOf: name.utf8)
            output.append(contentsOf: separator)
            output.append(contentsOf: value.utf8)
            output.append(contentsOf: crlf)
        }
        output.append(contentsOf: contentLength)
        output.append(contentsOf: String(response.body.readableBytes).utf8)
        output.append(contentsOf: crlf)
        if close {
            output.append(contentsOf: connectionClose)
        } else if version.minor == 0 {
            output.append(contentsOf: connectionKeepAlive)
        }
        output.append(contentsOf: crlf)
        if !omitBody {
            output.append(contentsOf: response.body.readableBytesView)
        }
    }

    private static let http10 = Array("HTTP/1.0 ".utf8)
    private static let http11 = Array("HTTP/1.1 ".utf8)
    private static let separator = Array(": ".utf8)
    private static let crlf = Array("\r\n".utf8)
    private static let contentLength = Array("content-length: ".utf8)
    private static let connectionClose = Array("connection: close\r\n".utf8)
    private static let connectionKeepAlive = Array("connection: keep-alive\r\n".utf8)

    /// `200 OK\r\n`, computed once for the answers the API gives.
    private static let common: [UInt: [UInt8]] = {
        var table: [UInt: [UInt8]] = [:]
        for status in [HTTPResponseStatus.ok, .created, .noContent, .badRequest, .unauthorized, .forbidden, .notFound,
                       .methodNotAllowed, .requestTimeout, .conflict, .payloadTooLarge, .unprocessableEntity,
                       .tooManyRequests, .internalServerError, .serviceUnavailable] {
            table[status.code] = render(status)
        }
        return table
    }()

    private static func render(_ status: HTTPResponseStatus) -> [UInt8] {
        Array("\(status.code) \(status.reasonPhrase)\r\n".utf8)
    }

    static func statusLine(_ status: HTTPResponseStatus) -> [UInt8] {
        common[status.code] ?? render(status)
    }
}
