import Foundation
import Testing
import WorkerRuntime

/// `MAX_REQUESTS` asks for the recycle on the request path, where nothing may wait on the supervisor: libsystemd's
/// `sd_notify` blocked there while the supervisor's datagram queue was full, and the request with it.
@Suite("The recycle request on the request path", .serialized)
struct RequestLimitTests {
    @Test(.timeLimit(.minutes(1)))
    func aFullNotifyQueueLeavesTheRequestToTheNextRequestAndNeverWaits() throws {
        let path = NSTemporaryDirectory() + "prefork-notify-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sock"
        let receiver = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(receiver); unlink(path) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8)) }
        let length = socklen_t(MemoryLayout<sockaddr_un>.size)
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(receiver, $0, length) } }
        #expect(bound == 0)
        // Fill the receiver's queue, as a stopped supervisor's fills up.
        let sender = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        defer { close(sender) }
        var queued = 0
        while queued < 10_000 {
            let sent = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(sender, "filler", 6, 0, $0, length) }
            }
            if sent < 0 { break }
            queued += 1
        }
        #expect(queued > 0 && queued < 10_000, "the queue never filled")
        setenv("NOTIFY_SOCKET", path, 1)
        defer { unsetenv("NOTIFY_SOCKET") }
        let limit = try #require(RequestLimit(maximum: 2, jitter: 0))
        limit.served()
        limit.served()  // the limit: the queue is full, so it is not sent, and nothing waits
        func drain() -> [String] {
            var messages: [String] = []
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let count = recv(receiver, &buffer, buffer.count, Int32(MSG_DONTWAIT))
                if count <= 0 { return messages }
                messages.append(String(decoding: buffer[..<count], as: UTF8.self))
            }
        }
        #expect(drain().allSatisfy { $0 == "filler" })
        limit.served()  // room again: this request asks
        let asked = drain()
        #expect(asked.count == 1 && asked[0].hasPrefix("X_PREFORK_RECYCLE=max-requests\n"), "\(asked)")
        limit.served()
        #expect(drain().isEmpty, "asked once")
    }
}
