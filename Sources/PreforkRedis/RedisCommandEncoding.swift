/// Commands in the Redis protocol's request form (RESP: an array of bulk strings), written straight into one
/// buffer.
///
/// Why not hiredis' `redisAppendCommandArgv`: it wants an argv of C pointers and lengths, which took four arrays
/// per command to build, and formats into a buffer of its own. Under pipelining a request's two commands cost
/// more to hand to hiredis than to send. The bytes are the same (the tests compare them with
/// `redisFormatCommandArgv`'s): a lane sends them itself, and the blocking calls hand them to hiredis whole
/// (`redisAppendFormattedCommand`).
enum RedisCommandEncoding {
    static func append(_ command: [String], to out: inout [UInt8]) {
        appendHeader(UInt8(ascii: "*"), command.count, to: &out)
        for argument in command {
            var argument = argument
            argument.withUTF8 { bytes in
                appendHeader(UInt8(ascii: "$"), bytes.count, to: &out)
                out.append(contentsOf: bytes)
            }
            out.append(UInt8(ascii: "\r"))
            out.append(UInt8(ascii: "\n"))
        }
    }

    static func encode(_ commands: [[String]]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(commands.reduce(0) { $0 + 16 + $1.reduce(0) { $0 + $1.utf8.count + 16 } })
        for command in commands { append(command, to: &out) }
        return out
    }

    /// `*<count>\r\n` or `$<length>\r\n`, the decimal written in place without an intermediate String.
    private static func appendHeader(_ marker: UInt8, _ value: Int, to out: inout [UInt8]) {
        out.append(marker)
        var digits = 1
        var magnitude = value
        while magnitude >= 10 {
            magnitude /= 10
            digits += 1
        }
        out.append(contentsOf: repeatElement(UInt8(ascii: "0"), count: digits))
        var rest = value
        var index = out.count - 1
        while rest > 0 {
            out[index] = UInt8(ascii: "0") + UInt8(rest % 10)
            rest /= 10
            index -= 1
        }
        out.append(UInt8(ascii: "\r"))
        out.append(UInt8(ascii: "\n"))
    }
}
