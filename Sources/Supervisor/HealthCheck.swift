import Glibc
import SupervisorControl
import Settings
import SupervisorSystem
import TimeUnits

/// `supervisor healthcheck`: GET /healthz on the supervisor's own listener, for Docker's `HEALTHCHECK`, which
/// runs inside the container and needs no curl in a slim image. Exit 0 on a 200 within the timeout, else 1
/// with one line saying what happened.
enum HealthCheck {
    /// Asks the supervisor first, over its control socket: no ready worker is unhealthy at once (a worker
    /// accepts only once it has booted, so a GET would only wait for the timeout), and the supervisor says where
    /// it listens, which BIND and PORT cannot when the port was 0 or the socket came from systemd. Its answer is
    /// taken only when it listens where `--bind`, BIND or PORT say, if they say anything: on a host where several
    /// supervisors run, the default control socket may be another one's. Without such an answer
    /// (`--control-socket none`, another user's socket), the GET alone decides, at BIND or PORT.
    static func run(_ reader: SettingsReader) throws(SettingError) -> Int32 {
        let path = try reader[Catalog.healthcheckPath]
        guard path.hasPrefix("/"), !path.contains(where: { $0.isWhitespace || $0.asciiValue.map { $0 < 0x20 } ?? false }) else {
            Commands.report("healthcheck: --path: expected a path starting with /, such as /health, got '\(path)'")
            return Commands.Code.usage
        }
        let timeout = try reader[Catalog.healthcheckTimeout]
        // The supervisor's own reading of BIND and PORT, so the check asks where the supervisor listens.
        var configured: BindAddress?
        if let bind = reader.found(Catalog.bind) {
            do { configured = try BindAddress(parsing: bind.text) } catch {
                Commands.report("healthcheck: \(bind.source): \(error)")
                return bind.fromFlag ? Commands.Code.usage : Commands.Code.configuration
            }
        } else if reader.isGiven(Catalog.port) {
            // Where the supervisor binds for PORT alone.
            configured = .tcp(host: HostPortSyntax.everyIPv4Address, port: UInt16(try reader[Catalog.port]))
        }
        // Half the time for the supervisor, the rest for the GET: a supervisor that does not answer (stopped, hung)
        // must not make the check take twice its timeout.
        let started = ContinuousClock.now
        let supervisor = askSupervisor(reader, timeout: timeout / 2)
            .flatMap { view in view.listens(where: configured) ? view : nil }
        let remaining = max(timeout - started.duration(to: .now), .milliseconds(100))
        if let supervisor, supervisor.ready == 0 {
            Commands.report("healthcheck: no worker is ready (\(supervisor.summary))")
            return Commands.Code.refused
        }
        let address: BindAddress
        if let configured, case .tcp(_, let port) = configured, port != 0 {
            address = configured
        } else if case .unix? = configured {
            address = configured!
        } else {
            address = supervisor?.listening ?? configured ?? .tcp(host: "127.0.0.1", port: UInt16(Catalog.port.defaultValue))
        }
        switch get(address, path: path, timeout: remaining) {
        case .success(let status) where status == 200:
            return Commands.Code.ok
        case .success(let status):
            Commands.report("healthcheck: \(path) answered \(status)")
            return Commands.Code.refused
        case .failure(let error):
            Commands.report("healthcheck: \(error)")
            return Commands.Code.refused
        }
    }

    /// What the supervisor's `status json` says of readiness and its address; nil when none answers.
    struct SupervisorView {
        var ready: Int
        var summary: String
        var listening: BindAddress?

        /// Whether this supervisor listens at `configured` (the same host, and the same port unless it is 0); true
        /// when nothing is configured. With port 0 (or nothing) only the control socket tells supervisors apart:
        /// give each its own (`--control-socket`, `RUNTIME_DIRECTORY`).
        func listens(where configured: BindAddress?) -> Bool {
            guard let configured else { return true }
            switch (configured, listening) {
            case (.tcp(let host, let wanted), .tcp(let actualHost, let actual)?):
                return host == actualHost && (wanted == 0 || wanted == actual)
            case (.unix(let wanted), .unix(let actual)?): return wanted == actual
            default: return false
            }
        }
    }

    static func askSupervisor(_ reader: SettingsReader, timeout: Duration) -> SupervisorView? {
        let socketPath = Commands.controlPath(reader)
        if socketPath == "none" { return nil }
        guard ControlSocket.untrustedReason(path: socketPath) == nil,
            case .success(let response) = ControlSocket.request(ControlRequest.status(json: true).line, path: socketPath, timeout: timeout),
            case .ok(let json) = ControlSocket.parse(response),
            let ready = jsonValue("ready", in: json).flatMap({ Int($0) })
        else { return nil }
        var listening: BindAddress?
        if let text = jsonValue("listening", in: json) {
            // "0.0.0.0:41234", "[::]:8080", "unix:/run/api.sock", "127.0.0.1:8080 (from systemd)".
            let address = text.split(separator: " ").first.map(String.init) ?? text
            listening = try? BindAddress(parsing: address)
        }
        return SupervisorView(ready: ready, summary: jsonValue("summary", in: json) ?? "", listening: listening)
    }

    /// A top-level number or string of the status JSON (whose strings `JSONText.quoted` wrote: only `\"`, `\\`
    /// and `\u` escapes), without a JSON library in the smallest command of the image.
    static func jsonValue(_ key: String, in json: String) -> String? {
        guard let start = json.firstRange(of: "\"\(key)\":") else { return nil }
        var rest = json[start.upperBound...]
        if rest.first == "\"" {
            rest = rest.dropFirst()
            var value = ""
            var escaped = false
            for character in rest {
                if escaped {
                    value.append(character)
                    escaped = false
                } else if character == "\\" {
                    escaped = true
                } else if character == "\"" {
                    return value
                } else {
                    value.append(character)
                }
            }
            return nil
        }
        let number = rest.prefix { $0.isNumber || $0 == "-" }
        return number.isEmpty ? nil : String(number)
    }

    /// The status code of one `GET`, or why there was none.
    static func get(_ address: BindAddress, path: String, timeout: Duration) -> Result<Int, SystemError> {
        let fd: Int32
        let connected: Int32
        var connectError: Int32 = 0
        switch address {
        case .unix(let socketPath):
            fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { return .failure(SystemError("socket")) }
            setTimeouts(fd, timeout)
            var unix = sockaddr_un()
            unix.sun_family = sa_family_t(AF_UNIX)
            withUnsafeMutableBytes(of: &unix.sun_path) { $0.copyBytes(from: Array(socketPath.utf8.prefix(107))) }
            connected = withUnsafePointer(to: &unix) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            connectError = errno
        case .tcp(let host, let port):
            // A wildcard listener is reached on loopback; `[::]` accepts IPv4 too (the supervisor binds it dual-stack),
            // and 127.0.0.1 also works where a container has no IPv6 loopback.
            let target = host == HostPortSyntax.everyIPv4Address || host.isEmpty || host == "::" ? "127.0.0.1" : host
            var hints = addrinfo()
            hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
            hints.ai_flags = AI_NUMERICSERV
            var found: UnsafeMutablePointer<addrinfo>?
            let resolved = getaddrinfo(target, String(port), &hints, &found)
            guard resolved == 0, let info = found else {
                return .failure(SystemError("resolve \(target) (\(String(cString: gai_strerror(resolved))))", errno: EINVAL))
            }
            defer { freeaddrinfo(found) }
            fd = socket(info.pointee.ai_family, info.pointee.ai_socktype | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { return .failure(SystemError("socket")) }
            setTimeouts(fd, timeout)
            connected = connect(fd, info.pointee.ai_addr, info.pointee.ai_addrlen)
            connectError = errno
        }
        defer { close(fd) }
        guard connected == 0 else { return .failure(SystemError("connect to \(address)", errno: connectError)) }
        let request = Array("GET \(path) HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".utf8)
        guard request.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) == request.count else {
            return .failure(SystemError("send"))
        }
        var response: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1024)
        while response.count < 64, !response.contains(UInt8(ascii: "\n")) {
            let count = read(fd, &buffer, buffer.count)
            if count < 0, errno == EINTR { continue }
            if count < 0 { return .failure(SystemError("read (timed out after \(ValueSyntax.describe(timeout))?)")) }
            if count == 0 { break }
            response += buffer[..<count]
        }
        let line = String(decoding: response.prefix { $0 != UInt8(ascii: "\r") && $0 != UInt8(ascii: "\n") }, as: UTF8.self)
        let words = line.split(separator: " ")
        guard words.count >= 2, words[0].hasPrefix("HTTP/"), let status = Int(words[1]) else {
            return .failure(SystemError("not an HTTP response: '\(line.prefix(40))'", errno: EPROTO))
        }
        return .success(status)
    }

    private static func setTimeouts(_ fd: Int32, _ duration: Duration) {
        let microseconds = duration.inMicroseconds
        var timeout = timeval(tv_sec: Int(microseconds / 1_000_000), tv_usec: Int(microseconds % 1_000_000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }
}
