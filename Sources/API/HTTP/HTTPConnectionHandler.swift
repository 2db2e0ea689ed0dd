import ConnectionPool
import LogFormat
import NIOCore
import NIOHTTP1

/// One HTTP/1.1 connection: collects each request with its body (bounded), asks the responder, writes the
/// answer. Pipelined requests are queued by NIO's `HTTPServerPipelineHandler` in front of this one, so there
/// is at most one request here at a time.
///
/// Bad input never crashes or stalls the worker: a malformed request gets 400 and the connection is closed; a
/// body over the limit gets 413 at once (from `Content-Length`, or as soon as a chunked body passes it) and
/// the rest is not read; a client that does not finish a request head within the header timeout is cut, and
/// one that does not finish its body within the body timeout gets 408 (nginx's `client_body_timeout`, but
/// for the whole body: a byte every few seconds must not hold a connection and its buffer forever); a body
/// that the worker's buffered-body budget cannot hold gets 503.
final class HTTPConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    struct Limits: Sendable {
        var maxBodySize: Int
        var headerTimeout: TimeAmount
        /// From the end of the head to the end of the body (`BODY_TIMEOUT`).
        var bodyTimeout: TimeAmount = .seconds(30)
        /// Shared by every connection of the worker (`BODY_BUFFER_LIMIT`).
        var bodyBuffers = BodyBuffers(limit: 32 << 20)
        /// How long a keep-alive connection between requests stays open once the worker drains. Closing it at
        /// once loses the request a busy client already sent: it waits unread in the socket's buffer, and the
        /// kernel answers a close with unread data by a reset. Measured with 64 keep-alive clients and a HUP:
        /// nearly every connection of each drained worker failed once; with the grace, none.
        var drainIdleGrace: TimeAmount = .milliseconds(250)
    }

    private enum State {
        /// Between requests (or before the first): the header timer runs.
        case idle
        case receiving(HTTPRequestHead, ByteBuffer?)
        /// The responder has the request; the next request waits in the pipeline handler.
        case responding
        /// A complete request waits for the client to read what it was sent (the channel is not writable):
        /// pipelined requests from a client that never reads must not pile their answers up in memory.
        case waitingForReader(Request, keepAlive: Bool, version: HTTPVersion)
        /// A final answer (400, 413) went out; the connection closes once it is flushed.
        case closing
    }

    private let responder: any Responder
    private let registry: ConnectionRegistry
    private let limits: Limits
    private var state = State.idle
    private var headerTimer: Scheduled<Void>?
    private var bodyTimer: Scheduled<Void>?
    /// Bytes of this connection's current body counted in `limits.bodyBuffers`; given back once answered.
    private var heldBodyBytes = 0
    private var context: ChannelHandlerContext?
    /// A keep-alive connection between two requests is idle; one that has not sent its first request is
    /// not: it was taken from the shared accept queue, its request is on the way, and no other worker can
    /// answer it any more.
    private var servedAny = false
    private var draining = false

    init(responder: any Responder, registry: ConnectionRegistry, limits: Limits) {
        self.responder = responder
        self.registry = registry
        self.limits = limits
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        draining = !registry.add(NIOLoopBound(self, eventLoop: context.eventLoop), id: ObjectIdentifier(context.channel))
        armHeaderTimer(context: context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        headerTimer?.cancel()
        headerTimer = nil
        bodyTimer?.cancel()
        bodyTimer = nil
        releaseBody()
        registry.remove(ObjectIdentifier(context.channel))
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch (unwrapInboundIn(data), state) {
        case (.head(let head), .idle):
            headerTimer?.cancel()
            headerTimer = nil
            if let problem = Self.framingProblem(head) {
                reject(.badRequest, "bad_request", problem, context: context)
                return
            }
            if let length = head.headers.first(name: "content-length").flatMap(Int.init), length > limits.maxBodySize {
                reject(.payloadTooLarge, "body_too_large", "the request body is larger than \(limits.maxBodySize) bytes",
                       context: context)
                return
            }
            state = .receiving(head, nil)
            let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            let seconds = limits.bodyTimeout.nanoseconds / 1_000_000_000
            bodyTimer = context.eventLoop.scheduleTask(in: limits.bodyTimeout) {
                let (handler, context) = bound.value
                guard case .receiving = handler.state else { return }
                handler.reject(.requestTimeout, "request_timeout", "the request body did not arrive within \(seconds) s",
                               context: context)
            }
        case (.body(var chunk), .receiving(let head, var body)):
            let size = (body?.readableBytes ?? 0) + chunk.readableBytes
            if size > limits.maxBodySize {
                reject(.payloadTooLarge, "body_too_large", "the request body is larger than \(limits.maxBodySize) bytes",
                       context: context)
                return
            }
            guard limits.bodyBuffers.reserve(chunk.readableBytes) else {
                reject(.serviceUnavailable, "busy", "too many request bodies in progress on this worker; retry",
                       context: context, headers: [("retry-after", "1")])
                return
            }
            heldBodyBytes += chunk.readableBytes
            if body == nil {
                body = chunk
            } else {
                body!.writeBuffer(&chunk)
            }
            state = .receiving(head, body)
        case (.end, .receiving(let head, let body)):
            bodyTimer?.cancel()
            bodyTimer = nil
            let request = Request(head: head, body: body)
            guard context.channel.isWritable else {
                state = .waitingForReader(request, keepAlive: head.isKeepAlive, version: head.version)
                return
            }
            dispatch(request, keepAlive: head.isKeepAlive, version: head.version, context: context)
        case (_, .closing):
            break
        default:
            // Parts out of order cannot come from NIO's decoder; treat it as a malformed request all the same.
            reject(.badRequest, "bad_request", "unexpected request part", context: context)
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable, case .waitingForReader(let request, let keepAlive, let version) = state {
            dispatch(request, keepAlive: keepAlive, version: version, context: context)
        }
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        switch state {
        case .idle, .receiving:
            if error is HTTPParserError {
                reject(.badRequest, "bad_request", "malformed HTTP request", context: context)
                return
            }
        case .responding, .closing, .waitingForReader:
            break
        }
        context.close(promise: nil)
    }

    /// SIGTERM: every request from now on is answered with `Connection: close`. A busy connection closes
    /// after its answer; one that has not sent a request yet is answered the same way when it does; an idle
    /// keep-alive connection closes after `drainIdleGrace` without a request.
    func drain() {
        draining = true
        guard let context, case .idle = state, servedAny else { return }
        armHeaderTimer(context: context, after: limits.drainIdleGrace)
    }

    func forceClose() {
        context?.close(promise: nil)
    }

    /// RFC 9112 §3.2: an HTTP/1.1 request without `Host`, or with more than one, gets 400. §6.1: an HTTP/1.0
    /// message with `Transfer-Encoding` has faulty framing (1.0 has no chunked coding, and a 1.0 proxy in front
    /// would frame it differently): 400 and close, rather than guess, which is how requests get smuggled.
    static func framingProblem(_ head: HTTPRequestHead) -> String? {
        let hosts = head.headers["host"].count
        if head.version.major == 1, head.version.minor >= 1 {
            if hosts == 0 { return "an HTTP/1.1 request needs a Host header" }
        }
        if hosts > 1 || head.headers["host"].contains(where: { $0.contains(",") }) { return "more than one Host header" }
        if head.version.major == 1, head.version.minor == 0, head.headers.contains(name: "transfer-encoding") {
            return "Transfer-Encoding is not allowed in an HTTP/1.0 request"
        }
        return nil
    }

    // MARK: Answers

    private func dispatch(_ request: Request, keepAlive: Bool, version: HTTPVersion, context: ChannelHandlerContext) {
        state = .responding
        let omitBody = request.method == .HEAD
        if let response = responder.immediateResponse(to: request) {
            write(response, keepAlive: keepAlive, version: version, omitBody: omitBody, context: context)
            return
        }
        let responder = self.responder
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        // On the reactor's thread, where the replies of its Postgres and Redis round trips are read.
        Task(executorPreference: Reactor.shared) {
            let response = await responder.response(to: request)
            bound.eventLoop.execute {
                let (handler, context) = bound.value
                guard context.channel.isActive else { return }
                handler.write(response, keepAlive: keepAlive, version: version, omitBody: omitBody, context: context)
            }
        }
    }

    /// - Parameter omitBody: a HEAD request: the headers of the GET answer, `Content-Length` included, no body.
    private func write(_ response: Response, keepAlive: Bool, version: HTTPVersion, omitBody: Bool = false,
                       context: ChannelHandlerContext) {
        let close = !keepAlive || draining
        var headers = HTTPHeaders(response.headers)
        headers.add(name: "content-length", value: String(response.body.readableBytes))
        if close {
            headers.add(name: "connection", value: "close")
        } else if version.major == 1, version.minor == 0 {
            headers.add(name: "connection", value: "keep-alive")
        }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: version, status: response.status, headers: headers))),
                      promise: nil)
        if response.body.readableBytes > 0, !omitBody {
            context.write(wrapOutboundOut(.body(.byteBuffer(response.body))), promise: nil)
        }
        servedAny = true
        releaseBody()
        if close {
            state = .closing
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
        } else {
            // Idle before `.end` goes out: the pipeline handler delivers a queued request during that write.
            state = .idle
            armHeaderTimer(context: context)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }
    }

    /// A final error answer; the request's remaining bytes are not read.
    private func reject(_ status: HTTPResponseStatus, _ code: String, _ message: String, context: ChannelHandlerContext,
                        headers: [(String, String)] = []) {
        headerTimer?.cancel()
        headerTimer = nil
        bodyTimer?.cancel()
        bodyTimer = nil
        draining = true
        var response = Response.error(status, code, message)
        response.headers += headers
        write(response, keepAlive: false, version: .http1_1, context: context)
    }

    private func releaseBody() {
        limits.bodyBuffers.release(heldBodyBytes)
        heldBodyBytes = 0
    }

    /// Closes the connection unless a request head arrives in time: the header timeout, or the drain's grace.
    private func armHeaderTimer(context: ChannelHandlerContext, after delay: TimeAmount? = nil) {
        headerTimer?.cancel()
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        headerTimer = context.eventLoop.scheduleTask(in: delay ?? limits.headerTimeout) {
            bound.value.close(promise: nil)
        }
    }
}
