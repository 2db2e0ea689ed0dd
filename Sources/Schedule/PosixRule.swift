import TimeUnits
/// A POSIX `TZ` rule, as the footer of a TZif file gives the zone's future: `CET-1CEST,M3.5.0,M10.5.0/3`
/// (standard name and offset west of UTC, daylight name and offset, start and end as "month, week, weekday"
/// with a local time). Only the `M` form of the dates is read, which is what the tz database writes.
struct PosixRule: Sendable, Equatable {
    var standardOffset: Int32
    var daylight: (offset: Int32, start: DateRule, end: DateRule)?

    struct DateRule: Sendable, Equatable {
        var month: Int
        var week: Int  // 1...5, 5 = last
        var weekday: Int  // 0 = Sunday
        var time: Int  // seconds after local midnight, may be negative or past 24 h

        /// The day of `year` this rule names.
        func day(in year: Int) -> Int {
            let firstWeekday = CivilTime(year: year, month: month, day: 1).weekday
            var day = 1 + (weekday - firstWeekday + 7) % 7 + (week - 1) * 7
            let length = CivilTime.daysInMonth(year: year, month: month)
            while day > length { day -= 7 }
            return day
        }
    }

    static func == (lhs: PosixRule, rhs: PosixRule) -> Bool {
        lhs.standardOffset == rhs.standardOffset && lhs.daylight?.offset == rhs.daylight?.offset
            && lhs.daylight?.start == rhs.daylight?.start && lhs.daylight?.end == rhs.daylight?.end
    }

    init?(_ text: String) {
        var scanner = Substring(text)
        func name() -> Bool {
            if scanner.hasPrefix("<") {
                guard let close = scanner.firstIndex(of: ">") else { return false }
                scanner = scanner[scanner.index(after: close)...]
                return true
            }
            let letters = scanner.prefix(while: { $0.isLetter })
            scanner = scanner.dropFirst(letters.count)
            return letters.count >= 3
        }
        /// `[+-]hh[:mm[:ss]]` as seconds.
        func time() -> Int? {
            var sign = 1
            if scanner.hasPrefix("-") { sign = -1; scanner = scanner.dropFirst() } else if scanner.hasPrefix("+") { scanner = scanner.dropFirst() }
            var parts: [Int] = []
            while parts.count < 3 {
                let digits = scanner.prefix(while: { $0.isNumber })
                guard !digits.isEmpty, let value = Int(digits) else { break }
                parts.append(value)
                scanner = scanner.dropFirst(digits.count)
                guard scanner.hasPrefix(":") else { break }
                scanner = scanner.dropFirst()
            }
            guard !parts.isEmpty else { return nil }
            let seconds = parts[0] * 3600 + (parts.count > 1 ? parts[1] * 60 : 0) + (parts.count > 2 ? parts[2] : 0)
            return sign * seconds
        }
        func date() -> DateRule? {
            guard scanner.hasPrefix("M") else { return nil }
            scanner = scanner.dropFirst()
            let fields = scanner.prefix(while: { $0.isNumber || $0 == "." }).split(separator: ".").compactMap { Int($0) }
            scanner = scanner.drop(while: { $0.isNumber || $0 == "." })
            guard fields.count == 3, (1...12).contains(fields[0]), (1...5).contains(fields[1]), (0...6).contains(fields[2])
            else { return nil }
            var at = 7200
            if scanner.hasPrefix("/") {
                scanner = scanner.dropFirst()
                guard let value = time() else { return nil }
                at = value
            }
            return DateRule(month: fields[0], week: fields[1], weekday: fields[2], time: at)
        }
        guard name(), let standard = time() else { return nil }
        standardOffset = Int32(-standard)
        if scanner.isEmpty {
            daylight = nil
            return
        }
        guard name() else { return nil }
        var daylightOffset = standardOffset + 3600
        if !scanner.hasPrefix(","), let value = time() { daylightOffset = Int32(-value) }
        guard scanner.hasPrefix(",") else { return nil }
        scanner = scanner.dropFirst()
        guard let start = date(), scanner.hasPrefix(",") else { return nil }
        scanner = scanner.dropFirst()
        guard let end = date(), scanner.isEmpty else { return nil }
        daylight = (daylightOffset, start, end)
    }

    /// Daylight time's start and end in `year`, as UTC instants.
    private func bounds(_ year: Int) -> (start: Int64, end: Int64)? {
        guard let daylight else { return nil }
        let start = CivilTime(year: year, month: daylight.start.month, day: daylight.start.day(in: year)).seconds
            + Int64(daylight.start.time) - Int64(standardOffset)
        let end = CivilTime(year: year, month: daylight.end.month, day: daylight.end.day(in: year)).seconds
            + Int64(daylight.end.time) - Int64(daylight.offset)
        return (start, end)
    }

    func offset(at utc: Int64) -> Int32 {
        guard let daylight, let (start, end) = bounds(CivilTime(seconds: utc + Int64(standardOffset)).year) else {
            return standardOffset
        }
        // Northern hemisphere: daylight between start and end; southern: outside end...start.
        let inDaylight = start < end ? (utc >= start && utc < end) : (utc < end || utc >= start)
        return inDaylight ? daylight.offset : standardOffset
    }

    func nextTransition(after utc: Int64) -> Int64? {
        let year = CivilTime(seconds: utc).year
        var candidates: [Int64] = []
        for candidate in year - 1...year + 1 {
            if let (start, end) = bounds(candidate) { candidates += [start, end] }
        }
        return candidates.filter { $0 > utc }.min()
    }
}
