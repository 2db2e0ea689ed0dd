# A throwaway Postgres cluster for tests and benchmarks: initdb in a temp dir as the postgres user (the
# server refuses root), its own port on 127.0.0.1 and its socket in the temp dir, trust authentication.
#   source scripts/postgres.sh; start_postgres     exports DATABASE_URL, TEST_PG_DATA, TEST_PG_BIN, TEST_PG_PORT
#   stop_postgres                                  (start_postgres arranges it on EXIT)
#   pause_postgres; resume_postgres                a fast stop and a start of the same cluster (scripts/chaos)
# shellcheck shell=bash

pg_bin() {
    local initdb
    initdb="$(ls -d /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -n 1)"
    [ -n "$initdb" ] || { echo "postgres.sh: no initdb under /usr/lib/postgresql (apt install postgresql)" >&2; return 1; }
    dirname "$initdb"
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

as_postgres() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start_postgres() {
    TEST_PG_BIN="$(pg_bin)" || return 1
    TEST_PG_ROOT="$(mktemp -d /tmp/prefork-pg.XXXXXX)"
    TEST_PG_DATA="$TEST_PG_ROOT/data"
    TEST_PG_PORT="$(free_port)"
    [ "$(id -u)" -eq 0 ] && chown postgres: "$TEST_PG_ROOT"
    as_postgres "$TEST_PG_BIN/initdb" -D "$TEST_PG_DATA" -U postgres --auth=trust -E UTF8 >"$TEST_PG_ROOT/initdb.log" 2>&1 \
        || { cat "$TEST_PG_ROOT/initdb.log" >&2; return 1; }
    # max_connections 100 as in the seed; fsync off: a throwaway cluster needs no durability.
    TEST_PG_OPTIONS="-p $TEST_PG_PORT -k $TEST_PG_ROOT -c listen_addresses=127.0.0.1 -c max_connections=100 -c fsync=off"
    export TEST_PG_DATA TEST_PG_BIN TEST_PG_PORT TEST_PG_ROOT TEST_PG_OPTIONS
    resume_postgres || return 1
    export DATABASE_URL="postgresql://postgres@127.0.0.1:$TEST_PG_PORT/postgres"
    trap 'stop_postgres; declare -F stop_redis >/dev/null && stop_redis' EXIT
    echo "postgres: $DATABASE_URL (data in $TEST_PG_DATA)" >&2
}

resume_postgres() {
    as_postgres "$TEST_PG_BIN/pg_ctl" -D "$TEST_PG_DATA" -l "$TEST_PG_ROOT/server.log" -w -o "$TEST_PG_OPTIONS" \
        start >/dev/null || { cat "$TEST_PG_ROOT/server.log" >&2; return 1; }
}

# Clients see their connections end and new ones refused, as when a managed database restarts.
pause_postgres() {
    as_postgres "$TEST_PG_BIN/pg_ctl" -D "$TEST_PG_DATA" -m fast -w stop >/dev/null
}

stop_postgres() {
    [ -n "${TEST_PG_DATA:-}" ] || return 0
    as_postgres "$TEST_PG_BIN/pg_ctl" -D "$TEST_PG_DATA" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$TEST_PG_ROOT"
    TEST_PG_DATA=""
}
