import CShims
import Reactor
import Glibc
import NIOCore
import NIOHTTP1

/// One HTTP/1.1 connection on the reactor's thread: reads, parses, asks the responder, writes, on the same
/// epoll as the Postgres and Redis replies its requests wait for, so a request never changes threads.
///
/// Confined to the reactor's thread (every method runs there; `@unchecked Sendable` only so a request's task,
/// which prefers the reactor as its executor, can hand the answer back).
///
/// Bad input never crashes or stalls the worker: a malformed request gets 400 and the connection is closed; a
/// body over the limit gets 413 at once (from `Content-Length`, or as soon as a chunked body passes it) and
/// the rest is not read; a client that does not finish a request head within the header timeout is cut, and
/// one that does not finish its body within the body timeout gets 408 (nginx's `client_body_timeout`, but
/// for the whole body); a body that the worker's buffered-body budget cannot hold gets 503. Pipelined requests
/// are answered one at a time, in order, and the next is not started while the previous answer is still
/// unwritten (a client that sends but never reads cannot pile answers up in memory), nor read past 64 KiB.
final class HTTPConnection: Reactor.Watcher, @unchecked Sendable {
    struct Limits {
        var maxBodySize: Int
        var headerTimeout: Duration
        /// From the end of the head to the end of the body (`BODY_TIMEOUT`).
        var bodyTimeout: Duration
        /// Shared by every connection of the worker (`BODY_BUFFER_LIMIT`).
        var bodyBuffers: BodyBuffers
        /// How long a keep-alive connection between requests stays open once the worker drains. Closing it at
        /// once loses the request a busy client already sent: it waits unread in the socket's buffer, and the
        /// kernel answers a close with unread data by a reset. Measured with 64 keep-alive clients and a HUP:
        /// nearly every connection of each drained worker failed once; with the grace, none.
        var drainIdleGrace: Duration = .milliseconds(250)
    }

    private enum State {
        /// Between requests (or before the first): the header deadline runs.
        case idle
        case receiving(HTTPRequestHead, ByteBuffer?)
        /// The responder has the request.
        case responding
        /// A final answer (400, 413, or `Connection: close`) is being written; then the connection closes.
        case closing
        case closed
    }

    private static let continueLine = Array("HTTP/1.1 100 Continue\r\n\r\n".utf8)

    /// Unconsumed input past which the connection stops reading until it catches up.
    private static let inputHighWater = 64 * 1024

    let fd: Int32
    private unowned let server: HTTPServerCore
    private var state = State.idle
    private var parser = RequestParser()
    private var input: [UInt8] = []
    private var inputStart = 0
    private var output: [UInt8] = []
    private var outputStart = 0
    private var headerDeadline: ContinuousClock.Instant?
    private var bodyDeadline: ContinuousClock.Instant?
    private var heldBodyBytes = 0
    private var keepAlive = true
    private var version = HTTPVersion.http1_1
    private var omitBody = false
    /// The events asked of epoll now.
    private var interest: UInt32 = 0
    private var peerClosed = false
    /// A keep-alive connection between two requests is idle; one that has not sent its first request is
    /// not: it was taken from the shared accept queue, its request is on the way, and no other worker can
    /// answer it any more.
    private var servedAny = false
    private var draining = false

    init(fd: Int32, server: HTTPServerCore) {
        self.fd = fd
        self.server = server
        headerDeadline = .now + server.limits.headerTimeout
    }

    /// Starts watching the socket; false when epoll refused it (the caller closes it).
    func start() -> Bool {
        interest = EPOLLIN.rawValue
        return Reactor.shared.watch(fd, events: interest, self)
    }

    // MARK: Events

    func ready(_ events: UInt32) {
        if events & (EPOLLERR.rawValue | EPOLLHUP.rawValue) != 0 {
            // Reset by the peer, or gone both ways: nothing can be written any more.
            close()
            return
        }
        if events & EPOLLOUT.rawValue != 0 {
            flush()
        }
        if case .closed = state { return }
        if events & EPOLLIN.rawValue != 0, interest & EPOLLIN.rawValue != 0 {
            guard receive() else { return }
        }
        process()
    }

    /// One read, into the server's scratch buffer and then onto the input; false when the connection was
    /// closed by an error.
    private func receive() -> Bool {
        let scratch = server.scratch
        let count = read(fd, scratch.baseAddress!, scratch.count)
        if count > 0 {
            input.append(contentsOf: UnsafeRawBufferPointer(rebasing: scratch[..<count]))
        } else if count == 0 {
            peerClosed = true
        } else if errno != EAGAIN, errno != EINTR {
            close()
            return false
        }
        return true
    }

    /// Parses and answers what the input holds, as far as the state allows.
    private func process() {
        parsing: while outputStart == output.count {
            switch state {
            case .idle, .receiving: break
            case .responding, .closing, .closed: break parsing
            }
            let event = parser.next(input, from: &inputStart)
            switch event {
            case .head(let head):
                headerDeadline = nil
                if let problem = Self.framingProblem(head) {
                    reject(.badRequest, "bad_request", problem)
                    break parsing
                }
                if let length = head.headers.first(name: "content-length").flatMap(Int.init), length > server.limits.maxBodySize {
                    reject(.payloadTooLarge, "body_too_large", "the request body is larger than \(server.limits.maxBodySize) bytes")
                    break parsing
                }
                state = .receiving(head, nil)
                bodyDeadline = .now + server.limits.bodyTimeout
                // RFC 9110 §10.1.1: a client that waits for 100 before sending its body gets it.
                if head.version.minor >= 1, parser.expectsBody,
                   head.headers["expect"].contains(where: { $0.lowercased() == "100-continue" }) {
                    output.append(contentsOf: Self.continueLine)
                    flush()
                    if case .closed = state { break parsing }
                }
            case .body(let piece):
                guard case .receiving(let head, var body) = state else { break parsing }
                let size = (body?.readableBytes ?? 0) + piece.count
                if size > server.limits.maxBodySize {
                    reject(.payloadTooLarge, "body_too_large", "the request body is larger than \(server.limits.maxBodySize) bytes")
                    break parsing
                }
                guard server.limits.bodyBuffers.reserve(piece.count) else {
                    reject(.serviceUnavailable, "busy", "too many request bodies in progress on this worker; retry",
                           headers: [("retry-after", "1")])
                    break parsing
                }
                heldBodyBytes += piece.count
                if body == nil { body = ByteBuffer() }
                body!.writeBytes(piece)
                state = .receiving(head, body)
            case .end:
                guard case .receiving(let head, let body) = state else { break parsing }
                bodyDeadline = nil
                dispatch(Request(head: head, body: body), head: head)
            case .needMore:
                if case .receiving(_, let body) = state, let remaining = parser.declaredBodyRemaining,
                   (body?.readableBytes ?? 0) + remaining > server.limits.maxBodySize {
                    // A chunk that announces more than the limit is refused now, not after it arrived.
                    reject(.payloadTooLarge, "body_too_large", "the request body is larger than \(server.limits.maxBodySize) bytes")
                }
                break parsing
            case .invalid:
                reject(.badRequest, "bad_request", "malformed HTTP request")
                break parsing
            }
        }
        if case .closed = state { return }
        compactInput()
        if peerClosed {
            // The client sent all it will. What is complete gets answered; an unfinished request never can be.
            switch state {
            case .responding, .closing: break
            case .idle where outputStart < output.count: break
            default:
                close()
                return
            }
        }
        updateInterest()
    }

    private func dispatch(_ request: Request, head: HTTPRequestHead) {
        state = .responding
        keepAlive = head.isKeepAlive
        version = head.version
        omitBody = head.method == .HEAD
        if let response = server.responder.immediateResponse(to: request) {
            respond(response)
            return
        }
        let responder = server.responder
        // On the reactor's thread, where the replies of its Postgres and Redis round trips are read: the
        // task starts, waits and finishes here, and the answer is written from here.
        Task(executorPreference: Reactor.shared) {
            let response = await responder.response(to: request)
            Reactor.shared.execute { self.respond(response) }
        }
    }

    /// Writes the answer to the current request; then takes the next pipelined one, if any.
    private func respond(_ response: Response) {
        guard case .responding = state else { return }
        write(response, close: !keepAlive || draining)
        if case .idle = state { process() }
    }

    private func write(_ response: Response, close: Bool) {
        ResponseEncoder.encode(response, version: version, close: close, omitBody: omitBody, into: &output)
        servedAny = true
        releaseBody()
        if close {
            state = .closing
        } else {
            state = .idle
            headerDeadline = .now + server.limits.headerTimeout
        }
        flush()
    }

    /// A final error answer; the request's remaining bytes are not read.
    private func reject(_ status: HTTPResponseStatus, _ code: String, _ message: String, headers: [(String, String)] = []) {
        headerDeadline = nil
        bodyDeadline = nil
        draining = true
        version = .http1_1
        omitBody = false
        var response = Response.error(status, code, message)
        response.headers += headers
        write(response, close: true)
    }

    /// Writes what is pending; closes once a final answer is out.
    private func flush() {
        while outputStart < output.count {
            let written = output.withUnsafeBufferPointer { buffer in
                Glibc.send(fd, buffer.baseAddress! + outputStart, buffer.count - outputStart, Int32(MSG_NOSIGNAL))
            }
            if written > 0 {
                outputStart += written
                continue
            }
            if written < 0, errno == EINTR { continue }
            if written < 0, errno == EAGAIN {
                updateInterest()
                return
            }
            close()
            return
        }
        output.removeAll(keepingCapacity: output.capacity <= 64 * 1024)
        outputStart = 0
        if case .closing = state {
            close()
            return
        }
        updateInterest()
    }

    /// Level-triggered: write readiness while an answer is pending, else read readiness while reading is
    /// allowed, else nothing (an end of input already read would fire forever).
    private func updateInterest() {
        if case .closed = state { return }
        let wanted: UInt32
        if outputStart < output.count {
            wanted = EPOLLOUT.rawValue
        } else if peerClosed {
            wanted = 0
        } else if case .responding = state, input.count - inputStart >= Self.inputHighWater {
            // Pipelined requests wait while this one is answered; a head or body being received is read on
            // (the parser bounds a head, the body limits a body).
            wanted = 0
        } else {
            switch state {
            case .idle, .receiving, .responding: wanted = EPOLLIN.rawValue
            case .closing, .closed: wanted = 0
            }
        }
        if wanted != interest {
            interest = wanted
            Reactor.shared.rewatch(fd, events: wanted)
        }
    }

    private func compactInput() {
        if inputStart == input.count {
            input.removeAll(keepingCapacity: input.capacity <= 128 * 1024)
            inputStart = 0
        } else if inputStart > 16 * 1024 {
            input.removeFirst(inputStart)
            inputStart = 0
        }
    }

    // MARK: Time and drain

    /// Every tick: the header deadline closes a silent connection; the body deadline answers 408.
    func tick(now: ContinuousClock.Instant) {
        if outputStart < output.count, case .idle = state, headerDeadline != nil {
            // A slow reader is still taking the last answer: the wait for its next request starts after.
            headerDeadline = now + (draining && servedAny ? server.limits.drainIdleGrace : server.limits.headerTimeout)
            return
        }
        if let deadline = headerDeadline, now >= deadline {
            switch state {
            case .idle: close()
            default: headerDeadline = nil
            }
        } else if let deadline = bodyDeadline, now >= deadline, case .receiving = state {
            let seconds = server.limits.bodyTimeout.components.seconds
            reject(.requestTimeout, "request_timeout", "the request body did not arrive within \(seconds) s")
        }
    }

    /// SIGTERM: every request from now on is answered with `Connection: close`. A busy connection closes
    /// after its answer; one that has not sent a request yet is answered the same way when it does; an idle
    /// keep-alive connection closes after `drainIdleGrace` without a request.
    func drain() {
        draining = true
        guard case .idle = state, servedAny, parser.isIdle, inputStart == input.count else { return }
        headerDeadline = .now + server.limits.drainIdleGrace
    }

    func close() {
        if case .closed = state { return }
        state = .closed
        Reactor.shared.unwatch(fd)
        Glibc.close(fd)
        releaseBody()
        input = []
        inputStart = 0
        output = []
        outputStart = 0
        server.remove(self)
    }

    private func releaseBody() {
        server.limits.bodyBuffers.release(heldBodyBytes)
        heldBodyBytes = 0
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
}
