import CHiredis
import Glibc
import Testing
@testable import PreforkRedis

/// Our request bytes against hiredis' own formatter, the independent reference: any difference would reach
/// Redis as a different command.
@Suite("Redis command encoding")
struct RedisCommandEncodingTests {
    private static func hiredis(_ command: [String]) -> [UInt8] {
        let arguments = command.map { Array($0.utf8) }
        var pointers = arguments.map { bytes -> UnsafeMutablePointer<CChar> in
            let pointer = UnsafeMutablePointer<CChar>.allocate(capacity: max(bytes.count, 1))
            bytes.withUnsafeBufferPointer { source in
                source.withMemoryRebound(to: CChar.self) { pointer.update(from: $0.baseAddress!, count: bytes.count) }
            }
            return pointer
        }
        defer { pointers.forEach { $0.deallocate() } }
        let lengths = arguments.map(\.count)
        var target: UnsafeMutablePointer<CChar>?
        let count = pointers.withUnsafeMutableBufferPointer { argv in
            argv.withMemoryRebound(to: UnsafePointer<CChar>?.self) { argv in
                redisFormatCommandArgv(&target, Int32(command.count), argv.baseAddress, lengths)
            }
        }
        defer { redisFreeCommand(target) }
        return Array(UnsafeRawBufferPointer(start: target, count: Int(count)))
    }

    @Test(arguments: [
        [],
        ["PING"],
        ["GET", "token:abc"],
        ["SET", "key", "", "EX", "60"],
        ["SET", "ключ", "値 with spaces\r\nand a newline", "PX", "1234567890"],
        ["MSET"] + (0..<12).flatMap { ["k\($0)", String(repeating: "v", count: $0 * 97)] },
        ["EVAL", "return 1", "0", "\u{0}binary\u{7f}"],
    ])
    func sameBytesAsHiredis(_ command: [String]) {
        var ours: [UInt8] = []
        RedisCommandEncoding.append(command, to: &ours)
        #expect(ours == Self.hiredis(command))
    }

    /// Out of the parameterized test, so that its 100 kB argument is not printed as the test case's name.
    @Test func aLongArgument() {
        let command = ["SET", "k", String(repeating: "x", count: 100_000)]
        var ours: [UInt8] = []
        RedisCommandEncoding.append(command, to: &ours)
        #expect(ours == Self.hiredis(command))
    }

    @Test func severalCommandsAreTheirConcatenation() {
        let commands = [["GET", "a"], ["INCR", "rate:1:29000000"], ["EXPIRE", "rate:1:29000000", "120"]]
        #expect(RedisCommandEncoding.encode(commands) == commands.flatMap(Self.hiredis))
    }
}
