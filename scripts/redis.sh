# A throwaway Redis for tests, benchmarks and the run command: its own port on 127.0.0.1, no persistence.
#   source scripts/redis.sh; start_redis     exports REDIS_URL, TEST_REDIS_PORT, TEST_REDIS_PID
#   stop_redis                               (call it from your EXIT trap)
#   pause_redis; resume_redis                the same server killed and started again (scripts/chaos)
# shellcheck shell=bash

start_redis() {
    command -v redis-server >/dev/null || { echo "redis.sh: redis-server not found (apt install redis-server)" >&2; return 1; }
    TEST_REDIS_ROOT="$(mktemp -d /tmp/prefork-redis.XXXXXX)"
    TEST_REDIS_PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    export TEST_REDIS_PORT TEST_REDIS_ROOT
    resume_redis || return 1
    export REDIS_URL="redis://127.0.0.1:$TEST_REDIS_PORT/0"
    echo "redis: $REDIS_URL" >&2
}

resume_redis() {
    redis-server --bind 127.0.0.1 --port "$TEST_REDIS_PORT" --save "" --appendonly no --daemonize yes \
        --dir "$TEST_REDIS_ROOT" --pidfile "$TEST_REDIS_ROOT/redis.pid" --logfile "$TEST_REDIS_ROOT/redis.log" \
        --maxclients 10000 >/dev/null || { cat "$TEST_REDIS_ROOT/redis.log" >&2; return 1; }
    for _ in $(seq 1 100); do
        redis-cli -p "$TEST_REDIS_PORT" ping >/dev/null 2>&1 && break
        sleep 0.05
    done
    TEST_REDIS_PID="$(cat "$TEST_REDIS_ROOT/redis.pid")"
    export TEST_REDIS_PID
}

# SIGKILL, as when the host or container running Redis dies: no goodbye to the clients.
pause_redis() {
    kill -9 "$(cat "$TEST_REDIS_ROOT/redis.pid")" 2>/dev/null || true
    for _ in $(seq 1 100); do
        redis-cli -p "$TEST_REDIS_PORT" ping >/dev/null 2>&1 || break
        sleep 0.01
    done
    rm -f "$TEST_REDIS_ROOT/redis.pid"
}

stop_redis() {
    [ -n "${TEST_REDIS_ROOT:-}" ] || return 0
    local pid=""
    [ -f "$TEST_REDIS_ROOT/redis.pid" ] && pid="$(cat "$TEST_REDIS_ROOT/redis.pid")"
    if [ -n "$pid" ] && kill "$pid" 2>/dev/null; then
        # Redis writes its log on the way out: removing its folder before it is gone failed with "Directory
        # not empty" at the end of a CI run.
        for _ in $(seq 1 200); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.025
        done
    fi
    rm -rf "$TEST_REDIS_ROOT"
    TEST_REDIS_ROOT=""
}
