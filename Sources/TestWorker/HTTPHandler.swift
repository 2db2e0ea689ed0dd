import NIOCore
import NIOHTTP1

/// Routes of the test worker: `/` says who answered, `/sleep/<ms>` answers late (an in-flight request
/// during a stop), anything else is 404.
final class HTTPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let state: WorkerState
    private let identity: String
    private var head: HTTPRequestHead?
    private var busy = false
    private var served = 0

    init(state: WorkerState, identity: String) {
        self.state = state
        self.identity = identity
    }

    func channelActive(context: ChannelHandlerContext) {
        state.opened(context.channel) { [unowned self] in !self.busy && self.served > 0 }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        state.closed(context.channel)
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let request):
            head = request
            busy = true
        case .body:
            break
        case .end:
            guard let request = head else { return }
            head = nil
            route(request, context: context)
        }
    }

    private func route(_ request: HTTPRequestHead, context: ChannelHandlerContext) {
        let path = request.uri.split(separator: "?").first.map(String.init) ?? request.uri
        if path == "/" || path == "/healthz" {
            respond(.ok, body: identity + "\n", keepAlive: request.isKeepAlive, context: context)
        } else if path.hasPrefix("/sleep/"), let milliseconds = Int64(path.dropFirst(7)), milliseconds <= 60_000 {
            let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            context.eventLoop.scheduleTask(in: .milliseconds(milliseconds)) {
                let (handler, context) = loopBound.value
                handler.respond(.ok, body: "slept \(milliseconds)ms, \(handler.identity)\n",
                                keepAlive: request.isKeepAlive, context: context)
            }
        } else {
            respond(.notFound, body: "{\"error\":\"not found\"}\n", keepAlive: request.isKeepAlive, context: context)
        }
    }

    private func respond(_ status: HTTPResponseStatus, body: String, keepAlive: Bool, context: ChannelHandlerContext) {
        let close = !keepAlive || state.draining
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: "text/plain")
        headers.add(name: "content-length", value: "\(body.utf8.count)")
        if close { headers.add(name: "connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))),
                      promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: body)))), promise: nil)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
            if close { channel.close(promise: nil) }
        }
        busy = false
        served += 1
        requestsServed.increment()
        requestLimit?.served()
    }
}
