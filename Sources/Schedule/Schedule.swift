import TimeUnits

/// When the cleanup job runs: a cron expression in a time zone, or `@every DURATION` (for tests and short
/// intervals). Pure: instants are seconds since the epoch (UTC), passed in.
public enum Schedule: Sendable, Equatable {
    case cron(CronExpression, TimeZoneRules)
    /// Every `seconds`, counted from `anchor` (the supervisor's start).
    case every(seconds: Int64, anchor: Int64)

    /// Parses `@every 1s` / `@every 90m`, or a cron expression to be read in `zone`.
    public static func parse(_ text: String, zone: TimeZoneRules, now: Int64) throws(ScheduleError) -> Schedule {
        let trimmed = text.trimmingSpaces
        if trimmed.lowercased().hasPrefix("@every") {
            let amount = trimmed.dropFirst("@every".count).trimmingSpaces
            guard let seconds = Self.seconds(String(amount)) else {
                throw ScheduleError(text, "'@every \(amount)': expected a duration of whole seconds, from 1s to a year, such as 30s, 5m, 1.5h or 1d")
            }
            return .every(seconds: seconds, anchor: now)
        }
        return .cron(try CronExpression(String(trimmed)), zone)
    }

    /// Whole seconds, at least 1, from the one duration grammar (`DurationSyntax`): `30s`, `90m`, `1.5h`, `7d`,
    /// a bare number of seconds. For `@every`, `cleanup --if-due` and `worker create-token --ttl`.
    public static func seconds(_ text: String) -> Int64? {
        guard let duration = DurationSyntax.parse(text), duration >= .seconds(1),
            duration.inMilliseconds % 1000 == 0 else { return nil }
        return duration.inMilliseconds / 1000
    }

    /// The first instant strictly after `after` at which the job is due, or nil if it never is again.
    ///
    /// Daylight saving time as cron users expect: a local time that does not exist that day (spring forward)
    /// runs once, at the first instant after the gap; a local time that happens twice (fall back) runs once,
    /// at its first occurrence, so a start inside the second pass does not run it again.
    public func next(after: Int64) -> Int64? {
        switch self {
        case .every(let interval, let anchor):
            if after < anchor { return anchor }
            return anchor + ((after - anchor) / interval + 1) * interval
        case .cron(let expression, let zone):
            var local = CivilTime(seconds: after + Int64(zone.offset(at: after)) + 1)
            for _ in 0..<10_000 {
                guard let candidate = expression.nextMatch(atOrAfter: local) else { return nil }
                let instants = zone.instants(forLocal: candidate.seconds)
                if let first = instants.first {
                    if first > after { return first }
                    if instants.count == 2, let fallBack = zone.nextTransition(after: first) {
                        // `after` lies in the second pass of a repeated hour, and every local time of that hour
                        // already had its turn in the first pass: go on from the end of the repetition.
                        local = CivilTime(seconds: fallBack + Int64(zone.offset(at: fallBack - 1)))
                        continue
                    }
                }
                if instants.isEmpty {
                    // Skipped by a spring-forward gap: due at the transition that skipped it, the first instant
                    // after the gap. That transition lies in (local - offset after, local - offset before].
                    let offsetAfter = Int64(zone.offset(at: candidate.seconds + 86400))
                    if let transition = zone.nextTransition(after: candidate.seconds - offsetAfter - 1), transition > after {
                        return transition
                    }
                }
                local = CivilTime(seconds: candidate.seconds + 1)
            }
            return nil
        }
    }

    public var description: String {
        switch self {
        case .cron(let expression, let zone): "\(expression.text) (\(zone.name))"
        case .every(let seconds, _): "@every \(seconds)s"
        }
    }
}

