import IntegrationSupport
import Foundation

/// The datagram sockets of the sd_notify protocol, from the other side: a manager's socket to receive on,
/// or a stranger sending to the supervisor's.
enum UnixDatagram {
    /// A datagram socket bound to `path`; the caller closes it.
    static func bound(_ path: String) throws -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        let result = withAddress(path) { bind(fd, $0, $1) }
        guard fd >= 0, result == 0 else { throw TestFailure("bind \(path): \(String(cString: strerror(errno)))") }
        return fd
    }

    /// Sends one datagram to `path` from a fresh socket; returns the bytes sent, or -1.
    @discardableResult
    static func send(_ message: String, to path: String) -> Int {
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(fd) }
        let bytes = Array(message.utf8)
        return withAddress(path) { sendto(fd, bytes, bytes.count, 0, $0, $1) }
    }

    private static func withAddress<T>(_ path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) -> T) -> T {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            path.utf8CString.withUnsafeBytes { buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0.prefix(buffer.count))) }
        }
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
    }
}
