/// One process's pool ceiling: `size` connections kept, `overflow` more under load.
public struct PoolSize: Sendable, Equatable, CustomStringConvertible {
    public var size: Int
    public var overflow: Int

    public init(size: Int, overflow: Int) {
        self.size = size
        self.overflow = overflow
    }

    /// What the process can hold at worst: the pool grows on demand up to here.
    public var total: Int { size + overflow }

    public var description: String { "\(size) + \(overflow)" }

    /// The largest pool of `total` connections with the persistent share rounded up: an even split, as the
    /// seed's 10 + 10, unless the overflow is pinned (`DB_MAX_OVERFLOW` given with `DB_POOL_SIZE=auto`).
    public static func split(total: Int, overflow pinned: Int? = nil) -> PoolSize? {
        guard total >= 1 else { return nil }
        if let pinned {
            let overflow = min(max(pinned, 0), total - 1)
            return PoolSize(size: total - overflow, overflow: overflow)
        }
        return PoolSize(size: total - total / 2, overflow: total / 2)
    }
}

/// PgBouncer in transaction mode between the workers and Postgres (`DB_PGBOUNCER=1`): the workers' pools then
/// count against its client slots, and Postgres sees only its server pool.
public struct PgBouncerPlan: Sendable, Equatable {
    /// `max_client_conn`: client connections one PgBouncer accepts.
    public var maxClientConnections: Int
    /// `default_pool_size` (+ `reserve_pool_size`): server connections per database and user.
    public var poolSize: Int
    /// PgBouncers in front of the same Postgres: 1 when the replicas share one, the replica count when each
    /// has its own as a sidecar.
    public var instances: Int

    public init(maxClientConnections: Int, poolSize: Int, instances: Int) {
        self.maxClientConnections = maxClientConnections
        self.poolSize = poolSize
        self.instances = instances
    }

    /// Client slots of every instance together.
    public var clientSlots: Int { maxClientConnections * instances }
    public var serverConnections: Int { poolSize * instances }
}

/// The seed's arithmetic as a value: every worker of every replica at its pool's ceiling must fit under
/// Postgres' `max_connections` minus a reserve, and the reserve must hold what is not a steady worker (the
/// cleanup's pool, and the extra worker of a surge-first restart).
///
/// It is the worst case that counts, not today's use: pools grow on demand, so a configuration that only
/// fits while traffic is light fails on the busiest day, which is when it hurts.
public struct ConnectionBudget: Sendable, Equatable {
    public var workers: Int
    /// Each worker's pool.
    public var pool: PoolSize
    /// The cleanup job's pool, one per replica; nil when no job is scheduled.
    public var cleanup: PoolSize?
    public var maxConnections: Int
    /// Kept out of the workers' reach: migrations, the cleanup, a surge, an operator's psql.
    public var reserved: Int
    /// Supervisors with the same settings against the same server.
    public var replicas: Int
    /// nil: the workers connect to Postgres directly.
    public var pgbouncer: PgBouncerPlan?

    public init(workers: Int, pool: PoolSize, cleanup: PoolSize? = nil, maxConnections: Int, reserved: Int, replicas: Int) {
        self.workers = workers
        self.pool = pool
        self.cleanup = cleanup
        self.maxConnections = maxConnections
        self.reserved = reserved
        self.replicas = replicas
    }

    public var perWorker: Int { pool.total }
    /// Every worker of every replica at its ceiling.
    public var workerConnections: Int { replicas * workers * perWorker }
    /// What the workers may hold together: Postgres' connections minus the reserve, or behind PgBouncer its
    /// client slots minus the cleanups' (the reserve is for whoever connects to Postgres directly).
    public var workerLimit: Int {
        if let pgbouncer { return pgbouncer.clientSlots - cleanupConnections }
        return maxConnections - reserved
    }
    public var cleanupConnections: Int { replicas * (cleanup?.total ?? 0) }
    /// One extra worker per replica (a deploy may roll every replica at once).
    public var surgeConnections: Int { replicas * perWorker }
    /// Steady workers, the cleanup and a surge, all at their ceilings.
    public var peakConnections: Int { workerConnections + cleanupConnections + surgeConnections }

    public var workersFit: Bool { workerConnections <= workerLimit }
    public var cleanupFits: Bool { pgbouncer != nil || cleanupConnections <= reserved }
    /// Behind PgBouncer: its server pools fit Postgres' connections minus the reserve.
    public var serverFits: Bool { pgbouncer.map { $0.serverConnections <= maxConnections - reserved } ?? true }
    public var fits: Bool { workersFit && cleanupFits && serverFits && workerLimit >= 0 && maxConnections >= reserved }
    /// The ceiling everything the workers and cleanups hold must stay under: the server, or PgBouncer's slots.
    public var ceiling: Int { pgbouncer?.clientSlots ?? maxConnections }
    /// Whether a restart or recycle can start the new worker before the old one goes.
    public var surgeFits: Bool { peakConnections <= ceiling }

    /// What one supervisor's workers may hold together, steadily.
    public var steadyLimitPerReplica: Int { max(0, workerLimit) / max(1, replicas) }
    /// What one supervisor's workers may hold at any moment, booting and draining ones included: the server
    /// (or PgBouncer's slots) minus every replica's cleanup. A surge fits when the steady workers plus one more
    /// stay under it.
    public var peakLimitPerReplica: Int { ceiling / max(1, replicas) - (cleanup?.total ?? 0) }

    /// The largest per-worker ceiling for this many workers (what `DB_POOL_SIZE=auto` gives), or nil when not
    /// even one connection each fits.
    public func largestPool(workers: Int, overflow pinned: Int? = nil) -> PoolSize? {
        guard workers >= 1 else { return nil }
        return PoolSize.split(total: steadyLimitPerReplica / workers, overflow: pinned)
    }

    /// The most workers this pool allows.
    public var mostWorkers: Int { perWorker == 0 ? Int.max : steadyLimitPerReplica / perWorker }

    /// Why the configuration is refused, one line each; empty when it fits.
    public var problems: [String] {
        var problems: [String] = []
        if maxConnections < reserved {
            problems.append("DB_RESERVED_CONNECTIONS (\(reserved)) is more than DB_MAX_CONNECTIONS (\(maxConnections))")
        } else if let pgbouncer, !workersFit {
            problems.append("\(formula) + \(cleanupConnections) for the cleanup = \(workerConnections + cleanupConnections) "
                + "client connections is more than PgBouncer's \(pgbouncer.clientSlots) (max_client_conn"
                + (pgbouncer.instances > 1 ? " × \(pgbouncer.instances) instances)" : ")"))
        } else if !workersFit {
            problems.append("\(formula) = \(workerConnections) connections is more than the \(workerLimit) "
                + "Postgres allows the workers (\(maxConnections) max_connections − \(reserved) reserved)")
        }
        if let pgbouncer, !serverFits {
            problems.append("PgBouncer's server pools (\(pgbouncer.instances > 1 ? "\(pgbouncer.instances) × " : "")"
                + "\(pgbouncer.poolSize)) are more than the \(maxConnections - reserved) Postgres allows "
                + "(\(maxConnections) max_connections − \(reserved) reserved)")
        }
        if !cleanupFits {
            problems.append("the cleanup's pool (\(replicas > 1 ? "\(replicas) × " : "")\(cleanup?.total ?? 0)) "
                + "is more than the \(reserved) reserved connections")
        }
        return problems
    }

    /// `4 workers × 20` or `2 replicas × 4 workers × 20`.
    public var formula: String {
        (replicas > 1 ? "\(replicas) replicas × " : "") + "\(workers) worker\(workers == 1 ? "" : "s") × \(perWorker)"
    }

    /// Concrete ways to a configuration that fits, for a refusal.
    public var waysOut: [String] {
        var ways: [String] = []
        if let pool = largestPool(workers: workers, overflow: nil), pool.total < perWorker {
            ways.append("smaller pools: DB_POOL_SIZE=\(pool.size) DB_MAX_OVERFLOW=\(pool.overflow) "
                + "(\(pool.total) per worker, \(replicas * workers * pool.total) in all), or DB_POOL_SIZE=auto")
        }
        if mostWorkers >= 1, mostWorkers < workers {
            ways.append("fewer workers: --workers \(mostWorkers) (\(replicas * mostWorkers * perWorker) connections)")
        }
        if let pgbouncer {
            if !workersFit {
                ways.append("more client slots: max_client_conn ≥ \((workerConnections + cleanupConnections + pgbouncer.instances - 1) / pgbouncer.instances) "
                    + "(PGBOUNCER_MAX_CLIENT_CONN tells the supervisor)")
            }
            if !serverFits {
                ways.append("a smaller server pool: default_pool_size ≤ \((maxConnections - reserved) / pgbouncer.instances) "
                    + "(PGBOUNCER_POOL_SIZE)")
            }
            return ways
        }
        ways.append("a larger server: max_connections ≥ \(workerConnections + max(reserved, cleanupConnections)) "
            + "(DB_MAX_CONNECTIONS tells the supervisor)")
        ways.append("PgBouncer in transaction mode in front of Postgres (DB_PGBOUNCER=1): the pools then count "
            + "against its max_client_conn, and Postgres sees only its default_pool_size")
        return ways
    }

    /// What the surge means, one line.
    public var surgeLine: String {
        let parts = "\(workerConnections) + \(surgeConnections) + \(cleanupConnections)"
        let of = pgbouncer == nil ? "\(ceiling)" : "\(ceiling) client slots"
        if surgeFits {
            return "surge fits: a new worker starts before the old one leaves (\(parts) = \(peakConnections) of \(of))"
        }
        return "surge does not fit (\(parts) = \(peakConnections) of \(of)): restarts and recycles "
            + "go retire-first, one worker at a time (\(max(0, workers - 1)) of \(workers) serving meanwhile)"
    }
}
