import PreforkWorker
import NIOCore
import NIOEmbedded
import NIOHTTP1

/// The same bytes through the worker's parser and through SwiftNIO's `HTTPRequestDecoder` (llhttp): the
/// independent reference the worker's parser is held to, by the tests and by the fuzzer.
public enum HTTPDifferential {
    /// What a parser made of a byte stream: the requests it gave, and whether it then refused the rest.
    public struct Reading: Equatable, CustomStringConvertible {
        public struct Message: Equatable {
            public var method: String
            public var uri: String
            public var version: String
            public var headers: [String]
            public var body: [UInt8]
        }

        public var messages: [Message] = []
        /// A message was started (its head given) but not finished.
        public var partial: Message?
        public var refused = false
        /// The last message ended the connection (`Connection: close`, HTTP/1.0): what follows is not read.
        public var closed = false
        /// Unfinished: the parser waits for the rest of a head or body.
        public var waiting = false

        public var description: String {
            let shown = messages.map { "\($0.method) \($0.uri) \($0.version) \($0.headers) body \($0.body.count) bytes" }
            return "\(shown)\(partial.map { " partial \($0.method) \($0.uri) \($0.headers) \($0.body.count) bytes" } ?? "")\(refused ? " refused" : "")"
        }
    }

    static func message(_ head: HTTPRequestHead) -> Reading.Message {
        Reading.Message(method: head.method.rawValue, uri: head.uri, version: "\(head.version.major).\(head.version.minor)",
                        // RFC 9110 §5.5: whitespace around a field value is not part of it (llhttp keeps the trailing one).
                        headers: head.headers.map { "\($0.name): \(trimmed($0.value))" }, body: [])
    }

    static func trimmed(_ value: String) -> String {
        var bytes = Substring(value).utf8[...]
        while let last = bytes.last, last == UInt8(ascii: " ") || last == UInt8(ascii: "\t") { bytes = bytes.dropLast() }
        return String(Substring(bytes))
    }

    /// The worker's parser, fed in pieces split at `splits`.
    public static func ours(_ bytes: [UInt8], splits: [Int] = []) -> Reading {
        var reading = Reading()
        var parser = RequestParser()
        var keepAlive = true
        var buffer: [UInt8] = []
        var index = 0
        var cuts = splits.filter { $0 > 0 && $0 < bytes.count }.sorted() + [bytes.count]
        var fed = 0
        while !cuts.isEmpty {
            let cut = cuts.removeFirst()
            guard cut > fed else { continue }
            buffer += bytes[fed..<cut]
            fed = cut
            parsing: while true {
                switch parser.next(buffer, from: &index) {
                case .head(let head):
                    reading.partial = message(head)
                    keepAlive = head.isKeepAlive
                case .body(let piece): reading.partial?.body += piece
                case .end:
                    if let done = reading.partial { reading.messages.append(done) }
                    reading.partial = nil
                    if !keepAlive {
                        reading.closed = true
                        return reading
                    }
                case .needMore:
                    reading.waiting = index < buffer.count || !parser.isIdle
                    break parsing
                case .invalid:
                    reading.refused = true
                    return reading
                }
            }
        }
        return reading
    }

    /// SwiftNIO's decoder on an `EmbeddedChannel`, fed in the same pieces.
    public static func nio(_ bytes: [UInt8], splits: [Int] = []) -> Reading {
        var reading = Reading()
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes)))
        defer { _ = try? channel.finish() }
        var cuts = splits.filter { $0 > 0 && $0 < bytes.count }.sorted() + [bytes.count]
        var fed = 0
        while !cuts.isEmpty {
            let cut = cuts.removeFirst()
            guard cut > fed else { continue }
            do {
                try channel.writeInbound(channel.allocator.buffer(bytes: bytes[fed..<cut]))
            } catch {
                reading.refused = true
                collect(channel, into: &reading)
                return reading
            }
            fed = cut
            collect(channel, into: &reading)
        }
        return reading
    }

    private static func collect(_ channel: EmbeddedChannel, into reading: inout Reading) {
        while let part = try? channel.readInbound(as: HTTPServerRequestPart.self) {
            switch part {
            case .head(let head): reading.partial = message(head)
            case .body(let buffer): reading.partial?.body += buffer.readableBytesView
            case .end:
                if let done = reading.partial { reading.messages.append(done) }
                reading.partial = nil
            }
        }
    }

    /// Whether the two readings agree: the same complete requests; both refuse or neither does. A partial
    /// message is compared only by its head (NIO may hold back body bytes a chunk at a time).
    ///
    /// The two may refuse at different bytes: llhttp refuses a bad request line at its first impossible
    /// byte, ours may wait for the line's end. So when one refused and the other still waits, the waiting
    /// one is given the end of a head (`\r\n\r\n`) and must refuse then. After a message that ends the
    /// connection, llhttp refuses any further byte and ours stops reading: the same outcome.
    public static func agree(_ bytes: [UInt8], splits: [Int] = []) -> (Bool, Reading, Reading) {
        let ours = self.ours(bytes, splits: splits)
        let nio = self.nio(bytes, splits: splits)
        guard ours.messages == nio.messages else { return (false, ours, nio) }
        if ours.refused == nio.refused {
            if ours.refused { return (true, ours, nio) }
            let same = ours.partial.map { [$0.method, $0.uri] } == nio.partial.map { [$0.method, $0.uri] }
            return (same, ours, nio)
        }
        if ours.closed, nio.refused { return (true, ours, nio) }
        // The waiting one gets the end of a line and of a head or trailer section: it must refuse then,
        // having given no other request.
        let finished = bytes + Array("\r\n\r\n".utf8)
        if nio.refused {
            let later = self.ours(finished, splits: splits + [bytes.count])
            return (later.refused && later.messages == ours.messages, ours, nio)
        }
        let later = self.nio(finished, splits: splits + [bytes.count])
        return (later.refused && later.messages == nio.messages, ours, nio)
    }
}
