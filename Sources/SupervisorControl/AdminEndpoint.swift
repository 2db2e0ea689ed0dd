import SystemdProtocol
import SupervisorSystem
import Glibc
import Synchronization

/// `--metrics-bind`: one /metrics for the supervisor and every worker, labelled by slot.
///
/// Scraping a prefork service's own port reaches whichever worker accepts, so each worker also serves its
/// metrics on a private unix socket (`PREFORK_METRICS_SOCKET`, in a 0700 directory of the supervisor's);
/// a scrape here collects them all, in parallel, within one deadline, and merges them: a hung worker shows
/// `scrape_ok 0` and the rest are served. One thread reads every connection's request head, which must come
/// within a second, and a complete request is answered on a thread of its own, so idle or slow clients cannot
/// hold up a scrape (once, 10 idle connections delayed one by 20 s, and 32 locked every scrape out). None of this runs on the supervisor's loop, which only publishes
/// a snapshot (its counters and the serving workers' sockets) after each turn.
package final class AdminEndpoint: Sendable {
    package struct Snapshot: Sendable {
        var metrics = SupervisorMetrics()
        var endpoints: [(slot: Int, path: String)] = []

        package init(metrics: SupervisorMetrics, endpoints: [(slot: Int, path: String)]) {
            self.metrics = metrics
            self.endpoints = endpoints
        }
    }

    /// The whole request head must arrive within this.
    static let headDeadlineMilliseconds: Int64 = 1000
    /// Every worker's exposition must arrive within this, all fetched at once.
    static let scrapeDeadlineMilliseconds: Int32 = 1000
    /// Connections still sending their head; past it the oldest is closed, so a crowd of idle connections
    /// cannot keep a scraper out (it sends its head at once, and is answered).
    static let maxPending = 256
    /// Requests answered at once, each on a thread; past it a request gets 503 at once.
    static let maxAnswering = 8

    package let fd: Int32
    package let description: String
    private let snapshot = Mutex(Snapshot(metrics: SupervisorMetrics(), endpoints: []))
    private let answering = Atomic<Int>(0)
    private let closed = Atomic<Bool>(false)

    package init(address: BindAddress) throws(SystemError) {
        let socket = try ListenSocket.bind(address, backlog: 64)
        fd = socket.fd
        description = socket.description
        let flags = fcntl(fd, F_GETFL)
        _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
    }

    package func publish(_ update: Snapshot) { snapshot.withLock { $0 = update } }

    /// Releases the port at the stop, before the process's last moments (the last log lines may take a while to
    /// be written): the next supervisor can bind it as soon as `supervisor stop` returns. `shutdown` wakes the
    /// accepting thread's poll, which then closes the socket.
    package func stopServing() {
        closed.store(true, ordering: .releasing)
        shutdown(fd, Int32(SHUT_RDWR))
    }

    /// Starts the accepting thread. The supervisor's signal mask (everything it handles blocked) is inherited,
    /// so signals still arrive only through the loop's signalfd.
    package func start() {
        _ = Self.thread(detached: true) { [self] in serve() }
    }

    private struct Pending {
        var fd: Int32
        var head: [UInt8] = []
        var deadline: Int64
    }

    /// One thread reads every connection's request head (poll, non-blocking): an idle connection costs a
    /// descriptor, not a thread. A complete head is answered on a thread of its own.
    private func serve() {
        var pending: [Pending] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            var polled = [pollfd(fd: fd, events: Int16(POLLIN), revents: 0)]
                + pending.map { pollfd(fd: $0.fd, events: Int16(POLLIN), revents: 0) }
            let now = Self.monotonicMilliseconds()
            let timeout = pending.map(\.deadline).min().map { Int32(clamping: max(0, $0 - now)) } ?? -1
            if poll(&polled, nfds_t(polled.count), timeout) < 0, errno != EINTR {
                usleep(10_000)
                continue
            }
            if closed.load(ordering: .acquiring) {
                for connection in pending { Glibc.close(connection.fd) }
                Glibc.close(fd)
                return
            }
            let after = Self.monotonicMilliseconds()
            var still: [Pending] = []
            for (index, var connection) in pending.enumerated() {
                if polled[index + 1].revents != 0 {
                    let count = read(connection.fd, &buffer, buffer.count)
                    if count == 0 || (count < 0 && errno != EAGAIN && errno != EINTR) {
                        close(connection.fd)
                        continue
                    }
                    if count > 0 { connection.head += buffer[..<count] }
                    if connection.head.firstRange(of: [13, 10, 13, 10]) != nil || connection.head.count >= 16384 {
                        answer(connection.fd, head: connection.head)
                        continue
                    }
                }
                if after >= connection.deadline {
                    close(connection.fd)
                    continue
                }
                still.append(connection)
            }
            pending = still
            guard polled[0].revents != 0 else { continue }
            while true {
                let connection = Glibc.accept(fd, nil, nil)
                guard connection >= 0 else { break }
                _ = fcntl(connection, F_SETFD, FD_CLOEXEC)
                _ = fcntl(connection, F_SETFL, fcntl(connection, F_GETFL) | O_NONBLOCK)
                if pending.count >= Self.maxPending { close(pending.removeFirst().fd) }
                pending.append(Pending(fd: connection, deadline: after + Self.headDeadlineMilliseconds))
            }
        }
    }

    /// Answers a complete request head on a thread of its own (blocking writes, two seconds at most each).
    private func answer(_ connection: Int32, head: [UInt8]) {
        _ = fcntl(connection, F_SETFL, fcntl(connection, F_GETFL) & ~O_NONBLOCK)
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(connection, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        guard answering.add(1, ordering: .relaxed).newValue <= Self.maxAnswering,
              Self.thread(detached: true, { [self] in
                  Self.write(respond(to: head), to: connection)
                  close(connection)
                  answering.subtract(1, ordering: .relaxed)
              }) != nil
        else {
            answering.subtract(1, ordering: .relaxed)
            Self.write(Self.response("503 Service Unavailable", "busy: too many scrapes at once\n"), to: connection)
            close(connection)
            return
        }
    }

    private func respond(to request: [UInt8]) -> String {
        let line = request.split(separator: 13, maxSplits: 1).first.map { String(decoding: $0, as: UTF8.self) } ?? ""
        let words = line.split(separator: " ")
        if words.count == 3, words[0] == "GET" || words[0] == "HEAD", words[1] == "/metrics" || words[1].hasPrefix("/metrics?") {
            return Self.response("200 OK", collect(), contentType: "text/plain; version=0.0.4; charset=utf-8",
                                 head: words[0] == "HEAD")
        } else if words.count == 3, words[0] != "GET", words[0] != "HEAD" {
            return Self.response("405 Method Not Allowed", "only GET /metrics here\n")
        } else if words.count == 3 {
            return Self.response("404 Not Found", "only /metrics here\n")
        }
        return Self.response("400 Bad Request", "malformed request\n")
    }

    private static func write(_ response: String, to connection: Int32) {
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

