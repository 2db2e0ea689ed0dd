import FuzzDriver
import Schedule

/// Cron expressions, `@every` durations and TZif files: the first byte chooses. A schedule that parses must
/// give next fire times that move forward; nothing may trap or loop forever.
func fuzzCron(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let text = String(decoding: bytes.dropFirst(), as: UTF8.self)
    switch bytes[0] % 3 {
    case 0:
        guard let schedule = try? Schedule.parse(text, zone: .utc, now: 1_700_000_000) else { return 0 }
        var time: Int64 = 1_700_000_000
        for _ in 0..<4 {
            guard let next = schedule.next(after: time) else { break }
            precondition(next > time, "next(after:) went backwards for '\(text)'")
            time = next
        }
    case 1:
        _ = Schedule.seconds(text)
        _ = try? CronExpression(text)
    default:
        if let zone = TimeZoneRules.parse(Array(bytes.dropFirst()), name: "fuzz") {
            _ = zone.nextTransition(after: 1_700_000_000)
            if let schedule = try? Schedule.parse("0 3 * * *", zone: zone, now: 1_700_000_000) {
                _ = schedule.next(after: 1_700_000_000)
            }
        }
    }
    return 0
}

fuzz { fuzzCron($0, $1) }
