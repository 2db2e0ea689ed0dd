let helpText = """
    supervisor: prefork supervisor. Binds one listening socket and runs N worker processes on it.

    USAGE: supervisor [options] [--] [command [args...]]
           supervisor budget [--workers N] [--replicas N] [--pool-size N|auto] [--max-overflow N]
                             [--max-connections N] [--reserved N] [--cleanup-pool-size N]
                             [--cleanup-max-overflow N] [--no-cleanup] [--check-db]
                             [--pgbouncer [--max-client-conn N] [--pgbouncer-pool-size N] [--pgbouncers N]]
           supervisor status [--json] | scale N | reload | stop     [--control-socket PATH]
           supervisor healthcheck [--bind ADDR] [--path /healthz] [--timeout 2]   (exit 0 on a 200)
           supervisor schedule [--timezone ZONE] [--count N] [--after EPOCH] 'EXPRESSION'   (next runs)

    The command (default: the `worker` executable next to the supervisor) gets the socket as fd 3 with
    LISTEN_FDS=1 and LISTEN_PID, as systemd socket activation passes it, and reports READY=1 and
    WATCHDOG=1 over sd_notify (NOTIFY_SOCKET) unless --no-notify is given.

    OPTIONS (environment fallback in brackets):
      -w, --workers <n>            worker processes, 1 to 1024 [API_WORKERS] (default 1)
      -b, --bind <address>         host:port, [v6]:port or unix:/path [BIND] (default 0.0.0.0:$PORT, or 0.0.0.0:8080)
          --backlog <n>            listen backlog (default 2048)
          --graceful-timeout <s>   how long a stopping worker may drain before SIGKILL [GRACEFUL_TIMEOUT] (default 8)
      -t, --timeout <s>            heartbeat timeout: a worker silent this long is aborted and replaced;
                                   0 disables it (default 30)
          --boot-timeout <s>       how long a new worker has to send READY=1 (default 60)
          --no-notify              the command does not speak sd_notify: ready once started, no heartbeat
          --cleanup-schedule <e>   cron expression (5 or 6 fields, @daily, ...) or @every 1s [CLEANUP_SCHEDULE]
                                   (default "0 3 * * *")
          --cleanup-timezone <z>   time zone of the schedule, from the tz database [CRON_TZ] (default UTC)
          --cleanup-command <c>    the job, split on spaces (default: the `cleanup` executable next to the
                                   supervisor; without one, and without this flag, no job is scheduled)
          --cleanup-timeout <s>    SIGTERM to a run longer than this, SIGKILL to its group later (default 1h)
          --cleanup-jitter <s>     start each run up to this much late (default 0)
          --cleanup-on-start       also run it once at start, to catch up
          --no-cleanup             schedule no job
          --budget <mode>          enforce: refuse a configuration whose pools can exceed Postgres' connections
                                   (exit 78 with the arithmetic), refuse TTIN/scale past it, and restart
                                   retire-first when a surge does not fit; warn: only say so; off [DB_BUDGET]
                                   (default enforce when DATABASE_URL is set or DB_POOL_SIZE=auto, else off)
          --replicas <n>           supervisors with these settings against the same Postgres [REPLICAS] (1)
          --max-requests <n>       a worker asks to be replaced after n requests, 0 for never [MAX_REQUESTS]
          --max-requests-jitter <n>  each worker adds a random 0..n to that [MAX_REQUESTS_JITTER] (0)
          --max-worker-memory <size> replace a worker whose RSS passes this, such as 512M or 1G
                                   [MAX_WORKER_MEMORY]; recycles go one at a time, new worker first when the
                                   budget affords it
          --control-socket <path>  for supervisor status/scale/reload/stop, mode 0600, or none [CONTROL_SOCKET]
                                   (default $RUNTIME_DIRECTORY/supervisor.sock, $XDG_RUNTIME_DIR/prefork/...,
                                   /run/prefork/... as root, else /tmp/prefork-UID/supervisor.sock)
          --metrics-bind <h:p>     serve /metrics for the supervisor and every worker (labelled by slot)
                                   [METRICS_BIND] (default off)
          --relay-signal <sig>     relay USR1 and/or USR2 to the ready workers (repeat, or USR1,USR2)
                                   [RELAY_SIGNALS] (default: not relayed, logged and dropped)
      -h, --help                   show this help
    Durations are seconds (8, 0.5) or take a unit (250ms, 8s, 2m, 1h).

    SIGNALS: TERM, INT graceful stop (a second one: fast stop); QUIT fast stop; HUP rolling restart;
             TTIN one worker more; TTOU one worker less; USR1, USR2 dropped unless --relay-signal;
             ALRM, VTALRM, PROF, IO, PWR, STKFLT logged and dropped.
    EXIT CODES: 0 stopped; 3 the first generation could not boot; 64 bad flag; 71 system error at start
                (bind, socket, an explicit --control-socket); 78 bad environment value, or a connection
                budget that does not fit; 127 command not found, not executable, or a directory.
                Commands: 0 done (budget: fits); 1 refused (budget: does not fit); 64 bad usage;
                69 no supervisor answers, or its socket is not owned by you or root (check-db: cannot reach
                the database); 78 bad environment value (check-db: a malformed DATABASE_URL).
    BUDGET: DB_POOL_SIZE (10, or auto: the largest pool that fits, recomputed when the worker count changes),
            DB_MAX_OVERFLOW (10), DB_MAX_CONNECTIONS (100), DB_RESERVED_CONNECTIONS (20), REPLICAS (1):
            replicas × workers × (pool + overflow) ≤ max − reserved; the cleanup's pool and a surge come out of
            the reserve. With DB_PGBOUNCER=1 (or budget --pgbouncer) the pools count against PgBouncer's client
            slots, PGBOUNCER_MAX_CLIENT_CONN (100) × PGBOUNCER_INSTANCES (1), and Postgres against its server
            pools, PGBOUNCER_POOL_SIZE (20) × PGBOUNCER_INSTANCES.
    ENVIRONMENT: API_WORKERS, BIND, PORT, GRACEFUL_TIMEOUT, LOG_LEVEL (debug, info, notice, warning, error),
                 CLEANUP_SCHEDULE, CRON_TZ, CLEANUP_DB_POOL_SIZE (1), CLEANUP_DB_MAX_OVERFLOW (1): the job's pool.
    """
