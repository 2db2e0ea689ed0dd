import TimeUnits

/// The one grammar of a TCP address to listen on, for the supervisor's `--bind` and `--metrics-bind` and a worker's
/// `--bind`: `host:port`, `:port` (every IPv4 address, as gunicorn and Cloud Run write it), `[IPv6]:port`, and where
/// the caller allows it a bare `port`. Spaces around the value are ignored (a value from an env file).
public enum HostPortSyntax {
    /// Where `:port`, and `PORT` without `--bind`, listen: every IPv4 address, as gunicorn and uvicorn's `--host`
    /// in containers do.
    public static let everyIPv4Address = "0.0.0.0"

    /// The host and port, or why not: a reason without the value, which the caller names in its own message.
    public static func parse(_ raw: some StringProtocol, allowingBarePort: Bool) -> Result<(host: String, port: UInt16), Problem> {
        let text = raw.trimmingSpaces
        let host: Substring
        let portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else {
                return .failure(.expectedBracketedPort)
            }
            host = text[text.index(after: text.startIndex)..<close]
            portText = text[text.index(close, offsetBy: 2)...]
        } else if let colon = text.lastIndex(of: ":") {
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
            guard !host.contains(":") else { return .failure(.unbracketedIPv6) }
        } else if allowingBarePort, !text.isEmpty, text.allSatisfy({ $0.isASCII && $0.isNumber }) {
            host = ""
            portText = text
        } else {
            return .failure(.expectedHostPort)
        }
        guard !portText.isEmpty, portText.allSatisfy({ $0.isASCII && $0.isNumber }), let port = UInt16(portText) else {
            return .failure(.badPort)
        }
        return .success((host.isEmpty ? everyIPv4Address : String(host), port))
    }

    public enum Problem: Error, Sendable, Equatable, CustomStringConvertible {
        case expectedHostPort, expectedBracketedPort, unbracketedIPv6, badPort

        public var description: String {
            switch self {
            case .expectedHostPort: "expected host:port or [IPv6]:port"
            case .expectedBracketedPort: "expected [IPv6]:port"
            case .unbracketedIPv6: "put an IPv6 address in brackets, as [::]:8080"
            case .badPort: "port must be a number from 0 to 65535"
            }
        }
    }
}
