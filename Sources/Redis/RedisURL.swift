/// `redis://[[user]:password@]host[:port][/db]`, the form redis-py and every Redis host print.
public struct RedisURL: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var username: String?
    public var password: String?
    public var database: Int

    public init(_ text: String) throws(RedisError) {
        func invalid(_ why: String) -> RedisError {
            RedisError(kind: .client, message: "REDIS_URL: \(why) (expected redis://[:password@]host[:port][/db])")
        }
        guard text.hasPrefix("redis://") else {
            if text.hasPrefix("rediss://") { throw invalid("TLS (rediss://) is not supported") }
            throw invalid("not a redis:// URL")
        }
        var rest = Substring(text.dropFirst("redis://".count))
        if let query = rest.firstIndex(of: "?") { rest = rest[..<query] }
        var path = Substring("")
        if let slash = rest.firstIndex(of: "/") {
            path = rest[rest.index(after: slash)...]
            rest = rest[..<slash]
        }
        if let at = rest.lastIndex(of: "@") {
            let credentials = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = credentials.firstIndex(of: ":") {
                let user = Self.percentDecoded(credentials[..<colon])
                username = user.isEmpty ? nil : user
                password = Self.percentDecoded(credentials[credentials.index(after: colon)...])
            } else {
                password = Self.percentDecoded(credentials)
            }
        }
        if rest.hasPrefix("[") , let close = rest.firstIndex(of: "]") {
            host = String(rest[rest.index(after: rest.startIndex)..<close])
            rest = rest[rest.index(after: close)...]
            port = 6379
            if rest.hasPrefix(":") {
                guard let value = Int(rest.dropFirst()), (1...65535).contains(value) else { throw invalid("bad port") }
                port = value
            }
        } else if let colon = rest.lastIndex(of: ":") {
            host = String(rest[..<colon])
            guard let value = Int(rest[rest.index(after: colon)...]), (1...65535).contains(value) else {
                throw invalid("bad port '\(rest[rest.index(after: colon)...])'")
            }
            port = value
        } else {
            host = String(rest)
            port = 6379
        }
        if host.isEmpty { host = "127.0.0.1" }
        if path.isEmpty {
            database = 0
        } else {
            guard let value = Int(path), value >= 0 else { throw invalid("bad database number '\(path)'") }
            database = value
        }
    }

    /// The URL with the password replaced, for logs and errors.
    public var description: String {
        let credentials = password == nil ? "" : "\(username ?? ""):***@"
        return "redis://\(credentials)\(host):\(port)/\(database)"
    }

    private static func percentDecoded(_ text: Substring) -> String {
        var bytes: [UInt8] = []
        var iterator = Array(text.utf8).makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%"), let high = iterator.next(), let low = iterator.next(),
               let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16) {
                bytes.append(value)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
