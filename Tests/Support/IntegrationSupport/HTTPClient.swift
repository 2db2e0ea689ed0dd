import Foundation

/// A blocking HTTP/1.1 GET over a fresh TCP connection: the smallest client that tells a served request
/// from a refused, reset or timed-out one, with nothing pooled or retried behind the test's back.
public enum HTTPClient {
    public struct Response: Sendable {
        public var status: Int
        public var headers: [String: String]
        public var body: String
    }

    /// GET over a fresh connection with `Connection: close`.
    public static func get(port: UInt16, path: String = "/", timeout: Double = 5) -> Result<Response, TestFailure> {
        request(port: port, method: "GET", path: path, timeout: timeout)
    }

    /// One request over a fresh connection with `Connection: close`; header names in the response are lowercased.
    public static func request(port: UInt16, method: String, path: String, headers: [String: String] = [:],
                               body: String? = nil, timeout: Double = 5) -> Result<Response, TestFailure> {
        var text = "\(method) \(path) HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
        for (name, value) in headers { text += "\(name): \(value)\r\n" }
        if let body { text += "Content-Length: \(body.utf8.count)\r\n" }
        text += "\r\n" + (body ?? "")
        return raw(port: port, Array(text.utf8), timeout: timeout).flatMap(parse)
    }

    /// Sends `bytes` as they are, then reads until the server closes (or the timeout): what a malformed or
    /// slow client sees.
    public static func raw(port: UInt16, _ bytes: [UInt8], timeout: Double = 5, closeWrite: Bool = false)
        -> Result<[UInt8], TestFailure> {
        let fd: Int32
        switch connectLoopback(port: port, timeout: timeout) {
        case .success(let connected): fd = connected
        case .failure(let error): return .failure(error)
        }
        defer { close(fd) }
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            // A server that answers early (413) and closes may reset the rest of a large upload: keep what came.
            guard sent > 0 else { break }
            offset += sent
        }
        if closeWrite { shutdown(fd, Int32(SHUT_WR)) }
        var data = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = recv(fd, &buffer, buffer.count, 0)
            if count == 0 { break }
            if count < 0 {
                if errno == ECONNRESET, !data.isEmpty { break }
                return .failure(TestFailure("recv: \(String(cString: strerror(errno))) after \(data.count) bytes"))
            }
            data += buffer[..<count]
        }
        return .success(data)
    }

    /// A blocking TCP connection to 127.0.0.1:`port` with send and receive timeouts.
    static func connectLoopback(port: UInt16, timeout: Double) -> Result<Int32, TestFailure> {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return .failure(TestFailure("socket")) }
        var tv = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - Double(Int(timeout))) * 1_000_000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else {
            let error = TestFailure("connect: \(String(cString: strerror(errno)))")
            close(fd)
            return .failure(error)
        }
        return .success(fd)
    }

    /// Splits a response into status, headers and body (the body as sent: `Connection: close` delimits it).
    public static func parse(_ data: [UInt8]) -> Result<Response, TestFailure> {
        let text = String(decoding: data, as: UTF8.self)
        guard text.hasPrefix("HTTP/1."), let status = Int(text.dropFirst(9).prefix(3)),
            let split = text.range(of: "\r\n\r\n")
        else { return .failure(TestFailure("not an HTTP response: \(text.prefix(80))")) }
        var headers: [String: String] = [:]
        for line in text[..<split.lowerBound].split(separator: "\r\n").dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return .success(Response(status: status, headers: headers, body: String(text[split.upperBound...])))
    }

    /// Sends requests until `count` different pids have answered (or `attempts` requests were made).
    public static func answeringPIDs(port: UInt16, count: Int, attempts: Int = 400) -> Set<Int32> {
        var answered = Set<Int32>()
        for _ in 0..<attempts where answered.count < count {
            if let pid = answeringPID(port: port) { answered.insert(pid) } else { usleep(5_000) }
        }
        return answered
    }

    /// The pid that answered, from the test worker's "pid N slot S generation G" body.
    public static func answeringPID(port: UInt16) -> Int32? {
        guard case .success(let response) = get(port: port), response.status == 200 else { return nil }
        let words = response.body.split(separator: " ")
        guard words.count >= 2, words[0] == "pid" || words[0] == "python" else { return nil }
        return Int32(words[words[0] == "pid" ? 1 : 2].trimmingCharacters(in: .whitespacesAndNewlines))
    }
}

/// Requests in a loop on background threads until stopped; counts what failed, and how.
/// One persistent connection with requests one after another, as a busy client or a proxy's upstream pool
/// sends them: the next request leaves as soon as the previous answer is read, so a server that closes the
/// connection between two requests loses the one already on its way. Reconnects after `Connection: close`.
public final class KeepAliveConnection {
    private let port: UInt16
    private let timeout: Double
    private var fd: Int32 = -1

    public init(port: UInt16, timeout: Double = 10) {
        self.port = port
        self.timeout = timeout
    }

    deinit { if fd >= 0 { close(fd) } }

    /// This end's port while the connection is open: the port the server sees as its peer's.
    public var localPort: UInt16? { fd >= 0 ? AcceptedSocket.localPort(fd) : nil }

    public func get(_ path: String, headers: [String: String] = [:]) -> Result<HTTPClient.Response, TestFailure> {
        if fd < 0 {
            switch HTTPClient.connectLoopback(port: port, timeout: timeout) {
            case .success(let connected): fd = connected
            case .failure(let error): return .failure(error)
            }
        }
        let result = exchange(path, headers: headers)
        if case .success(let response) = result, response.headers["connection"]?.lowercased() != "close" { return result }
        close(fd)
        fd = -1
        return result
    }

    private func exchange(_ path: String, headers: [String: String]) -> Result<HTTPClient.Response, TestFailure> {
        var text = "GET \(path) HTTP/1.1\r\nHost: localhost\r\n"
        for (name, value) in headers { text += "\(name): \(value)\r\n" }
        let bytes = Array((text + "\r\n").utf8)
        let sent = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        guard sent == bytes.count else { return .failure(TestFailure("send: \(String(cString: strerror(errno)))")) }
        var data = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            if let end = data.firstRange(of: Array("\r\n\r\n".utf8)) {
                let head = String(decoding: data[..<end.lowerBound], as: UTF8.self).lowercased()
                let length = head.split(separator: "\r\n").first { $0.hasPrefix("content-length:") }
                    .flatMap { Int($0.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) } ?? 0
                if data.count - end.upperBound >= length { return HTTPClient.parse(data) }
            }
            let count = recv(fd, &buffer, buffer.count, 0)
            if count == 0 { return .failure(TestFailure("closed after \(data.count) bytes")) }
            if count < 0 { return .failure(TestFailure("recv: \(String(cString: strerror(errno))) after \(data.count) bytes")) }
            data += buffer[..<count]
        }
    }
}

public final class RequestLoop: @unchecked Sendable {
    private let lock = NSLock()
    private var running = true
    private var succeededCount = 0
    private var failures: [String] = []
    private let group = DispatchGroup()

    public var succeeded: Int { lock.withLock { succeededCount } }

    /// - Parameters:
    ///   - headers: sent with every request (a bearer token).
    ///   - keepAlive: each thread keeps one connection open (`KeepAliveConnection`) instead of a new one per request.
    public init(port: UInt16, path: String = "/", concurrency: Int = 4, headers: [String: String] = [:], keepAlive: Bool = false) {
        for _ in 0..<concurrency {
            group.enter()
            Thread.detachNewThread { [self] in
                defer { group.leave() }
                let connection = keepAlive ? KeepAliveConnection(port: port) : nil
                while lock.withLock({ running }) {
                    let result = connection?.get(path, headers: headers)
                        ?? HTTPClient.request(port: port, method: "GET", path: path, headers: headers, timeout: 10)
                    switch result {
                    case .success(let response) where response.status == 200:
                        lock.withLock { succeededCount += 1 }
                    case .success(let response):
                        lock.withLock { failures.append("status \(response.status)") }
                    case .failure(let error):
                        lock.withLock { failures.append(error.description) }
                    }
                }
            }
        }
    }

    /// Stops the loop and waits for requests in flight.
    public func stop() -> (succeeded: Int, failures: [String]) {
        lock.withLock { running = false }
        group.wait()
        return lock.withLock { (succeededCount, failures) }
    }
}
