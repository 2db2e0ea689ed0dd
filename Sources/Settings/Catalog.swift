import TimeUnits
import LogFormat
import Logging

/// Every setting of the supervisor, `supervisor budget`, the worker and the cleanup, declared once.
///
/// Order matters: `--help` and the settings reference (docs/reference/settings.md) list them in this order.
public enum Catalog {
    // MARK: The supervisor

    /// How many worker slots a supervisor may run: `--workers`, `API_WORKERS`, `scale` and TTIN all use it.
    private static let workerRange = 1...1024

    public static let workers = Setting<Int>.count(
        ["--workers", "-w"], variables: ["API_WORKERS", "WEB_CONCURRENCY"], default: 1, in: workerRange,
        help: "worker processes, \(workerRange.lowerBound) to \(workerRange.upperBound); API_WORKERS wins over WEB_CONCURRENCY (what PaaS platforms set, and uvicorn and gunicorn read)",
        readers: [.supervisor, .budget])
    public static let bind = Setting<String?>.text(
        ["--bind", "-b"], variables: ["BIND"], defaultHelp: "0.0.0.0:$PORT, or 0.0.0.0:8080",
        valueName: "address",
        help: "host:port, :port, [v6]:port or unix:/path, one address; ignored when the supervisor is itself socket-activated (LISTEN_FDS)",
        readers: [.supervisor, .healthcheck], once: true)
    public static let port = Setting<Int>.count(
        variables: ["PORT"], default: 8080, in: 0...65535,
        help: "the port when no address is given: the supervisor binds 0.0.0.0:PORT, and so does a worker run alone",
        readers: [.supervisor, .healthcheck, .worker])
    public static let socketMode = Setting<UInt32>.fileMode(
        ["--socket-mode"], variables: ["SOCKET_MODE"], default: 0o666,
        help: "permissions of a unix:/path socket; 0666 as uvicorn, so a proxy under another uid can connect "
            + "(the folder's permissions are the access control); 0660 with --socket-group to narrow it",
        readers: [.supervisor])
    public static let socketGroup = Setting<String?>.text(
        ["--socket-group"], variables: ["SOCKET_GROUP"], defaultHelp: "the supervisor's group",
        valueName: "group", help: "group of a unix:/path socket, a name or a gid (the supervisor must belong to it, or be root)",
        readers: [.supervisor])
    public static let backlog = Setting<Int>.count(
        ["--backlog"], variables: ["BACKLOG"], default: 2048, in: 1...65535,
        help: "kernel accept queue of the listening socket", readers: [.supervisor])
    public static let gracefulTimeout = Setting<Duration>.duration(
        ["--graceful-timeout"], variables: ["GRACEFUL_TIMEOUT"], default: .seconds(8), minimum: .milliseconds(1),
        help: "how long a stopping worker may drain before SIGKILL; passed to the workers, which cancel what they still run "
            + "in Postgres a second before it (at half of it when it is 2s or less)", readers: [.supervisor, .worker, .cleanup],
        flagReaders: [.supervisor])
    public static let heartbeatTimeout = Setting<Duration>.duration(
        ["--timeout", "-t"], variables: ["HEARTBEAT_TIMEOUT"], default: .seconds(30), minimum: .zero,
        help: "heartbeat timeout: a ready worker silent this long after its last WATCHDOG=1 gets SIGABRT, then SIGKILL, and is "
            + "replaced; it applies from a worker's first WATCHDOG=1 on (gunicorn never sends one); 0 disables it",
        readers: [.supervisor])
    public static let requireHeartbeat = Setting<Bool>.boolean(
        ["--require-heartbeat"], variables: ["REQUIRE_HEARTBEAT"],
        help: "hold every worker to WATCHDOG=1 from READY=1 on, as systemd's WatchdogSec= does: one that never pings is "
            + "aborted one heartbeat timeout after READY",
        readers: [.supervisor])
    public static let bootTimeout = Setting<Duration>.duration(
        ["--boot-timeout"], variables: ["BOOT_TIMEOUT"], default: .seconds(60), minimum: .milliseconds(1),
        help: "how long a new worker has to send READY=1; then it is killed and counts as a failed boot",
        readers: [.supervisor])
    public static let noNotify = Setting<Bool>.boolean(
        ["--no-notify"], variables: ["NO_NOTIFY"],
        help: "the command does not speak sd_notify: a worker is ready once it has lived --ready-after, and has no heartbeat",
        readers: [.supervisor])
    public static let readyAfter = Setting<Duration>.duration(
        ["--ready-after"], variables: ["READY_AFTER"], default: .seconds(5), minimum: .zero,
        help: "with --no-notify: a worker alive this long is ready; one that ends sooner is a failed boot, and a rolling "
            + "restart stops with the old workers serving",
        readers: [.supervisor])
    public static let logLevel = Setting<LogLevel>.logLevel(
        ["--log-level"], variables: ["LOG_LEVEL"], default: .info,
        help: "trace, debug, info, notice, warn, warning, error or critical, any case; the supervisor passes it to its workers",
        readers: [.supervisor, .worker, .cleanup])
    public static let logFormat = Setting<LogOutput>.choice(
        ["--log-format"], variables: ["LOG_FORMAT"], default: .text,
        help: "text, or json (one object per line); the supervisor passes it to its workers",
        readers: [.supervisor, .worker, .cleanup])
    public static let cleanupSchedule = Setting<String>.text(
        ["--cleanup-schedule"], variables: ["CLEANUP_SCHEDULE"], default: "0 3 * * *", valueName: "expr",
        help: "when the cleanup job runs: a cron expression (5 or 6 fields, @daily, ...) or @every DURATION",
        readers: [.supervisor])
    public static let cleanupTimezone = Setting<String>.text(
        ["--cleanup-timezone"], variables: ["CRON_TZ"], default: "UTC", valueName: "zone",
        help: "the schedule's time zone, from the system's tz database (Europe/Berlin)", readers: [.supervisor, .schedule],
        flagReaders: [.supervisor])
    public static let cleanupCommand = Setting<String?>.text(
        ["--cleanup-command"], variables: ["CLEANUP_COMMAND"], defaultHelp: "cleanup beside the supervisor",
        valueName: "command",
        help: "the job, split on spaces; the installed cleanup by default, scheduled when the workers are ours or a "
            + "cleanup setting is given",
        readers: [.supervisor])
    public static let cleanupTimeout = Setting<Duration>.duration(
        ["--cleanup-timeout"], variables: ["CLEANUP_TIMEOUT"], default: .seconds(3600), minimum: .milliseconds(1),
        help: "a run longer than this gets SIGTERM, and its process group SIGKILL \(Int(cleanupKillGrace.inSeconds)) s later",
        readers: [.supervisor])
    /// After a cleanup run's SIGTERM at its timeout, its SIGKILL follows this much later (or after the timeout itself
    /// when that is shorter).
    public static let cleanupKillGrace: Duration = .seconds(10)
    public static let cleanupJitter = Setting<Duration>.duration(
        ["--cleanup-jitter"], variables: ["CLEANUP_JITTER"], default: .zero, minimum: .zero,
        help: "each run starts up to this much after its time, so replicas do not all start in the same second",
        readers: [.supervisor])
    public static let cleanupOnStart = Setting<Bool>.boolean(
        ["--cleanup-on-start"], variables: ["CLEANUP_ON_START"],
        help: "also run the job once at start, to catch up a missed night", readers: [.supervisor])
    public static let noCleanup = Setting<Bool>.boolean(
        ["--no-cleanup"], variables: ["NO_CLEANUP"],
        help: "schedule no job", readers: [.supervisor, .budget])
    public static let budgetMode = Setting<BudgetMode?>.choice(
        ["--budget"], variables: ["DB_BUDGET"], defaultHelp: "enforce with DATABASE_URL or DB_POOL_SIZE=auto, else off",
        help: "enforce: refuse pools that can exceed Postgres' connections, and TTIN or scale past them; warn: only say so",
        readers: [.supervisor])
    public static let replicas = Setting<Int>.count(
        ["--replicas"], variables: ["REPLICAS"], default: 1, in: 1...10_000,
        help: "supervisors with these settings against the same Postgres, for the budget", readers: [.supervisor, .budget])
    public static let maxRequests = Setting<Int>.count(
        ["--max-requests"], variables: ["MAX_REQUESTS"], default: 0, in: 0...Int(Int32.max),
        help: "a worker asks to be replaced after this many requests; 0 for never", readers: [.supervisor, .worker],
        flagReaders: [.supervisor])
    public static let maxRequestsJitter = Setting<Int>.count(
        ["--max-requests-jitter"], variables: ["MAX_REQUESTS_JITTER"], default: 0, in: 0...Int(Int32.max),
        help: "each worker adds a random 0 to this to --max-requests, so workers started together do not recycle together",
        readers: [.supervisor, .worker], flagReaders: [.supervisor])
    public static let maxWorkerMemory = Setting<Int?>.size(
        ["--max-worker-memory"], variables: ["MAX_WORKER_MEMORY"], defaultHelp: "off",
        help: "replace a worker whose resident memory (its whole process tree's) passes this (512M, 1.5G); checked every second",
        readers: [.supervisor])
    public static let controlSocket = Setting<String?>.text(
        ["--control-socket"], variables: ["CONTROL_SOCKET"],
        defaultHelp: "$RUNTIME_DIRECTORY/supervisor.sock, else $XDG_RUNTIME_DIR/prefork/, /run/prefork/ as root, /tmp/prefork-UID/", valueName: "path",
        help: "where supervisor status/scale/reload/stop reach it (mode 0600); none for no socket",
        readers: [.supervisor, .status, .scale, .reload, .stop, .healthcheck])
    public static let metricsBind = Setting<String?>.text(
        ["--metrics-bind"], variables: ["METRICS_BIND"], defaultHelp: "off", valueName: "host:port",
        help: "serve /metrics for the supervisor and every worker, labelled by slot", readers: [.supervisor])
    public static let relaySignals = Setting<String?>.text(
        ["--relay-signal"], variables: ["RELAY_SIGNALS"], defaultHelp: "none", valueName: "signal",
        help: "USR1 and/or USR2 (repeat, or USR1,USR2): relay that signal to the ready workers instead of dropping it",
        readers: [.supervisor], repeatable: true)

    // MARK: The connection budget (the supervisor, `supervisor budget`; the worker reads the pool sizes)

    public static let poolSize = Setting<CountOrAuto>.countOrAuto(
        ["--pool-size"], variables: ["DB_POOL_SIZE"], default: 10, in: 0...100_000,
        help: "persistent Postgres connections per worker; auto: the largest pool the budget affords",
        readers: [.supervisor, .budget, .worker, .cleanup], flagReaders: [.budget])
    public static let maxOverflow = Setting<Int>.count(
        ["--max-overflow"], variables: ["DB_MAX_OVERFLOW"], default: 10, in: 0...100_000,
        help: "extra Postgres connections per worker under load, closed when returned",
        readers: [.supervisor, .budget, .worker, .cleanup], flagReaders: [.budget])
    public static let maxConnections = Setting<Int>.count(
        ["--max-connections"], variables: ["DB_MAX_CONNECTIONS"], default: 100, in: 1...1_000_000,
        help: "Postgres' max_connections", readers: [.supervisor, .budget], flagReaders: [.budget])
    public static let reservedConnections = Setting<Int>.count(
        ["--reserved"], variables: ["DB_RESERVED_CONNECTIONS"], default: 20, in: 0...1_000_000,
        help: "connections kept for admins, migrations, the cleanup and a restart's surge",
        readers: [.supervisor, .budget], flagReaders: [.budget])
    public static let cleanupPoolSize = Setting<Int>.count(
        ["--cleanup-pool-size"], variables: ["CLEANUP_DB_POOL_SIZE"], default: 1, in: 0...100,
        help: "the cleanup job's pool (the supervisor passes it as its DB_POOL_SIZE)", readers: [.supervisor, .budget],
        flagReaders: [.budget])
    public static let cleanupMaxOverflow = Setting<Int>.count(
        ["--cleanup-max-overflow"], variables: ["CLEANUP_DB_MAX_OVERFLOW"], default: 1, in: 0...100,
        help: "the cleanup job's overflow (passed as its DB_MAX_OVERFLOW)", readers: [.supervisor, .budget],
        flagReaders: [.budget])
    public static let pgbouncer = Setting<Bool>.boolean(
        ["--pgbouncer"], variables: ["DB_PGBOUNCER"],
        help: "DATABASE_URL points at PgBouncer in transaction mode: no prepared statements; the budget counts its pools",
        readers: [.supervisor, .budget, .worker, .cleanup], flagReaders: [.budget])
    public static let pgbouncerMaxClientConnections = Setting<Int>.count(
        ["--max-client-conn"], variables: ["PGBOUNCER_MAX_CLIENT_CONN"], default: 100, in: 1...1_000_000,
        help: "PgBouncer's max_client_conn", readers: [.supervisor, .budget], flagReaders: [.budget])
    public static let pgbouncerPoolSize = Setting<Int>.count(
        ["--pgbouncer-pool-size"], variables: ["PGBOUNCER_POOL_SIZE"], default: 20, in: 1...100_000,
        help: "PgBouncer's default_pool_size: its server connections to Postgres", readers: [.supervisor, .budget],
        flagReaders: [.budget])
    public static let pgbouncerInstances = Setting<Int>.count(
        ["--pgbouncers"], variables: ["PGBOUNCER_INSTANCES"], default: 1, in: 1...10_000,
        help: "PgBouncer processes in front of the same Postgres", readers: [.supervisor, .budget], flagReaders: [.budget])

    // MARK: The Postgres and Redis pools (the worker; the cleanup for Postgres)

    public static let databaseURL = Setting<String?>.url(
        variables: ["DATABASE_URL"], kind: .postgresURL, defaultHelp: "none: required by the worker and the cleanup; when set, the supervisor's budget is on",
        help: "postgresql://user:password@host:port/db?...; a defect is named without the value",
        readers: [.supervisor, .worker, .cleanup])
    public static let poolTimeout = Setting<Duration>.duration(
        variables: ["DB_POOL_TIMEOUT"], default: .seconds(30), minimum: .milliseconds(1),
        help: "how long a Postgres checkout waits for a connection before it fails", readers: [.worker, .cleanup])
    public static let poolRecycle = Setting<Duration?>.duration(
        variables: ["DB_POOL_RECYCLE"], default: .seconds(3600), minimum: .milliseconds(1), never: true,
        help: "a Postgres connection older than this is replaced at its next checkout; -1 for never",
        readers: [.worker, .cleanup])
    public static let prePing = Setting<Bool>.boolean(
        variables: ["DB_POOL_PRE_PING"], default: true,
        help: "ping a Postgres connection idle for over a second before handing it out", readers: [.worker, .cleanup])
    public static let statementTimeout = Setting<Duration?>.duration(
        variables: ["DB_STATEMENT_TIMEOUT"], default: nil, defaultHelp: "the server's", minimum: .milliseconds(1),
        maximum: postgresLongestTimeout, never: false,
        help: "statement_timeout of every pooled Postgres connection (not with DB_PGBOUNCER)", readers: [.worker, .cleanup])
    /// Postgres keeps `statement_timeout` in milliseconds in an int: 2^31 - 1 ms is about 24.8 days, and a longer
    /// value is refused by the server at every connect (every boot would fail, and read as an unreachable server).
    public static let postgresLongestTimeout: Duration = .seconds(24 * 86_400)
    public static let applicationName = Setting<String?>.text(
        variables: ["DB_APPLICATION_NAME"], defaultHelp: "api-worker, cleanup",
        help: "application_name, how pg_stat_activity tells the pools apart", readers: [.worker, .cleanup])
    public static let preparedStatements = Setting<Bool?>.boolean(
        variables: ["DB_PREPARED_STATEMENTS"], defaultHelp: "true, false with DB_PGBOUNCER",
        help: "prepare each statement once per connection", readers: [.worker, .cleanup])
    public static let pipeline = Setting<Bool?>.boolean(
        variables: ["DB_PIPELINE"], defaultHelp: "true, false with DB_PGBOUNCER",
        help: "send concurrent single statements on one connection, libpq's pipeline mode", readers: [.worker, .cleanup])
    public static let redisURL = Setting<String?>.url(
        variables: ["REDIS_URL"], kind: .redisURL, defaultHelp: "none: required by the worker",
        help: "redis://[[user]:password@]host[:port][/db]", readers: [.worker])
    public static let redisPoolSize = Setting<Int>.count(
        variables: ["REDIS_POOL_SIZE"], default: 5, in: 1...10_000,
        help: "Redis connections per worker", readers: [.worker])
    public static let redisPoolTimeout = Setting<Duration>.duration(
        variables: ["REDIS_POOL_TIMEOUT"], default: .seconds(5), minimum: .milliseconds(1),
        help: "how long a Redis checkout waits (then authentication falls back to Postgres)", readers: [.worker])
    public static let redisSocketTimeout = Setting<Duration>.duration(
        variables: ["REDIS_SOCKET_TIMEOUT"], default: .seconds(2), minimum: .milliseconds(1),
        help: "how long a Redis reply may take", readers: [.worker])
    public static let redisConnectTimeout = Setting<Duration>.duration(
        variables: ["REDIS_CONNECT_TIMEOUT"], default: .seconds(2), minimum: .milliseconds(1),
        help: "how long a Redis connect may take", readers: [.worker])

    // MARK: The API worker

    public static let rateLimit = Setting<Int>.count(
        variables: ["RATE_LIMIT_PER_MINUTE"], default: 1000, in: 0...Int(Int32.max),
        help: "requests per token per minute; 0 turns the limit off", readers: [.worker])
    public static let authCacheTTL = Setting<Duration>.duration(
        variables: ["AUTH_CACHE_TTL"], default: .seconds(60), minimum: .seconds(1),
        help: "how long a token's user stays cached in Redis (whole seconds, rounded up)", readers: [.worker])
    public static let maxBodySize = Setting<Int>.size(
        variables: ["MAX_BODY_SIZE"], default: 1 << 20,
        help: "largest request body; a larger one gets 413", readers: [.worker])
    public static let headerTimeout = Setting<Duration>.duration(
        variables: ["HEADER_TIMEOUT"], default: .seconds(10), minimum: .milliseconds(1),
        help: "a request head must arrive within this; also the keep-alive idle time", readers: [.worker])
    public static let bodyTimeout = Setting<Duration>.duration(
        variables: ["BODY_TIMEOUT"], default: .seconds(30), minimum: .milliseconds(1),
        help: "from a request's head to the end of its body, else 408", readers: [.worker])
    public static let bodyBufferLimit = Setting<Int?>.size(
        variables: ["BODY_BUFFER_LIMIT"], defaultHelp: "32M, or 4 × MAX_BODY_SIZE if more",
        help: "request-body bytes a worker buffers at once, at least MAX_BODY_SIZE; past it 503", readers: [.worker])
    public static let authMissConcurrency = Setting<Int>.count(
        variables: ["AUTH_MISS_CONCURRENCY"], default: 2, in: 0...10_000,
        help: "Postgres lookups of uncached tokens at once per worker; 0 turns the cap off", readers: [.worker])
    public static let authMissQueue = Setting<Int>.count(
        variables: ["AUTH_MISS_QUEUE"], default: 64, in: 0...1_000_000,
        help: "uncached-token lookups that may wait; past it 503", readers: [.worker])
    public static let workerThreads = Setting<Int>.count(
        variables: ["WORKER_THREADS"], default: 1, in: 1...256,
        help: "SwiftNIO threads per worker for its side work (metrics to the supervisor); requests are served on one thread, the supervisor's processes give the parallelism", readers: [.worker])
    public static let accessLog = Setting<Bool>.boolean(
        variables: ["ACCESS_LOG"],
        help: "one log line per request", readers: [.worker])

    // MARK: The cleanup job

    public static let retentionDays = Setting<Int>.count(
        variables: ["CLEANUP_RETENTION_DAYS"], default: 30, in: 0...36_500,
        help: "notes soft-deleted longer ago than this many days are removed", readers: [.cleanup])
    public static let batchSize = Setting<Int>.count(
        variables: ["CLEANUP_BATCH_SIZE"], default: 1000, in: 1...1_000_000,
        help: "rows per batch, each in its own short transaction", readers: [.cleanup])
    public static let cleanupStatementTimeout = Setting<Duration>.duration(
        variables: ["CLEANUP_STATEMENT_TIMEOUT"], default: .seconds(30), minimum: .seconds(1), maximum: postgresLongestTimeout,
        help: "each batch's statement_timeout", readers: [.cleanup])

    // MARK: The supervisor's commands, the worker's and the cleanup's flags

    public static let checkDatabase = Setting<Bool>.boolean(
        ["--check-db"], help: "compare the plan with the server at DATABASE_URL: its max_connections and what is connected now",
        readers: [.budget])
    public static let statusJSON = Setting<Bool>.boolean(
        ["--json"], help: "one JSON object (the fields of the table, and the last reload's outcome)", readers: [.status])
    public static let noWait = Setting<Bool>.boolean(
        ["--no-wait"], help: "return once the supervisor has accepted the request, not at its outcome", readers: [.reload, .stop])
    public static let reloadTimeout = Setting<Duration>.duration(
        ["--timeout"], default: .seconds(600), minimum: .milliseconds(1),
        help: "exit 75 when the rolling restart is still going after this long", readers: [.reload])
    public static let stopTimeout = Setting<Duration>.duration(
        ["--timeout"], default: .seconds(120), minimum: .milliseconds(1),
        help: "exit 75 when the supervisor is still stopping after this long", readers: [.stop])
    public static let healthcheckPath = Setting<String>.text(
        ["--path"], default: "/healthz", valueName: "path", help: "the path to GET; 200 is healthy", readers: [.healthcheck])
    public static let healthcheckTimeout = Setting<Duration>.duration(
        ["--timeout"], default: .seconds(2), minimum: .milliseconds(1),
        help: "the whole check, the supervisor's answer and the GET together", readers: [.healthcheck])
    public static let scheduleTimezone = Setting<String?>.text(
        ["--timezone"], defaultHelp: "CRON_TZ, else UTC", valueName: "zone",
        help: "the zone to compute the runs in, from the system's tz database", readers: [.schedule])
    public static let scheduleCount = Setting<Int>.count(
        ["--count"], default: 5, in: 1...1000, help: "how many runs to print", readers: [.schedule])
    public static let scheduleAfter = Setting<String?>.text(
        ["--after"], defaultHelp: "now", valueName: "epoch",
        help: "the runs after this instant, in seconds since the epoch (year 1 to 9999)", readers: [.schedule])
    public static let scheduleBatch = Setting<Bool>.boolean(
        ["--batch"], help: "read ZONE<TAB>EPOCH<TAB>EXPRESSION lines from stdin and answer each with its next run (the "
            + "interface of the differential test against an independent cron)", readers: [.schedule])
    public static let workerBind = Setting<String?>.text(
        ["--bind"], defaultHelp: "0.0.0.0:$PORT", valueName: "host:port",
        help: "where a worker run alone listens: host:port, :port, [v6]:port or port; a socket from LISTEN_FDS wins",
        readers: [.worker])
    public static let tokenUser = Setting<String?>.text(
        ["--user"], defaultHelp: "none: required", valueName: "name", help: "the user's name (created if new)",
        readers: [.createToken])
    public static let tokenTTL = Setting<String>.text(
        ["--ttl"], default: "30d", valueName: "duration",
        help: "the token's lifetime in whole seconds of a duration (at most 366d): 90d, 12h, 30m, 45s, or never",
        readers: [.createToken])
    public static let ifDue = Setting<String?>.text(
        ["--if-due"], defaultHelp: "run whenever started", valueName: "duration",
        help: "skip (exit 0) when a successful run finished less than this ago, in whole seconds of a duration: 20h, 90m, 3600s",
        readers: [.cleanup])

    public static let all: [AnySetting] = [
        workers.declaration, bind.declaration, port.declaration, socketMode.declaration, socketGroup.declaration, backlog.declaration, gracefulTimeout.declaration, heartbeatTimeout.declaration, requireHeartbeat.declaration, bootTimeout.declaration, noNotify.declaration, readyAfter.declaration,
        logLevel.declaration, logFormat.declaration, cleanupSchedule.declaration, cleanupTimezone.declaration, cleanupCommand.declaration, cleanupTimeout.declaration, cleanupJitter.declaration,
        cleanupOnStart.declaration, noCleanup.declaration, budgetMode.declaration, replicas.declaration, maxRequests.declaration, maxRequestsJitter.declaration, maxWorkerMemory.declaration, controlSocket.declaration,
        metricsBind.declaration, relaySignals.declaration,
        poolSize.declaration, maxOverflow.declaration, maxConnections.declaration, reservedConnections.declaration, cleanupPoolSize.declaration, cleanupMaxOverflow.declaration, pgbouncer.declaration,
        pgbouncerMaxClientConnections.declaration, pgbouncerPoolSize.declaration, pgbouncerInstances.declaration,
        databaseURL.declaration, poolTimeout.declaration, poolRecycle.declaration, prePing.declaration, statementTimeout.declaration, applicationName.declaration, preparedStatements.declaration, pipeline.declaration,
        redisURL.declaration, redisPoolSize.declaration, redisPoolTimeout.declaration, redisSocketTimeout.declaration, redisConnectTimeout.declaration,
        rateLimit.declaration, authCacheTTL.declaration, maxBodySize.declaration, headerTimeout.declaration, bodyTimeout.declaration, bodyBufferLimit.declaration, authMissConcurrency.declaration,
        authMissQueue.declaration, workerThreads.declaration, accessLog.declaration,
        retentionDays.declaration, batchSize.declaration, cleanupStatementTimeout.declaration,
        checkDatabase.declaration, statusJSON.declaration, noWait.declaration, reloadTimeout.declaration, stopTimeout.declaration,
        healthcheckPath.declaration, healthcheckTimeout.declaration, scheduleTimezone.declaration, scheduleCount.declaration,
        scheduleAfter.declaration, scheduleBatch.declaration, workerBind.declaration, tokenUser.declaration, tokenTTL.declaration,
        ifDue.declaration,
    ]

    /// The settings a program reads, in declaration order.
    public static func read(by program: Program) -> [AnySetting] { all.filter { $0.readers.contains(program) } }

    /// The settings whose flags a program takes.
    public static func flags(of program: Program) -> [AnySetting] { all.filter { $0.flagReaders.contains(program) } }
}
