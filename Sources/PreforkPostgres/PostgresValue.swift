import TimeUnits
import FoundationEssentials

/// A column value, decoded from Postgres' text format by the column's type.
public enum PostgresValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case text(String)
    /// `numeric` stays text: no Swift type holds every numeric exactly.
    case numeric(String)
    case bytes([UInt8])
    case uuid(UUID)
    case timestamp(Date)
    /// `json` and `jsonb`, as the server printed them.
    case json(String)

    public var isNull: Bool { self == .null }
    public var int: Int64? { if case .int(let value) = self { value } else { nil } }
    public var bool: Bool? { if case .bool(let value) = self { value } else { nil } }
    public var double: Double? { if case .double(let value) = self { value } else { nil } }
    public var uuid: UUID? { if case .uuid(let value) = self { value } else { nil } }
    public var date: Date? { if case .timestamp(let value) = self { value } else { nil } }
    public var bytes: [UInt8]? { if case .bytes(let value) = self { value } else { nil } }
    /// Text, numeric and JSON as their text.
    public var string: String? {
        switch self {
        case .text(let value), .numeric(let value), .json(let value): value
        default: nil
        }
    }

    /// Type OIDs from `pg_type`, the ones decoded into Swift values; anything else arrives as text.
    enum OID {
        static let bool: UInt32 = 16, bytea: UInt32 = 17, int8: UInt32 = 20, int2: UInt32 = 21, int4: UInt32 = 23
        static let oid: UInt32 = 26, json: UInt32 = 114, float4: UInt32 = 700, float8: UInt32 = 701
        static let timestamp: UInt32 = 1114, timestamptz: UInt32 = 1184, numeric: UInt32 = 1700
        static let uuid: UInt32 = 2950, jsonb: UInt32 = 3802
    }

    init(text: String, type: UInt32) throws(PostgresError) {
        switch type {
        case OID.bool: self = .bool(text == "t")
        case OID.int2, OID.int4, OID.int8, OID.oid:
            guard let value = Int64(text) else { throw Self.undecodable(text, "integer") }
            self = .int(value)
        case OID.float4, OID.float8:
            switch text {
            case "NaN": self = .double(.nan)
            case "Infinity": self = .double(.infinity)
            case "-Infinity": self = .double(-.infinity)
            default:
                guard let value = Double(text) else { throw Self.undecodable(text, "float") }
                self = .double(value)
            }
        case OID.numeric: self = .numeric(text)
        case OID.json, OID.jsonb: self = .json(text)
        case OID.uuid:
            guard let value = UUID(uuidString: text) else { throw Self.undecodable(text, "uuid") }
            self = .uuid(value)
        case OID.bytea:
            guard let value = Self.decodeHex(text) else { throw Self.undecodable(String(text.prefix(20)), "bytea") }
            self = .bytes(value)
        case OID.timestamptz, OID.timestamp:
            guard let value = Self.decodeTimestamp(text) else { throw Self.undecodable(text, "timestamp") }
            self = .timestamp(value)
        default: self = .text(text)
        }
    }

    static func undecodable(_ text: String, _ type: String) -> PostgresError {
        PostgresError(kind: .client, message: "cannot decode '\(text)' as \(type)")
    }

    /// `bytea_output = hex` (the default since Postgres 9.0): `\x` then two hex digits a byte.
    static func decodeHex(_ text: String) -> [UInt8]? {
        let digits = Array(text.utf8)
        guard digits.count >= 2, digits[0] == UInt8(ascii: "\\"), digits[1] == UInt8(ascii: "x"), digits.count % 2 == 0 else {
            return nil
        }
        func nibble(_ c: UInt8) -> UInt8? {
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
            default: nil
            }
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity((digits.count - 2) / 2)
        var index = 2
        while index < digits.count {
            guard let high = nibble(digits[index]), let low = nibble(digits[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
            index += 2
        }
        return bytes
    }

    /// ISO `DateStyle` (the default): `2026-11-27 18:30:00.123456+00`, `+05:30`, or no offset for `timestamp`
    /// (read as UTC). `infinity` has no Date and fails.
    static func decodeTimestamp(_ text: String) -> Date? {
        let bytes = Array(text.utf8)
        func number(_ start: Int, _ count: Int) -> Int? {
            guard start + count <= bytes.count else { return nil }
            var value = 0
            for byte in bytes[start..<(start + count)] {
                guard byte >= 48, byte <= 57 else { return nil }
                value = value * 10 + Int(byte - 48)
            }
            return value
        }
        guard bytes.count >= 19, let year = number(0, 4), let month = number(5, 2), let day = number(8, 2),
            let hour = number(11, 2), let minute = number(14, 2), let second = number(17, 2)
        else { return nil }
        var index = 19
        var fraction = 0.0
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            var scale = 0.1
            while index < bytes.count, bytes[index] >= 48, bytes[index] <= 57 {
                fraction += Double(bytes[index] - 48) * scale
                scale /= 10
                index += 1
            }
        }
        var offset = 0
        if index < bytes.count {
            let sign = bytes[index] == UInt8(ascii: "-") ? -1 : 1
            guard bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-"),
                let hours = number(index + 1, 2)
            else { return nil }
            offset = hours * 3600
            if index + 3 < bytes.count, bytes[index + 3] == UInt8(ascii: ":"), let minutes = number(index + 4, 2) {
                offset += minutes * 60
            }
            offset *= sign
        }
        let days = CivilTime.days(year: year, month: month, day: day)
        let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset
        return Date(timeIntervalSince1970: Double(seconds) + fraction)
    }
}
