/// JSON string literals without Foundation: log lines and API responses are written by hand, because
/// `JSONEncoder` costs more than the rest of a small response.
public enum JSONText {
    /// `text` as a JSON string literal, quotes included; control characters as `\u00XX`.
    public static func quoted(_ text: String) -> String {
        var out = "\""
        out.reserveCapacity(text.utf8.count + 2)
        appendEscaped(text, to: &out)
        out += "\""
        return out
    }

    public static func appendEscaped(_ text: String, to out: inout String) {
        // Fast path: nothing to escape (the common case for titles, bodies, ids, timestamps). The scan reads the
        // contiguous bytes of a native string rather than stepping String.UTF8View's indices: it runs over every
        // note's body, and was a percent of a request's CPU.
        func mustEscape(_ byte: UInt8) -> Bool { byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") }
        let escaping = text.utf8.withContiguousStorageIfAvailable { $0.contains(where: mustEscape) }
            ?? text.utf8.contains(where: mustEscape)
        if !escaping {
            out += text
            return
        }
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
    }
}
