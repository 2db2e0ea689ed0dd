import Settings

/// The supervisor's own metrics: counted by the loop from the arbiter's reports, rendered by the admin
/// endpoint's thread in Prometheus' text format.
package struct SupervisorMetrics: Sendable, Equatable {
    package var workers = 0
    package var ready = 0
    package var retiring = 0
    package var generation = 1
    /// Unplanned ends by kind: `exit` (crash), `boot_timeout`, `heartbeat`.
    package var restarts: [String: Int] = [:]
    package var heartbeatKills = 0
    /// Recycles started, by reason (`max-requests`, `memory`).
    package var recycles: [String: Int] = [:]
    package var reloads = 0
    /// Rolling restarts that ended keeping the old workers (a new worker failed, or a newer HUP came).
    package var reloadsAborted = 0
    /// The supervisor's log lines dropped because stderr was not read fast enough (or was closed).
    package var logLinesDropped = 0
    /// Processes of gone workers' trees found re-parented to the supervisor and signalled, and those still running.
    package var orphansSignalled = 0
    package var orphansRunning = 0
    package var connectionsHeld = 0
    package var connectionsSteadyLimit: Int?
    package var connectionsPeakLimit: Int?
    package var connectionsPerWorker = 0
    package var cleanupRunning = false
    package var cleanupLastSuccess: Double?
    package var cleanupLastDuration: Double?
    package var cleanupLastExitCode: Int32?

    package init() {}

    /// The text format, with `# HELP` and `# TYPE` for every family.
    package func exposition(scrapes: [(slot: Int, ok: Bool)] = []) -> String {
        var out = ""
        func family(_ name: String, _ type: String, _ help: String, _ samples: [(labels: String, value: String)]) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
            for sample in samples { out += "\(name)\(sample.labels) \(sample.value)\n" }
        }
        func one(_ value: some Numeric) -> [(labels: String, value: String)] { [("", "\(value)")] }
        func labelled(_ counts: [String: Int], _ label: String) -> [(labels: String, value: String)] {
            counts.sorted { $0.key < $1.key }.map { ("{\(label)=\"\($0.key)\"}", "\($0.value)") }
        }
        family("prefork_build_info", "gauge", "The supervisor's version and the git commit it was built from.",
               [("{version=\"\(BuildInfo.version)\",commit=\"\(BuildInfo.commit)\"}", "1")])
        family("prefork_workers", "gauge", "Worker slots.", one(workers))
        family("prefork_workers_ready", "gauge", "Slots whose worker said READY=1.", one(ready))
        family("prefork_workers_retiring", "gauge", "Workers told to go and not yet reaped.", one(retiring))
        family("prefork_generation", "gauge", "The generation new workers get (a HUP makes a new one).", one(generation))
        family("prefork_worker_restarts_total", "counter", "Workers that ended or were given up on unplanned, by reason.",
               labelled(restarts, "reason"))
        family("prefork_heartbeat_kills_total", "counter", "Workers aborted for a missed heartbeat.", one(heartbeatKills))
        family("prefork_worker_recycles_total", "counter", "Workers replaced on request, by reason.", labelled(recycles, "reason"))
        family("prefork_reloads_total", "counter", "Rolling restarts started.", one(reloads))
        family("prefork_reloads_aborted_total", "counter", "Rolling restarts that ended keeping the old workers.",
               one(reloadsAborted))
        family("prefork_log_lines_dropped_total", "counter",
               "Supervisor log lines dropped because stderr was not read fast enough, or was closed.", one(logLinesDropped))
        family("prefork_orphans_signalled_total", "counter",
               "Processes of gone workers' trees found re-parented to the supervisor and sent SIGTERM (or SIGKILL).",
               one(orphansSignalled))
        family("prefork_orphans", "gauge", "Orphans signalled and still running.", one(orphansRunning))
        family("prefork_db_connections_allotted", "gauge",
               "Database connections the live workers may hold at their pools' ceilings.", one(connectionsHeld))
        if let connectionsSteadyLimit {
            family("prefork_db_connections_budget", "gauge", "Connections the workers may hold steadily.", one(connectionsSteadyLimit))
        }
        if let connectionsPeakLimit {
            family("prefork_db_connections_peak_limit", "gauge", "Connections the workers may hold at any moment.",
                   one(connectionsPeakLimit))
        }
        family("prefork_db_connections_per_worker", "gauge", "Each new worker's pool ceiling.", one(connectionsPerWorker))
        family("prefork_cleanup_running", "gauge", "1 while the cleanup job runs.", one(cleanupRunning ? 1 : 0))
        if let cleanupLastSuccess {
            family("prefork_cleanup_last_success_timestamp_seconds", "gauge", "When the cleanup last exited 0.",
                   one(cleanupLastSuccess))
        }
        if let cleanupLastDuration {
            family("prefork_cleanup_last_duration_seconds", "gauge", "How long the last cleanup run took.", one(cleanupLastDuration))
        }
        if let cleanupLastExitCode {
            family("prefork_cleanup_last_exit_code", "gauge", "The last cleanup run's exit code (128+n: signal n).",
                   one(cleanupLastExitCode))
        }
        if !scrapes.isEmpty {
            family("prefork_worker_scrape_ok", "gauge", "1 when the worker's metrics were collected for this scrape.",
                   scrapes.map { ("{slot=\"\($0.slot)\"}", $0.ok ? "1" : "0") })
        }
        return out
    }
}
