import NIOHTTP1

/// A strict, incremental HTTP/1.1 request parser (RFC 9112), for the worker's own server on the reactor's
/// thread.
///
/// Why our own: SwiftNIO's decoder only runs inside a NIO channel, on a NIO event loop, and the worker's
/// Postgres and Redis replies are read on the reactor's epoll: a request then crossed threads twice, which cost
/// two context switches and about half of the worker's CPU per request. This parser has no I/O and no
/// allocation per byte; the connection feeds it what it read.
///
/// It agrees with SwiftNIO's `HTTPRequestDecoder` (llhttp) on what it accepts and what it refuses; the
/// differential tests and the fuzzer (`Fuzz/HTTP`) hold it to that. Whatever could frame a message two ways
/// is refused: `Content-Length` with `Transfer-Encoding`, two `Content-Length`s, a `Transfer-Encoding` that
/// does not end in `chunked`, bare LF or CR line ends, whitespace before a header's colon, folded lines,
/// control bytes in a header value, and a chunk size that overflows.
package struct RequestParser {
    package enum Event: Equatable {
        case head(HTTPRequestHead)
        /// Bytes of the current request's body (possibly one of several pieces).
        case body(ArraySlice<UInt8>)
        /// The current request is complete; the next call parses the next one.
        case end
        /// Nothing more can be parsed from what was given.
        case needMore
        /// The input is not a valid request; the connection answers 400 and closes.
        case invalid(String)
    }

    private enum State {
        case head
        case fixed(remaining: Int)
        case chunkSize
        case chunkData(remaining: Int)
        case chunkDataEnd
        case trailers
        case failed(String)
    }

    /// The longest request head (request line and headers) accepted: 80 KiB, as llhttp's predecessor did.
    package static let maxHeadSize = 80 * 1024

    private var state = State.head

    package init() {}

    /// Body bytes the current chunk (or `Content-Length`) still announces, when inside one.
    package var declaredBodyRemaining: Int? {
        switch state {
        case .fixed(let remaining), .chunkData(let remaining): remaining
        default: nil
        }
    }

    /// Right after a head: whether a body follows (a `Content-Length` above 0, or chunked).
    package var expectsBody: Bool {
        switch state {
        case .fixed(let remaining): remaining > 0
        case .chunkSize: true
        default: false
        }
    }

    /// Whether the parser is between requests (nothing of the next one consumed yet).
    package var isIdle: Bool {
        if case .head = state { return true }
        return false
    }

    /// Parses the next piece of `input` from `index`, and moves `index` past what it consumed.
    package mutating func next(_ input: [UInt8], from index: inout Int) -> Event {
        input.withUnsafeBufferPointer { next($0, from: &index) }
    }

    package mutating func next(_ input: UnsafeBufferPointer<UInt8>, from index: inout Int) -> Event {
        switch state {
        case .failed(let reason):
            return .invalid(reason)
        case .head:
            return parseHead(input, from: &index)
        case .fixed(let remaining):
            if remaining == 0 {
                state = .head
                return .end
            }
            guard index < input.count else { return .needMore }
            let take = min(remaining, input.count - index)
            let slice = ArraySlice(input[index ..< index + take])
            index += take
            state = .fixed(remaining: remaining - take)
            return .body(slice)
        case .chunkSize:
            guard let lineEnd = Self.lineEnd(input, from: index) else {
                if input.count - index > 1024 { return fail("chunk size line too long") }
                // Refused at its first impossible byte, as llhttp does (an overflowing size, a sign).
                let end = input.count > index && input[input.count - 1] == Self.cr ? input.count - 1 : input.count
                if end < input.count, end == index { return fail("invalid chunk size") }
                if end > index, Self.chunkSize(input, index, end, complete: end < input.count) == nil {
                    return fail("invalid chunk size")
                }
                return .needMore
            }
            switch lineEnd {
            case .invalid:
                return fail("invalid line ending in a chunk size")
            case .at(let end):
                guard let size = Self.chunkSize(input, index, end, complete: true) else { return fail("invalid chunk size") }
                index = end + 2
                state = size == 0 ? .trailers : .chunkData(remaining: size)
                return next(input, from: &index)
            }
        case .chunkData(let remaining):
            guard index < input.count else { return .needMore }
            let take = min(remaining, input.count - index)
            let slice = ArraySlice(input[index ..< index + take])
            index += take
            state = remaining == take ? .chunkDataEnd : .chunkData(remaining: remaining - take)
            return .body(slice)
        case .chunkDataEnd:
            guard input.count - index >= 2 else {
                if index < input.count, input[index] != Self.cr { return fail("chunk data is not followed by CRLF") }
                return .needMore
            }
            guard input[index] == Self.cr, input[index + 1] == Self.lf else { return fail("chunk data is not followed by CRLF") }
            index += 2
            state = .chunkSize
            return next(input, from: &index)
        case .trailers:
            while true {
                guard let lineEnd = Self.lineEnd(input, from: index) else {
                    if input.count - index > Self.maxHeadSize { return fail("trailers too large") }
                    if !Self.couldStartHeaderLine(input, index, input.count) { return fail("invalid trailer field") }
                    return .needMore
                }
                guard case .at(let end) = lineEnd else { return fail("invalid line ending in the trailers") }
                if end == index {
                    index = end + 2
                    state = .head
                    return .end
                }
                guard let (name, _) = Self.headerField(input, index, end) else { return fail("invalid trailer field") }
                // RFC 9110 §6.5.1: framing fields have no place in trailers (llhttp refuses a Content-Length there).
                if Self.equalsIgnoringCase(name, "content-length") || Self.equalsIgnoringCase(name, "transfer-encoding") {
                    return fail("\(name) in the trailers")
                }
                index = end + 2
            }
        }
    }

    private mutating func fail(_ reason: String) -> Event {
        state = .failed(reason)
        return .invalid(reason)
    }

    // MARK: Head

    /// What is known of a head still arriving: its lines are checked as each completes, so a bad one is
    /// refused at once (as llhttp does), and a head sent a byte at a time is not rescanned from its start.
    private struct PartialHead {
        /// Bytes past the head's start already taken as complete lines.
        var scanned = 0
        var requestLine: (HTTPMethod, String, HTTPVersion)?
        var headers: [(String, String)] = []
        var contentLength: Int?
        var transferEncoding: [String] = []
    }

    private var partialHead = PartialHead()

    private mutating func parseHead(_ input: UnsafeBufferPointer<UInt8>, from index: inout Int) -> Event {
        if partialHead.scanned == 0 {
            // RFC 9112 §2.2: empty lines before a request line are ignored; llhttp skips any CR and LF there.
            while index < input.count, input[index] == Self.cr || input[index] == Self.lf { index += 1 }
            guard index < input.count else { return .needMore }
        }
        var cursor = index + partialHead.scanned
        while true {
            guard let lineEnd = Self.lineEnd(input, from: cursor) else {
                if input.count - index > Self.maxHeadSize { return fail("request head larger than \(Self.maxHeadSize) bytes") }
                if partialHead.requestLine == nil, !Self.couldStartRequestLine(input, index, input.count) {
                    return fail("invalid request line")
                }
                if partialHead.requestLine != nil, !Self.couldStartHeaderLine(input, cursor, input.count) {
                    return fail("invalid header field")
                }
                partialHead.scanned = cursor - index
                return .needMore
            }
            guard case .at(let end) = lineEnd else { return fail("invalid line ending (CRLF expected)") }
            if end - index > Self.maxHeadSize { return fail("request head larger than \(Self.maxHeadSize) bytes") }
            if partialHead.requestLine == nil {
                guard let line = Self.requestLine(input, cursor, end) else { return fail("invalid request line") }
                partialHead.requestLine = line
            } else if end == cursor {
                cursor = end + 2
                break
            } else {
                guard let (name, value) = Self.headerField(input, cursor, end) else { return fail("invalid header field") }
                if Self.equalsIgnoringCase(name, "content-length") {
                    guard partialHead.contentLength == nil else { return fail("more than one Content-Length") }
                    guard partialHead.transferEncoding.isEmpty else { return fail("both Content-Length and Transfer-Encoding") }
                    guard let length = Self.decimal(value) else { return fail("invalid Content-Length") }
                    // llhttp takes spaces after the digits but not a tab.
                    var last = end - 1
                    while last > cursor, input[last] == Self.space { last -= 1 }
                    guard input[last] != Self.tab else { return fail("invalid Content-Length") }
                    partialHead.contentLength = length
                } else if Self.equalsIgnoringCase(name, "transfer-encoding") {
                    guard partialHead.contentLength == nil else { return fail("both Content-Length and Transfer-Encoding") }
                    // An empty one frames nothing: llhttp frames the message as if it were absent (and takes a
                    // Content-Length after it, though not before).
                    if !value.isEmpty { partialHead.transferEncoding.append(value) }
                }
                partialHead.headers.append((name, value))
            }
            cursor = end + 2
        }
        let head = partialHead
        partialHead = PartialHead()
        let (method, uri, version) = head.requestLine!
        let chunked: Bool
        if head.transferEncoding.isEmpty {
            chunked = false
        } else {
            let codings = head.transferEncoding.joined(separator: ",").split(separator: ",", omittingEmptySubsequences: false)
                .map { $0.trimmingCharacters(in: " \t").lowercased() }
            guard codings.last == "chunked" else { return fail("Transfer-Encoding does not end in chunked") }
            // RFC 9112 §7: chunked only once, and last (llhttp refuses a chunked that another coding follows).
            guard codings.dropLast().allSatisfy({ $0 != "chunked" }) else { return fail("chunked before another transfer coding") }
            chunked = true
        }
        index = cursor
        if chunked {
            state = .chunkSize
        } else {
            state = .fixed(remaining: head.contentLength ?? 0)
        }
        return .head(HTTPRequestHead(version: version, method: method, uri: uri, headers: HTTPHeaders(head.headers)))
    }

    /// Whether the bytes of an unfinished request line could still become a valid one: a known method's
    /// prefix, then spaces and target bytes, then a prefix of `HTTP/1.x`.
    private static func couldStartRequestLine(_ input: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) -> Bool {
        // A CR at the end is the start of the line's end.
        let end = end > start && input[end - 1] == cr ? end - 1 : end
        guard let space = (start..<end).first(where: { input[$0] == space }) else {
            let prefix = String(decoding: input[start..<end], as: UTF8.self)
            return methodNames.contains { $0.hasPrefix(prefix) }
        }
        guard method(input[start..<space]) != nil else { return false }
        var position = space
        while position < end, input[position] == Self.space { position += 1 }
        guard position < end else { return true }
        guard isTargetStart(input[position]) else { return false }
        while position < end, input[position] != Self.space {
            guard isTargetByte(input[position]) else { return false }
            position += 1
        }
        while position < end, input[position] == Self.space { position += 1 }
        guard position < end else { return true }
        let version = input[position..<end]
        return "HTTP/1.1".utf8.starts(with: version) || "HTTP/1.0".utf8.starts(with: version)
    }

    /// Whether an unfinished header line could still become a valid field: token bytes, then a colon and
    /// value bytes. (CR is left to the line end.)
    private static func couldStartHeaderLine(_ input: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) -> Bool {
        var position = start
        while position < end, input[position] != Self.colon {
            guard isTokenByte(input[position]) || (position == start && input[position] == cr) else { return false }
            position += 1
        }
        guard position < end else { return true }
        guard position > start else { return false }
        return input[(position + 1)..<end].allSatisfy { isValueByte($0) || $0 == cr }
    }

    private enum LineEnd {
        case at(Int)
        case invalid
    }

    /// Where the next CRLF starts; `.invalid` for a bare LF or a CR not followed by LF.
    private static func lineEnd(_ input: UnsafeBufferPointer<UInt8>, from start: Int) -> LineEnd? {
        var position = start
        while position < input.count {
            let byte = input[position]
            if byte == lf { return .invalid }
            if byte == cr {
                guard position + 1 < input.count else { return nil }
                return input[position + 1] == lf ? .at(position) : .invalid
            }
            position += 1
        }
        return nil
    }

    private static func requestLine(_ input: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int)
        -> (HTTPMethod, String, HTTPVersion)? {
        guard let firstSpace = (start..<end).first(where: { input[$0] == space }) else { return nil }
        guard let method = Self.method(input[start..<firstSpace]) else { return nil }
        // llhttp takes several spaces after the method as one (RFC 9112 §3 allows a recipient to).
        var targetStart = firstSpace
        while targetStart < end, input[targetStart] == space { targetStart += 1 }
        guard targetStart < end, isTargetStart(input[targetStart]) else { return nil }
        guard let secondSpace = (targetStart..<end).first(where: { input[$0] == space }) else { return nil }
        let targetBytes = input[targetStart ..< secondSpace]
        var versionStart = secondSpace
        while versionStart < end, input[versionStart] == space { versionStart += 1 }
        let versionBytes = input[versionStart ..< end]
        guard targetBytes.allSatisfy(isTargetByte), isWellFormedTarget(targetBytes) else { return nil }
        guard versionBytes.count == 8, versionBytes.starts(with: "HTTP/1.".utf8) else { return nil }
        let minor = versionBytes[versionBytes.startIndex + 7]
        guard minor == UInt8(ascii: "0") || minor == UInt8(ascii: "1") else { return nil }
        let uri = String(decoding: targetBytes, as: UTF8.self)
        return (method, uri, HTTPVersion(major: 1, minor: minor == UInt8(ascii: "1") ? 1 : 0))
    }

    /// The methods llhttp knows for HTTP (others are refused there too).
    private static let methods: [String: HTTPMethod] = {
        var table: [String: HTTPMethod] = ["M-SEARCH": .MSEARCH]
        for method in [HTTPMethod.GET, .PUT, .ACL, .HEAD, .POST, .COPY, .LOCK, .MOVE, .BIND, .LINK, .PATCH, .TRACE, .MKCOL,
                       .MERGE, .PURGE, .NOTIFY, .SEARCH, .UNLOCK, .REBIND, .UNBIND, .REPORT, .DELETE, .UNLINK, .CONNECT,
                       .OPTIONS, .PROPFIND, .CHECKOUT, .PROPPATCH, .SUBSCRIBE, .MKCALENDAR, .MKACTIVITY,
                       .UNSUBSCRIBE, .SOURCE] {
            table[method.rawValue] = method
        }
        return table
    }()

    private static let methodNames = Array(methods.keys)

    private static func method(_ bytes: Slice<UnsafeBufferPointer<UInt8>>) -> HTTPMethod? {
        guard !bytes.isEmpty, bytes.count <= 12 else { return nil }
        if bytes.count == 3, bytes.elementsEqual("GET".utf8) { return .GET }
        return methods[String(decoding: bytes, as: UTF8.self)]
    }

    /// `name: value`, the value without its surrounding spaces and tabs.
    private static func headerField(_ input: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) -> (String, String)? {
        guard let colon = (start..<end).first(where: { input[$0] == colon }) else { return nil }
        let name = input[start..<colon]
        guard !name.isEmpty, name.allSatisfy(isTokenByte) else { return nil }
        var valueStart = colon + 1
        var valueEnd = end
        while valueStart < valueEnd, input[valueStart] == space || input[valueStart] == tab { valueStart += 1 }
        while valueEnd > valueStart, input[valueEnd - 1] == space || input[valueEnd - 1] == tab { valueEnd -= 1 }
        let value = input[valueStart..<valueEnd]
        guard value.allSatisfy(isValueByte) else { return nil }
        return (String(decoding: name, as: UTF8.self), String(decoding: value, as: UTF8.self))
    }

    private static func decimal(_ text: String) -> Int? {
        guard !text.isEmpty, text.utf8.count <= 18, text.utf8.allSatisfy({ $0 >= zero && $0 <= nine }) else { return nil }
        return Int(text)
    }

    /// `1*HEXDIG [ chunk-ext ]`; nil when invalid or past 64 bits (llhttp's limit; the connection's body
    /// limit refuses far less).
    /// - Parameter complete: the line ends at `end` (else more of it may come).
    private static func chunkSize(_ input: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int, complete: Bool) -> Int? {
        var size: UInt64 = 0
        var position = start
        while position < end, let digit = hexValue(input[position]) {
            guard size < 1 << 60 else { return nil }
            size = size << 4 | UInt64(digit)
            position += 1
        }
        guard position > start else { return nil }
        guard isChunkExtension(input, position, end, complete: complete) else { return nil }
        return Int(clamping: size)
    }

    /// `*( ";" token [ "=" ( token / quoted-string ) ] )` (RFC 9112 §7.1.1), as llhttp reads it (empty names
    /// and values allowed); a prefix of
    /// one is accepted too, since the line may not be complete yet.
    private static func isChunkExtension(_ input: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int, complete: Bool) -> Bool {
        var position = start
        while position < end {
            guard input[position] == UInt8(ascii: ";") else { return false }
            position += 1
            // Not a space after `;`, and not `;` last on the line.
            if position == end { return !complete }
            if input[position] == space { return false }
            // llhttp takes an empty name (`;;`) and an empty value (`;e=`) too.
            while position < end, isTokenByte(input[position]) { position += 1 }
            if position == end { return true }
            if input[position] == UInt8(ascii: ";") { continue }
            guard input[position] == UInt8(ascii: "=") else { return false }
            position += 1
            if position == end { return true }
            if input[position] == UInt8(ascii: "\"") {
                position += 1
                var closed = false
                while position < end {
                    let byte = input[position]
                    if byte == UInt8(ascii: "\"") {
                        closed = true
                        position += 1
                        break
                    }
                    if byte == UInt8(ascii: "\\") {
                        position += 2
                        continue
                    }
                    guard byte == tab || (byte >= 0x20 && byte != 0x7F) else { return false }
                    position += 1
                }
                // A quoted string still open: fine while the line may go on, not at its end.
                if !closed { return !complete }
            } else {
                while position < end, isTokenByte(input[position]) { position += 1 }
            }
        }
        return true
    }

    private static func hexValue(_ byte: UInt8) -> Int? {
        switch byte {
        case zero...nine: Int(byte - zero)
        case UInt8(ascii: "a")...UInt8(ascii: "f"): Int(byte - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): Int(byte - UInt8(ascii: "A") + 10)
        default: nil
        }
    }

    static func equalsIgnoringCase(_ text: String, _ lowercase: String) -> Bool {
        text.utf8.count == lowercase.utf8.count
            && zip(text.utf8, lowercase.utf8).allSatisfy { ($0 | 0x20) == $1 || $0 == $1 }
    }

    // MARK: Bytes

    static let cr = UInt8(ascii: "\r")
    static let lf = UInt8(ascii: "\n")
    static let space = UInt8(ascii: " ")
    static let tab = UInt8(ascii: "\t")
    static let colon = UInt8(ascii: ":")
    static let zero = UInt8(ascii: "0")
    static let nine = UInt8(ascii: "9")

    /// RFC 9110 §5.6.2 tchar.
    private static let tokenBytes: [Bool] = (0..<256).map { value in
        let byte = UInt8(value)
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), zero...nine: return true
        default: return "!#$%&'*+-.^_`|~".utf8.contains(byte)
        }
    }

    static func isTokenByte(_ byte: UInt8) -> Bool { tokenBytes[Int(byte)] }

    /// Visible ASCII; no controls, no space, no bytes past ASCII (llhttp refuses them too).
    static func isTargetByte(_ byte: UInt8) -> Bool { byte > 0x20 && byte < 0x7F }

    /// An absolute-form target is a scheme of letters, then `://` (llhttp refuses `http:/x` and `h2p://x`).
    static func isWellFormedTarget(_ target: Slice<UnsafeBufferPointer<UInt8>>) -> Bool {
        guard let first = target.first, first != UInt8(ascii: "/"), first != UInt8(ascii: "*") else { return true }
        guard let colon = target.firstIndex(of: colon), colon > target.startIndex,
              target[target.startIndex..<colon].allSatisfy({ $0 | 0x20 >= UInt8(ascii: "a") && $0 | 0x20 <= UInt8(ascii: "z") })
        else { return false }
        return target[colon...].starts(with: "://".utf8)
    }

    /// origin-form (`/`), asterisk-form (`*`) or absolute-form (a scheme's first letter).
    static func isTargetStart(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: "/") || byte == UInt8(ascii: "*") || (byte | 0x20 >= UInt8(ascii: "a") && byte | 0x20 <= UInt8(ascii: "z"))
    }

    /// field-vchar, SP and HTAB (RFC 9110 §5.5), and obs-text.
    static func isValueByte(_ byte: UInt8) -> Bool { byte == tab || (byte >= 0x20 && byte != 0x7F) }
}
