/// The one reading of a duration, for every flag, variable, `@every` and `--if-due`: a number of seconds
/// (`8`, `0.5`), or a number with a unit (`250ms`, `8s`, `2m`, `1.5h`, `1d`). Before, three grammars
/// disagreed: `@every 1d` worked where `--cleanup-timeout 1d` was refused, and a worker refused the `8s` its
/// supervisor took.
public enum DurationSyntax {
    /// For messages: what a duration may look like.
    public static let examples = "8, 0.5, 250ms, 8s, 2m, 1.5h or 1d"

    /// At most a year: more is a typo, and keeps every conversion to milliseconds far from overflow.
    public static let maximum: Duration = .seconds(86_400 * 366)

    /// nil unless the text is a finite, non-negative duration of at most 366 days. Spaces around it are ignored.
    public static func parse(_ text: String) -> Duration? {
        let trimmed = Substring(text).trimmingSpaces
        let units: [(suffix: String, milliseconds: Double)] = [
            ("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000),
        ]
        var number = trimmed
        var scale = 1000.0
        for unit in units where trimmed.hasSuffix(unit.suffix) {
            number = trimmed.dropLast(unit.suffix.count)
            scale = unit.milliseconds
            break
        }
        // Digits and at most one point: Double() alone would take "inf", "nan", "1e3" and "0x10".
        guard !number.isEmpty, number.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ".") }),
            number.filter({ $0 == "." }).count <= 1, number != ".",
            let value = Double(number)
        else { return nil }
        let milliseconds = (value * scale).rounded()
        guard milliseconds <= Double(maximum.inMilliseconds) else { return nil }
        return .milliseconds(Int64(milliseconds))
    }
}

extension StringProtocol {
    /// Without the spaces and tabs around it: `LOG_LEVEL="info "` is info. The one trim of every reader.
    public var trimmingSpaces: Substring {
        var text = self[...]
        while text.first == " " || text.first == "\t" { text = text.dropFirst() }
        while text.last == " " || text.last == "\t" { text = text.dropLast() }
        return Substring(text)
    }
}
