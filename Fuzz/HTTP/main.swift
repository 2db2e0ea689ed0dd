import NotesAPI
import FuzzDriver
import HTTPDifferential
import NIOCore
import NIOHTTP1
import PreforkWorker

/// Any bytes a client can send, through the worker's HTTP parser and SwiftNIO's decoder (llhttp) side by
/// side: the same bytes must give the same requests or the same refusal, or the fuzzer stops with both
/// readings. Each request the worker's parser gives then goes through what the API's routes parse (route,
/// query, bearer token, note JSON): nothing may crash.
func fuzzHTTP(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    // In two pieces split where the input says, so partial heads, sizes and bodies are covered too.
    let splits = size > 0 ? [Int(bytes[0]) % (size + 1)] : []
    let (agree, ours, nio) = HTTPDifferential.agree(bytes, splits: splits)
    if !agree {
        fatalError("the worker's parser and SwiftNIO's disagree on \(String(decoding: bytes, as: UTF8.self).debugDescription) split \(splits): ours \(ours), NIO \(nio)")
    }
    var parser = RequestParser()
    var index = 0
    var head: HTTPRequestHead?
    var body: [UInt8] = []
    while true {
        switch parser.next(bytes, from: &index) {
        case .head(let next):
            head = next
            body = []
        case .body(let piece):
            body += piece
        case .end:
            guard let head else { return 0 }
            let request = Request(head: head, body: body.isEmpty ? nil : ByteBuffer(bytes: body))
            _ = Route(method: request.method, path: request.path).label
            _ = request.queryValue("cursor")
            _ = request.queryValue("limit")
            if let token = request.bearerToken { _ = token.utf8.count }
            switch NoteInput.parse(request.body, creating: request.method == .POST) {
            case .success(let input): _ = input.title
            case .failure: break
            }
        case .needMore, .invalid:
            return 0
        }
    }
}

fuzz { fuzzHTTP($0, $1) }
