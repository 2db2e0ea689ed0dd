import Foundation
import IntegrationSupport
import Testing

/// Issue 17: the worker's own HTTP/1.1 server on the reactor's thread, from a raw socket: what SwiftNIO's
/// pipeline did before must still hold, and what a client on a half-closed socket expects.
@Suite("The worker's HTTP connections", .serialized)
struct HTTPConnectionTests {
    /// The status lines, in order (a body has no line end of its own: the next status follows it directly).
    static func statuses(_ text: String) -> [String] {
        text.components(separatedBy: "HTTP/1.").dropFirst().map { "HTTP/1." + ($0.components(separatedBy: "\r\n").first ?? "") }
    }

    @Test func pipelinedRequestsAreAnsweredInOrderInOneWrite() throws {
        let worker = try WorkerProcess()
        let token = try Services.token(user: Services.uniqueName("pipeline"))
        let connection = try RawConnection(port: worker.port)
        let authorization = "Authorization: Bearer \(token)\r\n"
        // A request that waits for Postgres and Redis between two that are answered at once: order is kept.
        connection.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                        + "GET /v1/notes HTTP/1.1\r\nHost: x\r\n\(authorization)\r\n"
                        + "GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n"
                        + "HEAD /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        let text = connection.readAll(timeout: 5)
        #expect(Self.statuses(text) == ["HTTP/1.1 200 OK", "HTTP/1.1 200 OK", "HTTP/1.1 404 Not Found", "HTTP/1.1 200 OK"], "\(text)")
        // HEAD: the GET's content-length, no body; then the connection closes, as asked.
        let head = try #require(text.components(separatedBy: "HTTP/1.1 200 OK").last)
        #expect(head.contains("content-length: 15\r\n") && head.contains("connection: close\r\n") && head.hasSuffix("\r\n\r\n"), "\(head)")
    }

    /// `printf 'GET ...' | nc host port`: the client shuts its side after the request and reads the answer.
    @Test func aClientThatShutsItsSideAfterTheRequestStillGetsTheAnswer() throws {
        let worker = try WorkerProcess()
        let token = try Services.token(user: Services.uniqueName("halfclose"))
        let connection = try RawConnection(port: worker.port)
        connection.send("GET /v1/notes HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(token)\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        shutdown(connection.fd, Int32(SHUT_WR))
        let text = connection.readAll(timeout: 5)
        #expect(Self.statuses(text) == ["HTTP/1.1 200 OK", "HTTP/1.1 200 OK"], "\(text)")
    }

    /// HTTP/1.0: closed after the answer unless the client asks to keep it; kept, the answer says so.
    @Test func http10KeepAliveOnlyWhenAsked() throws {
        let worker = try WorkerProcess()
        let closing = try RawConnection(port: worker.port)
        closing.send("GET /healthz HTTP/1.0\r\n\r\n")
        let closed = closing.readAll(timeout: 5)
        #expect(closed.hasPrefix("HTTP/1.0 200 OK\r\n") && closed.contains("connection: close\r\n"), "\(closed)")
        let keeping = try RawConnection(port: worker.port)
        keeping.send("GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        let kept = keeping.readAll(timeout: 1)
        #expect(kept.hasPrefix("HTTP/1.0 200 OK\r\n") && kept.contains("connection: keep-alive\r\n"), "\(kept)")
        #expect(keeping.send("GET /healthz HTTP/1.0\r\n\r\n"), "the connection was kept open")
        #expect(Self.statuses(keeping.readAll(timeout: 5)) == ["HTTP/1.0 200 OK"])
    }

    /// Smuggling shapes are refused with 400 and the connection closes: the second request is never served.
    @Test func ambiguousFramingIsRefusedAndNothingAfterItIsServed() throws {
        let worker = try WorkerProcess()
        for framing in ["Content-Length: 4\r\nTransfer-Encoding: chunked", "Content-Length: 4\r\nContent-Length: 5",
                        "Transfer-Encoding: chunked, identity", "Transfer-Encoding : chunked", "X: a\r\n folded"] {
            let connection = try RawConnection(port: worker.port)
            connection.send("POST /v1/notes HTTP/1.1\r\nHost: x\r\n\(framing)\r\n\r\n0\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            let text = connection.readAll(timeout: 5)
            #expect(Self.statuses(text) == ["HTTP/1.1 400 Bad Request"], "\(framing): \(text)")
        }
    }

    /// Found by the break-it review: a connection closed after more than 16 KiB of input trapped the worker.
    @Test func aLargeHeadThenACloseLeavesTheWorkerServing() throws {
        let worker = try WorkerProcess()
        let padding = String(repeating: "a", count: 17_000)
        for request in ["GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Pad: \(padding)\r\n\r\n",
                        "GET /\(padding) HTTP/1.0\r\n\r\n",
                        "GET /healthz HTTP/1.1\r\nX-Pad: \(padding)\r\n\r\n",
                        "POST /v1/notes HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\nX-Pad: \(padding)\r\n\r\n"] {
            let connection = try RawConnection(port: worker.port)
            connection.send(request)
            #expect(connection.readAll(timeout: 5).hasPrefix("HTTP/1."))
            #expect(try worker.request("GET", "/healthz").status == 200, "the worker died after \(request.prefix(40))")
        }
    }

    /// A head up to the 80 KiB limit is read and served (reading used to stop at 64 KiB); past it, 400.
    @Test func headsUpTo80KiBAreServedAndLargerOnesRefused() throws {
        let worker = try WorkerProcess()
        for (size, status) in [(70_000, "HTTP/1.1 200 OK"), (90_000, "HTTP/1.1 400 Bad Request")] {
            let connection = try RawConnection(port: worker.port)
            connection.send("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\nCookie: c=\(String(repeating: "a", count: size))\r\n\r\n")
            #expect(Self.statuses(connection.readAll(timeout: 5)) == [status], "a head of \(size) bytes")
        }
    }

    /// A slow reader gets the whole answer: the header timeout counts from when it was written, not sent.
    @Test func aSlowReaderGetsTheWholeAnswerPastTheHeaderTimeout() throws {
        let worker = try WorkerProcess(environment: ["HEADER_TIMEOUT": "1"])
        let token = try Services.token(user: Services.uniqueName("slowreader"))
        let big = String(repeating: "x", count: 90_000)
        for index in 0..<20 {
            #expect(try worker.request("POST", "/v1/notes", token: token, body: "{\"title\":\"n\(index)\",\"body\":\"\(big)\"}").status == 201)
        }
        let connection = try RawConnection(port: worker.port)
        connection.send("GET /v1/notes?limit=20 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(token)\r\n\r\n")
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 32_768)
        var length = -1
        var headEnd = -1
        let deadline = Date().addingTimeInterval(20)
        // At most 32 KiB every 50 ms: the answer takes about 3 s to read, three header timeouts.
        while Date() < deadline {
            let count = recv(connection.fd, &buffer, buffer.count, Int32(MSG_DONTWAIT))
            if count == 0 { break }
            if count > 0 { bytes += buffer[..<count] }
            if headEnd < 0, let end = (0..<max(0, bytes.count - 3)).first(where: { bytes[$0..<$0 + 4].elementsEqual([13, 10, 13, 10]) }) {
                headEnd = end + 4
                let head = String(decoding: bytes[..<end], as: UTF8.self)
                length = head.components(separatedBy: "\r\n").first { $0.hasPrefix("content-length: ") }.flatMap { Int($0.dropFirst(16)) } ?? -1
            }
            if headEnd >= 0, bytes.count - headEnd >= length { break }
            usleep(50_000)
        }
        #expect(length > 1_800_000 && bytes.count - headEnd == length, "read \(bytes.count - headEnd) of \(length) bytes")
    }

    /// `Expect: 100-continue` (curl's way for uploads) gets its 100 before the body is sent; a chunk that
    /// announces more than MAX_BODY_SIZE gets 413 at once.
    @Test func continueIsSentAndAnOversizedChunkIsRefusedAtOnce() throws {
        let worker = try WorkerProcess(environment: ["MAX_BODY_SIZE": "1000"])
        let token = try Services.token(user: Services.uniqueName("expect"))
        let connection = try RawConnection(port: worker.port)
        connection.send("POST /v1/notes HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(token)\r\nExpect: 100-continue\r\n"
                        + "Content-Length: 13\r\nConnection: close\r\n\r\n")
        var buffer = [UInt8](repeating: 0, count: 256)
        var tv = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(connection.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let count = recv(connection.fd, &buffer, buffer.count, 0)
        #expect(String(decoding: buffer[..<max(count, 0)], as: UTF8.self) == "HTTP/1.1 100 Continue\r\n\r\n")
        connection.send("{\"title\":\"c\"}")
        #expect(Self.statuses(connection.readAll(timeout: 5)) == ["HTTP/1.1 201 Created"])
        let oversized = try RawConnection(port: worker.port)
        let started = Date()
        oversized.send("POST /v1/notes HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFF\r\nab")
        #expect(Self.statuses(oversized.readAll(timeout: 5)) == ["HTTP/1.1 413 Payload Too Large"])
        #expect(Date().timeIntervalSince(started) < 2)
    }
}
