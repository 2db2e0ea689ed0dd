"""What one API request costs at least on this machine, part by part, measured with C programs that do only that
part, beside our worker doing the whole request, interleaved (scripts/bench floor).

A request of GET /v1/notes/{id} is three exchanges: the HTTP request and its answer, one Redis round trip
(GET and INCR pipelined, shared with other requests) and one Postgres round trip (a prepared statement). Each has a reference that is
nothing but that exchange, written in C and tuned for years:
  - HTTP: nginx answering `return 200` with the same number of worker processes, under the same wrk;
  - Redis: redis-benchmark's client, three commands pipelined per round trip;
  - Postgres: pgbench's client, the worker's statement, prepared.
The references' CPU per exchange, summed, is what a process pays for these three exchanges in the kernel's
loopback TCP, its wake-ups and its own parsing, each exchange its own round trip (the two clients drive 16
connections from one thread, as a worker does its pools' connections; none batches one request's commands with
another's). Our /healthz is the same HTTP exchange
without the round trips. Figures are CPU microseconds (user + system, every thread, from /proc and rusage) and
context switches, per request or per round trip."""

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from api import Stack  # noqa: E402
from common import cpu_and_switches, descendants, free_port, http_ok, spent_between  # noqa: E402

NGINX_CONF = """worker_processes {workers};
pid {dir}/nginx.pid;
error_log {dir}/error.log;
daemon off;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_requests 1000000;
    server {{
        listen 127.0.0.1:{port};
        location / {{ default_type application/json; return 200 '{{"status":"ok"}}'; }}
    }}
}}
"""


def postmaster(data_directory):
    """The cluster's postmaster, from its pid file: its children's CPU, once they exit, is counted in its cutime
    and cstime."""
    with open(f"{data_directory}/postmaster.pid") as f:
        return int(f.readline())


def reaped(pid):
    """CPU seconds of the exited children of pid (pgbench's backends end before the run's last snapshot)."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")


def measure(argv, watched, count_pattern, per=1.0, master=None):
    """Runs argv (a load generator or a benchmark client); returns {kind: (us, switches)} per unit of work for
    the watched processes ({kind: pids or a callable}) and the client itself ("client", from its rusage)."""
    def pids(kind):
        value = watched[kind]
        return value() if callable(value) else value
    before = {kind: cpu_and_switches(pids(kind)) for kind in watched}
    reaped_before = reaped(master) if master else 0.0
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    if status != 0:
        sys.exit(f"{argv[0]} failed: {out[-500:]}")
    if master:
        # The client's backends exit after it: wait until they are reaped, so that each is counted once, in the
        # postmaster's cutime, and not also from zero as a live process.
        started = set(pids("postgres")) - set(before["postgres"])
        deadline = time.monotonic() + 10
        while started & set(pids("postgres")) and time.monotonic() < deadline:
            time.sleep(0.05)
    after = {kind: cpu_and_switches(pids(kind)) for kind in watched}
    if "Non-2xx" in out or re.search(r"Socket errors", out):
        sys.exit(f"{argv[0]} saw failed requests: {out[-500:]}")
    match = re.search(count_pattern, out)
    if not match:
        sys.exit(f"no count in the output of {argv[0]}: {out[-500:]}")
    units = float(match.group(1)) / per
    spent = {kind: spent_between(before[kind], after[kind]) for kind in watched}
    if master:
        cpu, switches = spent["postgres"]
        spent["postgres"] = (cpu + reaped(master) - reaped_before, switches)
    spent["client"] = (usage.ru_utime + usage.ru_stime, usage.ru_nvcsw + usage.ru_nivcsw)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    return {kind: (1e6 * cpu / units, switches / units) for kind, (cpu, switches) in spent.items()} | \
        {"rate": float(rate.group(1)) if rate else float("nan")}


def wrk(port, path, connections, seconds, token=None):
    argv = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s"]
    if token:
        argv += ["-H", f"Authorization: Bearer {token}"]
    return argv + [f"http://127.0.0.1:{port}{path}"]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--note-id", required=True)
    parser.add_argument("--user-id", required=True)
    parser.add_argument("--redis-port", required=True)
    parser.add_argument("--redis-pid", type=int, required=True)
    parser.add_argument("--pg-data", required=True)
    parser.add_argument("--pgbench", required=True)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    dsn = os.environ["DATABASE_URL"]
    scratch = tempfile.mkdtemp(prefix="prefork-floor.")

    nginx_port, our_port = free_port(), free_port()
    with open(f"{scratch}/nginx.conf", "w") as f:
        f.write(NGINX_CONF.format(workers=args.workers, dir=scratch, port=nginx_port))
    with open(f"{scratch}/statement.sql", "w") as f:
        # The worker's statement (NoteStore.get), the same note and user; the colons of the time format are
        # chr(58), since pgbench would take `:MI` for a variable.
        f.write(f"\\set id {args.note_id}\n\\set user {args.user_id}\n"
                "SELECT id, title, body, "
                "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24' || chr(58) || 'MI' || chr(58) || 'SS.US\"Z\"') AS created_at, "
                "to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24' || chr(58) || 'MI' || chr(58) || 'SS.US\"Z\"') AS updated_at "
                "FROM notes WHERE id = :id AND user_id = :user AND deleted_at IS NULL;\n")
    nginx = ours = None
    try:
        nginx = Stack("nginx", ["nginx", "-c", f"{scratch}/nginx.conf"], None, os.environ, args.workers,
                      r"^nginx: worker")
        ours = Stack("swift", [f"{args.bin}/supervisor", "--workers", str(args.workers), "--bind",
                               f"127.0.0.1:{our_port}", "--", f"{args.bin}/worker"], None,
                     dict(os.environ, RATE_LIMIT_PER_MINUTE="100000000"), args.workers, r"/worker$|/worker ")
        deadline = time.monotonic() + 60
        while not (http_ok(our_port) and http_ok(nginx_port, "/")):
            if time.monotonic() > deadline:
                sys.exit("nginx or the supervisor did not start")
            time.sleep(0.1)
        time.sleep(1)
        nginx_workers = nginx.worker_pids()
        our_workers = ours.worker_pids()
        if len(nginx_workers) != args.workers or len(our_workers) != args.workers:
            sys.exit(f"expected {args.workers} workers each, found nginx {nginx_workers}, ours {our_workers}")
        master = postmaster(args.pg_data)
        backends = lambda: descendants(master)  # noqa: E731
        redis = [args.redis_pid]
        for warm in (wrk(nginx_port, "/", args.connections, 2),
                     wrk(our_port, f"/v1/notes/{args.note_id}", args.connections, 2, args.token)):
            subprocess.run(warm, stdout=subprocess.DEVNULL, check=True)

        runs = {"nginx": [], "healthz": [], "notes": [], "redis-benchmark": [], "pgbench": []}
        for round_number in range(1, args.rounds + 1):
            runs["nginx"].append(measure(wrk(nginx_port, "/", args.connections, args.seconds),
                                         {"server": nginx_workers}, r"(\d+) requests in"))
            runs["healthz"].append(measure(wrk(our_port, "/healthz", args.connections, args.seconds),
                                           {"server": our_workers}, r"(\d+) requests in"))
            runs["notes"].append(measure(wrk(our_port, f"/v1/notes/{args.note_id}", args.connections, args.seconds,
                                             args.token),
                                         {"server": our_workers, "postgres": backends, "redis": redis},
                                         r"(\d+) requests in"))
            # Three commands per round trip (-P 3) over 16 connections, as 4 workers' pools of 4-5 hold.
            runs["redis-benchmark"].append(measure(
                ["redis-benchmark", "-h", "127.0.0.1", "-p", args.redis_port, "-c", "16", "-n", "600000", "-P", "3",
                 "-t", "get"], {"redis": redis}, r"(\d+) requests completed", per=3))
            runs["pgbench"].append(measure(
                [args.pgbench, "-n", "-M", "prepared", "-c", "16", "-j", "1", "-T", str(args.seconds),
                 "-f", f"{scratch}/statement.sql", dsn],
                {"postgres": backends}, r"number of transactions actually processed: (\d+)", master=master))
            figures = {name: results[-1] for name, results in runs.items()}
            print(f"round {round_number}: " + ", ".join(
                f"{name} {figures[name]['server' if 'server' in figures[name] else 'client'][0]:.1f} us"
                for name in runs), flush=True)
    finally:
        for stack in (nginx, ours):
            if stack is not None:
                stack.stop()
        subprocess.run(["rm", "-rf", scratch])

    def median(name, kind, index=0):
        if kind == "rate":
            return statistics.median(run["rate"] for run in runs[name])
        return statistics.median(run[kind][index] for run in runs[name])

    http = median("nginx", "server"), median("nginx", "server", 1)
    redis_rt = median("redis-benchmark", "client"), median("redis-benchmark", "client", 1)
    pg_rt = median("pgbench", "client"), median("pgbench", "client", 1)
    floor = http[0] + redis_rt[0] + pg_rt[0], http[1] + redis_rt[1] + pg_rt[1]
    healthz = median("healthz", "server"), median("healthz", "server", 1)
    notes = median("notes", "server"), median("notes", "server", 1)
    print(f"\nmedians of {args.rounds} interleaved rounds, {args.workers} workers, {args.connections} connections, "
          f"{args.seconds} s each; CPU us (user + system) and context switches, per request or round trip:")
    print("| exchange | reference in C | its CPU us | its switches | ours | our CPU us | our switches |")
    print("|---|---|---|---|---|---|---|")
    print(f"| HTTP GET, keep-alive | nginx `return 200`, {args.workers} workers | {http[0]:.1f} | {http[1]:.2f} "
          f"| `/healthz` | {healthz[0]:.1f} | {healthz[1]:.2f} |")
    print(f"| Redis round trip, 3 commands pipelined | redis-benchmark -P 3, client | {redis_rt[0]:.1f} | "
          f"{redis_rt[1]:.2f} | | | |")
    print(f"| Postgres round trip, the worker's statement | pgbench -M prepared, client | {pg_rt[0]:.1f} | "
          f"{pg_rt[1]:.2f} | | | |")
    print(f"| the whole request: the three | sum of the three | **{floor[0]:.1f}** | {floor[1]:.2f} "
          f"| `GET /v1/notes/{{id}}` | **{notes[0]:.1f}** | {notes[1]:.2f} |")
    print(f"\nours against the references: HTTP {healthz[0] / http[0]:.2f}x nginx, the whole request "
          f"{notes[0] / floor[0]:.2f}x the sum; throughput nginx {median('nginx', 'rate'):,.0f}/s, /healthz "
          f"{median('healthz', 'rate'):,.0f}/s, notes {median('notes', 'rate'):,.0f}/s")
    print(f"the servers' side, per round trip (switches of exited backends not counted): Redis {median('redis-benchmark', 'redis'):.1f} us under "
          f"redis-benchmark, {median('notes', 'redis'):.1f} us per request under ours; Postgres backends "
          f"{median('pgbench', 'postgres'):.1f} us under pgbench, {median('notes', 'postgres'):.1f} us under ours")


if __name__ == "__main__":
    main()
