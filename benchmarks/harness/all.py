#!/usr/bin/env python3
"""Every benchmark of the project in one run, each side by side with the seed's Python stack under uvicorn and
under gunicorn, written to benchmarks/results/<date>/ as a markdown report with PNG plots.

Order (one thing at a time on this 2-core machine; the stacks interleave wherever a figure is compared):
  1. the supervisor's own figures, with uvicorn's and gunicorn's managers (supervisor.py --compare);
  2. throughput and p99 against connections (wrk), rounds interleaving the stacks, and memory per stack;
  3. timelines of requests per second and p99 while a stack is HUPed, has a worker killed every 2 s, is TERMed
     (loadgen.c, every request on one clock);
  4. the physical limit: the same Postgres and Redis round trips with pgbench and redis-benchmark;
  5. the Postgres pool beside SQLAlchemy's (scripts/bench pool), and the cleanup job under load
     (scripts/bench cleanup).

Usage (scripts/bench all does the setup): all.py --bin DIR --python-app DIR --token T --note-id N --user-id U --out DIR
"""
import argparse
import glob
import json
import os
import platform
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import physical  # noqa: E402
import report  # noqa: E402
import timeline  # noqa: E402
from api import wrk  # noqa: E402
from stacks import STACKS, Stack, versions  # noqa: E402


def log(message):
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def command_version(argv):
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        return (out.stdout or out.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "unknown"


def machine():
    model = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        memory = int(f.readline().split()[1]) / 1024 / 1024
    return {"cpu": model, "cores": os.cpu_count(), "memory_gib": round(memory, 1), "kernel": platform.release(),
            "os": command_version(["sh", "-c", ". /etc/os-release; echo $PRETTY_NAME"])}


def tool_versions():
    postgres = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=lambda p: int(p.split("/")[4]))
    found = {"swift": command_version(["swift", "--version"]), "python": sys.version.split()[0],
             "postgres": command_version([postgres[-1], "--version"]) if postgres else "unknown",
             "redis_server": command_version(["redis-server", "--version"]),
             "wrk": command_version(["wrk", "-v"]).split(" Copyright")[0],
             "pgbench": command_version(["pgbench", "--version"])}
    found.update(versions())
    return found


def sweep(args, env):
    """Throughput and latency against connections; every stack once per round, rounds interleaved, and the
    median of the rounds reported. Memory is read idle (after start) and after the load (pools grown)."""
    results, memory = [], {}
    connections = [int(c) for c in args.connections.split(",")]
    for round_number in range(1, args.rounds + 1):
        for kind in STACKS:
            stack = Stack(kind, args.workers, args.bin, args.python_app, env).wait_ready()
            try:
                idle = stack.memory()
                wrk(stack.port, 64, 2, args.token, args.note_id)  # warm-up: pools filled, caches hot
                for count in connections:
                    sampler = timeline.PeakConnections(env["DATABASE_URL"])
                    sampler.start()
                    result = wrk(stack.port, count, args.seconds, args.token, args.note_id)
                    result.update(stack=kind, connections=count, round=round_number, peak_pg=sampler.stop())
                    results.append(result)
                    log(f"round {round_number} {kind:8s} C={count:4d} {result['ok_rps']:8.0f} ok/s p99 "
                        f"{result['p99']:7.2f} ms non-2xx {result['non2xx']} errors {result['errors']} "
                        f"peak pg {result['peak_pg']}")
                loaded = stack.memory()
                if round_number == 1:
                    memory[kind] = {"idle": idle, "loaded": loaded}
            finally:
                stack.stop()
            time.sleep(1)
    table = []
    for count in connections:
        row = {"connections": count}
        for kind in STACKS:
            rows = [r for r in results if r["stack"] == kind and r["connections"] == count]
            row[kind] = {"ok_rps": statistics.median(r["ok_rps"] for r in rows),
                         "p50": statistics.median(r["p50"] for r in rows),
                         "p99": statistics.median(r["p99"] for r in rows),
                         "non2xx": sum(r["non2xx"] for r in rows), "errors": sum(r["errors"] for r in rows),
                         "peak_pg": max(r["peak_pg"] for r in rows)}
        table.append(row)
    return table, memory


def timelines(args, env):
    """Each scenario on a fresh stack of each kind, the same schedule for all three."""
    scenarios = {
        "hup": ("rolling restart (HUP at 3 s)", 12),
        "kill": ("kill -9 of a random worker every 2 s", 14),
        "term": ("SIGTERM under load (at 3 s)", 7),
    }
    out = {}
    headers = [f"Authorization: Bearer {args.token}"]
    for name, (title, seconds) in scenarios.items():
        out[name] = {"title": title, "seconds": seconds, "stacks": {}}
        for kind in STACKS:
            stack = Stack(kind, args.workers, args.bin, args.python_app, env).wait_ready()
            wrk(stack.port, 64, 1, args.token, args.note_id)
            csv_path = os.path.join(args.scratch, f"{name}-{kind}.csv")
            sampler = timeline.PeakConnections(env["DATABASE_URL"])
            sampler.start()
            run = timeline.Run(args.loadgen, stack.port, f"/v1/notes/{args.note_id}", headers, 64, seconds, csv_path)
            extra = {}
            try:
                if name == "hup":
                    timeline.hup(stack, run)
                elif name == "kill":
                    kills, refilled = timeline.kill_every(stack, run, seconds, args.workers)
                    extra = {"kills": kills, "refilled": refilled}
                elif name == "term":
                    code, took = timeline.term(stack, run)
                    extra = {"exit_code": code, "exit_seconds": took}
                rows = run.finish()
            finally:
                peak = sampler.stop()
                stack.stop()
            events = run.events
            summary = timeline.outcomes(rows)
            extra.update(peak_pg=peak, outcomes=summary, total=len(rows),
                         p99=timeline.percentile([r[1] * 1000 for r in rows if 200 <= r[2] < 300], 0.99))
            if name == "term":
                sent = next(t for t, label in events if label == "TERM")
                exited = sent + extra["exit_seconds"]
                before = [r for r in rows if r[0] < sent]
                in_flight = [r for r in before if r[0] + r[1] > sent]
                extra.update(started_before=len(before),
                             failed_before=sum(1 for r in before if not 200 <= r[2] < 300),
                             in_flight=len(in_flight),
                             in_flight_ok=sum(1 for r in in_flight if 200 <= r[2] < 300),
                             served_after_term=sum(1 for r in rows if r[0] >= sent and 200 <= r[2] < 300),
                             # Accepted and then dropped, unlike a refused connection, which a client may retry.
                             reset_after_term=sum(1 for r in rows if r[0] >= sent and r[2] in (-2, -3, -4)),
                             exited_at=exited)
            elif name in ("hup", "kill"):
                first = events[0][0] if events else 0
                before = [b["rps"] for b in timeline.buckets(rows, seconds) if b["t"] < first - timeline.BUCKET]
                after = [b["rps"] for b in timeline.buckets(rows, seconds)
                         if first <= b["t"] < seconds - timeline.BUCKET]
                extra.update(rps_before=statistics.median(before) if before else 0,
                             rps_lowest=min(after) if after else 0,
                             failed=sum(v for k, v in summary.items() if k != "2xx"))
            out[name]["stacks"][kind] = {"series": timeline.buckets(rows, seconds), "events": events, **extra}
            log(f"timeline {name:4s} {kind:8s} {summary} peak pg {peak}")
            time.sleep(1)
    return out


def pool_figures(args):
    """scripts/bench pool: our pool and SQLAlchemy's async engine, one after the other, same settings."""
    ours = subprocess.run([f"{args.bin}/pool-bench", os.environ["DATABASE_URL"]], capture_output=True, text=True,
                          check=True).stdout
    theirs = subprocess.run([sys.executable, os.path.join(HERE, "sqlalchemy_pool.py"), os.environ["DATABASE_URL"]],
                            capture_output=True, text=True, check=True).stdout
    return subprocess.run([sys.executable, os.path.join(HERE, "pool_report.py")], input=ours + theirs,
                          capture_output=True, text=True, check=True).stdout.strip()


def cleanup_figures(args, env):
    """scripts/bench cleanup: the job deletes 1,000,000 expired notes while the API serves. Last, since it adds
    (and then deletes) rows; the Python seed has no cleanup job to set beside it."""
    subprocess.run(["psql", env["DATABASE_URL"], "-Atq", "-c",
                    "INSERT INTO notes (user_id, title, body, deleted_at) SELECT (SELECT id FROM users WHERE name = "
                    "'bench'), 'expired ' || g, repeat('lorem ipsum ', 20), now() - interval '40 days' "
                    "FROM generate_series(1, 1000000) g", "-c", "VACUUM ANALYZE notes"], check=True)
    return subprocess.run([sys.executable, os.path.join(HERE, "cleanup.py"), "--bin", args.bin, "--token", args.token,
                           "--note-id", args.note_id], capture_output=True, text=True, check=True, env=env).stdout.strip()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin")
    parser.add_argument("--python-app")
    parser.add_argument("--loadgen")
    parser.add_argument("--token")
    parser.add_argument("--note-id")
    parser.add_argument("--user-id")
    parser.add_argument("--out", required=True)
    parser.add_argument("--scratch")
    parser.add_argument("--redis-port")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--connections", default="64,128,256,512,1024")
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--skip", default="", help="comma-separated parts to leave out: supervisor,sweep,timelines,physical,pool,cleanup")
    parser.add_argument("--report-only", action="store_true", help="write the report again from --out's results.json")
    args = parser.parse_args()
    if args.report_only:
        with open(os.path.join(args.out, "results.json")) as f:
            report.write(json.load(f), args.out)
        return
    missing = [name for name in ("bin", "python_app", "loadgen", "token", "note_id", "user_id", "scratch", "redis_port")
               if getattr(args, name) is None]
    if missing:
        parser.error("missing " + ", ".join("--" + name.replace("_", "-") for name in missing))
    skip = set(filter(None, args.skip.split(",")))

    env = dict(os.environ, RATE_LIMIT_PER_MINUTE="100000000")
    data = {"machine": machine(), "versions": tool_versions(), "workers": args.workers, "seconds": args.seconds,
            "rounds": args.rounds, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    os.makedirs(args.out, exist_ok=True)
    started = time.monotonic()

    if "supervisor" not in skip:
        log("supervisor figures (scripts/bench supervisor --compare)")
        run = subprocess.run([sys.executable, os.path.join(HERE, "supervisor.py"), "--bin", args.bin, "--compare"],
                             capture_output=True, text=True)
        data["supervisor"] = run.stdout.strip()
        print(run.stdout, end="", flush=True)
    if "sweep" not in skip:
        log("throughput against connections and memory")
        data["sweep"], data["memory"] = sweep(args, env)
    if "timelines" not in skip:
        log("timelines: HUP, kill -9 every 2 s, TERM")
        data["timelines"] = timelines(args, env)
    if "physical" not in skip:
        log("physical limit: pgbench and redis-benchmark")
        data["physical"] = physical.measure(env["DATABASE_URL"], args.redis_port, args.note_id, args.user_id)
    if "pool" not in skip:
        log("the Postgres pool beside SQLAlchemy's (scripts/bench pool)")
        data["pool"] = pool_figures(args)
        print(data["pool"], flush=True)
    if "cleanup" not in skip:
        log("the cleanup job under load (scripts/bench cleanup): seeding 1,000,000 expired notes")
        data["cleanup"] = cleanup_figures(args, env)
        print(data["cleanup"], flush=True)
    data["elapsed_minutes"] = (time.monotonic() - started) / 60

    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(data, f, indent=1, default=str)
    report.write(data, args.out)
    log(f"report: {os.path.join(args.out, 'README.md')}")


if __name__ == "__main__":
    main()
