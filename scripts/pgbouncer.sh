# A throwaway PgBouncer in transaction mode in front of the throwaway Postgres (scripts/postgres.sh), on its own
# port on 127.0.0.1: the seed's answer at scale, tested as the seed would run it.
#   source scripts/pgbouncer.sh; start_pgbouncer   exports PGBOUNCER_URL, TEST_PGBOUNCER_PORT, TEST_PGBOUNCER_ROOT
#   stop_pgbouncer                                 (call it from your EXIT trap)
# Needs start_postgres first. PgBouncer refuses to run as root, so it runs as the postgres user.
# shellcheck shell=bash

# What the tests assume of it: 200 client slots, 20 server connections per database and user.
PGBOUNCER_MAX_CLIENT_CONN="${PGBOUNCER_MAX_CLIENT_CONN:-200}"
PGBOUNCER_DEFAULT_POOL_SIZE="${PGBOUNCER_DEFAULT_POOL_SIZE:-20}"

start_pgbouncer() {
    command -v pgbouncer >/dev/null || { echo "pgbouncer.sh: pgbouncer not found (apt install pgbouncer)" >&2; return 1; }
    [ -n "${TEST_PG_PORT:-}" ] || { echo "pgbouncer.sh: start_postgres first" >&2; return 1; }
    TEST_PGBOUNCER_ROOT="$(mktemp -d /tmp/prefork-pgbouncer.XXXXXX)"
    TEST_PGBOUNCER_PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    cat >"$TEST_PGBOUNCER_ROOT/userlist.txt" <<USERS
"postgres" ""
USERS
    # Transaction pooling: a server connection is a client's only for one transaction. application_name is
    # tracked by PgBouncer itself; no other startup parameter is accepted (so the clients must send none).
    # PgBouncer reaches Postgres over its unix socket, so its server connections are the only backends without
    # a client address: that is how the tests count what Postgres sees from it.
    cat >"$TEST_PGBOUNCER_ROOT/pgbouncer.ini" <<INI
[databases]
* = host=$TEST_PG_ROOT port=$TEST_PG_PORT

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $TEST_PGBOUNCER_PORT
unix_socket_dir = $TEST_PGBOUNCER_ROOT
auth_type = trust
auth_file = $TEST_PGBOUNCER_ROOT/userlist.txt
admin_users = postgres
pool_mode = transaction
max_client_conn = $PGBOUNCER_MAX_CLIENT_CONN
default_pool_size = $PGBOUNCER_DEFAULT_POOL_SIZE
reserve_pool_size = 0
server_reset_query =
logfile = $TEST_PGBOUNCER_ROOT/pgbouncer.log
pidfile = $TEST_PGBOUNCER_ROOT/pgbouncer.pid
INI
    [ "$(id -u)" -eq 0 ] && chown -R postgres: "$TEST_PGBOUNCER_ROOT"
    local start=(pgbouncer -d "$TEST_PGBOUNCER_ROOT/pgbouncer.ini")
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "${start[@]}"; else "${start[@]}"; fi \
        || { cat "$TEST_PGBOUNCER_ROOT/pgbouncer.log" >&2; return 1; }
    for _ in $(seq 1 100); do
        python3 -c "import socket; socket.create_connection(('127.0.0.1', $TEST_PGBOUNCER_PORT), 0.2)" 2>/dev/null && break
        sleep 0.05
    done
    export PGBOUNCER_URL="postgresql://postgres@127.0.0.1:$TEST_PGBOUNCER_PORT/postgres"
    export TEST_PGBOUNCER_PORT TEST_PGBOUNCER_ROOT PGBOUNCER_MAX_CLIENT_CONN PGBOUNCER_DEFAULT_POOL_SIZE
    echo "pgbouncer: $PGBOUNCER_URL (transaction mode, max_client_conn $PGBOUNCER_MAX_CLIENT_CONN, default_pool_size $PGBOUNCER_DEFAULT_POOL_SIZE)" >&2
}

stop_pgbouncer() {
    [ -n "${TEST_PGBOUNCER_ROOT:-}" ] || return 0
    [ -f "$TEST_PGBOUNCER_ROOT/pgbouncer.pid" ] && kill "$(cat "$TEST_PGBOUNCER_ROOT/pgbouncer.pid")" 2>/dev/null || true
    sleep 0.1
    rm -rf "$TEST_PGBOUNCER_ROOT"
    TEST_PGBOUNCER_ROOT=""
}
