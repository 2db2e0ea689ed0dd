import Glibc
import SupervisorControl
import Testing

/// The control socket's words are written by the commands and read by the supervisor through one type.
@Suite("Control requests")
struct ControlRequestTests {
    @Test(arguments: [ControlRequest.ping, .status(json: false), .status(json: true), .scale(workers: 3), .reload, .lastReload, .stop])
    func everyRequestReadsBackAsItself(request: ControlRequest) {
        #expect(ControlRequest.parse(request.line) == .success(request))
    }

    @Test(arguments: ["stop now", "reload please", "status yaml", "status json x", "scale", "scale many", "scale 1 2", "scale +2", "scale 0x2", "", "pause"])
    func wrongWordsAreUsageErrors(line: String) {
        guard case .failure(let usage) = ControlRequest.parse(line) else {
            Issue.record("\(line) was taken")
            return
        }
        #expect(usage.message.hasPrefix("usage:") || usage.message.hasPrefix("unknown command"))
    }

    /// systemd's `RuntimeDirectory=a b` sets both paths, colon-separated: the control socket goes in the first.
    @Test func theControlSocketGoesInTheFirstOfSystemdsPaths() {
        #expect(ControlSocket.defaultPath(environment: ["RUNTIME_DIRECTORY": "/run/a:/run/b"]) == "/run/a/supervisor.sock")
    }
}

/// Root in a container asks /run/prefork while the image's supervisor (uid 10001) listens in /tmp/prefork-10001:
/// the message for a control command that finds nothing names the sockets that exist.
@Suite("Other users' control sockets")
struct OtherControlSocketTests {
    @Test func socketsInOtherUsersFoldersAreNamedAndOtherFilesAreNot() throws {
        let uid = UInt32.random(in: 3_000_000_000 ... 4_000_000_000)
        let folder = "/tmp/prefork-\(uid)", decoy = "/tmp/prefork-\(uid + 1)"
        defer {
            unlink("\(folder)/supervisor.sock"); rmdir(folder)
            unlink("\(decoy)/supervisor.sock"); rmdir(decoy)
        }
        #expect(mkdir(folder, 0o700) == 0 && mkdir(decoy, 0o700) == 0)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let path = "\(folder)/supervisor.sock"
        withUnsafeMutableBytes(of: &address.sun_path) { bytes in
            for (index, byte) in path.utf8.enumerated() { bytes[index] = byte }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        #expect(bound == 0)
        let file = creat("\(decoy)/supervisor.sock", 0o600)
        #expect(file >= 0)
        close(file)
        let found = ControlSocket.otherDefaults(than: "/nowhere/supervisor.sock")
        #expect(found.contains(path), "\(found)")
        #expect(!found.contains("\(decoy)/supervisor.sock"), "\(found)")
        #expect(!ControlSocket.otherDefaults(than: path).contains(path))
    }
}
