import TimeUnits
import Glibc
import Schedule
import Settings

/// `supervisor schedule EXPR`: when a cleanup schedule would fire, so an operator can check an expression and
/// its time zone before a deploy, and (`--batch`) the interface the differential test drives against an
/// independent cron implementation (scripts/test.d/cron_differential.py).
enum ScheduleCommand {
    /// Year 1 to year 9999: the calendar arithmetic's range, with room for the search past it (`--after`'s).
    static let instants: ClosedRange<Int64> = -62_135_596_800...253_402_300_799

    static func run(_ expression: String?, reader: SettingsReader) throws(SettingError) -> Int32 {
        if try reader[Catalog.scheduleBatch] {
            guard expression == nil else { return Commands.usage("schedule --batch reads its expressions from stdin") }
            return batch()
        }
        guard let expression else {
            return Commands.usage("usage: supervisor schedule [--timezone ZONE] [--count N] [--after EPOCH] 'EXPRESSION'")
        }
        // `--timezone`, else the cleanup's own zone (CRON_TZ), as the supervisor would read it.
        let zoneSetting = reader.isGiven(Catalog.scheduleTimezone) ? Catalog.scheduleTimezone.declaration : Catalog.cleanupTimezone.declaration
        var zoneName = try reader[Catalog.cleanupTimezone]
        if let given = try reader[Catalog.scheduleTimezone] { zoneName = given }
        let zone: TimeZoneRules
        do { zone = try TimeZoneRules.load(zoneName) } catch {
            let source = reader.found(zoneSetting)?.source ?? zoneSetting.variables.first ?? zoneSetting.description
            return Commands.usage("\(source): \(error)")
        }
        let count = try reader[Catalog.scheduleCount]
        var after = Int64(time(nil))
        if let text = try reader[Catalog.scheduleAfter] {
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

    /// Lines of `ZONE<TAB>AFTER<TAB>EXPRESSION` in (a space for a tab will do), one line out for each: the next
    /// instant, `never`, or `error: why`.
    static func batch() -> Int32 {
        var zones: [String: Result<TimeZoneRules, TimeZoneRules.LoadError>] = [:]
        while let line = readLine() {
            let parts = line.split(maxSplits: 2, omittingEmptySubsequences: false) { $0 == "\t" || $0 == " " }
            guard parts.count == 3, let after = Int64(parts[1]), instants.contains(after) else {
                print("error: expected ZONE<TAB>AFTER<TAB>EXPRESSION, AFTER in seconds from year 1 to year 9999")
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
