# What scripts/bench and scripts/chaos share: the Python stack, the seeded data, the load generator.
# shellcheck shell=bash

# The FastAPI comparison stack (benchmarks/python/requirements.txt) in .build/bench-venv, from PyPI, and the
# repository's ASGI helper (python/prefork-asgi), which its app uses.
python_stack() {
    venv="$ROOT/.build/bench-venv"
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
    "$venv/bin/python" -c "import fastapi, uvicorn, uvloop, httptools, gunicorn, uvicorn_worker, sqlalchemy, asyncpg, redis, matplotlib, psutil" \
        2>/dev/null || "$venv/bin/pip" install -q -r "$ROOT/benchmarks/python/requirements.txt" >&2
    "$venv/bin/pip" install -q --no-deps --force-reinstall "$ROOT/python/prefork-asgi" >&2
}

# The schema, a token for user bench and 10,000 of its notes; sets token, note_id and user_id (the benchmarks
# read the note in the middle).
seed_notes() {
    "$ROOT/.build/release/worker" migrate >&2
    token="$("$ROOT/.build/release/worker" create-token --user bench --ttl 1d 2>/dev/null)"
    note_id="$(psql "$DATABASE_URL" -Atq -c "INSERT INTO notes (user_id, title, body)
        SELECT (SELECT id FROM users WHERE name = 'bench'), 'note ' || g, repeat('lorem ipsum ', 20)
        FROM generate_series(1, 10000) g" -c "SELECT max(id) - 5000 FROM notes")"
    user_id="$(psql "$DATABASE_URL" -Atq -c "SELECT id FROM users WHERE name = 'bench'")"
}

# loadgen.c: every request on a clock, for the timelines and the chaos scenarios.
build_loadgen() {
    gcc -O2 -Wall -Wextra -Werror -o "$ROOT/.build/loadgen" "$ROOT/benchmarks/harness/loadgen.c"
}
