import Budget
import Testing

@Suite("Connection budget: the seed's arithmetic")
struct ConnectionBudgetTests {
    static let seedPool = PoolSize(size: 10, overflow: 10)
    static let seedCleanup = PoolSize(size: 1, overflow: 1)

    struct Case: Sendable, CustomTestStringConvertible {
        var workers: Int
        var replicas = 1
        var pool = seedPool
        var maxConnections = 100
        var reserved = 20
        var cleanup: PoolSize? = seedCleanup
        var total: Int
        var fits: Bool
        var surgeFits: Bool
        var testDescription: String { "\(replicas)×\(workers)×\(pool.total) of \(maxConnections)−\(reserved)" }
    }

    @Test(arguments: [
        // The seed: 4 × 20 = 80 ≤ 80, but the surge (20) and the cleanup (2) do not both fit the reserve of 20.
        Case(workers: 4, total: 80, fits: true, surgeFits: false),
        // Its scaling notes: 6 workers → 120, 2 replicas → 160.
        Case(workers: 6, total: 120, fits: false, surgeFits: false),
        Case(workers: 4, replicas: 2, total: 160, fits: false, surgeFits: false),
        // A reserve of 22 holds both; without a cleanup the seed's surge needs exactly 100 of 100.
        Case(workers: 4, reserved: 22, total: 80, fits: false, surgeFits: false),
        Case(workers: 4, maxConnections: 102, reserved: 22, total: 80, fits: true, surgeFits: true),
        Case(workers: 4, cleanup: nil, total: 80, fits: true, surgeFits: true),
        Case(workers: 3, total: 60, fits: true, surgeFits: true),
        Case(workers: 1, pool: PoolSize(size: 80, overflow: 0), total: 80, fits: true, surgeFits: false),
        Case(workers: 8, pool: PoolSize(size: 5, overflow: 5), total: 80, fits: true, surgeFits: true),
        Case(workers: 2, replicas: 2, total: 80, fits: true, surgeFits: false),
    ])
    func table(_ example: Case) {
        let budget = ConnectionBudget.seed(workers: example.workers, pool: example.pool, cleanup: example.cleanup,
                                      maxConnections: example.maxConnections, reserved: example.reserved,
                                      replicas: example.replicas)
        #expect(budget.workerConnections == example.total)
        #expect(budget.fits == example.fits)
        #expect(budget.surgeFits == example.surgeFits)
        #expect(budget.problems.isEmpty == example.fits)
    }

    @Test func theSeedsConfigurationInItsOwnTable() {
        let budget = ConnectionBudget.seed(workers: 4, pool: Self.seedPool, cleanup: Self.seedCleanup)
        let table = budget.table()
        #expect(table.contains("| DB_POOL_SIZE           | 10    | 10 persistent | 40 persistent"))
        #expect(table.contains("| **Max DB connections** | —     | 20            | **80**"))
        #expect(table.contains("fits: 4 workers × 20 = 80 of the 80 connections the workers may use; the cleanup's 2 come out of the 20 reserved"))
        #expect(table.contains("surge does not fit (80 + 20 + 2 = 102 of 100): restarts and recycles go retire-first, one worker at a time (3 of 4 serving meanwhile)"))
    }

    @Test func aRefusalOffersTheLargestPoolTheMostWorkersAndPgBouncer() {
        let six = ConnectionBudget.seed(workers: 6, pool: Self.seedPool, cleanup: Self.seedCleanup)
        #expect(six.problems == ["6 workers × 20 = 120 connections is more than the 80 Postgres allows the workers (100 max_connections − 20 reserved)"])
        #expect(six.largestPool(workers: 6) == PoolSize(size: 7, overflow: 6))
        #expect(six.mostWorkers == 4)
        let ways = six.waysOut.joined(separator: "\n")
        #expect(ways.contains("DB_POOL_SIZE=7 DB_MAX_OVERFLOW=6 (13 per worker, 78 in all)"))
        #expect(ways.contains("--workers 4 (80 connections)"))
        #expect(ways.contains("max_connections ≥ 140"))
        #expect(ways.contains("PgBouncer"))

        let replicas = ConnectionBudget.seed(workers: 4, pool: Self.seedPool, cleanup: Self.seedCleanup, replicas: 2)
        #expect(replicas.problems.first?.hasPrefix("2 replicas × 4 workers × 20 = 160 connections") == true)
        #expect(replicas.largestPool(workers: 4) == PoolSize(size: 5, overflow: 5))
        #expect(replicas.mostWorkers == 2)
        #expect(replicas.table().contains("| Total (2 replicas × 4 workers)"))
    }

    @Test func aCleanupPoolLargerThanTheReserveIsRefused() {
        let budget = ConnectionBudget.seed(workers: 2, pool: Self.seedPool, cleanup: PoolSize(size: 15, overflow: 10))
        #expect(budget.workersFit)
        #expect(!budget.fits)
        #expect(budget.problems == ["the cleanup's pool (25) is more than the 20 reserved connections"])
    }

    @Test func aReserveLargerThanTheServerIsRefused() {
        let budget = ConnectionBudget.seed(workers: 1, pool: PoolSize(size: 1, overflow: 0), maxConnections: 10, reserved: 20)
        #expect(!budget.fits)
        #expect(budget.problems.first?.contains("more than DB_MAX_CONNECTIONS") == true)
    }

    @Test func perReplicaLimitsForTheArbiter() {
        let seed = ConnectionBudget.seed(workers: 4, pool: Self.seedPool, cleanup: Self.seedCleanup)
        #expect(seed.steadyLimitPerReplica == 80)
        #expect(seed.peakLimitPerReplica == 98)  // 80 steady + 20 surge = 100 > 98: retire-first
        let two = ConnectionBudget.seed(workers: 2, pool: Self.seedPool, cleanup: Self.seedCleanup, replicas: 2)
        #expect(two.steadyLimitPerReplica == 40)
        #expect(two.peakLimitPerReplica == 48)
    }

    @Test(arguments: [(1, PoolSize(size: 40, overflow: 40)), (4, PoolSize(size: 10, overflow: 10)),
                      (6, PoolSize(size: 7, overflow: 6)), (80, PoolSize(size: 1, overflow: 0))])
    func automaticPools(workers: Int, expected: PoolSize) {
        let budget = ConnectionBudget.seed(workers: workers, pool: Self.seedPool, cleanup: Self.seedCleanup)
        #expect(budget.largestPool(workers: workers) == expected)
    }

    @Test func automaticPoolsKeepAPinnedOverflowAndStopAtOneConnection() {
        let budget = ConnectionBudget.seed(workers: 4, pool: Self.seedPool)
        #expect(budget.largestPool(workers: 4, overflow: 2) == PoolSize(size: 18, overflow: 2))
        #expect(budget.largestPool(workers: 80, overflow: 5) == PoolSize(size: 1, overflow: 0))
        #expect(budget.largestPool(workers: 81) == nil)
        #expect(PoolSize.split(total: 0) == nil)
    }

    @Test func behindPgBouncerTheClientSlotsAndTheServerPoolAreChecked() {
        var budget = ConnectionBudget.seed(workers: 4, pool: Self.seedPool, cleanup: Self.seedCleanup, replicas: 2)
        #expect(!budget.fits)  // 160 straight to Postgres
        budget.pgbouncer = PgBouncerPlan(maxClientConnections: 200, poolSize: 20, instances: 1)
        #expect(budget.fits)
        #expect(!budget.surgeFits)  // 160 + 40 + 4 > 200
        #expect(budget.steadyLimitPerReplica == 98 && budget.peakLimitPerReplica == 98)
        let table = budget.table()
        #expect(table.contains("| PgBouncer default_pool_size | 20    | —             | **20** (what Postgres sees)"))
        #expect(table.contains("= 164 of PgBouncer's 200 client slots; Postgres sees at most 20 of the 80 it allows"))

        budget.pgbouncer = PgBouncerPlan(maxClientConnections: 100, poolSize: 20, instances: 1)
        #expect(!budget.fits)
        #expect(budget.problems.first?.contains("= 164 client connections is more than PgBouncer's 100") == true)
        #expect(budget.waysOut.contains { $0.contains("max_client_conn ≥ 164") })

        // A PgBouncer per replica (sidecars): the client slots add up, and so do the server pools.
        budget.pgbouncer = PgBouncerPlan(maxClientConnections: 100, poolSize: 50, instances: 2)
        #expect(budget.workersFit && !budget.serverFits)
        #expect(budget.problems == ["PgBouncer's server pools (2 × 50) are more than the 80 Postgres allows (100 max_connections − 20 reserved)"])
        #expect(budget.waysOut.contains { $0.contains("default_pool_size ≤ 40") })
    }
}

extension ConnectionBudget {
    /// The seed's server: max_connections 100, 20 kept in reserve, one replica.
    static func seed(workers: Int, pool: PoolSize, cleanup: PoolSize? = nil, maxConnections: Int = 100, reserved: Int = 20,
                     replicas: Int = 1) -> ConnectionBudget {
        ConnectionBudget(workers: workers, pool: pool, cleanup: cleanup, maxConnections: maxConnections, reserved: reserved,
                         replicas: replicas)
    }
}
