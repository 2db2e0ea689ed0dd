import TimeUnits

/// The readings of the value kinds other than durations and log levels, shared by every program.
public enum ValueSyntax {
    public static func count(_ text: String, range: ClosedRange<Int>) -> Int? {
        let trimmed = Substring(text).trimmingSpaces
        // Digits with an optional minus (a negative count is refused by its range, with the range in the message).
        let digits = trimmed.hasPrefix("-") ? trimmed.dropFirst() : trimmed
        guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }),
            let value = Int(trimmed), range.contains(value) else { return nil }
        return value
    }

    /// Bytes as a number, or with K, M, G, T (powers of 1024) and an optional B or iB: `512M`, `1.5G`.
    public static func size(_ text: String) -> Int? {
        var number = Substring(text.uppercased()).trimmingSpaces
        for suffix in ["IB", "B"] where number.hasSuffix(suffix) {
            number = number.dropLast(suffix.count)
            break
        }
        var scale = 1.0
        if let unit = number.last, let power = ["K": 1, "M": 2, "G": 3, "T": 4][String(unit)] {
            scale = (0..<power).reduce(1.0) { value, _ in value * 1024 }
            number = number.dropLast()
        }
        guard !number.isEmpty, number.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ".") }),
            let value = Double(number), value > 0, value * scale < 1e15, value * scale >= 1 else { return nil }
        return Int(value * scale)
    }

    public static func boolean(_ text: String) -> Bool? {
        switch Substring(text).trimmingSpaces.lowercased() {
        case "1", "true", "yes", "on": true
        case "0", "false", "no", "off": false
        default: nil
        }
    }

    /// `0660`, `660`, `0o660`: permission bits only.
    public static func fileMode(_ text: String) -> UInt32? {
        var digits = Substring(text).trimmingSpaces
        if digits.hasPrefix("0o") { digits = digits.dropFirst(2) }
        guard (1...4).contains(digits.count), digits.allSatisfy({ ("0"..."7").contains($0) }),
            let mode = UInt32(digits, radix: 8), mode <= 0o777 else { return nil }
        return mode
    }

    /// A value as an error message shows it: quoted, control characters escaped (a newline in a variable
    /// must not start a second line that looks like the supervisor's), and cut at 60 characters.
    public static func shown(_ text: String) -> String {
        var shown = ""
        for scalar in text.unicodeScalars.prefix(60) {
            switch scalar {
            case "\n": shown += "\\n"
            case "\r": shown += "\\r"
            case "\t": shown += "\\t"
            case "'": shown += "\\'"
            default:
                if scalar.properties.generalCategory == .control || scalar.properties.generalCategory == .format {
                    shown += "\\u{" + String(scalar.value, radix: 16) + "}"
                } else {
                    shown.unicodeScalars.append(scalar)
                }
            }
        }
        return "'" + shown + (text.unicodeScalars.count > 60 ? "…" : "") + "'"
    }

    /// `a, b or c`.
    public static func list(_ words: [String]) -> String {
        guard words.count > 1 else { return words.first ?? "" }
        return words.dropLast().joined(separator: ", ") + " or " + words.last!
    }

    /// `1M`, `512K`, `300000000`: a size as the grammar reads it back.
    public static func describe(bytes: Int) -> String {
        for (suffix, scale) in [("T", 1 << 40), ("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)] where bytes > 0 && bytes % scale == 0 {
            return "\(bytes / scale)\(suffix)"
        }
        return "\(bytes)"
    }

    /// `250ms`, `8s`, `1.5s`, `2m`, `1h`: a duration as the grammar writes it.
    public static func describe(_ duration: Duration) -> String {
        let milliseconds = duration.inMilliseconds
        if milliseconds % 86_400_000 == 0, milliseconds > 0 { return "\(milliseconds / 86_400_000)d" }
        if milliseconds % 3_600_000 == 0, milliseconds > 0 { return "\(milliseconds / 3_600_000)h" }
        if milliseconds % 60_000 == 0, milliseconds > 0 { return "\(milliseconds / 60_000)m" }
        if milliseconds % 1000 == 0 { return "\(milliseconds / 1000)s" }
        return "\(milliseconds)ms"
    }
}
