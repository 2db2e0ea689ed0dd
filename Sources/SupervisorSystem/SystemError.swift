import Glibc

/// A failed system call, with errno turned into words; the supervisor exits 71 (EX_OSERR) on one at start.
package struct SystemError: Error, CustomStringConvertible, Sendable {
    package var call: String
    package var errno: Int32

    package init(_ call: String, errno: Int32 = Glibc.errno) {
        self.call = call
        self.errno = errno
    }

    /// errno 0: the call said everything itself (the resolver's own message, say), with no "Success" appended.
    package var description: String { errno == 0 ? call : "\(call): \(String(cString: strerror(errno)))" }
}

/// Retries a call interrupted by a signal; the supervisor's signals are blocked, but its children's are not.
@inline(__always)
func retryingOnInterrupt<T: BinaryInteger>(_ call: () -> T) -> T {
    while true {
        let result = call()
        if result >= 0 || errno != EINTR { return result }
    }
}
