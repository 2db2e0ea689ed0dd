import TimeUnits

/// Where the supervisor listens: `host:port`, `[v6]:port` or `unix:/path`.
package enum BindAddress: Sendable, Equatable, CustomStringConvertible {
    case tcp(host: String, port: UInt16)
    case unix(path: String)

    /// Parses the `--bind`/`BIND` syntax; the error says what was expected, for a one-line message. `:8000`
    /// is every IPv4 address, as gunicorn and Cloud Run write it; spaces around the value are ignored.
    package init(parsing raw: String) throws(ConfigurationError) {
        let text = String(raw.trimmingSpaces)
        if text.contains("://") {
            throw ConfigurationError("bind address '\(text)': expected host:port, [IPv6]:port or unix:/path, without a scheme")
        }
        if text.hasPrefix("unix:") {
            let path = String(text.dropFirst(5))
            guard !path.isEmpty else { throw ConfigurationError("bind address '\(text)': unix: needs a path") }
            // sockaddr_un.sun_path holds 108 bytes with the terminating NUL.
            guard path.utf8.count < 108 else { throw ConfigurationError("bind address '\(text)': path longer than 107 bytes") }
            self = .unix(path: path)
            return
        }
        let host: Substring
        let portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else {
                throw ConfigurationError("bind address '\(text)': expected [IPv6]:port")
            }
            host = text[text.index(after: text.startIndex)..<close]
            portText = text[text.index(close, offsetBy: 2)...]
        } else {
            guard let colon = text.lastIndex(of: ":") else {
                throw ConfigurationError("bind address '\(text)': expected host:port, [IPv6]:port or unix:/path")
            }
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
            guard !host.contains(":") else {
                throw ConfigurationError("bind address '\(text)': put an IPv6 address in brackets, as [::]:8080")
            }
        }
        guard !portText.isEmpty, portText.allSatisfy(\.isASCII), portText.allSatisfy(\.isNumber), let port = UInt16(portText) else {
            throw ConfigurationError("bind address '\(text)': port must be a number from 0 to 65535")
        }
        self = .tcp(host: host.isEmpty ? "0.0.0.0" : String(host), port: port)
    }

    package var description: String {
        switch self {
        case .tcp(let host, let port): host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        case .unix(let path): "unix:\(path)"
        }
    }
}
