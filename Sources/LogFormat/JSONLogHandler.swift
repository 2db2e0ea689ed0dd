import Glibc
import Logging

/// One JSON object per line on stderr, for log collectors (`LOG_FORMAT=json`):
/// `{"ts":"2026-11-27T17:50:20.123Z","level":"info","logger":"worker","pid":41,"msg":"ready","slot":"0"}`.
///
/// Metadata become top-level string fields (sorted, after the fixed ones), so a collector can index `slot`
/// without parsing the message. `pid` is the process that writes the line; a `pid` in the metadata names
/// another process (the supervisor's `spawned`, `ready`, `exited` lines name the worker's) and is written as
/// `child_pid`, so that one does not hide the other.
public struct JSONLogHandler: StderrLogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    private let label: String
    private let pid = getpid()

    public init(label: String, level: Logger.Level) {
        self.logLevel = level
        self.label = label
        let pid = pid
        LogSink.shared.setDropNotice { count in
            "{\"ts\":\"\(LineLogHandler.timestamp())\",\"level\":\"warning\",\"logger\":" + JSONText.quoted(label)
                + ",\"pid\":\(pid),\"msg\":\"\(count) log lines dropped: stderr was not read fast enough\",\"dropped\":\"\(count)\"}\n"
        }
    }

    public func log(event: LogEvent) {
        let fields = fields(of: event)
        var line = "{\"ts\":\"\(LineLogHandler.timestamp())\",\"level\":\"\(event.level.rawValue)\",\"logger\":"
        line += JSONText.quoted(label) + ",\"pid\":\(pid),\"msg\":" + JSONText.quoted("\(event.message)")
        for key in fields.keys.sorted() where !["ts", "level", "logger", "msg", "child_pid"].contains(key) {
            let name = key == "pid" ? "child_pid" : key
            line += "," + JSONText.quoted(name) + ":" + JSONText.quoted("\(fields[key]!)")
        }
        line += "}\n"
        writeLine(line)
    }
}

/// The two formats, as `LOG_FORMAT` names them.
public enum LogOutput: String, Sendable, CaseIterable {
    case text
    case json

    public func handler(label: String, level: Logger.Level) -> any LogHandler {
        switch self {
        case .text: LineLogHandler(label: label, level: level)
        case .json: JSONLogHandler(label: label, level: level)
        }
    }
}
