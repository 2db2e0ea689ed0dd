extension Arbiter {
    /// What the shell must do. Actions are executed in order; `spawn` is answered with `spawned` or
    /// `spawnFailed` before the next action runs.
    package enum Action: Sendable, Equatable {
        /// Start a worker for `slot`; `connections` is its pool ceiling under the budget (0 when connections are
        /// not counted), which the shell passes on as the worker's pool sizes.
        case spawn(slot: Int, generation: Int, connections: Int)
        /// The stop has begun: no new connection may be accepted (the shell closes the listener) before any
        /// worker is told to go.
        case stopAccepting
        /// Start the cleanup job; answered with `cleanupStarted` or `cleanupStartFailed` before the next action.
        case startCleanup
        /// Signal the cleanup job's whole tree: its process group, and for KILL its cgroup.
        case signalCleanup(pid: Int32, kill: Bool)
        /// Send `signal` to the worker, or to the orphan: to the whole process group it leads (a worker always
        /// leads one), so that a worker's own children go with it.
        case signal(pid: Int32, WorkerSignal)
        /// A message for the supervisor's own manager (systemd), in sd_notify's `KEY=VALUE` lines.
        case notifyUpstream(String)
        case report(Report)
        /// Every child is gone; the supervisor exits with this code.
        case exit(code: Int32)
    }

    /// The signals the arbiter sends; the shell maps them to the platform's numbers.
    package enum WorkerSignal: Sendable, Equatable {
        case terminate
        case abort
        case kill
        /// A relayed USR1/USR2 (`--relay-signal`).
        case user(UserSignal)
    }

    /// USR1 and USR2 mean something different to every program ("reopen logs" to nginx, nothing to uvicorn,
    /// whose default action ends it), so the supervisor relays them only when told to.
    package enum UserSignal: String, Sendable, Hashable, CaseIterable {
        case usr1 = "USR1"
        case usr2 = "USR2"
    }

    /// Lifecycle events for the log, one line each, with slot and pid.
    package enum Report: Sendable, Equatable {
        case spawned(slot: Int, pid: Int32, generation: Int)
        case spawnFailed(slot: Int, error: String)
        case ready(slot: Int, pid: Int32, after: Duration)
        case allReady(workers: Int, after: Duration)
        case exited(slot: Int?, pid: Int32, status: ExitStatus, expected: Bool)
        case restartScheduled(slot: Int, after: Duration, failures: Int)
        case heartbeatMissed(slot: Int, pid: Int32, silentFor: Duration)
        /// A slot's worker ended or was given up on unplanned: what `status` counts per slot and `/metrics` by cause.
        case restarted(slot: Int, cause: RestartCause)
        case bootTimedOut(slot: Int, pid: Int32)
        case killing(pid: Int32, reason: String)
        case stopping(fast: Bool, workers: Int)
        case reloadStarted(generation: Int)
        case reloadFinished(generation: Int)
        case reloadAborted(slot: Int, reason: String)
        case ignored(String)
        case scaled(workers: Int)
        case bootFailed(slot: Int, attempts: Int)
        /// A first-generation worker exited with `BootFailure.configurationExitCode` before it was ready.
        case workerRefusedConfiguration(slot: Int, pid: Int32)
        case strangerNotify(pid: Int32)
        /// What the cleanup job did: scheduled, started, timed out, killed.
        case cleanup(CleanupJob.Report)
        /// The cleanup job ended: `exit code 0`, `signal 9`.
        case cleanupFinished(pid: Int32, result: String, exitCode: Int32, milliseconds: Int64)
        case malformedNotify(pid: Int32)
        case orphanReaped(pid: Int32, status: ExitStatus)
        /// A process of a gone worker's tree was found re-parented to the supervisor and sent SIGTERM (or SIGKILL,
        /// `killing`, when a stop's deadline had passed).
        case orphanSignalled(pid: Int32, killing: Bool)
        /// TTIN or `scale` past the connection budget, or at a moment it cannot be done.
        case refused(String)
        /// A restart or recycle whose surge the budget cannot afford: the old worker goes first.
        case retireFirst(slot: Int, pid: Int32, needed: Int, held: Int, peak: Int)
        /// An empty slot waits for a draining worker's connections before it can spawn.
        case waitingForConnections(slot: Int, needed: Int, held: Int, peak: Int)
        case recycleRequested(slot: Int, pid: Int32, reason: RecycleReason)
        case recycling(slot: Int, pid: Int32, reason: RecycleReason, surge: Bool)
        case recycled(slot: Int, pid: Int32, after: Duration)
        case recycleAborted(slot: Int, reason: String)
        /// A recycle due as soon as the worker was up (over `--max-worker-memory` at its first measurement, or
        /// asked for right after READY) waits `retryAfter` instead of looping.
        case recycleDeferred(slot: Int, pid: Int32, why: String, retryAfter: Duration)
        /// `DB_POOL_SIZE=auto`: the worker count changed and every worker is replaced with its new pool.
        case resizing(workers: Int, connectionsPerWorker: Int)
        /// USR1/USR2 went to the ready workers; booting and draining ones were spared (their handlers may not
        /// be installed, or no longer be).
        case relayed(UserSignal, workers: Int, spared: Int)
        /// The supervisor's own loop did not run for this long; heartbeat deadlines start over.
        case stalled(Duration)
    }

    /// Signals the supervisor itself reacts to (see the signal table, docs/signals.md).
    package enum ControlSignal: Sendable, Equatable {
        case terminate
        case interrupt
        case quit
        case hangup
        case increase
        case decrease
        case user(UserSignal)
    }
}

/// How a child ended, as `waitpid` tells it.
package enum ExitStatus: Sendable, Equatable, CustomStringConvertible {
    case exited(Int32)
    case signaled(Int32)

    package var description: String {
        switch self {
        case .exited(let code): "exit code \(code)"
        case .signaled(let signal): "signal \(signal)"
        }
    }
}

/// The first generation could not get ready: the supervisor stops and exits with this code, so a deploy that
/// cannot boot fails visibly (gunicorn uses the same code for the same reason).
package enum BootFailure {
    package static let exitCode: Int32 = 3
    /// EX_CONFIG from sysexits(3): what our worker and cleanup exit with on a bad setting, and what a worker of
    /// any kind may use to say "retrying will not help". Before it is ready in the first generation, the
    /// supervisor stops at once with the same code, so that a service manager sees a configuration error
    /// (the unit's `RestartPreventExitStatus=78`) rather than exit 3 after five identical attempts.
    package static let configurationExitCode: Int32 = 78
}

/// Why a slot's worker was replaced unplanned (a recycle, a reload, a scale or an exit 0 is not a restart).
package enum RestartCause: String, Sendable, Equatable, CaseIterable {
    /// It ended by itself, with a failure.
    case exit
    /// It was not ready within the boot timeout.
    case bootTimeout = "boot_timeout"
    /// Its heartbeat stopped.
    case heartbeat
    /// It asked for it, with `WATCHDOG=trigger`.
    case watchdog
}
