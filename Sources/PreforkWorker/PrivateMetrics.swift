import NIOCore
import NIOPosix

/// The worker's end of the supervisor's metrics collection: on `PREFORK_METRICS_SOCKET` (a path in the
/// supervisor's private 0700 folder), every connection gets the current exposition and is closed. No request
/// to parse, so nothing a client sends can confuse it; only the supervisor's user can reach the folder.
public enum PrivateMetrics {
    @discardableResult
    public static func serve(path: String, group: any EventLoopGroup,
                             exposition: @escaping @Sendable () -> [UInt8]) async throws -> any Channel {
        try await bind(path: path, group: group, exposition: exposition).get()
    }

    public static func bind(path: String, group: any EventLoopGroup,
                            exposition: @escaping @Sendable () -> [UInt8]) -> EventLoopFuture<any Channel> {
        ServerBootstrap(group: group)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ExpositionWriter(exposition: exposition))
                }
            }
            .bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true)
    }
}

/// Writes the exposition once the accepted connection is active (not in the initializer: a channel is not
/// active yet there, and a write would fail), then closes it.
private final class ExpositionWriter: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    let exposition: @Sendable () -> [UInt8]

    init(exposition: @escaping @Sendable () -> [UInt8]) { self.exposition = exposition }

    func channelActive(context: ChannelHandlerContext) {
        let bytes = exposition()
        var buffer = context.channel.allocator.buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        let channel = context.channel
        context.writeAndFlush(NIOAny(buffer)).whenComplete { _ in channel.close(promise: nil) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}
}
