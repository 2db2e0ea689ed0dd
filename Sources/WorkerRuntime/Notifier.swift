import CSystemd
import Glibc
import NIOCore

/// The worker's end of sd_notify: tells its manager it is ready, alive, draining. Works the same under our
/// supervisor and under systemd; a no-op when `NOTIFY_SOCKET` is unset.
public struct Notifier: Sendable {
    /// Half of `WATCHDOG_USEC`, as sd_watchdog_enabled(3) recommends, or nil when no heartbeat is wanted.
    public let heartbeatInterval: TimeAmount?

    public init() {
        var microseconds: UInt64 = 0
        if sd_watchdog_enabled(0, &microseconds) > 0, microseconds > 0 {
            heartbeatInterval = .microseconds(Int64(microseconds / 2))
        } else {
            heartbeatInterval = nil
        }
    }

    public func ready(status: String? = nil) { send("READY=1" + (status.map { "\nSTATUS=\($0)" } ?? "")) }
    public func stopping(status: String? = nil) { send("STOPPING=1" + (status.map { "\nSTATUS=\($0)" } ?? "")) }
    public func status(_ text: String) { send("STATUS=\(text)") }
    public func heartbeat() { send("WATCHDOG=1") }

    /// Sends without ever blocking the caller for long. libsystemd's `sd_notify` blocks while the manager's
    /// datagram queue is full (10 datagrams, `net.unix.max_dgram_qlen`, shared by every worker), which froze
    /// every worker's event loop, and so its requests, while the supervisor was stopped. A heartbeat that does
    /// not fit is dropped (the next follows, and the supervisor forgives its own stalls); other messages are
    /// retried for up to two seconds, or `attempts` times 10 ms. Returns whether the datagram went out (true
    /// when there is no manager to tell).
    @discardableResult
    public func send(_ message: String, attempts: Int? = nil) -> Bool {
        guard let name = getenv("NOTIFY_SOCKET").map({ String(cString: $0) }), !name.isEmpty,
              name.hasPrefix("/") || name.hasPrefix("@") else { return true }
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let path = Array(name.utf8)
        guard path.count < MemoryLayout.size(ofValue: address.sun_path) else { return false }
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            buffer.copyBytes(from: path)
            if path.first == UInt8(ascii: "@") { buffer[0] = 0 }
        }
        let length = socklen_t(MemoryLayout.offset(of: \sockaddr_un.sun_path)! + path.count + (path.first == UInt8(ascii: "@") ? 0 : 1))
        let bytes = Array(message.utf8)
        let attempts = attempts ?? (message == "WATCHDOG=1" ? 1 : 200)
        for attempt in 0..<max(1, attempts) {
            let sent = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(fd, bytes, bytes.count, Int32(MSG_NOSIGNAL), $0, length)
                }
            }
            if sent >= 0 { return true }
            if errno != EAGAIN && errno != EINTR { return false }
            if attempt + 1 < attempts { usleep(10_000) }
        }
        return false
    }

    /// Sends `WATCHDOG=1` from `eventLoop` itself, so a loop blocked by a stuck handler stops the heartbeat
    /// and the supervisor notices; a timer thread of its own would keep beating for a dead loop.
    @discardableResult
    public func startHeartbeat(on eventLoop: any EventLoop) -> RepeatedTask? {
        guard let interval = heartbeatInterval else { return nil }
        return eventLoop.scheduleRepeatedTask(initialDelay: .zero, delay: interval) { _ in
            self.heartbeat()
        }
    }
}
