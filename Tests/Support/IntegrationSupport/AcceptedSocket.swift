import Foundation

/// The server's end of a test connection, read from outside the server process.
///
/// A server that sets the wrong option level can fail in two ways the client never sees: as root the option
/// lands on another name (`SOL_SOCKET` option 1 is `SO_DEBUG`, not `TCP_NODELAY`) and is silently set, and
/// Nagle stays on. So the test copies the accepted descriptor out of the worker with `pidfd_getfd(2)` (the
/// same permission as ptrace: our own descendants) and asks the kernel what is really set on it.
public enum AcceptedSocket {
    public struct Options: Equatable, Sendable {
        public var noDelay: Bool
        public var debug: Bool

        public init(noDelay: Bool, debug: Bool) {
            self.noDelay = noDelay
            self.debug = debug
        }
    }

    /// The options of the socket in process `pid` whose peer is 127.0.0.1:`clientPort`.
    public static func options(pid: Int32, clientPort: UInt16) throws -> Options {
        let pidfd = try pidfdOpen(pid)
        defer { close(pidfd) }
        let descriptors = try FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").compactMap { Int32($0) }
        for descriptor in descriptors {
            guard let copy = try? pidfdGetFD(pidfd, descriptor) else { continue }
            defer { close(copy) }
            guard peerPort(copy) == clientPort else { continue }
            return Options(noDelay: try flag(copy, level: Int32(IPPROTO_TCP), name: TCP_NODELAY),
                           debug: try flag(copy, level: SOL_SOCKET, name: SO_DEBUG))
        }
        throw TestFailure("process \(pid) holds no socket connected to port \(clientPort)")
    }

    /// The local port of a connected socket: the port the server sees as its peer's.
    public static func localPort(_ fd: Int32) -> UInt16? {
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let status = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return status == 0 ? UInt16(bigEndian: address.sin_port) : nil
    }

    private static func peerPort(_ fd: Int32) -> UInt16? {
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let status = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(fd, $0, &length) }
        }
        guard status == 0, address.sin_family == sa_family_t(AF_INET) else { return nil }
        return UInt16(bigEndian: address.sin_port)
    }

    private static func flag(_ fd: Int32, level: Int32, name: Int32) throws -> Bool {
        var value: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, level, name, &value, &length) == 0 else {
            throw TestFailure("getsockopt(\(level), \(name)): \(String(cString: strerror(errno)))")
        }
        return value != 0
    }

    /// glibc 2.36's `pidfd_open` and `pidfd_getfd` wrappers, looked up at run time: Swift's Glibc module does
    /// not import `<sys/pidfd.h>`, and `syscall(2)` is variadic, which Swift cannot call.
    private static func pidfdOpen(_ pid: Int32) throws -> Int32 {
        typealias Function = @convention(c) (Int32, UInt32) -> Int32
        return try checked("pidfd_open") { unsafeBitCast($0, to: Function.self)(pid, 0) }
    }

    private static func pidfdGetFD(_ pidfd: Int32, _ descriptor: Int32) throws -> Int32 {
        typealias Function = @convention(c) (Int32, Int32, UInt32) -> Int32
        return try checked("pidfd_getfd") { unsafeBitCast($0, to: Function.self)(pidfd, descriptor, 0) }
    }

    private static func checked(_ name: String, _ body: (UnsafeMutableRawPointer) -> Int32) throws -> Int32 {
        guard let symbol = dlsym(nil, name) else { throw TestFailure("\(name) is missing from this libc") }
        let result = body(symbol)
        guard result >= 0 else { throw TestFailure("\(name): \(String(cString: strerror(errno)))") }
        return result
    }
}
