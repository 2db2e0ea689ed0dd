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
    private let registry: ConnectionRegistry

    private init(channel: any Channel, registry: ConnectionRegistry) {
        self.channel = channel
        self.registry = registry
    }

    public static func start(on target: ListenTarget, group: any EventLoopGroup, responder: any Responder,
                             maxBodySize: Int, headerTimeout: Duration) async throws -> HTTPServer {
        let registry = ConnectionRegistry()
        let limits = HTTPConnectionHandler.Limits(maxBodySize: maxBodySize,
                                                  headerTimeout: .nanoseconds(Int64(headerTimeout.nanoseconds)))
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.allowRemoteHalfClosure, value: false)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    // No NIO error handler: ours answers malformed requests with a JSON 400.
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: false)
                    try channel.pipeline.syncOperations.addHandler(
                        HTTPConnectionHandler(responder: responder, registry: registry, limits: limits))
                }
            }
        let channel: any Channel
        switch target {
        case .inherited(let fd, let backlog):
            channel = try await bootstrap.withBoundSocket(fd).get()
            InheritedSocket.restoreBacklog(fd, environment: backlog)
        case .address(let host, let port):
            channel = try await bootstrap.serverChannelOption(.backlog, value: 4096).bind(host: host, port: port).get()
        }
        return HTTPServer(channel: channel, registry: registry)
    }

    /// The port actually bound (for `--bind host:0`).
    public var port: Int? { channel.localAddress?.port }

    public var openConnections: Int { registry.count }

    /// Stops accepting (other workers keep serving the shared socket), lets in-flight requests finish and
    /// closes idle keep-alive connections; after `timeout`, closes what is left. True when everything
    /// finished in time.
    public func drain(timeout: Duration) async -> Bool {
        try? await Listener.stopAccepting(channel).get()
        let registry = self.registry
        return await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                    registry.drain { continuation.resume() }
                }
                return true
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return false
            }
            let first = await group.next() ?? false
            if !first { registry.closeAll() }
            group.cancelAll()
            await group.waitForAll()
            return first
        }
    }
}

extension Duration {
    var nanoseconds: Int64 {
        components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000
    }

    var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
