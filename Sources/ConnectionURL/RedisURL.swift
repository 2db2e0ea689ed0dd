/// `redis://[[user]:password@]host[:port][/db]`, the form redis-py and every Redis host print.
public struct RedisURL: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var username: String?
    public var password: String?
    public var database: Int

    /// What is wrong with a URL, naming the part and never its value: this is where the password is.
    public struct Defect: Error, Sendable, Equatable, CustomStringConvertible {
        public let description: String
    }

    public init(_ text: String) throws(Defect) {
        func invalid(_ why: String) -> Defect {
            Defect(description: "REDIS_URL: \(why) (expected redis://[:password@]host[:port][/db])")
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
            // Errors name the part, never its value: this is where the password is.
            if let colon = credentials.firstIndex(of: ":") {
                guard let user = Self.percentDecoded(credentials[..<colon]) else {
                    throw invalid("the user name has invalid percent-encoding (write a literal % as %25)")
                }
                username = user.isEmpty ? nil : user
                guard let secret = Self.percentDecoded(credentials[credentials.index(after: colon)...]) else {
                    throw invalid("the password has invalid percent-encoding (write a literal % as %25)")
                }
                password = secret
            } else {
                guard let secret = Self.percentDecoded(credentials) else {
                    throw invalid("the password has invalid percent-encoding (write a literal % as %25)")
                }
                password = secret
            }
        }
        if rest.hasPrefix("["), !rest.contains("]") { throw invalid("the host has '[' without a matching ']'") }
        if rest.hasPrefix("[") , let close = rest.firstIndex(of: "]") {
            host = String(rest[rest.index(after: rest.startIndex)..<close])
            rest = rest[rest.index(after: close)...]
            port = 6379
            if rest.hasPrefix(":") {
                guard let value = Int(rest.dropFirst()), (1...65535).contains(value) else { throw invalid("the port is not a number from 1 to 65535") }
                port = value
            }
        } else if let colon = rest.lastIndex(of: ":") {
            host = String(rest[..<colon])
            guard let value = Int(rest[rest.index(after: colon)...]), (1...65535).contains(value) else {
                throw invalid("the port is not a number from 1 to 65535")
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
            guard let value = Int(path), value >= 0 else { throw invalid("the database is not a number (redis://host:6379/0)") }
            database = value
        }
    }

    /// The URL with the password replaced, for logs and errors.
    public var description: String {
        let credentials = password == nil ? "" : "\(username ?? ""):***@"
        return "redis://\(credentials)\(host):\(port)/\(database)"
    }

    /// nil when a `%` is not followed by two hex digits: silently keeping it would send another password.
    private static func percentDecoded(_ text: Substring) -> String? {
        var bytes: [UInt8] = []
        var iterator = Array(text.utf8).makeIterator()
        while let byte = iterator.next() {
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            guard let high = iterator.next(), let low = iterator.next(),
                  let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16),
                  String(decoding: [high, low], as: UTF8.self).allSatisfy(\.isHexDigit) else { return nil }
            bytes.append(value)
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
