import NIOCore
import NIOHTTP1

/// A whole request, body included (at most `maxBodySize`), as a `Responder` sees it.
public struct Request: Sendable {
    public var method: HTTPMethod
    /// The path without the query, percent-encoding left as sent.
    public var path: Substring
    public var query: Substring?
    public var headers: HTTPHeaders
    public var body: ByteBuffer?

    package init(head: HTTPRequestHead, body: ByteBuffer?) {
        method = head.method
        headers = head.headers
        self.body = body
        let uri = Self.originForm(Substring(head.uri))
        if let mark = uri.utf8.firstIndex(of: UInt8(ascii: "?")) {
            path = uri[..<mark]
            query = uri[uri.index(after: mark)...]
        } else {
            path = uri
            query = nil
        }
    }

    /// The path and query of an absolute-form target (`http://host/path?query`), which RFC 9112 (3.2.2) says a
    /// server must accept, as a proxy would send it; the host is not used for routing. The parser has checked the
    /// scheme and `://`. Other targets as they are.
    static func originForm(_ target: Substring) -> Substring {
        guard let first = target.utf8.first, first != UInt8(ascii: "/"), first != UInt8(ascii: "*"),
              let colon = target.utf8.firstIndex(of: UInt8(ascii: ":"))
        else { return target }
        let authority = target.utf8.index(colon, offsetBy: 3, limitedBy: target.utf8.endIndex) ?? target.utf8.endIndex
        let rest = target[authority...]
        // The authority ends at the path, the query or a fragment (RFC 3986, 3.2): `http://x#/v1/notes` asks for
        // "/" with a fragment, and must not route as "/v1/notes".
        guard let end = rest.utf8.firstIndex(where: {
            $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "?") || $0 == UInt8(ascii: "#")
        }) else { return "/" }
        // An empty path is "/" (RFC 9110, 4.2.3), also before a query or fragment (which then fails to route, as
        // a fragment in an origin-form target does).
        return rest.utf8[end] == UInt8(ascii: "/") ? rest[end...] : Substring("/" + rest[end...])
    }

    /// The body's bytes (empty when there is none), for a responder that does not use SwiftNIO's `ByteBuffer`.
    public var bodyBytes: [UInt8] { body.map { Array($0.readableBytesView) } ?? [] }

    /// A query parameter's value, percent-decoded; nil when absent.
    public func queryValue(_ name: String) -> String? {
        guard let query else { return nil }
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            if parts[0] == name {
                return parts.count > 1 ? Self.percentDecoded(parts[1]) : ""
            }
        }
        return nil
    }

    /// The token of `Authorization: Bearer <token>`, nil when the header is missing or of another scheme.
    /// The scheme is case-insensitive and is followed by one or more spaces (RFC 9110, 11.4: `1*SP`; a tab there
    /// is refused); spaces and tabs after the token are not part of it. Read as bytes: it runs on every
    /// authenticated request.
    public var bearerToken: String? {
        guard let value = headers.first(name: "authorization") else { return nil }
        let space = UInt8(ascii: " ")
        var rest = Substring(value).utf8
        while rest.first == space { rest = rest.dropFirst() }
        guard let end = rest.firstIndex(of: space) else { return nil }
        let scheme = rest[..<end]
        guard scheme.count == 6, scheme.lazy.map({ $0 | 0x20 }).elementsEqual("bearer".utf8) else { return nil }
        var token = rest[rest.index(after: end)...]
        while let first = token.first, first == space || first == UInt8(ascii: "\t") { token = token.dropFirst() }
        while let last = token.last, last == space || last == UInt8(ascii: "\t") { token = token.dropLast() }
        return token.isEmpty ? nil : String(Substring(token))
    }

    package static func percentDecoded(_ text: Substring) -> String {
        guard text.utf8.contains(where: { $0 == UInt8(ascii: "%") || $0 == UInt8(ascii: "+") }) else { return String(text) }
        var bytes: [UInt8] = []
        var iterator = Array(text.utf8).makeIterator()
        while let byte = iterator.next() {
            switch byte {
            case UInt8(ascii: "+"): bytes.append(UInt8(ascii: " "))
            case UInt8(ascii: "%"):
                if let high = iterator.next(), let low = iterator.next(),
                   let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16) {
                    bytes.append(value)
                }
            default: bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

extension Substring {
    package func trimmingCharacters(in set: String) -> String {
        let characters = Set(set)
        var text = self[...]
        while let first = text.first, characters.contains(first) { text = text.dropFirst() }
        while let last = text.last, characters.contains(last) { text = text.dropLast() }
        return String(text)
    }
}
