import TimeUnits
import Glibc
import Schedule
import Settings

/// `supervisor schedule EXPR`: when a cleanup schedule would fire, so an operator can check an expression and
/// its time zone before a deploy, and (`--batch`) the interface the differential test drives against an
/// independent cron implementation (scripts/test.d/cron_differential.py).
enum ScheduleCommand {
    /// Year 1 to year 9999: the calendar arithmetic's range, with room for the search past it.
    static let instants: ClosedRange<Int64> = -62_135_596_800...253_402_300_799

    static func run(_ expression: String?, options: [String: String], switches: Set<String>,
                    environment: [String: String]) -> Int32 {
        if switches.contains("--batch") {
            guard expression == nil else { return Commands.usage("schedule --batch reads its expressions from stdin") }
            return batch()
        }
        guard let expression else {
            return Commands.usage("usage: supervisor schedule [--timezone ZONE] [--count N] [--after EPOCH] 'EXPRESSION'")
        }
        // `--timezone` or the cleanup's own zone setting (CRON_TZ), as the supervisor would read it.
        let zoneName = options["--timezone"] ?? (try? SettingsReader(environment: environment)[Catalog.cleanupTimezone])
            ?? Catalog.cleanupTimezone.defaultValue
        let zone: TimeZoneRules
        do { zone = try TimeZoneRules.load(zoneName) } catch {
            return Commands.usage("\(options["--timezone"] == nil ? "CRON_TZ" : "--timezone"): \(error)")
        }
        guard let count = Int(options["--count"] ?? "5"), (1...1000).contains(count) else {
            return Commands.usage("--count: expected a number from 1 to 1000")
        }
        var after = Int64(time(nil))
        if let text = options["--after"] {
            guard let value = Int64(text), instants.contains(value) else {
                return Commands.usage("--after: expected seconds since the epoch, from year 1 to year 9999")
            }
            after = value
        }
        let schedule: Schedule
        do { schedule = try Schedule.parse(expression, zone: zone, now: after) } catch {
            return Commands.usage(error.description)
        }
        for _ in 0..<count {
            guard let next = schedule.next(after: after) else {
                print("never")
                break
            }
            let local = CivilTime(seconds: next + Int64(zone.offset(at: next)))
            print("\(CivilTime(seconds: next))Z  \(local) \(zone.name)")
            after = next
        }
        return Commands.Code.ok
    }

    /// Lines of `ZONE AFTER EXPRESSION` in, one line out for each: the next instant, `never`, or `error: why`.
    static func batch() -> Int32 {
        var zones: [String: Result<TimeZoneRules, TimeZoneRules.LoadError>] = [:]
        while let line = readLine() {
            let parts = line.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count == 3, let after = Int64(parts[1]), instants.contains(after) else {
                print("error: expected ZONE AFTER EXPRESSION, AFTER in seconds from year 1 to year 9999")
                continue
            }
            let name = String(parts[0])
            if zones[name] == nil {
                zones[name] = Result { () throws(TimeZoneRules.LoadError) in try TimeZoneRules.load(name) }
            }
            switch zones[name]! {
            case .failure(let error):
                print("error: \(error)")
            case .success(let zone):
                do {
                    let schedule = try Schedule.parse(String(parts[2]), zone: zone, now: after)
                    print(schedule.next(after: after).map { String($0) } ?? "never")
                } catch {
                    print("error: \(error)")
                }
            }
        }
        return Commands.Code.ok
    }
}
