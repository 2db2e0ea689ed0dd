import Arbiter
import Budget

/// The connection budget as the supervisor applies it: read from the same variables the workers read their
/// pools from, so the arithmetic is about the pools the workers will really have.
public struct BudgetConfiguration: Sendable {
    /// `--budget` / `DB_BUDGET`.
    public enum Mode: String, Sendable {
        /// A configuration that can exceed the budget does not start (exit 78); TTIN and scale past it are
        /// refused; restarts surge only when the surge fits.
        case enforce
        /// The same table, as a warning; nothing is refused or held back.
        case warn
        /// No accounting: the workers do not use Postgres.
        case off
    }

    public var mode: Mode
    public var budget: ConnectionBudget
    /// `DB_POOL_SIZE=auto`: the supervisor sizes each worker's pool from the budget.
    public var poolIsAuto = false
    /// `DB_MAX_OVERFLOW` given alongside `auto`: the overflow stays this, the persistent part takes the rest.
    public var pinnedOverflow: Int?

    /// What the arbiter counts: nil unless enforced (an automatic pool is always enforced: it is the budget).
    public var limits: ConnectionLimits? {
        guard mode == .enforce || poolIsAuto else { return nil }
        return ConnectionLimits(steady: budget.steadyLimitPerReplica, peak: budget.peakLimitPerReplica,
                                perWorker: poolIsAuto ? nil : budget.perWorker)
    }

    /// The pool variables of a worker given `connections` by the arbiter; empty unless pools are automatic
    /// (otherwise the worker reads the same variables the supervisor did).
    public func poolEnvironment(connections: Int) -> [String] {
        guard poolIsAuto, let pool = PoolSize.split(total: connections, overflow: pinnedOverflow) else { return [] }
        return ["DB_POOL_SIZE=\(pool.size)", "DB_MAX_OVERFLOW=\(pool.overflow)"]
    }

    /// The table and verdict, for the start log and `supervisor budget`.
    public var table: String { budget.table(poolIsAuto: poolIsAuto) }

    /// Reads the budget's settings: flags first (`--replicas`, `--budget`, and for `supervisor budget` the pool
    /// flags), then the variables. A flag's error is a usage error, a variable's a configuration error.
    ///
    /// The default mode is `enforce` when the workers will use Postgres (`DATABASE_URL` is set, or pools are
    /// automatic) and `off` otherwise, so a supervisor in front of some other program is not held to
    /// arithmetic about connections it never opens.
    public static func read(workers: Int, cleanup: PoolSize?, flags: [String: String],
                            environment: [String: String]) throws(StartupError) -> BudgetConfiguration {
        func setting(_ flag: String, _ variable: String) -> (text: String, name: String, fromFlag: Bool)? {
            if let text = flags[flag] { return (text, flag, true) }
            if let text = environment[variable], !text.isEmpty { return (text, variable, false) }
            return nil
        }
        func number(_ flag: String, _ variable: String, _ range: ClosedRange<Int>, default value: Int)
            throws(StartupError) -> Int
        {
            guard let found = setting(flag, variable) else { return value }
            do { return try SettingParser.count(found.text, name: found.name, range: range) } catch {
                throw found.fromFlag ? .usage(error.description) : .configuration(error.description)
            }
        }
        let poolSetting = setting("--pool-size", "DB_POOL_SIZE")
        let poolIsAuto = poolSetting?.text.lowercased() == "auto"
        let size = poolIsAuto ? 10 : try number("--pool-size", "DB_POOL_SIZE", 0...100_000, default: 10)
        let overflow = try number("--max-overflow", "DB_MAX_OVERFLOW", 0...100_000, default: 10)
        var budget = ConnectionBudget(workers: workers, pool: PoolSize(size: size, overflow: overflow), cleanup: cleanup)
        budget.maxConnections = try number("--max-connections", "DB_MAX_CONNECTIONS", 1...1_000_000, default: 100)
        budget.reserved = try number("--reserved", "DB_RESERVED_CONNECTIONS", 0...1_000_000, default: 20)
        budget.replicas = try number("--replicas", "REPLICAS", 1...10_000, default: 1)
        let pgbouncerSetting = setting("--pgbouncer", "DB_PGBOUNCER")
        if let pgbouncerSetting, ["1", "true", "yes", "on"].contains(pgbouncerSetting.text.lowercased()) {
            budget.pgbouncer = PgBouncerPlan(
                maxClientConnections: try number("--max-client-conn", "PGBOUNCER_MAX_CLIENT_CONN", 1...1_000_000, default: 100),
                poolSize: try number("--pgbouncer-pool-size", "PGBOUNCER_POOL_SIZE", 1...100_000, default: 20),
                instances: try number("--pgbouncers", "PGBOUNCER_INSTANCES", 1...10_000, default: 1))
        }

        let modeSetting = setting("--budget", "DB_BUDGET")
        let mode: Mode
        if let modeSetting {
            guard let parsed = Mode(rawValue: modeSetting.text.lowercased()) else {
                let message = "\(modeSetting.name): expected enforce, warn or off, got '\(modeSetting.text)'"
                throw modeSetting.fromFlag ? .usage(message) : .configuration(message)
            }
            mode = parsed
        } else {
            let usesPostgres = !(environment["DATABASE_URL"] ?? "").isEmpty || poolIsAuto
            mode = usesPostgres ? .enforce : .off
        }
        var configuration = BudgetConfiguration(mode: mode, budget: budget, poolIsAuto: poolIsAuto)
        if poolIsAuto {
            configuration.pinnedOverflow = setting("--max-overflow", "DB_MAX_OVERFLOW") == nil ? nil : overflow
            guard let pool = budget.largestPool(workers: workers, overflow: configuration.pinnedOverflow) else {
                throw .budget("DB_POOL_SIZE=auto: \(workers) workers cannot have even 1 connection each within "
                    + "the \(budget.steadyLimitPerReplica) the budget allows each replica", table: configuration.table)
            }
            configuration.budget.pool = pool
        }
        return configuration
    }

    /// Refuses (enforce) or returns the warning to log (warn) for a configuration that does not fit.
    public func check() throws(StartupError) -> String? {
        guard !budget.fits, mode != .off || poolIsAuto else { return nil }
        let problem = budget.problems.first ?? "the budget is exceeded"
        if mode == .warn && !poolIsAuto { return "connection budget exceeded, starting anyway (--budget warn): \(problem)" }
        throw .budget("connection budget exceeded: \(problem)", table: table)
    }
}
