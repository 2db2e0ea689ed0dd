import Glibc
import Synchronization

/// `--metrics-bind`: one /metrics for the supervisor and every worker, labelled by slot.
///
/// Scraping a prefork service's own port reaches whichever worker accepts, so each worker also serves its
/// metrics on a private unix socket (`PREFORK_METRICS_SOCKET`, in a 0700 directory of the supervisor's);
/// a scrape here collects them all, each with a one-second limit, and merges them. It runs on a thread of
/// its own, so a slow worker or scraper never holds up the supervisor's loop; the loop only publishes a
/// snapshot (its counters and the serving workers' sockets) after each turn.
final class AdminEndpoint: Sendable {
    struct Snapshot: Sendable {
        var metrics = SupervisorMetrics()
        var endpoints: [(slot: Int, path: String)] = []
    }

    let fd: Int32
    let description: String
    private let snapshot = Mutex(Snapshot())

    init(address: BindAddress) throws(SystemError) {
        let socket = try ListenSocket.bind(address, backlog: 64)
        fd = socket.fd
        description = socket.description
        let flags = fcntl(fd, F_GETFL)
        _ = fcntl(fd, F_SETFL, flags & ~O_NONBLOCK)
    }

    func publish(_ update: Snapshot) { snapshot.withLock { $0 = update } }

    /// Starts the serving thread. The supervisor's signal mask (everything it handles blocked) is inherited,
    /// so signals still arrive only through the loop's signalfd.
    func start() {
        let box = Unmanaged.passRetained(ThreadBody { [self] in serve() }).toOpaque()
        var thread = pthread_t()
        if pthread_create(&thread, nil, { argument in
            Unmanaged<ThreadBody>.fromOpaque(argument!).takeRetainedValue().run()
            return nil
        }, box) == 0 {
            pthread_detach(thread)
        }
    }

    private func serve() {
        while true {
            let connection = Glibc.accept(fd, nil, nil)
            if connection < 0 {
                if errno == EINTR || errno == ECONNABORTED || errno == EMFILE { usleep(10_000); continue }
                return
            }
            _ = fcntl(connection, F_SETFD, FD_CLOEXEC)
            handle(connection)
            close(connection)
        }
    }

    private func handle(_ connection: Int32) {
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(connection, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(connection, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var request: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while request.count < 16384, !request.ends(with: [13, 10, 13, 10]) {
            let count = read(connection, &buffer, buffer.count)
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { break }
            request += buffer[..<count]
            if request.firstRange(of: [13, 10, 13, 10]) != nil { break }
        }
        let line = request.split(separator: 13, maxSplits: 1).first.map { String(decoding: $0, as: UTF8.self) } ?? ""
        let words = line.split(separator: " ")
        let response: String
        if words.count == 3, words[0] == "GET" || words[0] == "HEAD", words[1] == "/metrics" || words[1].hasPrefix("/metrics?") {
            let body = collect()
            response = Self.response("200 OK", body, contentType: "text/plain; version=0.0.4; charset=utf-8",
                                     head: words[0] == "HEAD")
        } else if words.count == 3, words[0] != "GET", words[0] != "HEAD" {
            response = Self.response("405 Method Not Allowed", "only GET /metrics here\n")
        } else if words.count == 3 {
            response = Self.response("404 Not Found", "only /metrics here\n")
        } else {
            response = Self.response("400 Bad Request", "malformed request\n")
        }
        var bytes = Array(response.utf8)
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeMutableBytes { send(connection, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if written < 0, errno == EINTR { continue }
            guard written > 0 else { return }
            offset += written
        }
        bytes.removeAll()
    }

    /// The supervisor's metrics, then every worker's, merged by family.
    func collect() -> String {
        let current = snapshot.withLock { $0 }
        var texts: [(slot: Int, text: String)] = []
        var scrapes: [(slot: Int, ok: Bool)] = []
        for endpoint in current.endpoints {
            let text = Self.fetch(endpoint.path)
            scrapes.append((endpoint.slot, text != nil))
            if let text { texts.append((endpoint.slot, text)) }
        }
        return current.metrics.exposition(scrapes: scrapes) + MetricsMerger.merge(texts)
    }

    /// Reads one worker's exposition: it writes it as soon as a client connects, then closes.
    static func fetch(_ path: String) -> String? {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 1, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        guard withUnixSocketAddress(path, { connect(fd, $0, $1) }) == 0 else { return nil }
        var text: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while text.count < 8 << 20 {
            let count = read(fd, &buffer, buffer.count)
            if count < 0, errno == EINTR { continue }
            if count < 0 { return nil }
            if count == 0 { return String(decoding: text, as: UTF8.self) }
            text += buffer[..<count]
        }
        return nil
    }

    static func response(_ status: String, _ body: String, contentType: String = "text/plain; charset=utf-8",
                         head: Bool = false) -> String {
        "HTTP/1.1 \(status)\r\nContent-Type: \(contentType)\r\nContent-Length: \(body.utf8.count)\r\n"
            + "Connection: close\r\n\r\n" + (head ? "" : body)
    }
}

/// A closure carried across `pthread_create`.
private final class ThreadBody: Sendable {
    let run: @Sendable () -> Void
    init(_ run: @escaping @Sendable () -> Void) { self.run = run }
}

extension Array where Element == UInt8 {
    fileprivate func ends(with suffix: [UInt8]) -> Bool {
        count >= suffix.count && Array(self[(count - suffix.count)...]) == suffix
    }
}
