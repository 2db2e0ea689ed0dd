import TimeUnits
/// A cron expression: five fields (minute hour day-of-month month day-of-week) or six with seconds first,
/// separated by spaces or tabs; lists, ranges, steps and names (`JAN`-`DEC`, `SUN`-`SAT`, 7 is Sunday too);
/// `@hourly`, `@daily` (`@midnight`), `@weekly`, `@monthly`, `@yearly` (`@annually`).
///
/// Read as Vixie cron (and cronie) read it, because that is what operators' expressions were written for:
/// - a day field that starts with `*` keeps its own set (`*/2` is the odd days) but makes the two day fields
///   combine with AND; only when neither starts with `*` does a day match if either matches;
/// - `N/S` runs from N to the field's maximum, which is 7 for the day of the week (`1/2` is Mon, Wed, Fri, Sun);
/// - numbers are digits only (`+5` is refused); `?` is accepted as a whole day field, meaning `*`.
public struct CronExpression: Sendable, Equatable {
    public let text: String
    let seconds: Set<Int>
    let minutes: Set<Int>
    let hours: Set<Int>
    let daysOfMonth: Set<Int>
    let months: Set<Int>
    let daysOfWeek: Set<Int>
    /// Vixie's DOM_STAR and DOW_STAR: the field starts with `*` (or is `?`).
    let dayOfMonthStar: Bool
    let dayOfWeekStar: Bool

    private struct Field {
        var name: String
        var range: ClosedRange<Int>
        var names: [String] = []
        /// Offset of the first name's value (months start at 1).
        var nameBase = 0
        /// `?` may stand for the whole field (the day fields, as Quartz-style expressions write them).
        var allowsQuestionMark = false
    }

    private static let secondField = Field(name: "second", range: 0...59)
    private static let minuteField = Field(name: "minute", range: 0...59)
    private static let hourField = Field(name: "hour", range: 0...23)
    private static let dayField = Field(name: "day-of-month", range: 1...31, allowsQuestionMark: true)
    private static let monthField = Field(name: "month", range: 1...12,
        names: ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"], nameBase: 1)
    private static let weekdayField = Field(name: "day-of-week", range: 0...7,
        names: ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"], allowsQuestionMark: true)

    public init(_ text: String) throws(ScheduleError) {
        let words = text.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        var fields = words
        if words.count == 1, words[0].hasPrefix("@") {
            switch words[0].lowercased() {
            case "@yearly", "@annually": fields = ["0", "0", "1", "1", "*"]
            case "@monthly": fields = ["0", "0", "1", "*", "*"]
            case "@weekly": fields = ["0", "0", "*", "*", "0"]
            case "@daily", "@midnight": fields = ["0", "0", "*", "*", "*"]
            case "@hourly": fields = ["0", "*", "*", "*", "*"]
            default:
                throw ScheduleError(text, "unknown macro '\(words[0])' (use @hourly, @daily, @weekly, @monthly, @yearly or @every DURATION)")
            }
        }
        guard fields.count == 5 || fields.count == 6 else {
            throw ScheduleError(text, "expected 5 fields (minute hour day-of-month month day-of-week) or 6 with seconds first, got \(fields.count)")
        }
        let offset = fields.count - 5
        self.text = text
        seconds = offset == 1 ? try Self.parse(fields[0], Self.secondField, expression: text) : [0]
        minutes = try Self.parse(fields[offset], Self.minuteField, expression: text)
        hours = try Self.parse(fields[offset + 1], Self.hourField, expression: text)
        daysOfMonth = try Self.parse(fields[offset + 2], Self.dayField, expression: text)
        months = try Self.parse(fields[offset + 3], Self.monthField, expression: text)
        var weekdays = try Self.parse(fields[offset + 4], Self.weekdayField, expression: text)
        if weekdays.remove(7) != nil { weekdays.insert(0) }
        daysOfWeek = weekdays
        dayOfMonthStar = fields[offset + 2].hasPrefix("*") || fields[offset + 2] == "?"
        dayOfWeekStar = fields[offset + 4].hasPrefix("*") || fields[offset + 4] == "?"
        // A day that can never come (30 February) would leave the job silently never running. With AND, any
        // date that exists falls on every weekday within the calendar's 400-year cycle, so the day of month
        // alone decides; with OR, a non-empty weekday set always matches some day.
        if dayOfMonthStar || dayOfWeekStar {
            let longest = months.map { $0 == 2 ? 29 : CivilTime.daysInMonth(year: 2001, month: $0) }.max() ?? 31
            if !daysOfMonth.contains(where: { $0 <= longest }) {
                throw ScheduleError(text, "day-of-month \(fields[offset + 2]) never occurs in month \(fields[offset + 3])")
            }
        }
    }

    private static func parse(_ text: String, _ field: Field, expression: String) throws(ScheduleError) -> Set<Int> {
        func fail(_ why: String) -> ScheduleError {
            ScheduleError(expression, "\(field.name) field '\(text)': \(why)")
        }
        func value(_ token: Substring) throws(ScheduleError) -> Int {
            if !token.isEmpty, token.allSatisfy({ $0.isASCII && $0.isNumber }) {
                guard let number = Int(token), field.range.contains(number) else {
                    throw fail("\(token) is out of range \(field.range.lowerBound)-\(field.range.upperBound)")
                }
                return number
            }
            if token.allSatisfy(\.isASCII), let index = field.names.firstIndex(of: token.uppercased()) { return index + field.nameBase }
            throw fail("'\(token)' is not a number" + (field.names.isEmpty ? "" : " or a name (\(field.names.first!)-\(field.names.last!))"))
        }
        guard !text.isEmpty else { throw fail("empty") }
        if text == "?" {
            guard field.allowsQuestionMark else { throw fail("'?' is only accepted as a whole day-of-month or day-of-week field") }
            return Set(field.range)
        }
        var result = Set<Int>()
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            guard !part.isEmpty else { throw fail("empty list item") }
            var rangeText = part
            var step = 1
            if let slash = part.firstIndex(of: "/") {
                rangeText = part[..<slash]
                let stepText = part[part.index(after: slash)...]
                guard !stepText.isEmpty, stepText.allSatisfy({ $0.isASCII && $0.isNumber }),
                      let parsed = Int(stepText), parsed > 0 else {
                    throw fail("step '\(stepText)' is not a positive number")
                }
                step = parsed
            }
            var low: Int
            var high: Int
            if rangeText == "*" {
                (low, high) = (field.range.lowerBound, field.range.upperBound)
            } else if let dash = rangeText.firstIndex(of: "-") {
                low = try value(rangeText[..<dash])
                high = try value(rangeText[rangeText.index(after: dash)...])
                guard low <= high else { throw fail("range \(low)-\(high) runs backwards") }
            } else {
                low = try value(rangeText)
                high = part.contains("/") ? field.range.upperBound : low
            }
            for number in stride(from: low, through: high, by: step) { result.insert(number) }
        }
        return result
    }

    func matchesDay(_ time: CivilTime) -> Bool {
        let dayMatch = daysOfMonth.contains(time.day)
        let weekdayMatch = daysOfWeek.contains(time.weekday)
        return dayOfMonthStar || dayOfWeekStar ? dayMatch && weekdayMatch : dayMatch || weekdayMatch
    }

    /// The first wall-clock time at or after `start` that matches. The Gregorian calendar repeats every 400
    /// years and the initializer refused expressions that match no date, so the search ends within one cycle
    /// (`0 0 29 2 */7`, a leap day on a Sunday, comes in 2032 and then 2060).
    func nextMatch(atOrAfter start: CivilTime) -> CivilTime? {
        var time = start
        let limit = start.year + 401
        while time.year <= limit {
            if !months.contains(time.month) {
                guard let month = months.sorted().first(where: { $0 > time.month }) else {
                    time = CivilTime(year: time.year + 1, month: 1, day: 1)
                    continue
                }
                time = CivilTime(year: time.year, month: month, day: 1)
                continue
            }
            if time.day > CivilTime.daysInMonth(year: time.year, month: time.month) || !matchesDay(time) {
                time = Self.nextDay(time)
                continue
            }
            if !hours.contains(time.hour) {
                guard let hour = hours.sorted().first(where: { $0 > time.hour }) else {
                    time = Self.nextDay(time)
                    continue
                }
                time = CivilTime(year: time.year, month: time.month, day: time.day, hour: hour)
                continue
            }
            if !minutes.contains(time.minute) {
                guard let minute = minutes.sorted().first(where: { $0 > time.minute }) else {
                    time = Self.nextHour(time)
                    continue
                }
                time = CivilTime(year: time.year, month: time.month, day: time.day, hour: time.hour, minute: minute)
                continue
            }
            if !seconds.contains(time.second) {
                guard let second = seconds.sorted().first(where: { $0 > time.second }) else {
                    time = CivilTime(seconds: CivilTime(year: time.year, month: time.month, day: time.day,
                                                        hour: time.hour, minute: time.minute).seconds + 60)
                    continue
                }
                time.second = second
                continue
            }
            return time
        }
        return nil
    }

    private static func nextDay(_ time: CivilTime) -> CivilTime {
        CivilTime(seconds: CivilTime(year: time.year, month: time.month, day: min(time.day, 28)).seconds
            + Int64(86400 * (min(time.day, 28) == time.day ? 1 : 1 + time.day - 28)))
    }

    private static func nextHour(_ time: CivilTime) -> CivilTime {
        CivilTime(seconds: CivilTime(year: time.year, month: time.month, day: time.day, hour: time.hour).seconds + 3600)
    }
}

/// An expression that does not parse, with where: `invalid schedule '0 25 * * *': hour field '25': 25 is out of
/// range 0-23`.
public struct ScheduleError: Error, Equatable, CustomStringConvertible, Sendable {
    public var description: String
    init(_ expression: String, _ why: String) {
        description = "invalid schedule '\(expression)': \(why)"
    }
}
