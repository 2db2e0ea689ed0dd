/// The database connections the arbiter may let its workers hold, from the connection budget.
///
/// Every worker counts for its pool's ceiling from the moment its spawn goes out until it is reaped: a worker
/// that drains after TERM, or hangs after ABRT, still holds its connections. So `peak` bounds every process
/// the arbiter has alive at once, and a spawn that would cross it waits for an exit instead; that is what
/// turns a surge the budget cannot afford into retire-first.
package struct ConnectionLimits: Sendable, Equatable {
    /// What the slots' workers may hold together in the steady state; scaling past it is refused.
    package var steady: Int
    /// What every live worker (serving, booting, draining) may hold at any moment.
    package var peak: Int
    /// Each worker's pool ceiling; nil for `DB_POOL_SIZE=auto`, where it is `steady / workers`.
    package var perWorker: Int?

    package init(steady: Int, peak: Int, perWorker: Int?) {
        self.steady = steady
        self.peak = peak
        self.perWorker = perWorker
    }

    /// Each worker's ceiling with this many workers, or nil when they do not fit.
    package func allotment(workers: Int) -> Int? {
        guard workers >= 1 else { return nil }
        if let perWorker { return workers * perWorker <= steady ? perWorker : nil }
        let share = steady / workers
        return share >= 1 ? share : nil
    }

    /// Why `workers` do not fit, for a refused TTIN or `scale`; `cleanup`: a cleanup job is scheduled (the
    /// `supervisor budget` to look at counts one unless told `--no-cleanup`).
    func refusal(workers: Int, cleanup: Bool = true) -> String {
        if let perWorker {
            return "\(workers) workers × \(perWorker) connections = \(workers * perWorker) is more than the "
                + "budget of \(steady) (see supervisor budget --workers \(workers)\(cleanup ? "" : " --no-cleanup"))"
        }
        return "\(workers) workers cannot have even 1 connection each from a budget of \(steady)"
    }
}
