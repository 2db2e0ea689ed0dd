import Glibc
import Logging

/// One JSON object per line on stderr, for log collectors (`LOG_FORMAT=json`):
/// `{"ts":"2026-11-27T17:50:20.123Z","level":"info","logger":"worker","pid":41,"msg":"ready","slot":"0"}`.
///
/// Metadata become top-level string fields (sorted, after the fixed ones), so a collector can index `slot`
/// or `pid` without parsing the message.
public struct JSONLogHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    private let label: String
    private let pid = getpid()

    public init(label: String, level: Logger.Level) {
        self.logLevel = level
        self.label = label
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var fields = metadata
        if let extra = event.metadata { fields.merge(extra) { $1 } }
        var line = "{\"ts\":\"\(LineLogHandler.timestamp())\",\"level\":\"\(event.level.rawValue)\",\"logger\":"
        line += JSONText.quoted(label) + ",\"pid\":\(pid),\"msg\":" + JSONText.quoted("\(event.message)")
        for key in fields.keys.sorted() where !["ts", "level", "logger", "pid", "msg"].contains(key) {
            line += "," + JSONText.quoted(key) + ":" + JSONText.quoted("\(fields[key]!)")
        }
        line += "}\n"
        writeLine(line)
    }
}

/// The two formats, as `LOG_FORMAT` names them.
public enum LogOutput: String, Sendable {
    case text
    case json

    public func handler(label: String, level: Logger.Level) -> any LogHandler {
        switch self {
        case .text: LineLogHandler(label: label, level: level)
        case .json: JSONLogHandler(label: label, level: level)
        }
    }
}
