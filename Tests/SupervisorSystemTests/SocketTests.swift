import Arbiter
import Glibc
import SystemdProtocol
@testable import SupervisorSystem
import Testing

@Suite("Sockets and the spawn environment, against the real kernel")
struct SocketTests {
    @Test func malformedListenVariablesAreConfigurationErrors() {
        #expect(throws: ConfigurationError("LISTEN_PID: not a pid: 'me'")) {
            try ListenSocket.inherited(environment: ["LISTEN_PID": "me", "LISTEN_FDS": "1"])
        }
        #expect(throws: ConfigurationError("LISTEN_FDS: not a descriptor count: 'x'")) {
            try ListenSocket.inherited(environment: ["LISTEN_PID": "\(getpid())", "LISTEN_FDS": "x"])
        }
    }

    @Test func bindsAnEphemeralPortWithTheBacklogAskedFor() throws {
        let socket = try ListenSocket.bind(.tcp(host: "127.0.0.1", port: 0), backlog: 77)
        defer { close(socket.fd) }
        #expect(socket.description.hasPrefix("127.0.0.1:"))
        #expect(socket.description != "127.0.0.1:0")
        #expect(fcntl(socket.fd, F_GETFD) & FD_CLOEXEC != 0)
    }

    /// What a stop does to the listener, measured by connecting to it: with the socket filter no handshake
    /// completes; with the fallback (no CAP_NET_ADMIN: the non-root run) exactly one connection fits the queue.
    /// Either way the mechanism found at start is the one a stop uses.
    @Test func aStoppedListenerQueuesNothingWithTheFilterAndOneConnectionWithout() throws {
        let socket = try ListenSocket.bind(.tcp(host: "127.0.0.1", port: 0), backlog: 128)
        defer { close(socket.fd) }
        let port = UInt16(socket.description.split(separator: ":").last!)!
        let expected = socket.stopMechanism
        #expect(expected == (geteuid() == 0 ? .filter : expected), "root may always attach a filter")
        #expect(socket.refuseNewConnections() == expected)
        let clients = (0..<3).map { _ in startConnecting(port: port) }
        defer { clients.forEach { close($0) } }
        usleep(300_000)
        #expect(queuedConnections(socket.fd) == (expected == .filter ? 0 : 1))
    }

    @Test func refusesAPortInUseWithTheAddressInTheMessage() throws {
        let first = try ListenSocket.bind(.tcp(host: "127.0.0.1", port: 0), backlog: 8)
        defer { close(first.fd) }
        let port = UInt16(first.description.split(separator: ":").last!)!
        #expect {
            try ListenSocket.bind(.tcp(host: "127.0.0.1", port: port), backlog: 8)
        } throws: { error in
            "\(error)" == "bind 127.0.0.1:\(port): Address already in use"
        }
    }

    @Test func unixSocketReplacesAStaleFileButNotALiveOne() throws {
        let path = "/tmp/prefork-test-\(getpid()).sock"
        defer { unlink(path) }
        let live = try ListenSocket.bind(.unix(path: path), backlog: 8)
        #expect(throws: SystemError.self) { try ListenSocket.bind(.unix(path: path), backlog: 8) }
        close(live.fd)  // the file stays behind, as after a crash
        // A test running beside this one may fork between our bind and close: its child holds the listener until
        // it execs (CLOEXEC), and the socket answers meanwhile. Binding then is refused, rightly; wait it out.
        var again: ListenSocket?
        for _ in 0..<100 where again == nil {
            again = try? ListenSocket.bind(.unix(path: path), backlog: 8)
            if again == nil { usleep(10_000) }
        }
        let bound = try #require(again)
        close(bound.fd)
        #expect(bound.description == "unix:\(path)")
    }

    @Test func unixSocketModeIsSetBeforeListening() throws {
        let path = "/tmp/prefork-mode-test-\(getpid()).sock"
        defer { unlink(path) }
        let socket = try ListenSocket.bind(.unix(path: path), backlog: 8, mode: 0o640)
        defer { close(socket.fd) }
        var info = stat()
        #expect(stat(path, &info) == 0 && info.st_mode & 0o777 == 0o640)
    }

    @Test func notifySocketLivesInAPrivateDirectoryAndNamesTheSender() throws {
        let server = try NotifyServer(environment: ["XDG_RUNTIME_DIR": "/tmp"])
        defer { server.close() }
        var info = stat()
        let directory = String(server.socketPath.dropLast("/notify".count))
        #expect(stat(directory, &info) == 0)
        #expect(info.st_mode & 0o777 == 0o700)

        // What a worker's sd_notify does, through the supervisor's own sender.
        #expect(SystemdProtocol.notify("READY=1\nSTATUS=hello", socket: server.socketPath))
        var received: [(Int32, NotifyMessage)] = []
        server.drain { sender, message, _ in received.append((sender, message)) }
        #expect(received.count == 1)
        #expect(received.first?.0 == getpid())
        #expect(received.first?.1.ready == true)
        #expect(received.first?.1.status == "hello")
    }

    @Test func workersGetSocketActivationVariablesAndNotTheSupervisorsOwn() {
        let spawner = Spawner(
            command: .init(path: "/bin/true", arguments: ["true"]),
            listenFD: 5, backlog: 2048, notifySocket: "/tmp/s/notify", watchdogMicroseconds: 30_000_000,
            environment: ["PATH=/bin", "LISTEN_FDS=2", "LISTEN_PID=1", "NOTIFY_SOCKET=/run/systemd/notify",
                          "WATCHDOG_USEC=1", "HOME=/root"]
        )
        #expect(spawner.baseEnvironment == ["PATH=/bin", "HOME=/root"])
    }

    @Test func spawnedWorkerSeesItsOwnPidInListenPid() throws {
        let pipe = UnsafeMutablePointer<Int32>.allocate(capacity: 2)
        defer { pipe.deallocate() }
        #expect(Glibc.pipe(pipe) == 0)
        let socket = try ListenSocket.bind(.tcp(host: "127.0.0.1", port: 0), backlog: 8)
        defer { close(socket.fd) }
        let spawner = Spawner(
            command: .init(path: "/bin/sh", arguments: ["sh", "-c", "echo $$ $LISTEN_PID $LISTEN_FDS $LISTEN_FDNAMES $WATCHDOG_PID; ls /proc/self/fd | sort -n | tr '\\n' ' '"]),
            listenFD: socket.fd, backlog: 8, notifySocket: "/tmp/none", watchdogMicroseconds: 1_000_000,
            environment: ["PATH=/bin:/usr/bin"]
        )
        // The child's stdout must be our pipe: swap it in around the spawn.
        let savedStdout = dup(1)
        dup2(pipe[1], 1)
        let pid = try spawner.spawn(slot: 0, generation: 1)
        dup2(savedStdout, 1)
        close(savedStdout)
        close(pipe[1])
        var output = [UInt8](repeating: 0, count: 512)
        var total = 0
        while true {
            let count = read(pipe[0], &output[total], output.count - total)
            if count <= 0 { break }
            total += count
        }
        close(pipe[0])
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        let lines = String(decoding: output[..<total], as: UTF8.self).split(separator: "\n")
        #expect(lines.first == "\(pid) \(pid) 1 http \(pid)")
        // stdio, the socket as fd 3, and the descriptor ls itself opens to list the folder; nothing else.
        #expect(lines.last?.split(separator: " ").map(String.init).prefix(4) == ["0", "1", "2", "3"])
        #expect(lines.last?.split(separator: " ").count == 5)
    }

    @Test func spawningAMissingExecutableReportsTheErrno() {
        let spawner = Spawner(command: .init(path: "/nonexistent/worker", arguments: ["worker"]), listenFD: -1,
                              backlog: 8, notifySocket: nil, watchdogMicroseconds: nil, environment: [])
        #expect {
            try spawner.spawn(slot: 0, generation: 1)
        } throws: { error in
            "\(error)" == "spawn /nonexistent/worker: No such file or directory"
        }
    }
}

/// A non-blocking connect to 127.0.0.1:`port`, left in flight.
private func startConnecting(port: UInt16) -> Int32 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = port.bigEndian
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    _ = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    return fd
}

/// How many connections wait in a listener's accept queue: for a listening socket, the kernel reports it as
/// `tcpi_unacked` (and its limit as `tcpi_sacked`).
private func queuedConnections(_ listener: Int32) -> Int {
    var info = tcp_info()
    var length = socklen_t(MemoryLayout<tcp_info>.size)
    guard getsockopt(listener, Int32(IPPROTO_TCP), TCP_INFO, &info, &length) == 0 else { return -1 }
    return Int(info.tcpi_unacked)
}

@Suite("The runtime directory rule")
struct RuntimeDirectoryTests {
    /// systemd's `RuntimeDirectory=a b` sets both paths, colon-separated: the first is ours, in all three places.
    @Test func theFirstOfSystemdsPathsIsOurs() throws {
        #expect(RuntimeDirectory.configured(["RUNTIME_DIRECTORY": "/tmp:/nonexistent"])?.path == "/tmp")
        #expect(RuntimeDirectory.configured(["XDG_RUNTIME_DIR": "/run/user/5"])?.path == "/run/user/5")
        #expect(RuntimeDirectory.configured(["RUNTIME_DIRECTORY": ""]) == nil)
        let notify = try NotifyServer(environment: ["RUNTIME_DIRECTORY": "/tmp:/nonexistent"])
        defer { notify.close() }
        #expect(notify.socketPath.hasPrefix("/tmp/supervisor."))
        let folder = try RuntimeDirectory.makePrivate("test-runtime", environment: ["RUNTIME_DIRECTORY": "/nonexistent:/tmp"])
        defer { rmdir(folder) }
        #expect(folder.hasPrefix("/tmp/test-runtime."))
    }

    /// `status` counts a worker's open database connections from its socket descriptors (borrowed with
    /// `pidfd_getfd`) and their peers: this process's own TCP connection to a listener is one to its port and none
    /// to another.
    @Test func openConnectionsAreCountedFromProc() throws {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(listener) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, length) } }
        listen(listener, 4)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) } }
        let port = Int(UInt16(bigEndian: address.sin_port))
        func open(_ ports: Set<Int>) -> Int? {
            ProcessTree.openConnections(ofTrees: [(getpid(), [])], ports: ports, in: ProcessTree.Snapshot())[getpid()]
        }
        let before = open([port])
        let client = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(client) }
        let connected = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(client, $0, length) } }
        try #require(connected == 0)
        let after = open([port])
        #expect(after.map { $0 - (before ?? 0) } == 1)
        #expect(open([port == 1 ? 2 : 1]) == 0)
        #expect(open([]) == nil)
    }
}
