import Glibc
import Synchronization

/// `--metrics-bind`: one /metrics for the supervisor and every worker, labelled by slot.
///
/// Scraping a prefork service's own port reaches whichever worker accepts, so each worker also serves its
/// metrics on a private unix socket (`PREFORK_METRICS_SOCKET`, in a 0700 directory of the supervisor's);
/// a scrape here collects them all, in parallel, within one deadline, and merges them: a hung worker shows
/// `scrape_ok 0` and the rest are served. Each connection gets a thread of its own (up to a bound) and must
/// send its request head within a short deadline, so idle or slow clients cannot hold up a scrape (once,
/// 10 idle connections delayed one by 20 s). None of this runs on the supervisor's loop, which only publishes
/// a snapshot (its counters and the serving workers' sockets) after each turn.
final class AdminEndpoint: Sendable {
    struct Snapshot: Sendable {
        var metrics = SupervisorMetrics()
        var endpoints: [(slot: Int, path: String)] = []
    }

    /// The whole request head must arrive within this.
    static let headDeadlineMilliseconds: Int32 = 1000
    /// Every worker's exposition must arrive within this, all fetched at once.
    static let scrapeDeadlineMilliseconds: Int32 = 1000
    /// Connections served at once; more are closed at once (a scraper retries, a flood gets nothing).
    static let maxConnections = 32

    let fd: Int32
    let description: String
    private let snapshot = Mutex(Snapshot())
    private let active = Atomic<Int>(0)

    init(address: BindAddress) throws(SystemError) {
        let socket = try ListenSocket.bind(address, backlog: 64)
        fd = socket.fd
        description = socket.description
        let flags = fcntl(fd, F_GETFL)
        _ = fcntl(fd, F_SETFL, flags & ~O_NONBLOCK)
    }

    func publish(_ update: Snapshot) { snapshot.withLock { $0 = update } }

    /// Starts the accepting thread. The supervisor's signal mask (everything it handles blocked) is inherited,
    /// so signals still arrive only through the loop's signalfd.
    func start() {
        _ = Self.thread(detached: true) { [self] in serve() }
    }

    private func serve() {
        while true {
            let connection = Glibc.accept(fd, nil, nil)
            if connection < 0 {
                if errno == EINTR || errno == ECONNABORTED || errno == EMFILE { usleep(10_000); continue }
                return
            }
            _ = fcntl(connection, F_SETFD, FD_CLOEXEC)
            guard active.add(1, ordering: .relaxed).newValue <= Self.maxConnections,
                  Self.thread(detached: true, { [self] in
                      handle(connection)
                      close(connection)
                      active.subtract(1, ordering: .relaxed)
                  }) != nil
            else {
                active.subtract(1, ordering: .relaxed)
                close(connection)
                continue
            }
        }
    }

    private func handle(_ connection: Int32) {
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(connection, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let deadline = Self.monotonicMilliseconds() + Int64(Self.headDeadlineMilliseconds)
        var request: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while request.count < 16384, request.firstRange(of: [13, 10, 13, 10]) == nil {
            guard Self.waitReadable(connection, until: deadline) else { return }
            let count = read(connection, &buffer, buffer.count)
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { break }
            request += buffer[..<count]
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

    /// The supervisor's metrics, then every worker's, merged by family. The workers are asked all at once,
    /// each on a thread, against one deadline.
    func collect() -> String {
        let current = snapshot.withLock { $0 }
        let deadline = Self.monotonicMilliseconds() + Int64(Self.scrapeDeadlineMilliseconds)
        let results = current.endpoints.map { _ in FetchResult() }
        var threads: [pthread_t] = []
        for (index, endpoint) in current.endpoints.enumerated() {
            let result = results[index]
            let path = endpoint.path
            if let thread = Self.thread(detached: false, { result.text.withLock { $0 = Self.fetch(path, deadline: deadline) } }) {
                threads.append(thread)
            } else {
                result.text.withLock { $0 = Self.fetch(path, deadline: deadline) }
            }
        }
        for thread in threads { pthread_join(thread, nil) }
        var texts: [(slot: Int, text: String)] = []
        var scrapes: [(slot: Int, ok: Bool)] = []
        for (index, endpoint) in current.endpoints.enumerated() {
            let text = results[index].text.withLock { $0 }
            scrapes.append((endpoint.slot, text != nil))
            if let text { texts.append((endpoint.slot, text)) }
        }
        return current.metrics.exposition(scrapes: scrapes) + MetricsMerger.merge(texts)
    }

    /// Reads one worker's exposition (it writes it as soon as a client connects, then closes), or nil if it
    /// is not complete by `deadline` (monotonic milliseconds).
    static func fetch(_ path: String, deadline: Int64) -> String? {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        // A unix socket's connect does not block on a live listener with room in its backlog; on a full one it
        // would, so it gets the deadline's remainder too.
        var timeout = timeval(tv_sec: Int(scrapeDeadlineMilliseconds / 1000), tv_usec: Int(scrapeDeadlineMilliseconds % 1000) * 1000)
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        guard withUnixSocketAddress(path, { connect(fd, $0, $1) }) == 0 else { return nil }
        var text: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while text.count < 8 << 20 {
            guard waitReadable(fd, until: deadline) else { return nil }
            let count = read(fd, &buffer, buffer.count)
            if count < 0, errno == EINTR { continue }
            if count < 0 { return nil }
            if count == 0 { return String(decoding: text, as: UTF8.self) }
            text += buffer[..<count]
        }
        return nil
    }

    /// Waits until `fd` can be read or the deadline (monotonic milliseconds) passes.
    static func waitReadable(_ fd: Int32, until deadline: Int64) -> Bool {
        while true {
            let remaining = deadline - monotonicMilliseconds()
            guard remaining > 0 else { return false }
            var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&entry, 1, Int32(remaining))
            if ready < 0, errno == EINTR { continue }
            return ready > 0
        }
    }

    static func monotonicMilliseconds() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
    }

    /// Runs `body` on a new thread with a small stack; nil if the thread could not be made.
    static func thread(detached: Bool, _ body: @escaping @Sendable () -> Void) -> pthread_t? {
        let box = Unmanaged.passRetained(ThreadBody(body)).toOpaque()
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        defer { pthread_attr_destroy(&attributes) }
        pthread_attr_setstacksize(&attributes, 256 << 10)
        if detached { pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED)) }
        var thread = pthread_t()
        guard pthread_create(&thread, &attributes, { argument in
            Unmanaged<ThreadBody>.fromOpaque(argument!).takeRetainedValue().run()
            return nil
        }, box) == 0 else {
            Unmanaged<ThreadBody>.fromOpaque(box).release()
            return nil
        }
        return thread
    }

    static func response(_ status: String, _ body: String, contentType: String = "text/plain; charset=utf-8",
                         head: Bool = false) -> String {
        "HTTP/1.1 \(status)\r\nContent-Type: \(contentType)\r\nContent-Length: \(body.utf8.count)\r\n"
            + "Connection: close\r\n\r\n" + (head ? "" : body)
    }
}

/// One worker's exposition, written by its fetching thread.
private final class FetchResult: Sendable {
    let text = Mutex<String?>(nil)
}

/// A closure carried across `pthread_create`.
private final class ThreadBody: Sendable {
    let run: @Sendable () -> Void
    init(_ run: @escaping @Sendable () -> Void) { self.run = run }
}

