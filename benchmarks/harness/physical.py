"""The physical limit of GET /v1/notes/{id} on this machine: the same round trips without any HTTP.

An authenticated read costs one Redis round trip (GET auth:<hash>, INCR of the rate-limit key (EXPIRE once),
pipelined) and one Postgres statement (the note by id and user, prepared). pgbench and redis-benchmark drive
exactly that, on the same cores the API uses, with as many clients as the API's pools hold at the report's
load (64 Postgres clients for 64 HTTP connections, 20 Redis clients for 4 workers' pools of 5). Each runs
alone; a request needs both, and their CPU time adds up, so the limit is 1 / (1/pg + 1/redis) requests per
second. The API's throughput divided by that is the fraction of the hardware's own limit it reaches.
"""
import os
import re
import subprocess
import tempfile


def pgbench(dsn, note_id, user_id, seconds=8, clients=64):
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as script:
        # pgbench reads ":name" as a variable, so the format's colons are spelled chr(58).
        timestamp = "'YYYY-MM-DD\"T\"HH24' || chr(58) || 'MI' || chr(58) || 'SS.US\"Z\"'"
        script.write(
            f"SELECT id, title, body, to_char(created_at AT TIME ZONE 'UTC', {timestamp}) AS created_at, "
            f"to_char(updated_at AT TIME ZONE 'UTC', {timestamp}) AS updated_at "
            f"FROM notes WHERE id = {int(note_id)} AND user_id = {int(user_id)} AND deleted_at IS NULL;\n")
    argv = ["pgbench", "-n", "-M", "prepared", "-c", str(clients), "-j", "2", "-T", str(seconds), "-f", script.name,
            dsn]
    try:
        run = subprocess.run(argv, capture_output=True, text=True)
    finally:
        os.unlink(script.name)
    match = re.search(r"tps = ([\d.]+)", run.stdout)
    if run.returncode != 0 or not match:
        raise RuntimeError(f"pgbench failed ({run.returncode}):\n{run.stdout}{run.stderr}")
    return float(match.group(1)), " ".join(argv[:-3] + ["notes.sql", "$DATABASE_URL"])


def redis_benchmark(port, seconds=8, clients=20, pipeline=3):
    """Round trips per second of `pipeline` commands each: redis-benchmark counts commands."""
    # A short run gives the rate; the measured run is sized to last about `seconds`.
    def run(requests):
        argv = ["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-c", str(clients), "-n", str(requests),
                "-P", str(pipeline), "-q", "INCR", "rl:physical-limit"]
        out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
        match = re.search(r"([\d.]+) requests per second", out.replace("\r", "\n").splitlines()[-1]
                          if out.strip() else "")
        if not match:
            match = re.search(r"([\d.]+) requests per second", out)
        if not match:
            raise RuntimeError(f"redis-benchmark printed no rate:\n{out}")
        return float(match.group(1)), argv

    rate, _ = run(100_000)
    rate, argv = run(int(rate * seconds))
    command = " ".join(argv[:4] + ["$REDIS_PORT"] + argv[5:])
    return rate / pipeline, command


def measure(dsn, redis_port, note_id, user_id, seconds=8):
    pg, pg_command = pgbench(dsn, note_id, user_id, seconds)
    redis, redis_command = redis_benchmark(redis_port, seconds)
    return {"pg_tps": pg, "redis_round_trips": redis, "limit": 1 / (1 / pg + 1 / redis),
            "pg_command": pg_command, "redis_command": redis_command}
