import SupervisorSystem
import Arbiter
import Settings
import LogFormat
import Glibc

/// Everything the supervisor needs to run, validated before anything is bound or spawned.
package struct SupervisorSettings: Sendable {
    package var arbiter = Arbiter<ContinuousClock.Instant>.Configuration(
        workers: Catalog.workers.defaultValue, workerRange: Catalog.workers.range,
        gracefulTimeout: Catalog.gracefulTimeout.defaultValue, heartbeatTimeout: Catalog.heartbeatTimeout.defaultValue,
        bootTimeout: Catalog.bootTimeout.defaultValue)
    package var bind: BindAddress = .tcp(host: HostPortSyntax.everyIPv4Address, port: UInt16(Catalog.port.defaultValue))
    /// Kernel accept queue, as gunicorn's: a burst during a rolling restart queues instead of being refused.
    package var backlog = Int32(Catalog.backlog.defaultValue)
    package var command: Spawner.Command
    package var environment: [String: String]
    /// The scheduled cleanup job; nil when there is none.
    package var cleanup: CleanupConfiguration?
    /// The connection budget (`--budget`, `DB_*`, `REPLICAS`).
    package var budget: BudgetConfiguration?
    /// With `--budget warn`, what would have been refused, for the start log.
    package var budgetWarning: String?
    /// A worker asks to be replaced after this many requests (`--max-requests`), plus up to the jitter, so
    /// that workers started together do not all recycle together.
    package var maxRequests: Int?
    package var maxRequestsJitter = Catalog.maxRequestsJitter.defaultValue
    /// The control socket's path (`--control-socket`); nil for none.
    package var controlSocket: String?
    /// The path came from `--control-socket` or `CONTROL_SOCKET`: if it cannot be created the supervisor exits
    /// 71 rather than run deaf to the commands the operator will send there; the default path only warns.
    package var controlSocketIsExplicit = false
    /// Where the admin endpoint serves every worker's metrics (`--metrics-bind`); nil for none, the default.
    package var metricsBind: BindAddress?

    /// Permissions and group of a `unix:` listening socket (`--socket-mode`, `--socket-group`).
    package var socketMode = Catalog.socketMode.defaultValue
    package var socketGroup: gid_t?
    /// `--log-level` / `LOG_LEVEL` and `--log-format` / `LOG_FORMAT`, for the supervisor's own lines.
    package var logLevel = Catalog.logLevel.defaultValue
    package var logFormat = Catalog.logFormat.defaultValue
    /// The TCP ports of `DATABASE_URL` (Postgres, or PgBouncer): `status` counts each worker's connections to them.
    package var databasePorts: Set<Int> = []
    /// Variables the supervisor sets for its workers from its own flags (`--log-level` becomes `LOG_LEVEL`).
    package var workerVariables: [String: String] = [:]

    package init(command: Spawner.Command, environment: [String: String]) {
        self.command = command
        self.environment = environment
    }
}

