import ConnectionURL
import Foundation
import Glibc
import PoolCore
import Testing
import MetricsTestKit
@testable import PreforkRedis

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// The Redis `scripts/test` started.
func testConfiguration(_ configure: (inout RedisConfiguration) -> Void = { _ in }) throws -> RedisConfiguration {
    guard let text = ProcessInfo.processInfo.environment["REDIS_URL"], !text.isEmpty else {
        throw TestFailure("REDIS_URL is not set: run the tests with scripts/test, which starts a Redis")
    }
    var configuration = RedisConfiguration(url: try RedisURL(text))
    configure(&configuration)
    return configuration
}

@Suite("Redis settings")
struct RedisSettingsTests {
    @Test func urls() throws {
        let full = try RedisURL("redis://user:s%40cret@cache.internal:6380/3")
        #expect(full.host == "cache.internal" && full.port == 6380 && full.database == 3)
        #expect(full.username == "user" && full.password == "s@cret")
        #expect(full.description == "redis://user:***@cache.internal:6380/3")
        let passwordOnly = try RedisURL("redis://:pw@localhost")
        #expect(passwordOnly.username == nil && passwordOnly.password == "pw" && passwordOnly.port == 6379)
        #expect(try RedisURL("redis://10.0.0.1").database == 0)
        #expect(try RedisURL("redis://[::1]:7000/1").host == "::1")
    }

    @Test(arguments: ["http://x", "rediss://x:6379", "redis://x:99999", "redis://x:6379/-1", "redis://x:port"])
    func invalidURLs(_ text: String) {
        #expect(throws: RedisURL.Defect.self) { try RedisURL(text) }
    }

    @Test func environment() throws {
        let configuration = try RedisConfiguration.fromEnvironment(["REDIS_URL": "redis://h:1/0"])
        #expect(configuration.pool.size == 5 && configuration.pool.maxOverflow == 0)
        #expect(configuration.pool.timeout == .seconds(5))
        let tuned = try RedisConfiguration.fromEnvironment(
            ["REDIS_URL": "redis://h:1/0", "REDIS_POOL_SIZE": "8", "REDIS_POOL_TIMEOUT": "0.5", "REDIS_SOCKET_TIMEOUT": "1"])
        #expect(tuned.pool.size == 8 && tuned.pool.timeout == .milliseconds(500) && tuned.socketTimeout == .seconds(1))
        for (name, value) in [("REDIS_URL", ""), ("REDIS_POOL_SIZE", "0"), ("REDIS_POOL_SIZE", "five"),
                              ("REDIS_POOL_TIMEOUT", "-1"), ("REDIS_SOCKET_TIMEOUT", "nan")] {
            var environment = ["REDIS_URL": "redis://h:1/0"]
            environment[name] = value
            do {
                _ = try RedisConfiguration.fromEnvironment(environment)
                Issue.record("\(name)=\(value) was accepted")
            } catch {
                #expect(error.message.hasPrefix(name), "the message names the variable: \(error.message)")
            }
        }
    }
}

@Suite("The Redis client against a real Redis", .serialized)
struct RedisClientTests {
    @Test func pipelineRepliesInOrderWithErrorsInPlace() async throws {
        let client = RedisClient(try testConfiguration())
        let key = "test:\(getpid()):\(UInt32.random(in: 0 ... .max))"
        let replies = try await client.pipeline([
            ["SET", key, "héllo"], ["GET", key], ["INCR", key], ["DEL", key], ["GET", key], ["INCR", key],
        ])
        #expect(replies[0] == .status("OK"))
        #expect(replies[1] == .bulk("héllo"))
        guard case .error(let message) = replies[2] else { Issue.record("INCR of a string: \(replies[2])"); return }
        #expect(message.contains("not an integer"))
        #expect(replies[3] == .integer(1) && replies[4] == .null && replies[5] == .integer(1))
        // An error reply does not break the connection.
        #expect(try await client.command("DEL", key) == .integer(1))
        #expect(client.status.total == 1)
        #expect(await client.close())
    }

    /// The seed's redis-py pool raises when all 5 connections are busy; ours never fails a caller for that, and
    /// the callers' commands share connections instead of waiting for one each.
    @Test func sixtyFourTasksShareTheConnectionsWithoutAFailure() async throws {
        // A generous pool timeout: the property is that callers never fail, and on a loaded CI machine (the other
        // suites run beside this one on two cores) a round trip can take seconds.
        let metrics = TestMetrics()
        let client = RedisClient(try testConfiguration { $0.pool.timeout = .seconds(60); $0.socketTimeout = .seconds(30) },
                                 metrics: metrics)
        let key = "test:wait:\(getpid())"
        let failures = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<64 {
                group.addTask {
                    var failed = 0
                    for _ in 0..<50 {
                        do { _ = try await client.pipeline([["INCR", key], ["GET", key]]) } catch { failed += 1 }
                        #expect(client.status.total <= 5)
                    }
                    return failed
                }
            }
            return try await group.reduce(0, +)
        }
        #expect(failures == 0)
        #expect(try await client.command("GET", key).integer == 64 * 50)
        let (roundTrips, commands) = try metrics.roundTrips(pool: client.configuration.name)
        #expect(commands >= 64 * 50 * 2)
        #expect(roundTrips * 2 < commands / 2, "\(commands) commands in \(roundTrips) writes: not shared")
        _ = try await client.command("DEL", key)
        #expect(await client.close())
    }

    /// Calls of 512 concurrent tasks, interleaved on shared connections: every task gets its own replies.
    @Test func interleavedCallersGetTheirOwnReplies() async throws {
        let client = RedisClient(try testConfiguration { $0.pool.timeout = .seconds(60); $0.socketTimeout = .seconds(30) })
        let prefix = "test:tag:\(getpid()):"
        let wrong = try await withThrowingTaskGroup(of: Int.self) { group in
            for task in 0..<512 {
                group.addTask {
                    var wrong = 0
                    for round in 0..<10 {
                        let tag = "\(task)-\(round)-\(UInt32.random(in: 0 ... .max))"
                        let replies = try await client.pipeline([["SET", prefix + String(task), tag], ["GET", prefix + String(task)],
                                                                 ["ECHO", tag]])
                        if replies != [.status("OK"), .bulk(tag), .bulk(tag)] { wrong += 1 }
                        if try await client.command("ECHO", tag) != .bulk(tag) { wrong += 1 }
                    }
                    return wrong
                }
            }
            return try await group.reduce(0, +)
        }
        #expect(wrong == 0)
        for task in 0..<512 { _ = try await client.command("DEL", prefix + String(task)) }
        #expect(await client.close())
    }

    /// A command that Redis refuses fails alone: the calls around it, on the same connection, are answered.
    @Test func anErrorReplyFailsOnlyItsOwnCommand() async throws {
        let client = RedisClient(try testConfiguration { $0.pool.size = 1; $0.pool.timeout = .seconds(60); $0.socketTimeout = .seconds(30) })
        let text = "test:text:\(getpid())"
        _ = try await client.command("SET", text, "not a number")
        let outcomes = await withTaskGroup(of: (Int, Result<RedisValue, any Error>).self) { group in
            for task in 0..<200 {
                group.addTask {
                    do {
                        return (task, .success(try await client.command(task % 10 == 0 ? "INCR" : "ECHO", task % 10 == 0 ? text : String(task))))
                    } catch {
                        return (task, .failure(error))
                    }
                }
            }
            return await group.reduce(into: [:]) { $0[$1.0] = $1.1 }
        }
        for (task, outcome) in outcomes {
            switch outcome {
            case .success(let value):
                #expect(task % 10 != 0 && value == .bulk(String(task)), "task \(task): \(value)")
            case .failure(let error):
                #expect(task % 10 == 0, "task \(task) failed: \(error)")
                #expect((error as? RedisError)?.kind == .server && "\(error)".contains("not an integer"), "\(error)")
            }
        }
        #expect(outcomes.count == 200)
        _ = try await client.command("DEL", text)
        #expect(await client.close())
    }

    /// A connection cut with calls in flight fails exactly those calls, each with an I/O error, at once (not at the
    /// socket timeout); none hangs, none is answered twice, and the next call gets a new connection.
    @Test func aLostConnectionFailsExactlyTheCallsInFlight() async throws {
        let client = RedisClient(try testConfiguration { $0.pool.size = 1; $0.socketTimeout = .seconds(10) })
        let id = try await client.command("CLIENT", "ID").integer!
        let admin = try RedisConnection.connect(try testConfiguration())
        let started = ContinuousClock.now
        // BLPOP holds the connection's replies; 20 calls queue behind it on the same connection (the pool has one).
        let outcomes = await withTaskGroup(of: Result<RedisValue, any Error>.self) { group in
            group.addTask { await outcome { try await client.command("BLPOP", "test:never:\(getpid())", "8") } }
            try? await Task.sleep(for: .milliseconds(100))
            for task in 0..<20 {
                group.addTask { await outcome { try await client.command("ECHO", String(task)) } }
            }
            try? await Task.sleep(for: .milliseconds(300))
            _ = try? admin.command(["CLIENT", "KILL", "ID", String(id)])
            return await group.reduce(into: []) { $0.append($1) }
        }
        #expect(outcomes.count == 21)
        for outcome in outcomes {
            guard case .failure(let error) = outcome else { Issue.record("answered after the connection was cut: \(outcome)"); continue }
            #expect((error as? RedisError)?.kind == .io, "\(error)")
        }
        #expect(started.duration(to: .now) < .seconds(5), "the calls waited for the socket timeout")
        #expect(try await client.command("ECHO", "after") == .bulk("after"))
        #expect(try await client.command("CLIENT", "ID").integer != id)
        #expect(await client.close())
        admin.close()
    }

    /// A context whose connection was cut is closed, never reused; its replacement has the timeouts and
    /// keepalive again (hiredis 0.14's own reconnect forgets them).
    @Test func aBrokenContextIsReplacedWithTimeoutsAndKeepalive() async throws {
        let client = RedisClient(try testConfiguration { $0.pool.size = 1; $0.pool.prePing = false })
        let first = try await client.command("CLIENT", "ID").integer!
        let admin = try RedisConnection.connect(try testConfiguration())
        _ = try admin.command(["CLIENT", "KILL", "ID", String(first)])
        // The reactor may see the idle connection close before the next call (then it just gets a new one).
        _ = try? await client.command("PING")
        let second = try await client.command("CLIENT", "ID").integer!
        #expect(second != first)
        let lease = try await client.pool.checkout()
        var timeout = timeval()
        var length = socklen_t(MemoryLayout<timeval>.size)
        getsockopt(lease.connection.fileDescriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, &length)
        var keepalive: Int32 = 0
        var keepaliveLength = socklen_t(MemoryLayout<Int32>.size)
        getsockopt(lease.connection.fileDescriptor, SOL_SOCKET, SO_KEEPALIVE, &keepalive, &keepaliveLength)
        // Close-on-exec: a process the worker's process spawns must not hold its Redis connections open.
        let descriptorFlags = fcntl(lease.connection.fileDescriptor, F_GETFD)
        client.pool.checkin(lease)
        #expect(timeout.tv_sec == 2 && keepalive == 1)
        #expect(descriptorFlags & FD_CLOEXEC != 0)
        #expect(await client.close())
        admin.close()
    }

    @Test func aHungServerFailsTheCallAfterTheSocketTimeout() async throws {
        let client = RedisClient(try testConfiguration { $0.socketTimeout = .milliseconds(200) })
        let started = ContinuousClock.now
        // BLPOP on an empty list holds the reply for a second: longer than the socket timeout.
        await #expect(throws: RedisError.self) { _ = try await client.command("BLPOP", "test:empty:\(getpid())", "1") }
        #expect(started.duration(to: .now) < .milliseconds(900))
        #expect(try await client.command("PING") == .status("PONG"), "the next call gets a fresh connection")
        #expect(await client.close())
    }

    /// A server that stops reading: the lane's socket fills, and the worker's one thread must not wait for it
    /// (a blocking write would, for up to the socket timeout). Another client's calls go on meanwhile; the stuck
    /// call fails at the socket timeout. The "server" is a listener that never accepts: the kernel completes the
    /// connection, and nothing ever reads it.
    @Test func aServerThatStopsReadingHoldsUpOnlyItsOwnCalls() async throws {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { Glibc.close(listener) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { address in
                bind(listener, address, length) == 0 && listen(listener, 8) == 0
                    && getsockname(listener, address, &length) == 0
            }
        }
        try #require(bound)
        var configuration = try testConfiguration { $0.socketTimeout = .seconds(2) }
        configuration.url.host = "127.0.0.1"
        configuration.url.port = Int(UInt16(bigEndian: address.sin_port))
        let stuck = RedisClient(configuration)
        let healthy = RedisClient(try testConfiguration())
        _ = try await healthy.command("PING")
        let started = ContinuousClock.now
        // More than loopback's send and receive buffers together hold.
        let stuckCall = Task { try await stuck.command("SET", "never-read", String(repeating: "x", count: 16 << 20)) }
        // PINGs on the other client for the 3 s in which the stuck call is written and times out.
        var slowest = Duration.zero
        while started.duration(to: .now) < .seconds(3) {
            let sent = ContinuousClock.now
            #expect(try await healthy.command("PING") == .status("PONG"))
            slowest = max(slowest, sent.duration(to: .now))
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(slowest < .milliseconds(500), "a PING on another connection took \(slowest)")
        await #expect(throws: RedisError.self) { _ = try await stuckCall.value }
        #expect(started.duration(to: .now) < .seconds(5))
        #expect(await stuck.close())
        #expect(await healthy.close())
    }

    @Test func nothingListeningFailsFastWithTheAddress() async throws {
        var configuration = try testConfiguration { $0.pool.timeout = .seconds(2) }
        configuration.url.port = 1
        let client = RedisClient(configuration)
        let started = ContinuousClock.now
        do {
            _ = try await client.command("PING")
            Issue.record("PING to a closed port succeeded")
        } catch {
            #expect("\(error)".contains(":1"), "\(error)")
        }
        #expect(started.duration(to: .now) < .seconds(1))
        await client.close()
    }

    @Test func closeLeavesNoConnection() async throws {
        let client = RedisClient(try testConfiguration())
        let admin = try RedisConnection.connect(try testConfiguration())
        _ = try await client.command("CLIENT", "SETNAME", "close-test-\(getpid())")
        #expect(try Self.clients(named: "close-test-\(getpid())", admin: admin) == 1)
        #expect(await client.close())
        var left = 1
        for _ in 0..<100 where left > 0 {
            left = try Self.clients(named: "close-test-\(getpid())", admin: admin)
            if left > 0 { try await Task.sleep(for: .milliseconds(10)) }
        }
        #expect(left == 0)
        await #expect(throws: (any Error).self) { _ = try await client.command("PING") }
        admin.close()
    }

    static func clients(named name: String, admin: RedisConnection) throws -> Int {
        let list = try admin.command(["CLIENT", "LIST"]).string ?? ""
        return list.split(separator: "\n").filter { $0.contains("name=\(name) ") }.count
    }
}

final class LockedFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var flag = false
    func set() { lock.withLock { flag = true } }
    var value: Bool { lock.withLock { flag } }
}

extension TestMetrics {
    /// `pool_round_trips_total` and `pool_statements_total` of a pool.
    func roundTrips(pool: String) throws -> (Int64, Int64) {
        func total(_ label: String) throws -> Int64 {
            try expectCounter(label, [("pool", pool)]).values.reduce(0, +)
        }
        return (try total("pool_round_trips_total"), try total("pool_statements_total"))
    }
}

func outcome<T>(_ body: () async throws -> T) async -> Result<T, any Error> {
    do { return .success(try await body()) } catch { return .failure(error) }
}
