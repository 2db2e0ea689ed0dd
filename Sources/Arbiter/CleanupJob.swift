/// The cleanup job's life in the supervisor, a sub-machine of the arbiter (as postgres-nio's request queue is of its
/// pool's machine): when to start it, never two at once, a timeout that escalates from TERM to KILL, and a share of
/// the graceful stop. The arbiter routes the job's events to it and its actions out, so the supervisor's loop has
/// one core to feed. Its time is the wall clock (milliseconds since the epoch): a cron schedule is wall-clock time.
package struct CleanupJob: Sendable {
    package struct Configuration: Sendable {
        /// The schedule: the first fire time after a second (both in seconds since the epoch); nil for never.
        package var nextFire: @Sendable (Int64) -> Int64?
        /// A run longer than this gets SIGTERM (`--cleanup-timeout`, 1 h).
        package var timeoutMilliseconds: Int64 = 3_600_000
        /// After SIGTERM, how long before SIGKILL (to the whole process group).
        package var killGraceMilliseconds: Int64 = 10_000
        /// Each run starts up to this much after its scheduled time (`--cleanup-jitter`, 0): replicas with the
        /// same schedule do not all hit the database in the same second.
        package var jitterMilliseconds: Int64 = 0
        /// Run once at start (`--cleanup-on-start`), to catch up a missed night.
        package var runOnStart = false

        package init(nextFire: @escaping @Sendable (Int64) -> Int64?) {
            self.nextFire = nextFire
        }
    }

    package enum Signal: Sendable, Equatable {
        case terminate
        case kill
    }

    package enum Report: Sendable, Equatable {
        case scheduled(at: Int64)
        /// A tick found the previous run still going.
        case skippedStillRunning(pid: Int32, runningForMilliseconds: Int64, next: Int64?)
        case started(pid: Int32)
        case startFailed(String)
        case finished(pid: Int32, status: Int32, milliseconds: Int64)
        case timedOut(pid: Int32, milliseconds: Int64)
        case killed(pid: Int32)
    }

    package enum Action: Sendable, Equatable {
        case start
        /// To the job's whole process group.
        case signal(pid: Int32, Signal)
        case report(Report)
    }

    private enum State: Sendable, Equatable {
        case idle
        /// The shell was asked to start it and has not said how it went.
        case starting
        /// `terminateAt` is the timeout (or the stop's deadline); `killAt` is set once TERM was sent.
        case running(pid: Int32, startedAt: Int64, terminateAt: Int64, killAt: Int64?)
    }

    package let configuration: Configuration
    private var state = State.idle
    package private(set) var nextRun: Int64?
    package private(set) var isStopping = false
    private let jitter: @Sendable (Int64) -> Int64

    /// - Parameter jitter: a random delay in `0...maximum` ms; injected so tests can fix it.
    package init(configuration: Configuration, now: Int64,
                jitter: @escaping @Sendable (Int64) -> Int64 = { $0 > 0 ? Int64.random(in: 0...$0) : 0 }) {
        self.configuration = configuration
        self.jitter = jitter
        nextRun = configuration.runOnStart ? now : Self.next(configuration, after: now, jitter: jitter)
    }

    private static func next(_ configuration: Configuration, after now: Int64, jitter: (Int64) -> Int64) -> Int64? {
        // Whole seconds: a schedule fires on the second after `now`, never twice in one second.
        guard let seconds = configuration.nextFire(now >= 0 ? now / 1000 : (now - 999) / 1000) else { return nil }
        return seconds * 1000 + jitter(configuration.jitterMilliseconds)
    }

    /// The earliest time `tick` has something to do.
    package var nextDeadline: Int64? {
        switch state {
        case .idle, .starting: return isStopping ? nil : nextRun
        case .running(_, _, let terminateAt, let killAt):
            return [killAt ?? terminateAt, isStopping ? nil : nextRun].compactMap { $0 }.min()
        }
    }

    package var runningPID: Int32? {
        if case .running(let pid, _, _, _) = state { return pid }
        return nil
    }

    /// Nothing running or starting: a stopping supervisor may exit.
    package var isIdle: Bool { state == .idle }

    package mutating func tick(now: Int64) -> [Action] {
        var actions: [Action] = []
        if case .running(let pid, let startedAt, let terminateAt, let killAt) = state {
            if let killAt, now >= killAt {
                state = .running(pid: pid, startedAt: startedAt, terminateAt: terminateAt, killAt: Int64.max)
                actions += [.signal(pid: pid, .kill), .report(.killed(pid: pid))]
            } else if killAt == nil, now >= terminateAt {
                state = .running(pid: pid, startedAt: startedAt, terminateAt: terminateAt,
                                 killAt: now + configuration.killGraceMilliseconds)
                actions.append(.signal(pid: pid, .terminate))
                if !isStopping { actions.append(.report(.timedOut(pid: pid, milliseconds: now - startedAt))) }
            }
        }
        guard !isStopping, let due = nextRun, now >= due else { return actions }
        nextRun = Self.next(configuration, after: now, jitter: jitter)
        switch state {
        case .idle:
            state = .starting
            actions.append(.start)
        case .starting:
            break
        case .running(let pid, let startedAt, _, _):
            actions.append(.report(.skippedStillRunning(pid: pid, runningForMilliseconds: now - startedAt, next: nextRun)))
        }
        return actions
    }

    package mutating func started(pid: Int32, now: Int64) -> [Action] {
        guard state == .starting else { preconditionFailure("started without a start action") }
        let terminateAt = isStopping ? now : now + configuration.timeoutMilliseconds
        state = .running(pid: pid, startedAt: now, terminateAt: terminateAt, killAt: nil)
        return [.report(.started(pid: pid))] + (nextRun.map { [.report(.scheduled(at: $0))] } ?? [])
    }

    package mutating func startFailed(_ error: String, now: Int64) -> [Action] {
        state = .idle
        return [.report(.startFailed(error))] + (nextRun.map { [.report(.scheduled(at: $0))] } ?? [])
    }

    /// Whether `pid` is the job: the supervisor's loop asks before it hands an exit to the arbiter.
    package func owns(_ pid: Int32) -> Bool { runningPID == pid }

    package mutating func exited(pid: Int32, status: Int32, now: Int64) -> [Action] {
        guard case .running(let running, let startedAt, _, _) = state, running == pid else { return [] }
        state = .idle
        return [.report(.finished(pid: pid, status: status, milliseconds: now - startedAt))]
    }

    /// A fast stop (QUIT, or a second TERM): the running job's group is killed at the next tick.
    package mutating func stopNow(now: Int64) -> [Action] {
        var actions = stop(now: now, grace: 0)
        if case .running(let pid, let startedAt, let terminateAt, let killAt) = state, killAt != Int64.max {
            state = .running(pid: pid, startedAt: startedAt, terminateAt: terminateAt, killAt: now)
            actions += tick(now: now)
        }
        return actions
    }

    /// The supervisor stops: no new run; a running job gets SIGTERM now and SIGKILL after `grace`.
    package mutating func stop(now: Int64, grace: Int64) -> [Action] {
        guard !isStopping else { return [] }
        isStopping = true
        nextRun = nil
        switch state {
        case .idle:
            return []
        case .starting:
            return []
        case .running(let pid, let startedAt, _, _):
            state = .running(pid: pid, startedAt: startedAt, terminateAt: now, killAt: now + grace)
            return [.signal(pid: pid, .terminate)]
        }
    }
}
