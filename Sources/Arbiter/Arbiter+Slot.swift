extension Arbiter {
    /// A live worker the arbiter counts on (serving, or booting to serve).
    package struct Worker: Sendable, Equatable {
        package var pid: Int32
        package var generation: Int
        package var startedAt: Instant
        /// nil until `READY=1` (without sd_notify: until it has lived `ready-after`).
        package var readyAt: Instant?
        /// The last `WATCHDOG=1` (reset to the moment it became ready); nil while no heartbeat is expected of it:
        /// before its first WATCHDOG=1, unless heartbeats are required from READY on.
        package var lastHeartbeat: Instant?
        /// The worker said `STOPPING=1` on its own.
        package var draining = false
        /// The worker's last `STATUS=` text, for display.
        package var status: String?
        /// The pool ceiling it was started with (0 when connections are not counted).
        package var connections = 0
        /// Why it asked (or the supervisor decided) to be replaced: max requests served, memory.
        package var recycle: RecycleReason?
        /// A recycle whose new worker failed is not tried again before this moment.
        package var recycleNotBefore: Instant?
        /// It was measured under `maxWorkerMemory` at least once: over it later, it grew; over it at its first
        /// measurement, a fresh worker is already too big for the limit.
        package var measuredUnderLimit = false

        var isReady: Bool { readyAt != nil }
    }

    /// One place in the prefork pool. Normally it holds one worker; during a rolling restart it also holds the
    /// replacement that is booting to take over, and the old one keeps serving until the new one is ready.
    package struct Slot: Sendable, Equatable {
        package enum Role: Sendable, Equatable {
            case worker
            case replacement
        }

        package var worker: Worker?
        package var replacement: Worker?
        /// A spawn action is out and not yet answered; no second spawn for this slot until it is.
        package var pendingSpawn: Role?
        /// Consecutive failures (ended before READY, or within the minimum uptime); reset when a worker of the
        /// slot ends after living longer than that.
        package var failures = 0
        /// After a failure: no restart before this moment.
        package var restartAt: Instant?
        /// The connections the outstanding spawn was given.
        package var pendingConnections = 0
        /// Workers of this slot that ended or were given up on unplanned (crash, boot timeout, missed heartbeat).
        package var restarts = 0
        /// Workers of this slot in a row whose recycle was due as soon as they were up: over the memory limit at
        /// their first measurement, or asking for it within the minimum uptime of READY.
        package var earlyRecycles = 0
        /// The slot is empty and waits for connections to be released before it can spawn (reported once).
        var waitingForConnections = false

        var isEmpty: Bool { worker == nil && replacement == nil && pendingSpawn == nil }
    }

    /// A worker that was told to go (TERM, ABRT or KILL) and has not been reaped yet; it no longer counts
    /// toward a slot's capacity.
    package struct Retiree: Sendable, Equatable {
        package var pid: Int32
        package var slot: Int
        /// SIGKILL goes out at this moment unless the worker is gone; nil once it was sent.
        package var killAt: Instant?
        package var reason: String
        /// Still held until the process is reaped.
        package var connections = 0
    }

    /// The last rolling restart and how it ended: `status` shows it, and `supervisor reload` waits for it.
    package struct ReloadRecord: Sendable, Equatable {
        package enum Outcome: Sendable, Equatable {
            case rolling
            case finished
            /// The old workers keep serving; the reason says why (a new worker failed, a newer HUP, a stop).
            case aborted(String)
        }
        package var generation: Int
        package var startedAt: Instant
        package var endedAt: Instant?
        package var outcome: Outcome
    }

    /// A rolling restart (HUP) in progress: slots below `slot` are done.
    package struct RollingRestart: Sendable, Equatable {
        package var generation: Int
        package var slot: Int
        package var startedAt: Instant
        /// A resize gives every worker the pool `DB_POOL_SIZE=auto` computes for the new worker count.
        package var resize = false
    }

    /// One worker being replaced because it asked to be (max requests) or outgrew its memory limit.
    package struct Recycle: Sendable, Equatable {
        package var slot: Int
        /// The worker being replaced.
        package var pid: Int32
        package var reason: RecycleReason
        /// The replacement started before the old worker was told to go.
        package var surge: Bool
        package var startedAt: Instant
    }

    /// Where the supervisor is in its life. Allowed transitions: booting → running (every slot ready),
    /// booting → stopping (boot failed or a stop signal), running → stopping, stopping → stopped (no child left).
    package enum Phase: Sendable, Equatable {
        /// The first generation is starting; the deploy is not up until every slot is ready.
        case booting(since: Instant)
        case running
        /// Every worker got TERM (or KILL when `fast`); `deadline` is when the stragglers get KILL.
        case stopping(deadline: Instant, fast: Bool, exitCode: Int32)
        /// `.exit` was emitted; nothing else happens.
        case stopped
    }
}
