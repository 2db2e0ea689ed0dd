import Glibc

/// The TCP port of a socket's own address (`getsockname`) or of its peer (`getpeername`): nil for a socket that is
/// not IPv4 or IPv6, or not connected. Shared by the worker (its port for `--bind host:0`) and the supervisor
/// (the peers a worker holds open).
public enum SocketPort {
    public static func local(_ fd: Int32) -> Int? { port(fd, getsockname) }
    public static func peer(_ fd: Int32) -> Int? { port(fd, getpeername) }

    private static func port(_ fd: Int32, _ call: (Int32, UnsafeMutablePointer<sockaddr>, UnsafeMutablePointer<socklen_t>) -> Int32) -> Int? {
        var address = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let found = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { call(fd, $0, &length) }
        }
        guard found == 0 else { return nil }
        switch Int32(address.ss_family) {
        case AF_INET:
            return withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin_port)) }
            }
        case AF_INET6:
            return withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin6_port)) }
            }
        default:
            return nil
        }
    }
}
