import SystemdProtocol
import CShims
import Reactor
import Settings
import Glibc
import NIOCore
import Synchronization
import TimeUnits
import WorkerRuntime

/// Where the server listens: the socket its manager passed (fd 3) or an address of its own.
public enum ListenTarget: Sendable, CustomStringConvertible {
    /// `LISTEN_FDS` socket activation. The socket is used as the manager made it: never listened on again,
    /// so its backlog (`LISTEN_BACKLOG`) stays the manager's.
    case inherited(fd: Int32)
    case address(host: String, port: Int)

    /// `host:port`, `:port`, `[v6]:port` or `port` (on 0.0.0.0): where a worker run alone listens (`--bind`), in
    /// the grammar of the supervisor's `--bind` (`HostPortSyntax`), a bare port allowed.
    public init(address text: String) throws(HostPortSyntax.Problem) {
        let address = try HostPortSyntax.parse(text, allowingBarePort: true).get()
        self = .address(host: address.host, port: Int(address.port))
    }

    public var description: String {
        switch self {
        case .inherited(let fd): "inherited socket (fd \(fd))"
        case .address(let host, let port): "\(host):\(port)"
        }
    }
}

/// The worker's HTTP/1.1 server, on the reactor's thread: accepts on the listening socket, serves each
/// connection (`HTTPConnection`), and drains. A request's read, its Postgres and Redis round trips and its
/// answer all happen on that one thread and its one epoll: no handoff between threads on the hot path.
package final class HTTPServer: Sendable {
    private let core: HTTPServerCore

    private init(core: HTTPServerCore) {
        self.core = core
    }

    /// The listener, ready but not yet accepting (`startAccepting`): a worker takes no connection off the shared
    /// queue before its application has booted, so one that cannot reach its database never holds a request it
    /// cannot answer. A socket of its own (`PORT`) is bound here, so a port in use fails at once; connections
    /// wait in its backlog until the boot is done.
    package static func open(on target: ListenTarget, responder: any Responder, maxBodySize: Int,
                             headerTimeout: Duration, bodyTimeout: Duration, bodyBufferLimit: Int) async throws -> HTTPServer {
        let fd: Int32
        switch target {
        case .inherited(let inherited):
            fd = inherited
        case .address(let host, let port):
            fd = try ListeningSocket.bind(host: host, port: port, backlog: 4096)
        }
        // Non-blocking accepts. On a shared socket the flag is the open file's, shared with the other
        // workers, which accept the same way.
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        let limits = HTTPConnection.Limits(maxBodySize: maxBodySize, headerTimeout: headerTimeout, bodyTimeout: bodyTimeout,
                                           bodyBuffers: BodyBuffers(limit: bodyBufferLimit))
        let owned: Bool
        if case .address = target { owned = true } else { owned = false }
        let core = HTTPServerCore(listener: fd, ownsSocket: owned, responder: responder, limits: limits)
        return HTTPServer(core: core)
    }

    /// Accepting begins (unless a drain has begun meanwhile).
    package func startAccepting() async throws {
        let core = self.core
        let started: Bool = await withCheckedContinuation { continuation in
            Reactor.shared.execute { continuation.resume(returning: core.start()) }
        }
        guard started else { throw ListeningSocket.Failure(description: "epoll refused the listening socket") }
    }

    /// The port actually bound (for `--bind host:0`).
    package var port: Int? { SocketPort.local(core.listener) }

    package var openConnections: Int { core.openConnections.load(ordering: .relaxed) }

    /// Stops accepting (other workers keep serving the shared socket), lets in-flight requests finish and
    /// closes idle keep-alive connections; after `timeout`, closes what is left. True when everything
    /// finished in time.
    package func drain(timeout: Duration) async -> Bool {
        let core = self.core
        let drained = await first(within: timeout) {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                Reactor.shared.execute { core.drain { continuation.resume() } }
            }
        } != nil
        if !drained {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                Reactor.shared.execute {
                    core.closeAll()
                    continuation.resume()
                }
            }
        }
        return drained
    }
}

/// The server's state, confined to the reactor's thread (`@unchecked Sendable` so the public shell can
/// hand it there).
final class HTTPServerCore: Reactor.Watcher, @unchecked Sendable {
    let listener: Int32
    let ownsSocket: Bool
    let responder: any Responder
    let limits: HTTPConnection.Limits
    /// Every connection reads into this first: one buffer for the thread, not one per connection.
    let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 1024, alignment: 16)
    let openConnections = Atomic<Int>(0)
    private var connections: [Int32: HTTPConnection] = [:]
    private var listening = false
    /// Accepting has begun once: only then (or on a socket of its own) does a drain take what is queued.
    private var started = false
    private var draining = false
    private var whenEmpty: (() -> Void)?
    /// Accepting paused for a tick after the process ran out of descriptors.
    private var acceptPausedUntil: ContinuousClock.Instant?

    init(listener: Int32, ownsSocket: Bool, responder: any Responder, limits: HTTPConnection.Limits) {
        self.listener = listener
        self.ownsSocket = ownsSocket
        self.responder = responder
        self.limits = limits
    }

    func start() -> Bool {
        guard !draining, !started else { return true }
        guard Reactor.shared.watch(listener, events: EPOLLIN.rawValue, self) else { return false }
        listening = true
        started = true
        Reactor.shared.everyTick { [self] in tick() }
        return true
    }

    /// The listener is readable: take what is queued, a batch per turn so replies are not starved.
    func ready(_ events: UInt32) {
        for _ in 0..<64 {
            guard let connection = acceptOne() else { return }
            adopt(connection)
        }
    }

    private func acceptOne() -> Int32? {
        while true {
            let connection = prefork_accept_nonblocking(listener)
            if connection >= 0 { return connection }
            switch errno {
            case EINTR, ECONNABORTED:
                continue
            case EMFILE, ENFILE, ENOBUFS, ENOMEM:
                // Out of descriptors or memory: the listener stays readable, so stop watching it for a
                // tick instead of spinning; the queued connections wait in the kernel.
                if listening {
                    Reactor.shared.unwatch(listener)
                    listening = false
                    acceptPausedUntil = .now + .milliseconds(100)
                }
                return nil
            default:
                return nil
            }
        }
    }

    private func adopt(_ fd: Int32) {
        var one: Int32 = 1
        // Ignored for a Unix socket, where there is no Nagle to turn off.
        _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        let connection = HTTPConnection(fd: fd, server: self)
        guard connection.start() else {
            close(fd)
            return
        }
        connections[fd] = connection
        openConnections.store(connections.count, ordering: .relaxed)
        if draining { connection.drain() }
    }

    func remove(_ connection: HTTPConnection) {
        connections[connection.fd] = nil
        openConnections.store(connections.count, ordering: .relaxed)
        if draining, connections.isEmpty, let whenEmpty {
            self.whenEmpty = nil
            whenEmpty()
        }
    }

    private func tick() {
        let now = ContinuousClock.now
        if let until = acceptPausedUntil, now >= until, !draining {
            acceptPausedUntil = nil
            listening = Reactor.shared.watch(listener, events: EPOLLIN.rawValue, self)
        }
        for connection in Array(connections.values) { connection.tick(now: now) }
    }

    /// Stops accepting without resetting a connection, and tells every connection to finish.
    ///
    /// When every worker stops at once (a deploy), the last one to close the shared socket makes the kernel
    /// reset every connection still queued: clients that completed the handshake and sent their request get
    /// a reset, as with uvicorn or gunicorn. So each worker, right before closing, accepts everything queued
    /// (non-blocking, until EAGAIN) and serves it, then closes in the same turn. Connections that arrive
    /// between the last accept and the close would still be reset; the supervisor closes that window by making
    /// the shared socket drop new connection attempts before it signals the workers (`closeListener`), and a
    /// worker that made its own socket (`--bind`) does the same here.
    func drain(whenEmpty: @escaping () -> Void) {
        if !draining {
            draining = true
            if ownsSocket { _ = prefork_refuse_new_connections(listener) }
            if listening { Reactor.shared.unwatch(listener) }
            listening = false
            // A worker that never accepted (stopped while it booted) leaves the shared queue to the others.
            if started || ownsSocket {
                while let connection = acceptOne() { adopt(connection) }
            }
            close(listener)
            for connection in Array(connections.values) { connection.drain() }
        }
        if connections.isEmpty {
            whenEmpty()
        } else {
            self.whenEmpty = whenEmpty
        }
    }

    /// The graceful timeout passed: close whatever is still open. The drain's waiter is answered (by the last
    /// `remove`, or here), never dropped: a continuation left unresumed is a leak the runtime reports.
    func closeAll() {
        for connection in Array(connections.values) { connection.close() }
        if let whenEmpty {
            self.whenEmpty = nil
            whenEmpty()
        }
    }
}
