import WorkerRuntime

/// What a worker brings to `Worker.run`: its answers (`Responder`) and the three moments of its life that only
/// it knows how to handle. Everything else (the socket, READY=1, the heartbeat, SIGTERM, the drain, the request
/// limit) is the runtime's, so every worker gets it the same way under our supervisor and under systemd.
public protocol WorkerApplication: Responder {
    /// Before READY=1, with the listener open but nothing accepted yet (connections wait for this worker's
    /// siblings, or in the backlog when it runs alone): warm the pools, check what must answer. Throwing ends
    /// the process with exit 1, which the supervisor counts as a failed boot (a rolling restart to this
    /// version then stops with the old workers serving); throwing a `ConfigurationError` ends it with exit 78,
    /// which stops a first boot at once (retrying a wrong password cannot help). The text returned, if any, goes into the
    /// supervisor's `STATUS=` for this worker ("degraded: Redis unavailable").
    func boot() async throws -> String?

    /// SIGTERM arrived: from now on the worker is leaving (`Worker.isDraining` is true already, for a readiness
    /// route). In-flight requests still finish.
    func beginDraining()

    /// After the last connection closed (or the drain's time ran out): dispose the pools, so no server-side
    /// connection outlives the process. The process exits 0 when this returns.
    func dispose() async

    /// Prometheus text for the supervisor's admin endpoint (it merges every worker's), or nil for none.
    func metricsExposition() -> [UInt8]?
}

extension WorkerApplication {
    public func beginDraining() {}
    public func metricsExposition() -> [UInt8]? { nil }
}
