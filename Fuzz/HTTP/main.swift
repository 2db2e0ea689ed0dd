import FuzzDriver
import API
import NIOCore
import NIOEmbedded
import NIOHTTP1

/// Any bytes a client can send, through the worker's real pipeline (NIO's HTTP/1.1 decoder and our handler)
/// on an `EmbeddedChannel`, with a responder that parses what the API's routes parse (route, query, bearer
/// token, note JSON) and answers at once. Nothing may crash; a bad request gets a 400, 413 or 422, not a trap.
struct ParsingResponder: Responder {
    func immediateResponse(to request: Request) -> Response? {
        _ = request.route.label
        _ = request.queryValue("cursor")
        _ = request.queryValue("limit")
        if let token = request.bearerToken { _ = token.utf8.count }
        switch NoteInput.parse(request.body, creating: request.method == .POST) {
        case .success(let input): _ = input.title
        case .failure: break
        }
        return .json(.ok, "{}")
    }

    func response(to request: Request) async -> Response { .json(.ok, "{}") }
}

func fuzzHTTP(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let loop = EmbeddedEventLoop()
    let channel = EmbeddedChannel(loop: loop)
    defer {
        // Past the header timeout, as a real connection would be: the timer fires (its path is covered too),
        // and nothing scheduled keeps the channel alive after the input.
        loop.advanceTime(by: .seconds(20))
        _ = try? channel.finish()
        try? loop.syncShutdownGracefully()
    }
    do {
        try HTTPServer.configureConnection(channel, responder: ParsingResponder(), maxBodySize: 4096, headerTimeout: .seconds(10))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        // In two writes split where the input says, so partial heads and bodies are covered too.
        let bytes = UnsafeBufferPointer(start: data, count: size)
        let split = size > 0 ? Int(bytes[0]) % (size + 1) : 0
        for part in [bytes[..<split], bytes[split...]] where !part.isEmpty {
            var buffer = channel.allocator.buffer(capacity: part.count)
            buffer.writeBytes(part)
            try channel.writeInbound(buffer)
            while try channel.readOutbound(as: ByteBuffer.self) != nil {}
        }
    } catch {
        // An error the pipeline reports is an answer, not a crash.
    }
    return 0
}

fuzz { fuzzHTTP($0, $1) }
