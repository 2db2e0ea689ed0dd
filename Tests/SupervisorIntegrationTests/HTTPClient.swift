import Foundation

/// A blocking HTTP/1.1 GET over a fresh TCP connection: the smallest client that tells a served request
/// from a refused, reset or timed-out one, with nothing pooled or retried behind the test's back.
enum HTTPClient {
    struct Response {
        var status: Int
        var body: String
    }

    static func get(port: UInt16, path: String = "/", timeout: Double = 5) -> Result<Response, TestFailure> {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return .failure(TestFailure("socket")) }
        defer { close(fd) }
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
        guard connected == 0 else { return .failure(TestFailure("connect: \(String(cString: strerror(errno)))")) }
        let request = Array("GET \(path) HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".utf8)
        guard send(fd, request, request.count, Int32(MSG_NOSIGNAL)) == request.count else {
            return .failure(TestFailure("send: \(String(cString: strerror(errno)))"))
        }
        var data = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = recv(fd, &buffer, buffer.count, 0)
            if count == 0 { break }
            guard count > 0 else { return .failure(TestFailure("recv: \(String(cString: strerror(errno)))")) }
            data += buffer[..<count]
        }
        let text = String(decoding: data, as: UTF8.self)
        guard text.hasPrefix("HTTP/1."), let status = Int(text.dropFirst(9).prefix(3)),
            let split = text.range(of: "\r\n\r\n")
        else { return .failure(TestFailure("not an HTTP response: \(text.prefix(80))")) }
        return .success(Response(status: status, body: String(text[split.upperBound...])))
    }

    /// Sends requests until `count` different pids have answered (or `attempts` requests were made).
    static func answeringPIDs(port: UInt16, count: Int, attempts: Int = 400) -> Set<Int32> {
        var answered = Set<Int32>()
        for _ in 0..<attempts where answered.count < count {
            if let pid = answeringPID(port: port) { answered.insert(pid) } else { usleep(5_000) }
        }
        return answered
    }

    /// The pid that answered, from the test worker's "pid N slot S generation G" body.
    static func answeringPID(port: UInt16) -> Int32? {
        guard case .success(let response) = get(port: port), response.status == 200 else { return nil }
        let words = response.body.split(separator: " ")
        guard words.count >= 2, words[0] == "pid" || words[0] == "python" else { return nil }
        return Int32(words[words[0] == "pid" ? 1 : 2].trimmingCharacters(in: .whitespacesAndNewlines))
    }
}

/// Requests in a loop on background threads until stopped; counts what failed, and how.
final class RequestLoop: @unchecked Sendable {
    private let lock = NSLock()
    private var running = true
    private(set) var succeeded = 0
    private(set) var failures: [String] = []
    private let group = DispatchGroup()

    init(port: UInt16, path: String = "/", concurrency: Int = 4) {
        for _ in 0..<concurrency {
            group.enter()
            Thread.detachNewThread { [self] in
                defer { group.leave() }
                while lock.withLock({ running }) {
                    switch HTTPClient.get(port: port, path: path, timeout: 10) {
                    case .success(let response) where response.status == 200:
                        lock.withLock { succeeded += 1 }
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
    func stop() -> (succeeded: Int, failures: [String]) {
        lock.withLock { running = false }
        group.wait()
        return lock.withLock { (succeeded, failures) }
    }
}
