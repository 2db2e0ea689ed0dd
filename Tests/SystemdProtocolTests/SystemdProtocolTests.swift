import Glibc
import SystemdProtocol
import Testing

@Suite("sd_notify and sd_listen_fds, written out", .serialized)
struct SystemdProtocolTests {
    /// A datagram socket bound to `name` (a path, or an abstract name starting with '@'); returns its fd.
    func listen(_ name: String) -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        let bound = withUnixSocketAddress(name) { bind(fd, $0, $1) }
        #expect(bound == 0)
        return fd
    }

    func receive(_ fd: Int32) -> String {
        var buffer = [UInt8](repeating: 0, count: 1024)
        let count = recv(fd, &buffer, buffer.count, Int32(MSG_DONTWAIT))
        return count > 0 ? String(decoding: buffer[..<count], as: UTF8.self) : ""
    }

    @Test func notifiesAPathSocket() {
        let path = "/tmp/prefork-notify-\(getpid())"
        unlink(path)
        defer { unlink(path) }
        let fd = listen(path)
        defer { close(fd) }
        #expect(SystemdProtocol.notify("READY=1\nSTATUS=up", socket: path))
        #expect(receive(fd) == "READY=1\nSTATUS=up")
    }

    @Test func notifiesAnAbstractSocket() {
        let name = "@prefork-notify-\(getpid())"
        let fd = listen(name)
        defer { close(fd) }
        #expect(SystemdProtocol.notify("WATCHDOG=1", socket: name))
        #expect(receive(fd) == "WATCHDOG=1")
    }

    @Test func aMissingSocketIsNotAnError() {
        #expect(!SystemdProtocol.notify("READY=1", socket: "/nonexistent/notify"))
        #expect(!SystemdProtocol.notify("READY=1", socket: ""))
    }

    @Test func listenFDsForAnotherProcessAreNotOurs() throws {
        #expect(try SystemdProtocol.takeListenFDs(environment: ["LISTEN_PID": "1", "LISTEN_FDS": "1"]) == 0)
        #expect(try SystemdProtocol.takeListenFDs(environment: [:]) == 0)
    }

    @Test func watchdogIsOursOnlyWhenThePidMatches() {
        #expect(SystemdProtocol.watchdogMicroseconds(environment: ["WATCHDOG_USEC": "2000000"]) == 2_000_000)
        #expect(SystemdProtocol.watchdogMicroseconds(environment: ["WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "1"]) == nil)
        #expect(SystemdProtocol.watchdogMicroseconds(environment: ["WATCHDOG_USEC": "0"]) == nil)
    }

    @Test func aListeningSocketIsRecognised() {
        let listening = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(listening) }
        #expect(Glibc.listen(listening, 8) == 0, "listen on an unbound socket binds an ephemeral port")
        #expect(SystemdProtocol.isListeningStreamSocket(listening))
        let unlistened = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(unlistened) }
        #expect(!SystemdProtocol.isListeningStreamSocket(unlistened))
        let datagram = Glibc.socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(datagram) }
        #expect(!SystemdProtocol.isListeningStreamSocket(datagram))
    }
}
