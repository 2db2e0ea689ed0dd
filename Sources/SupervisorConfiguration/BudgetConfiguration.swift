import SupervisorSystem
import Arbiter
import Budget
import Settings

/// The connection budget as the supervisor applies it: read from the same variables the workers read their
/// pools from, so the arithmetic is about the pools the workers will really have.
package struct BudgetConfiguration: Sendable {
    package typealias Mode = BudgetMode

    package var mode: Mode
    package var budget: ConnectionBudget
    /// `DB_POOL_SIZE=auto`: the supervisor sizes each worker's pool from the budget.
    package var poolIsAuto = false
    /// `DB_MAX_OVERFLOW` given alongside `auto`: the overflow stays this, the persistent part takes the rest.
    package var pinnedOverflow: Int?

    /// What the arbiter counts: nil unless enforced (an automatic pool is always enforced: it is the budget).
    package var limits: ConnectionLimits? {
        guard mode == .enforce || poolIsAuto else { return nil }
        return ConnectionLimits(steady: budget.steadyLimitPerReplica, peak: budget.peakLimitPerReplica,
                                perWorker: poolIsAuto ? nil : budget.perWorker)
    }

    /// The pool variables of a worker given `connections` by the arbiter: with automatic pools the split of
    /// them; with counted pools (the budget enforced or warning) the numbers the budget counted, defaults too, so
    /// that a worker with defaults of its own (a Python app's `pool_settings(size=20)`) gets what was counted.
    /// Empty when the budget is off.
    package func poolEnvironment(connections: Int) -> [String] {
        let pool: PoolSize
        if poolIsAuto {
            guard let split = PoolSize.split(total: connections, overflow: pinnedOverflow) else { return [] }
            pool = split
        } else {
            guard mode != .off else { return [] }
            pool = budget.pool
        }
        return [Catalog.poolSize.assignment(pool.size), Catalog.maxOverflow.assignment(pool.overflow)]
    }

    /// The table and verdict, for the start log and `supervisor budget`.
    package var table: String { budget.table(poolIsAuto: poolIsAuto) }

    /// Reads the budget's settings: flags first (`--replicas`, `--budget`, and for `supervisor budget` the pool
    /// flags), then the variables. A flag's error is a usage error, a variable's a configuration error.
    ///
    /// The default mode is `enforce` when the workers will use Postgres (`DATABASE_URL` is set, or pools are
    /// automatic) and `off` otherwise, so a supervisor in front of some other program is not held to
    /// arithmetic about connections it never opens.
    package static func read(workers: Int, cleanup: PoolSize?, reader: SettingsReader) throws(StartupError) -> BudgetConfiguration {
        do {
            return try read(workers: workers, cleanup: cleanup, settings: reader)
        } catch let error as SettingError {
            throw error.fromFlag ? .usage(error.description) : .configuration(error.description)
        } catch let error as StartupError {
            throw error
        } catch {
            throw .configuration("\(error)")
        }
    }

    private static func read(workers: Int, cleanup: PoolSize?, settings reader: SettingsReader) throws -> BudgetConfiguration {
        let size = try reader[Catalog.poolSize]
        let poolIsAuto = size == .auto
        let overflow = try reader[Catalog.maxOverflow]
        // With `auto`, the declared size stands in until the budget works out the real one.
        let pool = PoolSize(size: size.count ?? Catalog.poolSize.defaultValue.count!, overflow: overflow)
        var budget = ConnectionBudget(workers: workers, pool: pool, cleanup: cleanup,
                                      maxConnections: try reader[Catalog.maxConnections],
                                      reserved: try reader[Catalog.reservedConnections], replicas: try reader[Catalog.replicas])
        if try reader[Catalog.pgbouncer] {
            budget.pgbouncer = PgBouncerPlan(
                maxClientConnections: try reader[Catalog.pgbouncerMaxClientConnections],
                poolSize: try reader[Catalog.pgbouncerPoolSize],
                instances: try reader[Catalog.pgbouncerInstances])
        }
        let mode: Mode
        if let given = try reader[Catalog.budgetMode] {
            mode = given
        } else {
            let usesPostgres = reader.isGiven(Catalog.databaseURL) || poolIsAuto
            mode = usesPostgres ? .enforce : .off
        }
        var configuration = BudgetConfiguration(mode: mode, budget: budget, poolIsAuto: poolIsAuto)
        if poolIsAuto {
            configuration.pinnedOverflow = reader.isGiven(Catalog.maxOverflow) ? overflow : nil
            guard let pool = budget.largestPool(workers: workers, overflow: configuration.pinnedOverflow) else {
                // The table with the smallest pool auto could give (one connection each, or the pinned overflow),
                // so that its numbers and its ways out are auto's, not those of the declared size standing in.
                configuration.budget.pool = PoolSize(size: 1, overflow: configuration.pinnedOverflow ?? 0)
                throw StartupError.budget("DB_POOL_SIZE=auto: \(workers) workers cannot have even 1 connection each within "
                    + "the \(budget.steadyLimitPerReplica) the budget allows each replica", table: configuration.table)
            }
            configuration.budget.pool = pool
        }
        return configuration
    }

    /// Refuses (enforce) or returns the warning to log (warn) for a configuration that does not fit.
    package func check() throws(StartupError) -> String? {
        guard !budget.fits, mode != .off || poolIsAuto else { return nil }
        let problem = budget.problems.first ?? "the budget is exceeded"
        if mode == .warn && !poolIsAuto { return "connection budget exceeded, starting anyway (--budget warn): \(problem)" }
        throw .budget("connection budget exceeded: \(problem)", table: table)
    }
}
