/// `DATABASE_URL` checked before libpq sees it. libpq's own URI errors quote the offending token or the whole
/// URI (`invalid percent-encoded token: "Hunter2%ZZSecret"`), so a password with a raw `%` (common in
/// generated passwords) ended up in logs. This reads the URL as libpq's `conninfo_uri_parse` does and names the
/// defective part without its value; `secrets` lists what must never appear in any message.
///
/// Pure and free of libpq, so the supervisor (which loads libpq only for `budget --check-db`) shares it.
public struct PostgresURLSyntax: Sendable, Equatable {
    /// The password as written in the URL and as decoded, and the same for `password=`/`sslpassword=` query
    /// values: every form a library message could echo.
    public let secrets: [String]
    /// The TCP ports the URL connects to: each host's, else `port=`, else 5432 (libpq's). Empty when every host is
    /// a unix socket directory: the supervisor counts a worker's open connections by these ports.
    public let tcpPorts: Set<Int>

    public struct Defect: Error, Sendable, Equatable, CustomStringConvertible {
        public let description: String
    }

    /// SQLAlchemy's URL for a driver (`postgresql+asyncpg://`, `postgres+psycopg://`) as libpq's scheme: the
    /// rest (user, hosts, ports, database) reads the same. Any other text is returned as it is.
    public static func withoutDriver(_ text: String) -> String {
        for scheme in ["postgresql", "postgres"] where text.hasPrefix(scheme + "+") {
            let rest = text.dropFirst(scheme.count + 1)
            let driver = rest.prefix { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }
            guard !driver.isEmpty, rest.dropFirst(driver.count).hasPrefix("://") else { return text }
            return scheme + String(rest.dropFirst(driver.count))
        }
        return text
    }

    public init(_ text: String) throws(Defect) {
        func defect(_ why: String) -> Defect { Defect(description: "DATABASE_URL: \(why)") }
        guard let scheme = ["postgresql://", "postgres://"].first(where: { text.hasPrefix($0) }) else {
            if Self.withoutDriver(text) != text {
                throw defect("SQLAlchemy's form (postgresql+driver://) is not libpq's: give postgresql:// with the "
                    + "same host, port, user and database")
            }
            throw defect("must start with postgres:// or postgresql://")
        }
        var secrets: [String] = []
        var hostPorts: [Int?] = []
        var queryPorts: [Int] = []
        var queryHost: String?
        var rest = Substring(text.dropFirst(scheme.count))
        // As libpq reads it: credentials end at the first `@` before any `/` (a `?` in a password is part of
        // it); then the hosts end at the first `/` or `?`.
        let slash = rest.firstIndex(of: "/") ?? rest.endIndex
        if let at = rest[..<slash].firstIndex(of: "@") {
            let userinfo = rest[..<at]
            rest = rest[rest.index(after: at)...]
            guard !rest[..<(rest.firstIndex(of: "/") ?? rest.endIndex)].contains("@") else {
                throw defect("the user or password contains a raw '@' (write it as %40)")
            }
            if let colon = userinfo.firstIndex(of: ":") {
                let password = userinfo[userinfo.index(after: colon)...]
                secrets.append(String(password))
                guard let decoded = Self.decode(password) else {
                    throw defect("the password has invalid percent-encoding (write a literal % as %25)")
                }
                secrets.append(decoded)
                guard Self.decode(userinfo[..<colon]) != nil else {
                    throw defect("the user name has invalid percent-encoding (write a literal % as %25)")
                }
            } else if Self.decode(userinfo) == nil {
                throw defect("the user name has invalid percent-encoding (write a literal % as %25)")
            }
        }
        let authorityEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? rest.endIndex
        let authority = rest[..<authorityEnd]
        rest = rest[authorityEnd...]
        // Hosts: `host[:port]`, `[v6][:port]`, comma-separated.
        if !authority.isEmpty {
            for (index, host) in authority.split(separator: ",", omittingEmptySubsequences: false).enumerated() {
                let which = authority.contains(",") ? "host \(index + 1)" : "the host"
                var port: Substring?
                if host.hasPrefix("[") {
                    guard let close = host.firstIndex(of: "]") else { throw defect("\(which) has '[' without a matching ']'") }
                    guard host.index(after: host.startIndex) < close else { throw defect("\(which) is an empty IPv6 address") }
                    let after = host[host.index(after: close)...]
                    if !after.isEmpty {
                        guard after.hasPrefix(":") else { throw defect("\(which) has unexpected text after ']'") }
                        port = after.dropFirst()
                    }
                } else if let colon = host.firstIndex(of: ":") {
                    port = host[host.index(after: colon)...]
                    guard Self.decode(host[..<colon]) != nil else { throw defect("\(which) has invalid percent-encoding") }
                } else {
                    guard Self.decode(host) != nil else { throw defect("\(which) has invalid percent-encoding") }
                }
                if let port, !port.isEmpty {
                    guard port.allSatisfy({ $0.isASCII && $0.isNumber }), let number = Int(port), (1...65535).contains(number) else {
                        let hint = text.dropFirst(scheme.count).split(separator: "@").count > 1
                            ? " (a '/' in the password must be written %2F)" : ""
                        throw defect("the port of \(which) is not a number from 1 to 65535\(hint)")
                    }
                    hostPorts.append(number)
                } else if Self.decode(host)?.hasPrefix("/") != true {
                    hostPorts.append(nil)
                }
            }
        }
        // `/dbname`, then `?key=value&...`.
        if rest.hasPrefix("/") {
            let end = rest.firstIndex(of: "?") ?? rest.endIndex
            guard Self.decode(rest[rest.index(after: rest.startIndex)..<end]) != nil else {
                throw defect("the database name has invalid percent-encoding (write a literal % as %25)")
            }
            rest = rest[end...]
        }
        if rest.hasPrefix("?") {
            for parameter in rest.dropFirst().split(separator: "&") {
                let parts = parameter.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                guard parts.count == 2, let key = Self.decode(parts[0]), !key.isEmpty else {
                    throw defect("a query parameter is not key=value")
                }
                let printable = key.count <= 40 && key.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }
                let name = printable ? "query parameter '\(key)'" : "a query parameter"
                let isSecret = key.lowercased().contains("password")
                if isSecret { secrets.append(String(parts[1])) }
                guard !parts[1].contains("=") else { throw defect("the value of \(name) contains a raw '=' (write it as %3D)") }
                guard let value = Self.decode(parts[1]) else {
                    throw defect("the value of \(name) has invalid percent-encoding (write a literal % as %25)")
                }
                if isSecret { secrets.append(value) }
                if key == "port" { queryPorts = value.split(separator: ",").compactMap { Int($0) } }
                if key == "host" { queryHost = value }
            }
        }
        self.secrets = secrets.filter { !$0.isEmpty }
        let fallback = queryPorts.isEmpty ? [5432] : queryPorts
        if !hostPorts.isEmpty {
            tcpPorts = Set(hostPorts.flatMap { $0.map { [$0] } ?? fallback })
        } else if let queryHost, !queryHost.hasPrefix("/") {
            tcpPorts = Set(fallback)
        } else {
            tcpPorts = []  // no host, or a socket directory: libpq connects over a unix socket
        }
    }

    /// `message` with every secret of `url` replaced by `***`, and the URL's `user:password@` and `password=`
    /// parts too, whatever the URL's defects: for messages of libpq (or anything else) that may echo it.
    public static func redact(_ message: String, url: String) -> String {
        // What this reader found, and every candidate a more generous reading finds (a URL libpq reads
        // differently must not slip through).
        let secrets = ((try? PostgresURLSyntax(url).secrets) ?? []) + Self.candidateSecrets(url)
        var result = redactURLShapes(message)
        for secret in secrets.sorted(by: { $0.count > $1.count }) where secret.count >= 3 {
            result = result.replacingAll(secret, with: "***")
        }
        return result
    }

    /// Replaces the password in `user:password@` and in `password=` parameters with `***`.
    public static func redactURLShapes(_ text: String) -> String {
        var result = ""
        var remaining = Substring(text)
        while let scheme = remaining.firstRange(of: "://") {
            result += remaining[..<scheme.upperBound]
            var rest = remaining[scheme.upperBound...]
            let end = rest.firstIndex(where: { "/ \"'".contains($0) }) ?? rest.endIndex
            if let at = rest[..<end].lastIndex(of: "@"), let colon = rest[..<at].firstIndex(of: ":") {
                result += rest[..<colon] + ":***"
                rest = rest[at...]
            }
            remaining = rest
        }
        result += remaining
        var output = ""
        remaining = Substring(result)
        while let range = remaining.firstRange(of: "password=") {
            output += remaining[..<range.upperBound] + "***"
            remaining = remaining[range.upperBound...]
            remaining = remaining.drop { $0 != "&" && $0 != " " && $0 != "\"" && $0 != "'" }
        }
        return output + remaining
    }

    private static func candidateSecrets(_ url: String) -> [String] {
        var candidates: [String] = []
        if let scheme = url.firstRange(of: "://") {
            let rest = url[scheme.upperBound...]
            // Both readings: up to the first `@`, and up to the last one.
            for at in [rest.firstIndex(of: "@"), rest.lastIndex(of: "@")].compactMap({ $0 }) {
                if let colon = rest[..<at].firstIndex(of: ":") {
                    candidates.append(String(rest[rest.index(after: colon)..<at]))
                }
            }
        }
        var remaining = Substring(url)
        while let range = remaining.firstRange(of: "password=") {
            remaining = remaining[range.upperBound...]
            candidates.append(String(remaining.prefix { $0 != "&" }))
        }
        return candidates
    }

    /// Percent-decoding as libpq does it: `%` must be followed by two hex digits, and `%00` is refused.
    static func decode(_ text: Substring) -> String? {
        var bytes: [UInt8] = []
        var iterator = text.utf8.makeIterator()
        while let byte = iterator.next() {
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            guard let high = iterator.next().flatMap(Self.hex), let low = iterator.next().flatMap(Self.hex) else { return nil }
            let value = high << 4 | low
            guard value != 0 else { return nil }
            bytes.append(value)
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func hex(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

extension String {
    func replacingAll(_ target: String, with replacement: String) -> String {
        guard !target.isEmpty else { return self }
        var output = ""
        var remaining = Substring(self)
        while let range = remaining.firstRange(of: target) {
            output += remaining[..<range.lowerBound] + replacement
            remaining = remaining[range.upperBound...]
        }
        return output + remaining
    }
}
