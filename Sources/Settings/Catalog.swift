import TimeUnits
import Arbiter

/// Every setting of the supervisor, `supervisor budget`, the worker and the cleanup, declared once.
///
/// Order matters: `--help` and the README's table list them in this order.
public enum Catalog {
    // MARK: The supervisor

    public static let workers = Setting(
        ["--workers", "-w"], variables: ["API_WORKERS", "WEB_CONCURRENCY"], default: "1", kind: .count(WorkerCount.range),
        help: "worker processes, 1 to 1024; API_WORKERS wins over WEB_CONCURRENCY (what PaaS and uvicorn set)",
        readers: [.supervisor, .budget])
    public static let bind = Setting(
        ["--bind", "-b"], variables: ["BIND"], defaultHelp: "0.0.0.0:$PORT, or 0.0.0.0:8080", kind: .text,
        valueName: "address",
        help: "host:port, :port, [v6]:port or unix:/path, one address; ignored when the supervisor is itself socket-activated (LISTEN_FDS)",
        readers: [.supervisor], once: true)
    public static let port = Setting(
        variables: ["PORT"], default: "8080", kind: .count(0...65535),
        help: "the port when no address is given: the supervisor binds 0.0.0.0:PORT, and so does a worker run alone",
        readers: [.supervisor, .worker])
    public static let socketMode = Setting(
        ["--socket-mode"], variables: ["SOCKET_MODE"], default: "0666", kind: .fileMode,
        help: "permissions of a unix:/path socket; 0666 as uvicorn, so a proxy under another uid can connect "
            + "(the folder's permissions are the access control); 0660 with --socket-group to narrow it",
        readers: [.supervisor])
    public static let socketGroup = Setting(
        ["--socket-group"], variables: ["SOCKET_GROUP"], defaultHelp: "the supervisor's group", kind: .text,
        valueName: "group", help: "group of a unix:/path socket, a name or a gid (the supervisor must belong to it, or be root)",
        readers: [.supervisor])
    public static let backlog = Setting(
        ["--backlog"], variables: ["BACKLOG"], default: "2048", kind: .count(1...65535),
        help: "kernel accept queue of the listening socket", readers: [.supervisor])
    public static let gracefulTimeout = Setting(
        ["--graceful-timeout"], variables: ["GRACEFUL_TIMEOUT"], default: "8", kind: .duration(minimum: .milliseconds(1), never: false),
        help: "how long a stopping worker may drain before SIGKILL; passed to the workers, which cancel what they still run "
            + "in Postgres a second before it", readers: [.supervisor, .worker, .cleanup],
        flagReaders: [.supervisor])
    public static let heartbeatTimeout = Setting(
        ["--timeout", "-t"], variables: ["HEARTBEAT_TIMEOUT"], default: "30", kind: .duration(minimum: .zero, never: false),
        help: "heartbeat timeout: a ready worker silent this long after its last WATCHDOG=1 gets SIGABRT, then SIGKILL, and is "
            + "replaced; it applies from a worker's first WATCHDOG=1 on (gunicorn never sends one); 0 disables it",
        readers: [.supervisor])
    public static let requireHeartbeat = Setting(
        ["--require-heartbeat"], variables: ["REQUIRE_HEARTBEAT"], defaultHelp: "off", kind: .boolean,
        help: "hold every worker to WATCHDOG=1 from READY=1 on, as systemd's WatchdogSec= does: one that never pings is "
            + "aborted one heartbeat timeout after READY",
        readers: [.supervisor])
    public static let bootTimeout = Setting(
        ["--boot-timeout"], variables: ["BOOT_TIMEOUT"], default: "60", kind: .duration(minimum: .milliseconds(1), never: false),
        help: "how long a new worker has to send READY=1; then it is killed and counts as a failed boot",
        readers: [.supervisor])
    public static let noNotify = Setting(
        ["--no-notify"], variables: ["NO_NOTIFY"], defaultHelp: "off", kind: .boolean,
        help: "the command does not speak sd_notify: a worker is ready once it has lived --ready-after, and has no heartbeat",
        readers: [.supervisor])
    public static let readyAfter = Setting(
        ["--ready-after"], variables: ["READY_AFTER"], default: "5", kind: .duration(minimum: .zero, never: false),
        help: "with --no-notify: a worker alive this long is ready; one that ends sooner is a failed boot, and a rolling "
            + "restart stops with the old workers serving",
        readers: [.supervisor])
    public static let logLevel = Setting(
        ["--log-level"], variables: ["LOG_LEVEL"], default: "info", kind: .logLevel,
        help: "trace, debug, info, notice, warn, warning, error or critical, any case; the supervisor passes it to its workers",
        readers: [.supervisor, .worker, .cleanup])
    public static let logFormat = Setting(
        ["--log-format"], variables: ["LOG_FORMAT"], default: "text", kind: .choice(["text", "json"]),
        help: "text, or json (one object per line); the supervisor passes it to its workers",
        readers: [.supervisor, .worker, .cleanup])
    public static let cleanupSchedule = Setting(
        ["--cleanup-schedule"], variables: ["CLEANUP_SCHEDULE"], default: "0 3 * * *", kind: .text, valueName: "expr",
        help: "when the cleanup job runs: a cron expression (5 or 6 fields, @daily, ...) or @every DURATION",
        readers: [.supervisor])
    public static let cleanupTimezone = Setting(
        ["--cleanup-timezone"], variables: ["CRON_TZ"], default: "UTC", kind: .text, valueName: "zone",
        help: "the schedule's time zone, from the system's tz database (Europe/Berlin)", readers: [.supervisor])
    public static let cleanupCommand = Setting(
        ["--cleanup-command"], variables: ["CLEANUP_COMMAND"], defaultHelp: "cleanup beside the supervisor", kind: .text,
        valueName: "command",
        help: "the job, split on spaces; the installed cleanup by default, scheduled when the workers are ours or a "
            + "cleanup setting is given",
        readers: [.supervisor])
    public static let cleanupTimeout = Setting(
        ["--cleanup-timeout"], variables: ["CLEANUP_TIMEOUT"], default: "1h", kind: .duration(minimum: .milliseconds(1), never: false),
        help: "a run longer than this gets SIGTERM, and its process group SIGKILL 10 s later", readers: [.supervisor])
    public static let cleanupJitter = Setting(
        ["--cleanup-jitter"], variables: ["CLEANUP_JITTER"], default: "0", kind: .duration(minimum: .zero, never: false),
        help: "each run starts up to this much after its time, so replicas do not all start in the same second",
        readers: [.supervisor])
    public static let cleanupOnStart = Setting(
        ["--cleanup-on-start"], variables: ["CLEANUP_ON_START"], defaultHelp: "off", kind: .boolean,
        help: "also run the job once at start, to catch up a missed night", readers: [.supervisor])
    public static let noCleanup = Setting(
        ["--no-cleanup"], variables: ["NO_CLEANUP"], defaultHelp: "off", kind: .boolean,
        help: "schedule no job", readers: [.supervisor, .budget])
    public static let budgetMode = Setting(
        ["--budget"], variables: ["DB_BUDGET"], defaultHelp: "enforce with DATABASE_URL or DB_POOL_SIZE=auto, else off",
        kind: .choice(["enforce", "warn", "off"]),
        help: "enforce: refuse pools that can exceed Postgres' connections, and TTIN or scale past them; warn: only say so",
        readers: [.supervisor])
    public static let replicas = Setting(
        ["--replicas"], variables: ["REPLICAS"], default: "1", kind: .count(1...10_000),
        help: "supervisors with these settings against the same Postgres, for the budget", readers: [.supervisor, .budget])
    public static let maxRequests = Setting(
        ["--max-requests"], variables: ["MAX_REQUESTS"], default: "0", kind: .count(0...Int(Int32.max)),
        help: "a worker asks to be replaced after this many requests; 0 for never", readers: [.supervisor, .worker],
        flagReaders: [.supervisor])
    public static let maxRequestsJitter = Setting(
        ["--max-requests-jitter"], variables: ["MAX_REQUESTS_JITTER"], default: "0", kind: .count(0...Int(Int32.max)),
        help: "each worker adds a random 0 to this to --max-requests, so workers started together do not recycle together",
        readers: [.supervisor, .worker], flagReaders: [.supervisor])
    public static let maxWorkerMemory = Setting(
        ["--max-worker-memory"], variables: ["MAX_WORKER_MEMORY"], defaultHelp: "off", kind: .size,
        help: "replace a worker whose resident memory (its whole process tree's) passes this (512M, 1.5G); checked every second",
        readers: [.supervisor])
    public static let controlSocket = Setting(
        ["--control-socket"], variables: ["CONTROL_SOCKET"],
        defaultHelp: "$RUNTIME_DIRECTORY/supervisor.sock, else $XDG_RUNTIME_DIR/prefork/, /run/prefork/ as root, /tmp/prefork-UID/",
        kind: .text, valueName: "path",
        help: "where supervisor status/scale/reload/stop reach it (mode 0600); none for no socket",
        readers: [.supervisor])
    public static let metricsBind = Setting(
        ["--metrics-bind"], variables: ["METRICS_BIND"], defaultHelp: "off", kind: .text, valueName: "host:port",
        help: "serve /metrics for the supervisor and every worker, labelled by slot", readers: [.supervisor])
    public static let relaySignals = Setting(
        ["--relay-signal"], variables: ["RELAY_SIGNALS"], defaultHelp: "none", kind: .text, valueName: "signal",
        help: "USR1 and/or USR2 (repeat, or USR1,USR2): relay that signal to the ready workers instead of dropping it",
        readers: [.supervisor], repeatable: true)

    // MARK: The connection budget (the supervisor, `supervisor budget`; the worker reads the pool sizes)

    public static let poolSize = Setting(
        ["--pool-size"], variables: ["DB_POOL_SIZE"], default: "10", kind: .countOrAuto(0...100_000),
        help: "persistent Postgres connections per worker; auto: the largest pool the budget affords",
        readers: [.supervisor, .budget, .worker, .cleanup], flagReaders: [.budget])
    public static let maxOverflow = Setting(
        ["--max-overflow"], variables: ["DB_MAX_OVERFLOW"], default: "10", kind: .count(0...100_000),
        help: "extra Postgres connections per worker under load, closed when returned",
        readers: [.supervisor, .budget, .worker, .cleanup], flagReaders: [.budget])
    public static let maxConnections = Setting(
        ["--max-connections"], variables: ["DB_MAX_CONNECTIONS"], default: "100", kind: .count(1...1_000_000),
        help: "Postgres' max_connections", readers: [.supervisor, .budget], flagReaders: [.budget])
    public static let reservedConnections = Setting(
        ["--reserved"], variables: ["DB_RESERVED_CONNECTIONS"], default: "20", kind: .count(0...1_000_000),
        help: "connections kept for admins, migrations, the cleanup and a restart's surge",
        readers: [.supervisor, .budget], flagReaders: [.budget])
    public static let cleanupPoolSize = Setting(
        ["--cleanup-pool-size"], variables: ["CLEANUP_DB_POOL_SIZE"], default: "1", kind: .count(0...100),
        help: "the cleanup job's pool (the supervisor passes it as its DB_POOL_SIZE)", readers: [.supervisor, .budget],
        flagReaders: [.budget])
    public static let cleanupMaxOverflow = Setting(
        ["--cleanup-max-overflow"], variables: ["CLEANUP_DB_MAX_OVERFLOW"], default: "1", kind: .count(0...100),
        help: "the cleanup job's overflow (passed as its DB_MAX_OVERFLOW)", readers: [.supervisor, .budget],
        flagReaders: [.budget])
    public static let pgbouncer = Setting(
        ["--pgbouncer"], variables: ["DB_PGBOUNCER"], defaultHelp: "off", kind: .boolean,
        help: "DATABASE_URL points at PgBouncer in transaction mode: no prepared statements; the budget counts its pools",
        readers: [.supervisor, .budget, .worker, .cleanup], flagReaders: [.budget])
    public static let pgbouncerMaxClientConnections = Setting(
        ["--max-client-conn"], variables: ["PGBOUNCER_MAX_CLIENT_CONN"], default: "100", kind: .count(1...1_000_000),
        help: "PgBouncer's max_client_conn", readers: [.supervisor, .budget], flagReaders: [.budget])
    public static let pgbouncerPoolSize = Setting(
        ["--pgbouncer-pool-size"], variables: ["PGBOUNCER_POOL_SIZE"], default: "20", kind: .count(1...100_000),
        help: "PgBouncer's default_pool_size: its server connections to Postgres", readers: [.supervisor, .budget],
        flagReaders: [.budget])
    public static let pgbouncerInstances = Setting(
        ["--pgbouncers"], variables: ["PGBOUNCER_INSTANCES"], default: "1", kind: .count(1...10_000),
        help: "PgBouncer processes in front of the same Postgres", readers: [.supervisor, .budget], flagReaders: [.budget])

    // MARK: The Postgres and Redis pools (the worker; the cleanup for Postgres)

    public static let databaseURL = Setting(
        variables: ["DATABASE_URL"], defaultHelp: "none: required by the worker and the cleanup; when set, the supervisor's budget is on", kind: .postgresURL,
        help: "postgresql://user:password@host:port/db?...; a defect is named without the value",
        readers: [.supervisor, .worker, .cleanup])
    public static let poolTimeout = Setting(
        variables: ["DB_POOL_TIMEOUT"], default: "30", kind: .duration(minimum: .milliseconds(1), never: false),
        help: "how long a Postgres checkout waits for a connection before it fails", readers: [.worker, .cleanup])
    public static let poolRecycle = Setting(
        variables: ["DB_POOL_RECYCLE"], default: "3600", kind: .duration(minimum: .milliseconds(1), never: true),
        help: "a Postgres connection older than this is replaced at its next checkout; -1 for never",
        readers: [.worker, .cleanup])
    public static let prePing = Setting(
        variables: ["DB_POOL_PRE_PING"], default: "true", kind: .boolean,
        help: "ping a Postgres connection idle for over a second before handing it out", readers: [.worker, .cleanup])
    public static let statementTimeout = Setting(
        variables: ["DB_STATEMENT_TIMEOUT"], defaultHelp: "the server's", kind: .duration(minimum: .milliseconds(1), never: false),
        help: "statement_timeout of every pooled Postgres connection (not with DB_PGBOUNCER)", readers: [.worker, .cleanup])
    public static let applicationName = Setting(
        variables: ["DB_APPLICATION_NAME"], defaultHelp: "api-worker, cleanup", kind: .text,
        help: "application_name, how pg_stat_activity tells the pools apart", readers: [.worker, .cleanup])
    public static let preparedStatements = Setting(
        variables: ["DB_PREPARED_STATEMENTS"], defaultHelp: "true, false with DB_PGBOUNCER", kind: .boolean,
        help: "prepare each statement once per connection", readers: [.worker, .cleanup])
    public static let redisURL = Setting(
        variables: ["REDIS_URL"], defaultHelp: "none: required by the worker", kind: .redisURL,
        help: "redis://[[user]:password@]host[:port][/db]", readers: [.worker])
    public static let redisPoolSize = Setting(
        variables: ["REDIS_POOL_SIZE"], default: "5", kind: .count(1...10_000),
        help: "Redis connections per worker", readers: [.worker])
    public static let redisPoolTimeout = Setting(
        variables: ["REDIS_POOL_TIMEOUT"], default: "5", kind: .duration(minimum: .milliseconds(1), never: false),
        help: "how long a Redis checkout waits (then authentication falls back to Postgres)", readers: [.worker])
    public static let redisSocketTimeout = Setting(
        variables: ["REDIS_SOCKET_TIMEOUT"], default: "2", kind: .duration(minimum: .milliseconds(1), never: false),
        help: "how long a Redis reply may take", readers: [.worker])
    public static let redisConnectTimeout = Setting(
        variables: ["REDIS_CONNECT_TIMEOUT"], default: "2", kind: .duration(minimum: .milliseconds(1), never: false),
        help: "how long a Redis connect may take", readers: [.worker])

    // MARK: The API worker

    public static let rateLimit = Setting(
        variables: ["RATE_LIMIT_PER_MINUTE"], default: "1000", kind: .count(0...Int(Int32.max)),
        help: "requests per token per minute; 0 turns the limit off", readers: [.worker])
    public static let authCacheTTL = Setting(
        variables: ["AUTH_CACHE_TTL"], default: "60", kind: .duration(minimum: .seconds(1), never: false),
        help: "how long a token's user stays cached in Redis (whole seconds, rounded up)", readers: [.worker])
    public static let maxBodySize = Setting(
        variables: ["MAX_BODY_SIZE"], default: "1M", kind: .size,
        help: "largest request body; a larger one gets 413", readers: [.worker])
    public static let headerTimeout = Setting(
        variables: ["HEADER_TIMEOUT"], default: "10", kind: .duration(minimum: .milliseconds(1), never: false),
        help: "a request head must arrive within this; also the keep-alive idle time", readers: [.worker])
    public static let bodyTimeout = Setting(
        variables: ["BODY_TIMEOUT"], default: "30", kind: .duration(minimum: .milliseconds(1), never: false),
        help: "from a request's head to the end of its body, else 408", readers: [.worker])
    public static let bodyBufferLimit = Setting(
        variables: ["BODY_BUFFER_LIMIT"], defaultHelp: "32M, or 4 × MAX_BODY_SIZE if more", kind: .size,
        help: "request-body bytes a worker buffers at once, at least MAX_BODY_SIZE; past it 503", readers: [.worker])
    public static let authMissConcurrency = Setting(
        variables: ["AUTH_MISS_CONCURRENCY"], default: "2", kind: .count(0...10_000),
        help: "Postgres lookups of uncached tokens at once per worker; 0 turns the cap off", readers: [.worker])
    public static let authMissQueue = Setting(
        variables: ["AUTH_MISS_QUEUE"], default: "64", kind: .count(0...1_000_000),
        help: "uncached-token lookups that may wait; past it 503", readers: [.worker])
    public static let workerThreads = Setting(
        variables: ["WORKER_THREADS"], default: "1", kind: .count(1...256),
        help: "SwiftNIO threads per worker for its side work (metrics to the supervisor); requests are served on one thread, the supervisor's processes give the parallelism", readers: [.worker])
    public static let accessLog = Setting(
        variables: ["ACCESS_LOG"], defaultHelp: "off", kind: .boolean,
        help: "one log line per request", readers: [.worker])

    // MARK: The cleanup job

    public static let retentionDays = Setting(
        variables: ["CLEANUP_RETENTION_DAYS"], default: "30", kind: .count(0...36_500),
        help: "notes soft-deleted longer ago than this many days are removed", readers: [.cleanup])
    public static let batchSize = Setting(
        variables: ["CLEANUP_BATCH_SIZE"], default: "1000", kind: .count(1...1_000_000),
        help: "rows per batch, each in its own short transaction", readers: [.cleanup])
    public static let cleanupStatementTimeout = Setting(
        variables: ["CLEANUP_STATEMENT_TIMEOUT"], default: "30", kind: .duration(minimum: .seconds(1), never: false),
        help: "each batch's statement_timeout", readers: [.cleanup])

    public static let all: [Setting] = [
        workers, bind, port, socketMode, socketGroup, backlog, gracefulTimeout, heartbeatTimeout, requireHeartbeat, bootTimeout, noNotify, readyAfter,
        logLevel, logFormat, cleanupSchedule, cleanupTimezone, cleanupCommand, cleanupTimeout, cleanupJitter,
        cleanupOnStart, noCleanup, budgetMode, replicas, maxRequests, maxRequestsJitter, maxWorkerMemory, controlSocket,
        metricsBind, relaySignals,
        poolSize, maxOverflow, maxConnections, reservedConnections, cleanupPoolSize, cleanupMaxOverflow, pgbouncer,
        pgbouncerMaxClientConnections, pgbouncerPoolSize, pgbouncerInstances,
        databaseURL, poolTimeout, poolRecycle, prePing, statementTimeout, applicationName, preparedStatements,
        redisURL, redisPoolSize, redisPoolTimeout, redisSocketTimeout, redisConnectTimeout,
        rateLimit, authCacheTTL, maxBodySize, headerTimeout, bodyTimeout, bodyBufferLimit, authMissConcurrency,
        authMissQueue, workerThreads, accessLog,
        retentionDays, batchSize, cleanupStatementTimeout,
    ]

    /// The settings a program reads, in declaration order.
    public static func read(by program: Program) -> [Setting] { all.filter { $0.readers.contains(program) } }

    /// The settings whose flags a program takes.
    public static func flags(of program: Program) -> [Setting] { all.filter { $0.flagReaders.contains(program) } }
}
