import TimeUnits
import CShims
import Glibc
import NIOCore
import NIOHTTP1
import NIOPosix
import WorkerRuntime

/// Where the server listens: the socket its manager passed (fd 3) or an address of its own.
public enum ListenTarget: Sendable, CustomStringConvertible {
    /// `LISTEN_FDS` socket activation; `backlog` is `LISTEN_BACKLOG`, restored after NIO re-listens.
    case inherited(fd: Int32, backlog: String?)
    case address(host: String, port: Int)

    public var description: String {
        switch self {
        case .inherited(let fd, _): "inherited socket (fd \(fd))"
        case .address(let host, let port): "\(host):\(port)"
        }
    }
}

/// SwiftNIO's HTTP/1.1 server on the worker's socket, and its drain.
public final class HTTPServer: Sendable {
    private let channel: any Channel
    private let fd: Int32
    /// The worker made the socket itself (`--bind`): nobody else holds it, so the drain stops new
    /// connections on it, as the supervisor does for a shared one.
    private let ownsSocket: Bool
    private let registry: ConnectionRegistry
    private let initializer: @Sendable (any Channel) -> EventLoopFuture<Void>

    private init(channel: any Channel, fd: Int32, ownsSocket: Bool, registry: ConnectionRegistry,
                 initializer: @escaping @Sendable (any Channel) -> EventLoopFuture<Void>) {
        self.channel = channel
        self.fd = fd
        self.ownsSocket = ownsSocket
        self.registry = registry
        self.initializer = initializer
    }

    /// One connection's pipeline: NIO's HTTP/1.1 codec and our handler. No NIO error handler: ours answers
    /// malformed requests with a JSON 400. No outbound header validation: every response header is the
    /// worker's own, none is taken from a request (it cost 5% of a cached request's CPU).
    static func configure(_ channel: any Channel, responder: any Responder, registry: ConnectionRegistry,
                          limits: HTTPConnectionHandler.Limits) throws {
        try channel.pipeline.syncOperations.configureHTTPServerPipeline(
            withErrorHandling: false, withOutboundHeaderValidation: false)
        try channel.pipeline.syncOperations.addHandler(
            HTTPConnectionHandler(responder: responder, registry: registry, limits: limits))
    }

    /// The same pipeline on a channel of the caller's (the fuzzer's `EmbeddedChannel`), with the given limits.
    public static func configureConnection(_ channel: any Channel, responder: any Responder, maxBodySize: Int,
                                           headerTimeout: Duration) throws {
        let limits = HTTPConnectionHandler.Limits(maxBodySize: maxBodySize,
                                                  headerTimeout: .nanoseconds(Int64(headerTimeout.inNanoseconds)))
        try configure(channel, responder: responder, registry: ConnectionRegistry(), limits: limits)
    }

    public static func start(on target: ListenTarget, group: any EventLoopGroup, responder: any Responder,
                             maxBodySize: Int, headerTimeout: Duration, bodyTimeout: Duration = .seconds(30),
                             bodyBufferLimit: Int = 32 << 20) async throws -> HTTPServer {
        let registry = ConnectionRegistry()
        let limits = HTTPConnectionHandler.Limits(maxBodySize: maxBodySize,
                                                  headerTimeout: .nanoseconds(Int64(headerTimeout.inNanoseconds)),
                                                  bodyTimeout: .nanoseconds(Int64(bodyTimeout.inNanoseconds)),
                                                  bodyBuffers: BodyBuffers(limit: bodyBufferLimit))
        let initializer: @Sendable (any Channel) -> EventLoopFuture<Void> = { channel in
            channel.eventLoop.makeCompletedFuture {
                try configure(channel, responder: responder, registry: registry, limits: limits)
            }
        }
        let bootstrap = ServerBootstrap(group: group)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelOption(.allowRemoteHalfClosure, value: false)
            .childChannelInitializer(initializer)
        let fd: Int32
        switch target {
        case .inherited(let inherited, _):
            fd = inherited
        case .address(let host, let port):
            fd = try ListeningSocket.bind(host: host, port: port, backlog: 4096)
        }
        let channel = try await bootstrap.withBoundSocket(fd).get()
        if case .inherited(_, let backlog) = target {
            InheritedSocket.restoreBacklog(fd, environment: backlog)
        } else {
            _ = listen(fd, 4096)
        }
        let owned: Bool
        if case .address = target { owned = true } else { owned = false }
        return HTTPServer(channel: channel, fd: fd, ownsSocket: owned, registry: registry, initializer: initializer)
    }

    /// The port actually bound (for `--bind host:0`).
    public var port: Int? { channel.localAddress?.port }

    public var openConnections: Int { registry.count }

    /// Stops accepting (other workers keep serving the shared socket), lets in-flight requests finish and
    /// closes idle keep-alive connections; after `timeout`, closes what is left. True when everything
    /// finished in time.
    public func drain(timeout: Duration) async -> Bool {
        if ownsSocket { _ = prefork_refuse_new_connections(fd) }
        let group = channel.eventLoop
        let initializer = self.initializer
        try? await Listener.stopAccepting(channel, fd: fd) { connection in
            ClientBootstrap(group: group)
                .channelOption(.tcpOption(.tcp_nodelay), value: 1)
                .channelInitializer(initializer)
                .withConnectedSocket(connection)
                .map { _ in }
                .recover { _ in close(connection) }
        }.get()
        let registry = self.registry
        let drained = await first(within: timeout) {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                registry.drain { continuation.resume() }
            }
        } != nil
        if !drained { registry.closeAll() }
        return drained
    }
}

