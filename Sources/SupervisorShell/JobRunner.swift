import SupervisorConfiguration
import SupervisorSystem
import TimeUnits
import Arbiter
import Glibc
import Jobs
import Logging
import Schedule

/// The cleanup job's shell: runs the scheduler's actions (spawn, signal the job's process group, log) on the
/// supervisor's one thread, on the wall clock (a cron schedule is wall-clock time).
final class JobRunner {
    private var scheduler: JobScheduler
    private let configuration: CleanupConfiguration
    private let spawner: Spawner
    private let cgroups: WorkerCgroups?
    private let logger: Logger

    init(configuration: CleanupConfiguration, spawner: Spawner, cgroups: WorkerCgroups?, logger: Logger) {
        self.configuration = configuration
        self.spawner = spawner
        self.cgroups = cgroups
        self.logger = logger
        scheduler = configuration.scheduler(now: Self.wallNow())
    }

    static func wallNow() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
    }

    func announce() {
        logger.notice("cleanup scheduled", metadata: [
            "schedule": "\(configuration.scheduleText)", "zone": "\(configuration.zone.name)",
            "next": "\(scheduler.nextRun.map(Self.format) ?? "never")",
            "command": "\(configuration.command.arguments.joined(separator: " "))",
        ])
    }

    func tick() { perform(scheduler.tick(now: Self.wallNow())) }

    /// True when `pid` was the job (its exit is then logged here, not handed to the arbiter).
    func exited(pid: Int32, status: ExitStatus) -> Bool {
        guard scheduler.owns(pid) else { return false }
        lastExit = status
        // The shell's convention: 128 + the signal for a job killed by one.
        let code: Int32 = switch status {
        case .exited(let code): code
        case .signaled(let signal): 128 + signal
        }
        perform(scheduler.exited(pid: pid, status: code, now: Self.wallNow()))
        return true
    }

    private var lastExit: ExitStatus?

    /// The last finished run, for `supervisor status` and the admin metrics.
    struct LastRun: Sendable {
        var result: String
        var exitCode: Int32
        var durationMilliseconds: Int64
        var finishedAt: Int64
    }
    private(set) var lastRun: LastRun?
    private(set) var lastSuccessAt: Int64?

    var scheduleText: String { configuration.scheduleText }
    var zoneName: String { configuration.zone.name }
    var nextRun: Int64? { scheduler.nextRun }
    var runningPID: Int32? { scheduler.runningPID }

    func stop(grace: Duration) {
        perform(scheduler.stop(now: Self.wallNow(), grace: grace.inMilliseconds))
    }

    /// QUIT or a second TERM: the job's group is killed now.
    func stopNow() {
        perform(scheduler.stopNow(now: Self.wallNow()))
    }

    var isIdle: Bool { scheduler.isIdle }

    /// Milliseconds until the scheduler has something to do.
    var waitMilliseconds: Int64? {
        scheduler.nextDeadline.map { max(0, $0 - Self.wallNow()) }
    }

    /// For the supervisor's `STATUS=`.
    var status: String {
        if let pid = scheduler.runningPID { return "cleanup running (pid \(pid))" }
        return "next cleanup \(scheduler.nextRun.map(Self.format) ?? "never")"
    }

    private func perform(_ actions: [JobScheduler.Action]) {
        for action in actions {
            switch action {
            case .start:
                let cgroup = cgroups?.make("cleanup")
                do {
                    let pid = try spawner.spawnJob(configuration.command, extraEnvironment: configuration.environment,
                                                   cgroup: cgroup)
                    if let cgroup { cgroups?.started(pid, in: cgroup) }
                    perform(scheduler.started(pid: pid, now: Self.wallNow()))
                } catch {
                    if let cgroup { cgroups?.discard(cgroup) }
                    perform(scheduler.startFailed("\(error)", now: Self.wallNow()))
                }
            case .signal(let pid, let signal):
                let number = signal == .terminate ? SIGTERM : SIGKILL
                // The whole tree: the job's process group, and for KILL its cgroup, which setsid cannot leave.
                if number == SIGKILL { cgroups?.kill(treeOf: pid) }
                if kill(-pid, number) != 0 { kill(pid, number) }
            case .report(let report):
                log(report)
            }
        }
    }

    private func log(_ report: JobScheduler.Report) {
        switch report {
        case .scheduled(let at):
            logger.info("cleanup scheduled", metadata: ["next": "\(Self.format(at))"])
        case .skippedStillRunning(let pid, let running, let next):
            logger.notice("cleanup still running, this run is skipped", metadata: [
                "pid": "\(pid)", "running": "\(running)ms", "next": "\(next.map(Self.format) ?? "never")",
            ])
        case .started(let pid):
            logger.info("cleanup started", metadata: ["pid": "\(pid)"])
        case .startFailed(let error):
            logger.error("cleanup could not start", metadata: ["error": "\(error)"])
        case .finished(let pid, let status, let milliseconds):
            let how = lastExit?.description ?? "exit code \(status)"
            let now = Self.wallNow()
            lastRun = LastRun(result: how, exitCode: status, durationMilliseconds: milliseconds, finishedAt: now)
            if status == 0 { lastSuccessAt = now }
            logger.log(level: status == 0 ? .info : .warning, "cleanup finished with \(how)",
                       metadata: ["pid": "\(pid)", "duration": "\(milliseconds)ms"])
        case .timedOut(let pid, let milliseconds):
            logger.warning("cleanup timed out, terminating its process group", metadata: [
                "pid": "\(pid)", "after": "\(milliseconds)ms",
            ])
        case .killed(let pid):
            logger.warning("cleanup did not stop after SIGTERM, killed its process group", metadata: ["pid": "\(pid)"])
        }
    }

    /// `2026-11-28T03:00:00Z`.
    static func format(_ milliseconds: Int64) -> String {
        let time = CivilTime(seconds: milliseconds / 1000)
        return String(time.description.map { $0 == " " ? "T" : $0 }) + "Z"
    }
}
