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
}
