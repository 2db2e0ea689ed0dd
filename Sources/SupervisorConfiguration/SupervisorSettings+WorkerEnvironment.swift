import Settings
import TimeUnits

extension SupervisorSettings {
    /// The supervisor's environment without `WEB_CONCURRENCY`, with its flags' `LOG_LEVEL`/`LOG_FORMAT`, plus `GRACEFUL_TIMEOUT` as the supervisor will enforce it (whether it came
    /// from the flag or the variable): a worker that knows when its KILL comes can finish disposing its pools
    /// before it.
    package var workerEnvironment: [String] {
        var environment = self.environment.merging(workerVariables) { $1 }
        environment[Catalog.gracefulTimeout.variables[0]] = String(arbiter.gracefulTimeout.inSeconds)
        // The supervisor's worker count, not each worker's: uvicorn and gunicorn read it as their own, and a
        // platform's WEB_CONCURRENCY=4 would make each of 4 workers start 4 processes of its own.
        environment[Catalog.workers.variables[1]] = nil
        // The worker counts its own requests and asks to be recycled (X_PREFORK_RECYCLE) when it reaches them.
        if let maxRequests = maxRequests {
            environment[Catalog.maxRequests.variables[0]] = "\(maxRequests)"
            environment[Catalog.maxRequestsJitter.variables[0]] = "\(maxRequestsJitter)"
        } else {
            environment[Catalog.maxRequests.variables[0]] = nil
            environment[Catalog.maxRequestsJitter.variables[0]] = nil
        }
        return environment.map { "\($0.key)=\($0.value)" }.sorted()
    }
}