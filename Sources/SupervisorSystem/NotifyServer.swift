import SystemdProtocol
import Arbiter
import CShims
import Glibc

/// The supervisor's end of sd_notify: an AF_UNIX datagram socket in a private 0700 directory.
///
/// The directory, not the socket's mode, is what keeps other users out (connect-less datagram sockets
/// ignore the file mode on some kernels' paths). The sender of every datagram comes from `SCM_CREDENTIALS`,
/// filled in by the kernel, so a worker cannot claim to be another and a stranger is recognised as one.
package final class NotifyServer {
    package let fd: Int32
    package let socketPath: String
    private let directory: String

    /// Creates the socket under `$RUNTIME_DIRECTORY`, `$XDG_RUNTIME_DIR` or `/tmp`, in a fresh `mkdtemp` folder.
    package init(environment: [String: String]) throws(SystemError) {
        directory = try RuntimeDirectory.makePrivate("supervisor", environment: environment)
        socketPath = directory + "/notify"

        let type = Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue)
        fd = Glibc.socket(AF_UNIX, type, 0)
        guard fd >= 0 else {
            let error = SystemError("notify socket")
            rmdir(directory)
            throw error
        }
        let path = socketPath
        guard path.utf8.count <= maximumUnixSocketPath else {
            Glibc.close(fd)
            rmdir(directory)
            throw SystemError("notify socket path \(path)", errno: ENAMETOOLONG)
        }
        let bound = withUnixSocketAddress(path) { Glibc.bind(fd, $0, $1) }
        guard bound == 0, prefork_enable_passcred(fd) == 0 else {
            let error = SystemError("bind \(path)")
            Glibc.close(fd)
            rmdir(directory)
            throw error
        }
        // Bursts of WATCHDOG=1 from many workers must not be dropped while the loop is busy spawning.
        var buffer: Int32 = 1 << 20
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buffer, socklen_t(MemoryLayout<Int32>.size))
    }

    /// Reads every queued datagram; never blocks. A datagram without credentials has sender 0.
    package func drain(_ body: (_ sender: Int32, _ message: NotifyMessage, _ truncated: Bool) -> Void) {
        // sd_notify messages are small; 4 KiB holds any sane one, and a longer one is flagged as truncated.
        var buffer = [CChar](repeating: 0, count: 4096)
        while true {
            var sender: pid_t = 0
            var truncated: Int32 = 0
            let count = buffer.withUnsafeMutableBufferPointer {
                prefork_recv_with_credentials(fd, $0.baseAddress, $0.count, &sender, &truncated)
            }
            if count < 0 {
                if errno == EINTR { continue }
                return  // EAGAIN: queue empty
            }
            let message = buffer.withUnsafeBufferPointer { pointer in
                NotifyMessage(parsing: UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(pointer)[..<count]))
            }
            body(sender, message, truncated != 0)
        }
    }

    /// Removes the socket and its directory.
    package func close() {
        Glibc.close(fd)
        unlink(socketPath)
        rmdir(directory)
    }
}
