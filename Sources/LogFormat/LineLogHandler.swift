import Glibc
import Logging

/// One log line per event on stderr: `2026-11-27T17:50:20.123Z supervisor[41] info: ready slot=0 pid=7202`.
///
/// The message comes first and the metadata after it, sorted, so the lifecycle reads down the left edge and
/// `grep pid=7202` finds a worker's whole life. Lines go out through `LogSink`, in writes of whole lines below
/// PIPE_BUF, so lines from the supervisor and its workers sharing stderr never interleave mid-line.
public struct LineLogHandler: StderrLogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    private let prefix: String

    public init(label: String, level: Logger.Level) {
        self.logLevel = level
        let prefix = "\(label)[\(getpid())]"
        self.prefix = prefix
        LogSink.shared.setDropNotice { count in
            "\(LineLogHandler.timestamp()) \(prefix) warning: \(count) log lines dropped: stderr was not read fast enough\n"
        }
    }

    public func log(event: LogEvent) {
        let fields = fields(of: event)
        var line = "\(Self.timestamp()) \(prefix) \(event.level.rawValue): \(event.message)"
        for key in fields.keys.sorted() {
            line += " \(key)=\(fields[key]!)"
        }
        line += "\n"
        writeLine(line)
    }

    /// UTC with milliseconds; the lifecycle of a worker happens in milliseconds.
    public static func timestamp() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var parts = tm()
        var seconds = now.tv_sec
        gmtime_r(&seconds, &parts)
        func pad(_ value: Int32, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return "\(parts.tm_year + 1900)-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T"
            + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2))."
            + "\(pad(Int32(now.tv_nsec / 1_000_000), 3))Z"
    }
}

/// Every handler's output: queued for the sink's writer thread, never a blocking write on the caller's thread.
func writeLine(_ line: String) {
    LogSink.shared.write(line)
}
