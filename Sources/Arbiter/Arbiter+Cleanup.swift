import TimeUnits

extension Arbiter {
    /// The last finished run of the cleanup job, for `supervisor status` and `/metrics`.
    package struct CleanupRun: Sendable, Equatable {
        /// `exit code 0`, `signal 9`.
        package var result: String
        /// The shell's convention: the exit code, or 128 + the signal.
        package var exitCode: Int32
        package var durationMilliseconds: Int64
        /// Wall-clock milliseconds since the epoch.
        package var finishedAt: Int64
    }

    /// The shell ran `.startCleanup` and the job's process exists.
    package mutating func cleanupStarted(pid: Int32, now: Instant) -> [Action] {
        guard cleanup != nil else { return [] }
        return cleanupActions(cleanup!.started(pid: pid, now: wall)) + reconcile(now: now)
    }

    /// The shell ran `.startCleanup` and it could not start.
    package mutating func cleanupStartFailed(error: String, now: Instant) -> [Action] {
        guard cleanup != nil else { return [] }
        return cleanupActions(cleanup!.startFailed(error, now: wall)) + reconcile(now: now)
    }

    /// The job's actions as the arbiter's; a finished run is remembered.
    mutating func cleanupActions(_ actions: [CleanupJob.Action]) -> [Action] {
        actions.map { action in
            switch action {
            case .start:
                return .startCleanup
            case .signal(let pid, let signal):
                return .signalCleanup(pid: pid, kill: signal == .kill)
            case .report(let report):
                guard case .finished(let pid, let status, let milliseconds) = report else { return .report(.cleanup(report)) }
                let run = CleanupRun(result: lastCleanupExit?.description ?? "exit code \(status)", exitCode: status,
                                     durationMilliseconds: milliseconds, finishedAt: wall)
                lastCleanupRun = run
                if status == 0 { lastCleanupSuccessAt = wall }
                return .report(.cleanupFinished(pid: pid, result: run.result, exitCode: status, milliseconds: milliseconds))
            }
        }
    }

    /// The stop reaches the job: SIGTERM now and SIGKILL after the graceful timeout, or SIGKILL now (`fast`).
    mutating func stopCleanup(fast: Bool) -> [Action] {
        guard cleanup != nil else { return [] }
        return cleanupActions(fast ? cleanup!.stopNow(now: wall)
                                   : cleanup!.stop(now: wall, grace: configuration.gracefulTimeout.inMilliseconds))
    }

    /// The job's part of the supervisor's `STATUS=`.
    var cleanupStatus: String? {
        guard let cleanup else { return nil }
        if let pid = cleanup.runningPID { return "cleanup running (pid \(pid))" }
        return "next cleanup \(cleanup.nextRun.map(CleanupJob.format) ?? "never")"
    }
}

extension CleanupJob {
    /// `2026-11-28T03:00:00Z`.
    package static func format(_ milliseconds: Int64) -> String {
        let time = CivilTime(seconds: milliseconds / 1000)
        return String(time.description.map { $0 == " " ? "T" : $0 }) + "Z"
    }
}

extension ExitStatus {
    /// The shell's convention: the exit code, or 128 + the signal for a process killed by one.
    var shellCode: Int32 {
        switch self {
        case .exited(let code): code
        case .signaled(let signal): 128 + signal
        }
    }
}
