import Glibc
import Schedule

/// The cleanup job as the supervisor runs it: what, when, and with which small pool.
public struct CleanupConfiguration: Sendable {
    public var command: Spawner.Command
    public var scheduleText: String
    public var zone: TimeZoneRules
    public var timeout: Duration = .seconds(3600)
    public var jitter: Duration = .zero
    public var runOnStart = false
    /// The job's own pool, whatever the workers use: `CLEANUP_DB_POOL_SIZE` (1), `CLEANUP_DB_MAX_OVERFLOW` (1).
    public var poolSize = 1
    public var maxOverflow = 1

    /// `DB_POOL_SIZE` and `DB_MAX_OVERFLOW` for the job's environment.
    public var environment: [String] {
        ["DB_POOL_SIZE=\(poolSize)", "DB_MAX_OVERFLOW=\(maxOverflow)"]
    }

    public func scheduler(now milliseconds: Int64) -> JobScheduler {
        // Parsed again with the start time: `@every` counts from it. It parsed once already, at start.
        let schedule = (try? Schedule.parse(scheduleText, zone: zone, now: milliseconds / 1000))
            ?? .every(seconds: 86400, anchor: milliseconds / 1000)
        var configuration = JobScheduler.Configuration(schedule: schedule)
        configuration.timeoutMilliseconds = Self.milliseconds(timeout)
        // SIGKILL follows SIGTERM after 10 s, or after the timeout itself when that is shorter.
        configuration.killGraceMilliseconds = min(10_000, configuration.timeoutMilliseconds)
        configuration.jitterMilliseconds = Self.milliseconds(jitter)
        configuration.runOnStart = runOnStart
        return JobScheduler(configuration: configuration, now: milliseconds)
    }

    static func milliseconds(_ duration: Duration) -> Int64 {
        duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
    }
}

extension SupervisorSettings {
    /// The cleanup from its flags and variables: nil with `--no-cleanup`, or when no command was named and no
    /// `cleanup` executable is installed beside the supervisor (a supervisor in front of another kind of
    /// worker). A named command that cannot be found is exit 127, a bad schedule or zone 64 (flag) or 78
    /// (variable).
    static func cleanup(arguments: SupervisorArguments, environment: [String: String],
                        defaultDirectory: String) throws(StartupError) -> CleanupConfiguration? {
        if arguments.noCleanup { return nil }
        func setting(_ flag: String?, _ variable: String) -> (text: String, fromFlag: Bool)? {
            if let flag { return (flag, true) }
            if let text = environment[variable], !text.isEmpty { return (text, false) }
            return nil
        }
        func failure(_ message: String, fromFlag: Bool) -> StartupError {
            fromFlag ? .usage(message) : .configuration(message)
        }
        let zoneSetting = setting(arguments.cleanupTimezone, "CRON_TZ")
        let zone: TimeZoneRules
        do { zone = try TimeZoneRules.load(zoneSetting?.text ?? "UTC") } catch {
            throw failure("\(zoneSetting?.fromFlag == true ? "--cleanup-timezone" : "CRON_TZ"): \(error)",
                          fromFlag: zoneSetting?.fromFlag ?? false)
        }
        let scheduleSetting = setting(arguments.cleanupSchedule, "CLEANUP_SCHEDULE") ?? ("0 3 * * *", false)
        do { _ = try Schedule.parse(scheduleSetting.text, zone: zone, now: 0) } catch {
            throw failure("\(scheduleSetting.fromFlag ? "--cleanup-schedule" : "CLEANUP_SCHEDULE"): \(error)",
                          fromFlag: scheduleSetting.fromFlag)
        }
        let command: Spawner.Command
        if let text = arguments.cleanupCommand {
            let words = text.split(separator: " ").map(String.init)
            guard let name = words.first, let path = Spawner.resolve(name, path: environment["PATH"]) else {
                throw .commandNotFound("--cleanup-command: not found or not executable: \(text)")
            }
            command = Spawner.Command(path: path, arguments: words)
        } else {
            let path = defaultDirectory + "/cleanup"
            guard access(path, X_OK) == 0 else { return nil }
            command = Spawner.Command(path: path, arguments: [path])
        }
        var configuration = CleanupConfiguration(command: command, scheduleText: scheduleSetting.text, zone: zone)
        do throws(ConfigurationError) {
            if let text = arguments.cleanupTimeout {
                configuration.timeout = try SettingParser.duration(text, name: "--cleanup-timeout")
                guard configuration.timeout > .zero else { throw ConfigurationError("--cleanup-timeout: must be more than 0") }
            }
            if let text = arguments.cleanupJitter {
                configuration.jitter = try SettingParser.duration(text, name: "--cleanup-jitter")
            }
        } catch {
            throw .usage(error.description)
        }
        configuration.runOnStart = arguments.cleanupOnStart
        do throws(ConfigurationError) {
            if let text = environment["CLEANUP_DB_POOL_SIZE"], !text.isEmpty {
                configuration.poolSize = try SettingParser.count(text, name: "CLEANUP_DB_POOL_SIZE", range: 0...100)
            }
            if let text = environment["CLEANUP_DB_MAX_OVERFLOW"], !text.isEmpty {
                configuration.maxOverflow = try SettingParser.count(text, name: "CLEANUP_DB_MAX_OVERFLOW", range: 0...100)
            }
        } catch {
            throw .configuration(error.description)
        }
        guard configuration.poolSize + configuration.maxOverflow >= 1 else {
            throw .configuration("CLEANUP_DB_POOL_SIZE + CLEANUP_DB_MAX_OVERFLOW must be at least 1")
        }
        return configuration
    }
}
