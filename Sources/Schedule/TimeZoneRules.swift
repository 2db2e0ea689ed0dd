import Glibc

/// A time zone from the system's tz database (`/usr/share/zoneinfo`, TZif version 2+), read once: the UTC
/// offset at any instant, and the instants where it changes. Pure after loading, so the schedule can be
/// tested on real transitions of real zones with a fake clock.
public struct TimeZoneRules: Sendable, Equatable {
    public let name: String
    /// Instants (seconds since the epoch, UTC) where the offset changes, ascending.
    let transitions: [Int64]
    /// The offset in effect from each transition on.
    let offsets: [Int32]
    /// Before the first transition.
    let initialOffset: Int32
    /// After the last transition: the footer's POSIX rule (e.g. `CET-1CEST,M3.5.0,M10.5.0/3`).
    let rule: PosixRule?

    public static let utc = TimeZoneRules(name: "UTC", transitions: [], offsets: [], initialOffset: 0, rule: nil)

    public struct LoadError: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    /// `UTC`, or a name from the tz database such as `Europe/Berlin` (`TZDIR` overrides the folder).
    public static func load(_ name: String, directory: String? = nil) throws(LoadError) -> TimeZoneRules {
        if ["UTC", "Etc/UTC", "Z", "GMT"].contains(name) { return .utc }
        guard !name.isEmpty, !name.hasPrefix("/"), !name.split(separator: "/").contains(".."),
              name.allSatisfy({ $0.isLetter || $0.isNumber || "/_+-".contains($0) })
        else { throw LoadError(description: "'\(name)' is not a time zone name (like Europe/Berlin)") }
        guard !name.hasPrefix("right/") else {
            throw LoadError(description: "'\(name)': the right/ zones count leap seconds, which cron does not; use '\(name.dropFirst(6))'")
        }
        let folder = directory ?? getenv("TZDIR").map { String(cString: $0) } ?? "/usr/share/zoneinfo"
        guard let bytes = readFile(folder + "/" + name) else {
            throw LoadError(description: "unknown time zone '\(name)' (no \(folder)/\(name); is tzdata installed?)")
        }
        guard let rules = parse(bytes, name: name) else {
            throw LoadError(description: "\(folder)/\(name) is not a TZif file this reader understands")
        }
        return rules
    }

    /// The UTC offset in seconds at instant `utc`.
    public func offset(at utc: Int64) -> Int32 {
        if let last = transitions.last, utc >= last, let rule {
            return rule.offset(at: utc)
        }
        // The last transition at or before `utc`.
        var low = 0
        var high = transitions.count
        while low < high {
            let middle = (low + high) / 2
            if transitions[middle] <= utc { low = middle + 1 } else { high = middle }
        }
        return low == 0 ? initialOffset : offsets[low - 1]
    }

    /// The first instant after `utc` where the offset changes, if any within ten years.
    public func nextTransition(after utc: Int64) -> Int64? {
        if let index = transitions.firstIndex(where: { $0 > utc }), index < transitions.count {
            // Skip table entries that do not change the offset.
            var current = offset(at: utc)
            for position in index..<transitions.count {
                if offsets[position] != current { return transitions[position] }
                current = offsets[position]
            }
        }
        guard let rule else { return nil }
        return rule.nextTransition(after: max(utc, transitions.last ?? utc))
    }

    /// The instants whose wall-clock time is `local` (seconds of the local wall clock since 1970): one, two
    /// (a repeated hour) or none (a skipped hour).
    public func instants(forLocal local: Int64) -> [Int64] {
        var found: [Int64] = []
        for candidate in Set([offset(at: local - 86400), offset(at: local + 86400), offset(at: local)]) {
            let utc = local - Int64(candidate)
            if offset(at: utc) == candidate { found.append(utc) }
        }
        return found.sorted()
    }

    // MARK: TZif

    private static func readFile(_ path: String) -> [UInt8]? {
        guard let file = fopen(path, "rb") else { return nil }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = fread(&buffer, 1, buffer.count, file)
            if count <= 0 { break }
            bytes += buffer[..<count]
            if bytes.count > 1 << 20 { return nil }
        }
        return bytes
    }

    public static func parse(_ bytes: [UInt8], name: String) -> TimeZoneRules? {
        var cursor = 0
        func integer(_ size: Int) -> Int64? {
            guard cursor + size <= bytes.count else { return nil }
            var value: Int64 = 0
            for index in 0..<size { value = value << 8 | Int64(bytes[cursor + index]) }
            cursor += size
            // Sign-extend.
            if size < 8, value & (1 << (Int64(size) * 8 - 1)) != 0 { value -= 1 << (Int64(size) * 8) }
            return value
        }
        // The header's counts are unsigned, and none can exceed the file's size: a damaged or hostile file must
        // not send the cursor backwards or a loop around four billion times (found by scripts/fuzz).
        func count() -> Int? {
            guard let value = integer(4) else { return nil }
            let unsigned = Int(UInt32(truncatingIfNeeded: value))
            return unsigned <= bytes.count ? unsigned : nil
        }
        func header() -> (isutc: Int, isstd: Int, leap: Int, time: Int, type: Int, chars: Int)? {
            guard cursor >= 0, cursor + 44 <= bytes.count, bytes[cursor..<cursor + 4].elementsEqual("TZif".utf8) else { return nil }
            cursor += 20
            guard let isutc = count(), let isstd = count(), let leap = count(), let time = count(),
                  let type = count(), let chars = count() else { return nil }
            return (isutc, isstd, leap, time, type, chars)
        }
        guard let first = header(), bytes[4] >= UInt8(ascii: "2") else { return nil }
        // Skip the version 1 (32-bit) block.
        cursor += first.time * 5 + first.type * 6 + first.chars + first.leap * 8 + first.isstd + first.isutc
        guard let second = header() else { return nil }
        var transitions: [Int64] = []
        for _ in 0..<second.time {
            guard let value = integer(8) else { return nil }
            transitions.append(value)
        }
        guard cursor + second.time <= bytes.count else { return nil }
        let indices = bytes[cursor..<cursor + second.time].map(Int.init)
        cursor += second.time
        var types: [(offset: Int32, isDST: Bool)] = []
        for _ in 0..<second.type {
            guard let offset = integer(4), cursor + 2 <= bytes.count else { return nil }
            types.append((Int32(offset), bytes[cursor] != 0))
            cursor += 2
        }
        guard !types.isEmpty, indices.allSatisfy({ $0 < types.count }) else { return nil }
        cursor += second.chars + second.leap * 12 + second.isstd + second.isutc
        var footer: PosixRule?
        if cursor < bytes.count, bytes[cursor] == UInt8(ascii: "\n"),
           let end = bytes[(cursor + 1)...].firstIndex(of: UInt8(ascii: "\n")) {
            footer = PosixRule(String(decoding: bytes[(cursor + 1)..<end], as: UTF8.self))
        }
        let initial = types.first(where: { !$0.isDST })?.offset ?? types[0].offset
        return TimeZoneRules(name: name, transitions: transitions, offsets: indices.map { types[$0].offset },
                             initialOffset: initial, rule: footer)
    }
}
