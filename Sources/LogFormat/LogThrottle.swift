import Glibc
import Logging
import Synchronization

/// Error lines that repeat once per request, rate-limited and never silent: the first of a kind is logged at
/// once, the repeats within `window` are counted, and when the window ends one line summarises them
/// ("database unavailable: 9745 more in 10s").
///
/// Unthrottled, a short Postgres outage wrote one line per request (9,746 in 3 s), and where a failure was
/// not logged at all, 22,819 answers of 503 left not one line. Kinds are few and fixed by the code (never a
/// request's text), so the table stays small.
public final class LogThrottle: Sendable {
    private struct Kind {
        var windowStart: Int64
        var repeats = 0
        var level: Logger.Level
        var message: String
        var summaryScheduled = false
    }

    private let window: Duration
    private let kinds = Mutex<[String: Kind]>([:])

    public init(window: Duration = .seconds(10)) {
        self.window = window
    }

    /// Logs `message` now if no line of `kind` was logged within the window; otherwise counts it.
    public func log(_ kind: String, level: Logger.Level, _ message: @autoclosure () -> String,
                    metadata: @autoclosure () -> Logger.Metadata = [:], to logger: Logger) {
        let now = Self.nanoseconds()
        let windowNanoseconds = Int64(window.components.seconds) * 1_000_000_000
            + Int64(window.components.attoseconds / 1_000_000_000)
        enum Decision { case log, count, countAndSchedule(Duration) }
        let text = message()
        let decision: Decision = kinds.withLock { kinds in
            if var entry = kinds[kind], now - entry.windowStart < windowNanoseconds {
                entry.repeats += 1
                entry.level = level
                entry.message = text
                let schedule = !entry.summaryScheduled
                entry.summaryScheduled = true
                kinds[kind] = entry
                return schedule ? .countAndSchedule(.nanoseconds(entry.windowStart + windowNanoseconds - now)) : .count
            }
            kinds[kind] = Kind(windowStart: now, level: level, message: text)
            return .log
        }
        switch decision {
        case .log:
            logger.log(level: level, "\(text)", metadata: metadata())
        case .count:
            break
        case .countAndSchedule(let delay):
            // The summary comes when the window ends, whether or not another one of the kind follows.
            Task.detached { [self] in
                try? await Task.sleep(for: delay)
                summarise(kind, logger: logger)
            }
        }
    }

    /// Writes the summary of `kind`'s window and starts a new one.
    func summarise(_ kind: String, logger: Logger) {
        let now = Self.nanoseconds()
        let summary: (Logger.Level, String, Int, Int64)? = kinds.withLock { kinds in
            guard let entry = kinds[kind], entry.repeats > 0 else { return nil }
            kinds[kind] = nil
            return (entry.level, entry.message, entry.repeats, now - entry.windowStart)
        }
        guard let (level, message, repeats, elapsed) = summary else { return }
        let seconds = (Double(elapsed) / 1e8).rounded() / 10
        logger.log(level: level, "\(message): \(repeats) more in \(seconds)s", metadata: ["repeats": "\(repeats)"])
    }

    static func nanoseconds() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
    }
}
