import TimeUnits
import Logging

public typealias LogLevel = Logger.Level

/// The one reading of `LOG_LEVEL` / `--log-level`, in all three binaries: swift-log's levels plus `warn`, the
/// spelling of Python, Go and most log shippers, in any case. Before, the supervisor took `warn` and the
/// worker refused it: five failed boots and the whole service exited 3.
public enum LogLevelSyntax {
    public static let names = "trace, debug, info, notice, warn(ing), error or critical"

    public static func parse(_ text: String) -> Logger.Level? {
        let word = String(Substring(text).trimmingSpaces).lowercased()
        if word == "warn" { return .warning }
        return Logger.Level(rawValue: word)
    }
}
