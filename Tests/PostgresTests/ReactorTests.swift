import ConnectionPool
import Glibc
import Testing

/// The reactor keeps a connection's socket in its epoll set from one reply to the next (no `epoll_ctl` per round
/// trip). These are the cases that a persistent, level-triggered registration can get wrong: a descriptor number
/// reused by a new connection, input that nobody awaits, a reply in pieces, a deadline.
@Suite struct ReactorTests {
    /// A connected pair of stream sockets: `server` plays Redis or Postgres, `client` the pool's connection.
    final class Pair: @unchecked Sendable {
        let client: Int32
        let server: Int32
        init() {
            var fds: [Int32] = [0, 0]
            precondition(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0, &fds) == 0)
            client = fds[0]
            server = fds[1]
        }
        func reply(_ bytes: String) { _ = bytes.utf8CString.withUnsafeBufferPointer { write(server, $0.baseAddress, bytes.utf8.count) } }
        /// What the client can read now, without blocking.
        func drain() -> String {
            var buffer = [UInt8](repeating: 0, count: 256)
            let count = read(client, &buffer, buffer.count)
            return count > 0 ? String(decoding: buffer[..<count], as: UTF8.self) : ""
        }
        func close() {
            Glibc.close(client)
            Glibc.close(server)
        }
    }

    /// Waits for one reply of `length` bytes on the pair's client, read as it arrives, however many pieces.
    /// `calledBack`, when given, gets the instant of the final call: the test's own task may resume much later
    /// when the other suites keep the cooperative threads busy.
    static func awaitReply(_ pair: Pair, _ source: Reactor.Source, length: Int, timeout: Duration? = nil,
                           calledBack: (@Sendable (ContinuousClock.Instant) -> Void)? = nil) async -> String? {
        final class Collected: @unchecked Sendable { var text = "" }
        let collected = Collected()
        return await withCheckedContinuation { continuation in
            Reactor.shared.whenReadable(pair.client, source: source, timeout: timeout) { timedOut in
                if timedOut {
                    calledBack?(ContinuousClock.now)
                    continuation.resume(returning: nil)
                    return true
                }
                collected.text += pair.drain()
                guard collected.text.utf8.count >= length else { return false }
                continuation.resume(returning: collected.text)
                return true
            }
        }
    }

    /// CPU seconds the reactor's thread has used, from /proc.
    static func reactorCPU() -> Double {
        let tasks = (try? listDirectory("/proc/self/task")) ?? []
        for task in tasks {
            guard let name = readText("/proc/self/task/\(task)/comm"), name.hasPrefix("pool-reactor"),
                  let stat = readText("/proc/self/task/\(task)/stat"),
                  let tail = stat.split(separator: ")").last else { continue }
            let fields = tail.split(separator: " ")
            return Double((Int(fields[11]) ?? 0) + (Int(fields[12]) ?? 0)) / Double(sysconf(Int32(_SC_CLK_TCK)))
        }
        return 0
    }

    /// After `body`, the reactor's thread does not spin: over 0.5 s it uses less than half of it in CPU (a spinning
    /// thread uses all of it; the other suites' round trips, on the same reactor, far less).
    static func expectNoSpin(_ body: () -> Void) throws {
        let start = ContinuousClock.now
        let before = reactorCPU()
        body()
        usleep(500_000)
        let spent = reactorCPU() - before
        let elapsed = ContinuousClock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        #expect(spent < seconds / 2, "the reactor spent \(spent) s of CPU in \(seconds) s on a socket nobody reads")
    }

    @Test func manyRepliesOnOneConnection() async {
        let pair = Pair()
        defer { pair.close() }
        let source = Reactor.Source()
        for round in 0..<200 {
            let reply = "reply \(round)"
            async let received = Self.awaitReply(pair, source, length: reply.utf8.count, timeout: .seconds(5))
            pair.reply(reply)
            #expect(await received == reply)
        }
    }

    @Test func aReplyInPieces() async throws {
        let pair = Pair()
        defer { pair.close() }
        async let received = Self.awaitReply(pair, Reactor.Source(), length: 6, timeout: .seconds(5))
        pair.reply("abc")
        try await Task.sleep(for: .milliseconds(50))
        pair.reply("def")
        #expect(await received == "abcdef")
    }

    /// A closed connection's descriptor number, taken by a new connection, is watched for the new one.
    @Test func aReusedDescriptorNumberIsWatchedForTheNewConnection() async {
        var reused = 0
        for _ in 0..<20 {
            let old = Pair()
            async let first = Self.awaitReply(old, Reactor.Source(), length: 3, timeout: .seconds(5))
            old.reply("old")
            #expect(await first == "old")
            let number = old.client
            old.close()
            // The lowest free numbers: the old pair's, unless another test opened a descriptor in between.
            let new = Pair()
            defer { new.close() }
            if new.client == number { reused += 1 }
            async let second = Self.awaitReply(new, Reactor.Source(), length: 3, timeout: .seconds(5))
            new.reply("new")
            #expect(await second == "new", "the reply on a reused descriptor number was never seen")
        }
        #expect(reused > 0, "no new connection got an old one's number: the case was not tried")
    }

    /// Input that no reply awaits (a server closing an idle connection) must not spin the loop, and is seen by
    /// the next registration.
    @Test func unaskedInputNeitherSpinsNorIsLost() async throws {
        let pair = Pair()
        defer { pair.close() }
        let source = Reactor.Source()
        async let first = Self.awaitReply(pair, source, length: 2, timeout: .seconds(5))
        pair.reply("ok")
        #expect(await first == "ok")
        try Self.expectNoSpin { pair.reply("unasked") }
        #expect(await Self.awaitReply(pair, source, length: 7, timeout: .seconds(5)) == "unasked")
    }

    /// A deadline ends the wait; a reply that comes later, unawaited, does not spin the loop either.
    @Test func aDeadlineEndsTheWaitAndALateReplyIsHarmless() async throws {
        let pair = Pair()
        defer { pair.close() }
        let source = Reactor.Source()
        final class Fired: @unchecked Sendable { var at: ContinuousClock.Instant? }
        let fired = Fired()
        let start = ContinuousClock.now
        #expect(await Self.awaitReply(pair, source, length: 1, timeout: .milliseconds(100)) { fired.at = $0 } == nil)
        // Deadlines are checked every 50 ms.
        #expect(fired.at.map { $0 - start < .seconds(1) } == true, "the deadline fired \(String(describing: fired.at.map { $0 - start })) after the call")
        try Self.expectNoSpin { pair.reply("late") }
    }
}

private func readText(_ path: String) -> String? {
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var buffer = [UInt8](repeating: 0, count: 4096)
    let count = read(fd, &buffer, buffer.count)
    return count > 0 ? String(decoding: buffer[..<count], as: UTF8.self) : nil
}

private func listDirectory(_ path: String) throws -> [String] {
    guard let directory = opendir(path) else { return [] }
    defer { closedir(directory) }
    var names: [String] = []
    while let entry = readdir(directory) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { bytes in
            String(decoding: bytes.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
        if name != ".", name != ".." { names.append(name) }
    }
    return names
}
