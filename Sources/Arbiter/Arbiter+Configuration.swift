extension Arbiter {
    /// How the arbiter decides a worker is up.
    package enum Readiness: Sendable, Equatable {
        /// The worker says `READY=1` over sd_notify; `WATCHDOG=1` feeds its heartbeat.
        case notify
        /// The worker knows nothing of sd_notify (uvicorn, a python script): it counts as ready once it has
        /// stayed alive this long (`--ready-after`), and has no heartbeat. A worker that ends sooner is a failed
        /// boot, so a rolling restart to a version that cannot start stops with the old workers serving; ready
        /// on spawn, that HUP replaced every working worker with crash-looping ones (0 of 20 requests answered).
        case alive(for: Duration)

        /// Ready the moment it is started: a worker that crashes during its startup still replaces a good one.
        package static var onSpawn: Readiness { .alive(for: .zero) }
    }

    /// Settings of the arbiter, validated once by `validate()`; every duration is typed.
    package struct Configuration: Sendable, Equatable {
        /// Worker slots at start (`--workers`, `API_WORKERS`).
        package var workers: Int

        /// The most slots `--workers`, TTIN and `scale` may ask for (the declaration of `--workers` says how many).
        package var workerRange: ClosedRange<Int>

        /// How long a stopping worker may drain before it is killed (`--graceful-timeout`).
        package var gracefulTimeout: Duration

        /// A ready worker that sends no `WATCHDOG=1` for this long is aborted and replaced; nil disables it.
        /// Workers are told half of it through `WATCHDOG_USEC`'s convention (they ping at half the interval).
        /// It applies to a worker from its first `WATCHDOG=1` on (unless `requireHeartbeat`): gunicorn, like most
        /// `Type=notify` daemons, says READY=1 and never pings, and holding it to a heartbeat it never promised
        /// aborted a healthy gunicorn every 30 s.
        package var heartbeatTimeout: Duration?

        /// Every worker must ping from READY=1 on, as systemd's `WatchdogSec=` requires of a service
        /// (`--require-heartbeat`): a worker that never sends WATCHDOG=1 is aborted one heartbeat timeout after READY.
        package var requireHeartbeat = false

        /// A worker that is not ready this long after it was started is killed and counts as a failed boot.
        package var bootTimeout: Duration

        package var readiness: Readiness = .notify

        /// Between SIGABRT (heartbeat missed: the worker may dump its stack) and SIGKILL.
        package var abortGrace: Duration = .seconds(2)

        /// Delay before restarting a slot after its n-th consecutive failure before READY.
        package var backoff = Backoff()

        /// A worker that ends sooner than this after it started counts as a failure even if it said READY, and
        /// a slot's failure count is forgiven only when a worker lived this long. Without it, a command that
        /// exits at once in `.onSpawn` mode (or says READY and crashes) would be re-forked in a tight loop.
        package var minimumUptime: Duration = .seconds(1)

        /// Consecutive failures before READY after which the first generation is declared unbootable
        /// and the supervisor exits 3, so that a broken deploy fails visibly instead of crash-looping.
        package var bootAttempts: Int = 5

        /// The workers' share of the database connections; nil when they are not counted (no database, or
        /// `--budget warn|off`), and then a rolling restart or recycle always starts the new worker first.
        package var connections: ConnectionLimits?

        /// A recycle whose new worker failed is tried again after this long, not in a loop.
        package var recycleRetryDelay: Duration = .seconds(10)

        /// USR1/USR2 that the operator asked to pass on to the workers (`--relay-signal`); the others are
        /// caught, logged and dropped, so that neither the supervisor nor a worker dies of them.
        package var relayedSignals: Set<UserSignal> = []
        /// `--max-worker-memory`: a ready worker whose resident memory the shell measures above this many bytes
        /// is recycled. nil for no limit.
        package var maxWorkerMemory: Int?

        /// The values that come from settings have no defaults here: their declarations (`Catalog`) hold them.
        package init(workers: Int, workerRange: ClosedRange<Int>, gracefulTimeout: Duration, heartbeatTimeout: Duration?,
                    bootTimeout: Duration) {
            self.workers = workers
            self.workerRange = workerRange
            self.gracefulTimeout = gracefulTimeout
            self.heartbeatTimeout = heartbeatTimeout
            self.bootTimeout = bootTimeout
        }

        /// Checks what the types cannot; the message names the setting, for a one-line error.
        package func validate() throws(ConfigurationError) {
            guard workerRange.contains(workers) else {
                throw ConfigurationError("workers must be from \(workerRange.lowerBound) to \(workerRange.upperBound), got \(workers)")
            }
            guard gracefulTimeout >= .zero else { throw ConfigurationError("graceful timeout must not be negative") }
            if let heartbeatTimeout, heartbeatTimeout <= .zero {
                throw ConfigurationError("heartbeat timeout must be positive (use none to disable it)")
            }
            if requireHeartbeat, heartbeatTimeout == nil || readiness != .notify {
                throw ConfigurationError("require-heartbeat needs sd_notify and a heartbeat timeout above 0")
            }
            guard bootTimeout > .zero else { throw ConfigurationError("boot timeout must be positive") }
            if case .alive(let uptime) = readiness {
                guard uptime >= .zero else { throw ConfigurationError("ready-after must not be negative") }
                guard uptime < bootTimeout else {
                    throw ConfigurationError("ready-after must be shorter than the boot timeout, or no worker could ever be ready")
                }
            }
            guard bootAttempts >= 1 else { throw ConfigurationError("boot attempts must be at least 1") }
            if let connections, connections.allotment(workers: workers) == nil {
                throw ConfigurationError(connections.refusal(workers: workers))
            }
        }
    }
}

package struct ConfigurationError: Error, Equatable, CustomStringConvertible, Sendable {
    package var description: String
    package init(_ description: String) { self.description = description }
}
