import TimeUnits
import Glibc

/// The worker's and the cleanup's `--log-level` and `--log-format`: checked as their variables are, then set
/// as them, so the one reading of the environment sees them.
public enum LogFlags {
    public static func apply(level: String?, format: String?) throws(SettingError) {
        for (text, setting) in [(level, Catalog.logLevel.declaration), (format, Catalog.logFormat.declaration)] {
            guard let text else { continue }
            if let problem = setting.kind.problem(text, name: setting.flags[0]) { throw SettingError(problem, fromFlag: true) }
            setenv(setting.variables[0], text, 1)
        }
    }
}
