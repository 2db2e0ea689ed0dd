/// The variables a supervisor sets for each worker besides systemd's own (`LISTEN_FDS`, `NOTIFY_SOCKET`,
/// `WATCHDOG_USEC`), named once for the supervisor that writes them and the runtimes that read them.
public enum WorkerContract {
    /// The worker's slot, 0 to workers − 1: a log field and a metrics label.
    public static let slot = "WORKER_SLOT"
    /// The rolling-restart generation the worker belongs to.
    public static let generation = "WORKER_GENERATION"
    /// Where the supervisor's admin endpoint collects the worker's metrics (a unix socket path).
    public static let metricsSocket = "PREFORK_METRICS_SOCKET"
    /// Not systemd's: the listening socket's backlog, for a server library that re-listens the inherited socket.
    public static let listenBacklog = "LISTEN_BACKLOG"
}
