import Glibc

/// A `sockaddr_un` for `name`, handed to a body that takes the generic `sockaddr` pointer the calls want.
///
/// `name` is a path, or an abstract name written with a leading `@` (sd_notify's convention), which the kernel
/// wants as a leading NUL byte and a length that counts exactly the name's bytes. The caller checks that the
/// name fits (`maximumUnixSocketPath`).
public func withUnixSocketAddress<T>(_ name: String, _ body: (UnsafePointer<sockaddr>, socklen_t) -> T) -> T {
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    let bytes = Array(name.utf8.prefix(maximumUnixSocketPath))
    let abstract = bytes.first == UInt8(ascii: "@")
    withUnsafeMutableBytes(of: &address.sun_path) { buffer in
        buffer.copyBytes(from: bytes)
        if abstract { buffer[0] = 0 }
    }
    let length = MemoryLayout.offset(of: \sockaddr_un.sun_path)! + bytes.count + (abstract ? 0 : 1)
    return withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(length)) }
    }
}

/// The longest path `sockaddr_un` holds, without the terminating NUL.
public let maximumUnixSocketPath = MemoryLayout.size(ofValue: sockaddr_un().sun_path) - 1
