import Settings
import TimeUnits

/// Where the supervisor listens: `host:port`, `[v6]:port` or `unix:/path`.
package enum BindAddress: Sendable, Equatable, CustomStringConvertible {
    case tcp(host: String, port: UInt16)
    case unix(path: String)

    /// Parses the `--bind`/`BIND` syntax; the error says what was expected, for a one-line message. The TCP
    /// part is `HostPortSyntax`, the grammar a worker's `--bind` uses too; a bare port is refused here, since
    /// the supervisor's address is never run alone by hand.
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
        switch HostPortSyntax.parse(text, allowingBarePort: false) {
        case .success(let address): self = .tcp(host: address.host, port: address.port)
        case .failure(.expectedHostPort):
            throw ConfigurationError("bind address '\(text)': expected host:port, [IPv6]:port or unix:/path")
        case .failure(let problem): throw ConfigurationError("bind address '\(text)': \(problem)")
        }
    }

    package var description: String {
        switch self {
        case .tcp(let host, let port): host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        case .unix(let path): "unix:\(path)"
        }
    }
}
