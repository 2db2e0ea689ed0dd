import SupervisorSystem
import Glibc
import Arbiter
import Schedule
import Settings
import TimeUnits

/// The cleanup job as the supervisor runs it: what, when, and with which small pool.
package struct CleanupConfiguration: Sendable {
    package var command: Spawner.Command
    package var scheduleText: String
    package var zone: TimeZoneRules
    package var timeout = Catalog.cleanupTimeout.defaultValue
    package var jitter = Catalog.cleanupJitter.defaultValue
    package var runOnStart = Catalog.cleanupOnStart.defaultValue
    /// The job's own pool, whatever the workers use: `CLEANUP_DB_POOL_SIZE`, `CLEANUP_DB_MAX_OVERFLOW`.
    package var poolSize = Catalog.cleanupPoolSize.defaultValue
    package var maxOverflow = Catalog.cleanupMaxOverflow.defaultValue

    /// The workers' graceful timeout: what a stop of the supervisor gives the job too.
    package var gracefulTimeout = Catalog.gracefulTimeout.defaultValue

    /// After SIGTERM (at its timeout), SIGKILL follows after `Catalog.cleanupKillGrace`, or after the timeout
    /// itself when that is shorter.
    var killGrace: Duration { min(Catalog.cleanupKillGrace, timeout) }

    /// `DB_POOL_SIZE` and `DB_MAX_OVERFLOW` for the job's environment, and `GRACEFUL_TIMEOUT` as the shorter of the
    /// two graces it may get after SIGTERM (its timeout's, the supervisor's stop), so that it cancels a statement
    /// that would outlast either before the SIGKILL.
    package var environment: [String] {
        [Catalog.poolSize.assignment(poolSize), Catalog.maxOverflow.assignment(maxOverflow),
         Catalog.gracefulTimeout.assignment(min(killGrace, gracefulTimeout).inSeconds)]
    }

    /// The arbiter's cleanup sub-machine, scheduled from `milliseconds` (wall clock) on.
    package func job(wall milliseconds: Int64) -> CleanupJob {
        // Parsed again with the start time: `@every` counts from it. It parsed once already, at start.
        let schedule = (try? Schedule.parse(scheduleText, zone: zone, now: milliseconds / 1000))
            ?? .every(seconds: 86400, anchor: milliseconds / 1000)
        var configuration = CleanupJob.Configuration { schedule.next(after: $0) }
        configuration.timeoutMilliseconds = timeout.inMilliseconds
        configuration.killGraceMilliseconds = killGrace.inMilliseconds
        configuration.jitterMilliseconds = jitter.inMilliseconds
        configuration.runOnStart = runOnStart
        return CleanupJob(configuration: configuration, now: milliseconds)
    }
}

extension SupervisorSettings {
    /// The cleanup from its flags and variables: nil with `--no-cleanup`, or when no command was named and no
    /// `cleanup` executable is installed beside the supervisor, or when the workers are not ours and no cleanup
    /// setting was given. A named command that cannot be found is exit 127, a bad schedule or zone 64 (flag) or 78
    /// (variable).
    static func cleanup(reader: SettingsReader, defaultDirectory: String,
                        workerIsOurs: Bool) throws(StartupError) -> CleanupConfiguration? {
        func failure(_ error: SettingError) -> StartupError {
            error.fromFlag ? .usage(error.description) : .configuration(error.description)
        }
        let zoneName: String
        let scheduleText: String
        do throws(SettingError) {
            if try reader[Catalog.noCleanup] { return nil }
            zoneName = try reader[Catalog.cleanupTimezone]
            scheduleText = try reader[Catalog.cleanupSchedule]
        } catch {
            throw failure(error)
        }
        let zone: TimeZoneRules
        do { zone = try TimeZoneRules.load(zoneName) } catch {
            let given = reader.found(Catalog.cleanupTimezone)
            throw failure(SettingError("\(given?.source ?? Catalog.cleanupTimezone.variables[0]): \(error)", fromFlag: given?.fromFlag ?? false))
        }
        do { _ = try Schedule.parse(scheduleText, zone: zone, now: 0) } catch {
            let given = reader.found(Catalog.cleanupSchedule)
            throw failure(SettingError("\(given?.source ?? Catalog.cleanupSchedule.variables[0]): \(error)",
                                       fromFlag: given?.fromFlag ?? false))
        }
        let command: Spawner.Command
        if let found = reader.found(Catalog.cleanupCommand) {
            let words = found.text.split(separator: " ").map(String.init)
            guard let name = words.first, let path = Spawner.resolve(name, path: reader.environment["PATH"]) else {
                throw .commandNotFound("\(found.source): not found or not executable: \(found.text)")
            }
            command = Spawner.Command(path: path, arguments: words)
        } else {
            let path = defaultDirectory + "/cleanup"
            guard access(path, X_OK) == 0 else { return nil }
            // Our cleanup works on our worker's tables: in front of another program (uvicorn, whose
            // DATABASE_URL may not even be libpq's) it is scheduled only when a cleanup setting asks for it.
            let asked = [Catalog.cleanupSchedule.declaration, Catalog.cleanupTimezone.declaration, Catalog.cleanupTimeout.declaration,
                         Catalog.cleanupJitter.declaration, Catalog.cleanupOnStart.declaration].contains { reader.found($0) != nil }
            guard workerIsOurs || asked else { return nil }
            command = Spawner.Command(path: path, arguments: [path])
        }
        var configuration = CleanupConfiguration(command: command, scheduleText: scheduleText, zone: zone)
        do throws(SettingError) {
            configuration.timeout = try reader[Catalog.cleanupTimeout]
            configuration.jitter = try reader[Catalog.cleanupJitter]
            configuration.runOnStart = try reader[Catalog.cleanupOnStart]
            configuration.poolSize = try reader[Catalog.cleanupPoolSize]
            configuration.maxOverflow = try reader[Catalog.cleanupMaxOverflow]
        } catch {
            throw failure(error)
        }
        guard configuration.poolSize + configuration.maxOverflow >= 1 else {
            throw .configuration("CLEANUP_DB_POOL_SIZE + CLEANUP_DB_MAX_OVERFLOW must be at least 1")
        }
        return configuration
    }
}
