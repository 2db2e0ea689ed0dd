# Shared by the scripts: package installation and the release build of the binaries.
# shellcheck shell=bash

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH="/opt/swift/usr/bin:$PATH"

# Installs the Debian packages that are missing (no-op when all are there).
ensure_packages() {
    local missing=()
    for package in "$@"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "installing: ${missing[*]}" >&2
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# What building and testing needs: the C libraries, python3 for the foreign-worker test and the benchmarks,
# ss (iproute2) for the backlog test, procps, the Postgres and Redis servers for the engine's, the Redis
# client's and the API's tests, and wrk for the API benchmark.
SYSTEM_PACKAGES=(libpq-dev libhiredis-dev libsystemd-dev pkg-config python3 python3-venv iproute2 procps postgresql
    redis-server wrk pgbouncer systemd strace)

# Release builds of the binaries the tests and the run command start. Release on purpose: SwiftNIO 2.101's
# debug builds assert when several processes accept on one socket, release builds do not.
# (One `swift build` for all executables: given several --product flags, SwiftPM builds only the last.)
build_release() {
    stamp_build_info
    (cd "$ROOT" && swift build -c release "$@")
}

# Writes the commit into Sources/CBuildInfo/commit.h (not committed), for --version and prefork_build_info.
# Rewritten only when it changes, so an unchanged commit rebuilds nothing. PREFORK_GIT_COMMIT overrides it
# (the image's build, which has no .git).
stamp_build_info() {
    local commit="${PREFORK_GIT_COMMIT:-$(git -C "$ROOT" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)}"
    commit="$(printf '%s' "$commit" | tr -cd 'A-Za-z0-9._-')"
    local header="$ROOT/Sources/CBuildInfo/commit.h"
    local line="#define PREFORK_GIT_COMMIT \"${commit:-unknown}\""
    [ -f "$header" ] && [ "$(cat "$header")" = "$line" ] && return 0
    printf '%s\n' "$line" >"$header"
}

# The image runs as a non-root uid with no capabilities, and so do systemd services with User=: a test pass as
# root alone once hid that no request was served that way. The process-level suites run again as this user,
# created for the run (create_test_user) and removed after it (remove_test_user).
TEST_USER=prefork-nonroot
create_test_user() {
    [ "$(id -u)" -eq 0 ] || return 0
    id -u "$TEST_USER" >/dev/null 2>&1 \
        || useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$TEST_USER"
}
remove_test_user() {
    [ "$(id -u)" -eq 0 ] || return 0
    userdel "$TEST_USER" 2>/dev/null || true
}
# The test user must reach the checkout (the test binaries, the fixtures beside the sources): a folder on the way
# that others may not enter (a checkout under /root) gets the bit to pass through it, nothing more, and says so.
grant_test_user_access() {
    [ "$(id -u)" -eq 0 ] || return 0
    local directory="$1"
    while [ "$directory" != "/" ]; do
        if [ "$(( $(stat -c '%a' "$directory" | tail -c 2) & 1 ))" -eq 0 ]; then
            echo "letting other users pass through $directory (chmod o+x) for the non-root test pass" >&2
            chmod o+x "$directory"
        fi
        directory="$(dirname "$directory")"
    done
    runuser -u "$TEST_USER" -- test -r "$1/Package.swift" \
        || { echo "the test user $TEST_USER cannot read $1 (a umask of 077?); the non-root pass needs it" >&2; return 1; }
}
# Runs a command as the test user (as it is when the scripts already run as a non-root user).
as_test_user() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u "$TEST_USER" -- "$@"; else "$@"; fi
}

# A Python with plain uvicorn (default signal handlers, no uvloop) and gunicorn in .build/test-venv, from PyPI: the
# foreign workers of the integration tests (`uvicorn --fd 3`, gunicorn's master and workers). Exports PREFORK_TEST_PYTHON.
test_python() {
    local venv="$ROOT/.build/test-venv"
    # Debian's python3, not a pyenv one under /root: the non-root pass must be able to run it too.
    grep -qx "home = /usr/bin" "$venv/pyvenv.cfg" 2>/dev/null || { rm -rf "$venv"; /usr/bin/python3 -m venv "$venv"; }
    # uvicorn for the foreign-worker tests, and the FastAPI stack (benchmarks/python/app.py) they run under it.
    # gunicorn with uvicorn's worker class: the master-and-workers tree of the process-tree tests.
    "$venv/bin/python" -c "import uvicorn, fastapi, sqlalchemy, asyncpg, redis, gunicorn" 2>/dev/null \
        || "$venv/bin/pip" install -q 'uvicorn==0.34.*' 'fastapi==0.115.*' 'sqlalchemy[asyncio]==2.0.*' 'asyncpg==0.30.*' \
            'redis==5.2.*' 'gunicorn==23.*' >&2
    # The Python helper for ASGI apps (python/prefork-asgi), as its tests under the supervisor import it, and pytest.
    "$venv/bin/python" -c "import pytest" 2>/dev/null || "$venv/bin/pip" install -q 'pytest==8.*' >&2
    "$venv/bin/pip" install -q --no-deps --force-reinstall "$ROOT/python/prefork-asgi" >&2
    # The Kubernetes manifests' schemas (scripts/test.d/kubernetes.py).
    "$venv/bin/python" -c "import kubernetes_validate" 2>/dev/null || "$venv/bin/pip" install -q 'kubernetes-validate==1.37.*' >&2
    export PREFORK_TEST_PYTHON="$venv/bin/python"
}
