import Settings

/// `supervisor --help`: the usage, then the options written from the settings' declarations.
var helpText: String {
    """
    supervisor: prefork supervisor. Binds one listening socket and runs N worker processes on it.

    USAGE: supervisor [options] [--] [command [args...]]
           supervisor budget [--workers N] [--replicas N] [--pool-size N|auto] [--max-overflow N]
                             [--max-connections N] [--reserved N] [--cleanup-pool-size N]
                             [--cleanup-max-overflow N] [--no-cleanup] [--check-db]
                             [--pgbouncer [--max-client-conn N] [--pgbouncer-pool-size N] [--pgbouncers N]]
           supervisor status [--json] | scale N | reload | stop     [--control-socket PATH]
           supervisor healthcheck [--bind ADDR] [--path PATH] [--timeout DURATION]   (exit 0 on a 200)
           supervisor schedule [--timezone ZONE] [--count N] [--after EPOCH] 'EXPRESSION'   (next runs)

    The command (default: the `worker` executable next to the supervisor) gets the socket as fd 3 with
    LISTEN_FDS=1 and LISTEN_PID, as systemd socket activation passes it, and reports READY=1 and
    WATCHDOG=1 over sd_notify (NOTIFY_SOCKET) unless --no-notify is given.

    OPTIONS (environment variables in brackets; a flag wins over its variable):
    \(SettingsHelp.options(of: .supervisor, extra: [("-h, --help", "show this help (supervisor help COMMAND: a command's)"), ("    --version", "print the version and the commit it was built from")]))
    VARIABLES ALSO READ (no flag):
    \(SettingsHelp.environment(of: .supervisor))
    Durations are seconds (8, 0.5) or take a unit (250ms, 8s, 2m, 1.5h, 1d), in every flag and variable of all
    three programs. `supervisor help settings` lists every setting of the supervisor, the worker and the cleanup.

    SIGNALS: TERM, INT graceful stop (a second one: fast stop); QUIT fast stop; HUP rolling restart;
             TTIN one worker more; TTOU one worker less; USR1, USR2 dropped unless --relay-signal;
             ALRM, VTALRM, PROF, IO, PWR, STKFLT logged and dropped.
    EXIT CODES: 0 stopped; 3 the first generation could not boot; 64 bad flag; 71 system error at start
                (bind, socket, an explicit --control-socket); 78 bad environment value, a value the worker
                or the cleanup would refuse, or a connection budget that does not fit; 127 command not found, not executable, or a directory.
                Commands: 0 done (budget: fits); 1 refused (budget: does not fit); 64 bad usage;
                69 no supervisor answers, or its socket is not owned by you or root (check-db: cannot reach
                the database); 78 bad environment value (check-db: a malformed DATABASE_URL).
    BUDGET: DB_POOL_SIZE (\(Catalog.poolSize.defaultHelp), or auto: the largest pool that fits, recomputed when the worker count changes),
            DB_MAX_OVERFLOW (\(Catalog.maxOverflow.defaultHelp)), DB_MAX_CONNECTIONS (\(Catalog.maxConnections.defaultHelp)), DB_RESERVED_CONNECTIONS (\(Catalog.reservedConnections.defaultHelp)), REPLICAS (\(Catalog.replicas.defaultHelp)):
            replicas × workers × (pool + overflow) ≤ max − reserved; the cleanup's pool and a surge come out of
            the reserve. With DB_PGBOUNCER=1 (or budget --pgbouncer) the pools count against PgBouncer's client
            slots, PGBOUNCER_MAX_CLIENT_CONN (\(Catalog.pgbouncerMaxClientConnections.defaultHelp)) × PGBOUNCER_INSTANCES (\(Catalog.pgbouncerInstances.defaultHelp)), and Postgres against its server
            pools, PGBOUNCER_POOL_SIZE (\(Catalog.pgbouncerPoolSize.defaultHelp)) × PGBOUNCER_INSTANCES.
    """
}
