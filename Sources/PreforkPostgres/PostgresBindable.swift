import TimeUnits
import FoundationEssentials

/// A Swift value sent as a query parameter, in Postgres' text format; nil is SQL NULL. The server infers the
/// parameter's type from the statement (unnamed statements, no type OIDs), as PgBouncer needs.
public protocol PostgresBindable: Sendable {
    var postgresText: String? { get }
}

extension String: PostgresBindable { public var postgresText: String? { self } }
extension Int: PostgresBindable { public var postgresText: String? { String(self) } }
extension Int64: PostgresBindable { public var postgresText: String? { String(self) } }
extension Int32: PostgresBindable { public var postgresText: String? { String(self) } }
extension Bool: PostgresBindable { public var postgresText: String? { self ? "true" : "false" } }
extension UUID: PostgresBindable { public var postgresText: String? { uuidString } }

extension Double: PostgresBindable {
    public var postgresText: String? {
        if isNaN { return "NaN" }
        if isInfinite { return self > 0 ? "Infinity" : "-Infinity" }
        return String(self)
    }
}

extension Date: PostgresBindable {
    /// Seconds since the epoch with microseconds, read by Postgres as UTC.
    public var postgresText: String? {
        let micros = (timeIntervalSince1970 * 1_000_000).rounded()
        return Self.iso(micros: Int64(micros))
    }

    static func iso(micros: Int64) -> String {
        var seconds = micros / 1_000_000
        var fraction = micros % 1_000_000
        if fraction < 0 { fraction += 1_000_000; seconds -= 1 }
        let civil = CivilTime(seconds: seconds)
        let digits = String(fraction)
        return "\(civil).\(String(repeating: "0", count: 6 - digits.count) + digits)+00"
    }
}

/// `bytea` as hex.
public struct PostgresBytes: PostgresBindable {
    public var bytes: [UInt8]
    public init(_ bytes: [UInt8]) { self.bytes = bytes }
    public var postgresText: String? {
        let digits = Array("0123456789abcdef".utf8)
        var text = [UInt8](arrayLiteral: UInt8(ascii: "\\"), UInt8(ascii: "x"))
        text.reserveCapacity(2 + bytes.count * 2)
        for byte in bytes {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: text, as: UTF8.self)
    }
}

extension Optional: PostgresBindable where Wrapped: PostgresBindable {
    public var postgresText: String? { self?.postgresText }
}
