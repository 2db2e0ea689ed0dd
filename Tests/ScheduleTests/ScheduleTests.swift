import TimeUnits
import Testing
@testable import Schedule

/// Seconds since the epoch for a UTC wall-clock time.
func utc(_ year: Int, _ month: Int, _ day: Int, _ hour: Int = 0, _ minute: Int = 0, _ second: Int = 0) -> Int64 {
    CivilTime(year: year, month: month, day: day, hour: hour, minute: minute, second: second).seconds
}

func next(_ expression: String, after: Int64, zone: String = "UTC") throws -> Int64? {
    try Schedule.parse(expression, zone: try TimeZoneRules.load(zone), now: 0).next(after: after)
}

@Suite("Calendar arithmetic")
struct CivilTimeTests {
    @Test func roundTripsAndWeekdays() {
        #expect(CivilTime(seconds: 0) == CivilTime(year: 1970, month: 1, day: 1))
        #expect(CivilTime(year: 1970, month: 1, day: 1).weekday == 4)
        #expect(CivilTime(year: 2000, month: 2, day: 29).weekday == 2)
        #expect(CivilTime(year: 2026, month: 11, day: 27).weekday == 5)
        #expect(CivilTime(year: 1969, month: 12, day: 31, hour: 23).seconds == -3600)
        #expect(CivilTime(seconds: -1) == CivilTime(year: 1969, month: 12, day: 31, hour: 23, minute: 59, second: 59))
        for seconds in stride(from: Int64(-5_000_000_000), through: 5_000_000_000, by: 86_399 * 997) {
            #expect(CivilTime(seconds: seconds).seconds == seconds)
        }
        #expect(utc(2026, 11, 27, 19) == 1_795_806_000)
    }
}

@Suite("Cron expressions")
struct CronExpressionTests {
    @Test(arguments: [
        ("0 3 * * *", utc(2026, 11, 27, 19), utc(2026, 11, 28, 3)),
        ("*/15 * * * *", utc(2026, 11, 27, 10, 7, 30), utc(2026, 11, 27, 10, 15)),
        ("0 0 1 * *", utc(2026, 12, 15), utc(2027, 1, 1)),
        ("0 9 * * MON-FRI", utc(2026, 11, 27, 10), utc(2026, 11, 30, 9)),
        ("0 9 * * mon-fri", utc(2026, 11, 27, 8), utc(2026, 11, 27, 9)),
        ("0 0 29 2 *", utc(2026, 3, 1), utc(2028, 2, 29)),
        ("0 0 13 * FRI", utc(2026, 11, 27, 0, 0, 1), utc(2026, 12, 4)),  // either day field matches
        ("15 30 10 * * *", utc(2026, 11, 27, 10, 30), utc(2026, 11, 27, 10, 30, 15)),
        ("*/10 * * * * *", utc(2026, 11, 27, 10, 30, 55), utc(2026, 11, 27, 10, 31)),
        ("@hourly", utc(2026, 11, 27, 10), utc(2026, 11, 27, 11)),
        ("@daily", utc(2026, 11, 27, 10), utc(2026, 11, 28)),
        ("@weekly", utc(2026, 11, 27), utc(2026, 11, 29)),
        ("@monthly", utc(2026, 12, 31, 23), utc(2027, 1, 1)),
        ("@yearly", utc(2026, 6, 1), utc(2027, 1, 1)),
        ("0 12 * JAN,jul *", utc(2026, 2, 1), utc(2026, 7, 1, 12)),
        ("5-10/5 1,2 * * 7", utc(2026, 11, 27), utc(2026, 11, 29, 1, 5)),  // 7 is Sunday
        ("59 23 31 12 *", utc(2026, 12, 31, 23, 59), utc(2027, 12, 31, 23, 59)),
        ("0 0 31 * *", utc(2026, 4, 1), utc(2026, 5, 31)),
    ])
    func nextFireInUTC(_ expression: String, _ after: Int64, _ expected: Int64) throws {
        #expect(try next(expression, after: after) == expected, "\(expression) after \(CivilTime(seconds: after))")
    }

    @Test(arguments: [
        ("0 25 * * *", "hour field '25': 25 is out of range 0-23"),
        ("* * *", "expected 5 fields"),
        ("*/0 * * * *", "minute field '*/0': step '0' is not a positive number"),
        ("0 0 30 2 *", "day-of-month 30 never occurs in month 2"),
        ("@often", "unknown macro '@often'"),
        ("MON * * * *", "minute field 'MON': 'MON' is not a number"),
        ("0 0 * * 8", "day-of-week field '8': 8 is out of range 0-7"),
        ("0 0 * FOO *", "month field 'FOO': 'FOO' is not a number or a name (JAN-DEC)"),
        ("0 5-1 * * *", "range 5-1 runs backwards"),
        ("0 1,,2 * * *", "empty list item"),
        ("@every", "expected a duration"),
        ("@every 0s", "expected a duration"),
        ("@every soon", "expected a duration"),
    ])
    func invalidExpressionsSayWhere(_ expression: String, _ message: String) {
        do {
            _ = try Schedule.parse(expression, zone: .utc, now: 0)
            Issue.record("'\(expression)' was accepted")
        } catch {
            #expect(error.description.contains(message), "\(error.description)")
            #expect(error.description.hasPrefix("invalid schedule '\(expression)'"))
        }
    }

    /// Issue 15, against Vixie cron's rules: a day field starting with `*` keeps its step (it only makes the day
    /// fields combine with AND); `N/S` in the day of the week runs to 7; signs and stray `?` are refused.
    @Test(arguments: [
        ("0 0 */2 * *", utc(2026, 1, 1, 12), utc(2026, 1, 3)),
        ("0 0 */2 * *", utc(2026, 1, 31, 12), utc(2026, 2, 1)),  // 31, then 1
        ("0 0 * * */3", utc(2026, 11, 25, 12), utc(2026, 11, 28)),  // Wed 25th, then Sat 28th
        ("0 12 */10 * MON", utc(2026, 11, 1), utc(2026, 12, 21, 12)),  // a Monday that is day 1, 11, 21 or 31
        ("0 0 29 2 */7", utc(2024, 1, 1), utc(2032, 2, 29)),  // a leap day on a Sunday
        ("0 0 29 2 */7", utc(2032, 2, 29), utc(2060, 2, 29)),  // 28 years on: past the old 8-year horizon
        ("0 0 * * 7/2", utc(2026, 11, 27), utc(2026, 11, 29)),  // 7/2 is {7}: Sunday
        ("0 0 * * TUE,7/4", utc(2026, 11, 27), utc(2026, 11, 29)),
        ("0 0 * * 1/2", utc(2026, 11, 27), utc(2026, 11, 29)),  // Mon, Wed, Fri, Sun
        ("5\t*\t* * *", utc(2026, 11, 27, 10), utc(2026, 11, 27, 10, 5)),  // tabs between fields
        ("0 0 ? * MON", utc(2026, 11, 27), utc(2026, 11, 30)),
        ("0 0 1 * ?", utc(2026, 11, 27), utc(2026, 12, 1)),
    ])
    func readAsVixieCronReadsIt(_ expression: String, _ after: Int64, _ expected: Int64) throws {
        #expect(try next(expression, after: after) == expected, "\(expression) after \(CivilTime(seconds: after))")
    }

    @Test(arguments: [
        ("+5 * * * *", "minute field '+5': '+5' is not a number"),
        ("*/+5 * * * *", "step '+5' is not a positive number"),
        ("? * * * *", "'?' is only accepted as a whole day-of-month or day-of-week field"),
        ("0 0 1,? * *", "'?' is not a number"),
        ("0 0 * * ?/2", "'?' is not a number"),
        ("0 0 31 4,6 *", "never occurs"),
        ("0 0 30 2 */2", "never occurs"),
    ])
    func refusedAsCronRefusesThem(_ expression: String, _ message: String) {
        do {
            _ = try Schedule.parse(expression, zone: .utc, now: 0)
            Issue.record("'\(expression)' was accepted")
        } catch {
            #expect(error.description.contains(message), "\(error.description)")
        }
    }

    @Test func everyCountsFromItsAnchor() throws {
        let schedule = try Schedule.parse("@every 90m", zone: .utc, now: 1000)
        let expected: [(after: Int64, next: Int64)] = [(999, 1000), (1000, 6400), (6399, 6400), (6400, 11800)]
        for (after, due) in expected {
            let computed: Int64? = schedule.next(after: after)
            #expect(computed == due, "after \(after)")
        }
        #expect(try Schedule.parse("@every 1s", zone: .utc, now: 7).next(after: 7) == 8)
    }
}

/// Real transitions of real zones, from the system's tz database (2026; Berlin's 2040 comes from the file's
/// POSIX footer, past its table).
@Suite("Daylight saving time")
struct DaylightSavingTests {
    @Test func offsetsFromTheDatabase() throws {
        let berlin = try TimeZoneRules.load("Europe/Berlin")
        #expect(berlin.offset(at: utc(2026, 1, 15)) == 3600)
        #expect(berlin.offset(at: utc(2026, 7, 15)) == 7200)
        #expect(berlin.offset(at: utc(2045, 7, 15)) == 7200, "from the POSIX rule after the table")
        #expect(berlin.offset(at: utc(2045, 12, 15)) == 3600)
        #expect(berlin.nextTransition(after: utc(2026, 2, 1)) == utc(2026, 3, 29, 1))
        let sydney = try TimeZoneRules.load("Australia/Sydney")
        #expect(sydney.offset(at: utc(2026, 1, 15)) == 39600)
        #expect(sydney.offset(at: utc(2026, 7, 15)) == 36000)
        #expect(sydney.offset(at: utc(2050, 1, 15)) == 39600, "southern hemisphere rule across the new year")
        #expect(sydney.offset(at: utc(2050, 7, 15)) == 36000)
    }

    @Test func aSkippedLocalTimeRunsOnceWhenTheGapEnds() throws {
        // Berlin, 2026-03-29: 02:00 CET becomes 03:00 CEST at 01:00 UTC; 02:30 does not exist that day.
        #expect(try next("30 2 * * *", after: utc(2026, 3, 28, 12), zone: "Europe/Berlin") == utc(2026, 3, 29, 1))
        #expect(try next("30 2 * * *", after: utc(2026, 3, 29, 1), zone: "Europe/Berlin") == utc(2026, 3, 30, 0, 30))
        // Four skipped times in the gap: one run, not four.
        #expect(try next("*/15 2 * * *", after: utc(2026, 3, 28, 12), zone: "Europe/Berlin") == utc(2026, 3, 29, 1))
        #expect(try next("*/15 2 * * *", after: utc(2026, 3, 29, 1), zone: "Europe/Berlin") == utc(2026, 3, 30))
        // 03:00 exists (it is the first instant after the gap).
        #expect(try next("0 3 * * *", after: utc(2026, 3, 28, 12), zone: "Europe/Berlin") == utc(2026, 3, 29, 1))
        // New York, 2026-03-08: 02:00 EST becomes 03:00 EDT at 07:00 UTC.
        #expect(try next("30 2 * * *", after: utc(2026, 3, 7, 12), zone: "America/New_York") == utc(2026, 3, 8, 7))
        // Sydney, 2026-10-04: 02:00 AEST becomes 03:00 AEDT at 16:00 UTC the day before.
        #expect(try next("30 2 * * *", after: utc(2026, 10, 3), zone: "Australia/Sydney") == utc(2026, 10, 3, 16))
        // Berlin 2040, from the footer rule.
        #expect(try next("30 2 * * *", after: utc(2040, 3, 24, 12), zone: "Europe/Berlin") == utc(2040, 3, 25, 1))
    }

    @Test func aRepeatedHourRunsOnce() throws {
        // Berlin, 2026-10-25: 03:00 CEST becomes 02:00 CET at 01:00 UTC; 02:30 happens twice.
        #expect(try next("30 2 * * *", after: utc(2026, 10, 24, 12), zone: "Europe/Berlin") == utc(2026, 10, 25, 0, 30))
        #expect(try next("30 2 * * *", after: utc(2026, 10, 25, 0, 30), zone: "Europe/Berlin") == utc(2026, 10, 26, 1, 30))
        // New York, 2026-11-01: 02:00 EDT becomes 01:00 EST at 06:00 UTC; 01:30 happens twice.
        #expect(try next("30 1 * * *", after: utc(2026, 10, 31, 12), zone: "America/New_York") == utc(2026, 11, 1, 5, 30))
        #expect(try next("30 1 * * *", after: utc(2026, 11, 1, 5, 30), zone: "America/New_York") == utc(2026, 11, 2, 6, 30))
        // Started during the second pass: 01:45 had its turn in the first pass (05:45 UTC), so not again today.
        #expect(try next("45 1 * * *", after: utc(2026, 11, 1, 6, 30), zone: "America/New_York") == utc(2026, 11, 2, 6, 45))
    }

    /// Issue 15: started inside the repeated hour after its first pass, `next` returned the second occurrence.
    @Test func aStartInTheSecondPassDoesNotRunTheRepeatedTimeAgain() throws {
        // Berlin, 2024-10-27: 02:30 CEST was 00:30 UTC; at 01:20 UTC the clock reads 02:20 CET again.
        #expect(try next("30 2 * * *", after: utc(2024, 10, 27, 1, 20), zone: "Europe/Berlin") == utc(2024, 10, 28, 1, 30))
        #expect(try next("30 2 * * *", after: utc(2024, 10, 27, 0, 20), zone: "Europe/Berlin") == utc(2024, 10, 27, 0, 30))
        // Every second of the repeated hour is skipped in the second pass, then the clock runs on.
        #expect(try next("* * * * * *", after: utc(2024, 10, 27, 1), zone: "Europe/Berlin") == utc(2024, 10, 27, 2))
        #expect(try next("*/20 * * * *", after: utc(2024, 10, 27, 0, 50), zone: "Europe/Berlin") == utc(2024, 10, 27, 2))
        // Lord Howe falls back half an hour: 01:45 happens at 14:45 UTC and again at 15:15 UTC.
        #expect(try next("45 1 * * *", after: utc(2025, 4, 5, 15), zone: "Australia/Lord_Howe") == utc(2025, 4, 6, 15, 15))
    }

    @Test func unknownZonesAreRefused() throws {
        #expect(throws: TimeZoneRules.LoadError.self) { try TimeZoneRules.load("Mars/Olympus_Mons") }
        #expect(throws: TimeZoneRules.LoadError.self) { try TimeZoneRules.load("../../etc/passwd") }
        #expect(throws: TimeZoneRules.LoadError.self) { try TimeZoneRules.load("/etc/localtime") }
        #expect(try TimeZoneRules.load("UTC") == .utc)
        // Leap-second zones would put 02:30 at 02:30:27.
        #expect(throws: TimeZoneRules.LoadError.self) { try TimeZoneRules.load("right/Europe/Berlin") }
    }
}
