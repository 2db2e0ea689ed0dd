#!/usr/bin/env python3
"""GET /v1/notes/{id} with auth and rate limit, the Swift stack beside the seed's Python stack, in one run.

Both stacks run on the same throwaway Postgres and Redis, with the seed's settings (Postgres pool 10 + 10,
pre-ping, recycle 3600; Redis pool 5, waiting), the rate limit raised so it never rejects. For each worker
count W and connection count C, wrk runs for --seconds; a sampler polls pg_stat_activity every 10 ms for the
peak number of client backends. Idle RSS is read from /proc after the workers are ready, before any load.

Usage (scripts/bench api does the setup): api.py --bin DIR --python-app DIR --token T --note-id N
"""
import argparse
import asyncio
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time

import asyncpg

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# The stacks' common plumbing: a free port, the health probe, the /proc walk of a process tree.
from common import cpu_and_switches, descendants as children, free_port, http_ok, spent_between  # noqa: E402,F401


def uss_mb(pid):
    """Memory only this process holds (private pages): what one more worker costs."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            fields = dict(line.split(":", 1) for line in f if ":" in line and not line.startswith(" "))
        return sum(int(fields[k].split()[0]) for k in ("Private_Clean", "Private_Dirty")) / 1024
    except (OSError, KeyError, ValueError):
        return 0.0


def rss_mb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return 0.0
    return 0.0




def pids_named(*names):
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/comm") as f:
                    if f.read().strip().startswith(names):
                        found.append(int(entry))
            except OSError:
                continue
    return found


class Stack:
    def __init__(self, name, argv, cwd, env, workers, worker_pattern):
        self.name, self.workers, self.worker_pattern = name, workers, worker_pattern
        self.proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)

    def worker_pids(self):
        pids = []
        for pid in children(self.proc.pid):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    cmdline = f.read().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if re.search(self.worker_pattern, cmdline):
                pids.append(pid)
        # uvicorn --workers 1 serves in its own process, without children.
        if not pids and self.workers == 1 and self.name.startswith("python"):
            pids = [self.proc.pid]
        return pids

    def stop(self):
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass  # the whole group ended between the TERM and now
            self.proc.wait()


class Sampler(threading.Thread):
    """Peak client backends in pg_stat_activity (the sampler's own connection excluded)."""

    def __init__(self, dsn):
        super().__init__(daemon=True)
        self.dsn, self.peak, self.running = dsn, 0, True

    def run(self):
        asyncio.run(self._run())

    async def _run(self):
        conn = await asyncpg.connect(self.dsn)
        while self.running:
            count = await conn.fetchval("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' "
                                        "AND pid <> pg_backend_pid()")
            self.peak = max(self.peak, count)
            await asyncio.sleep(0.01)
        await conn.close()


def wrk(port, connections, seconds, token, note_id, watched=None):
    """wrk's figures, and with `watched` ({kind: [pids]}), the CPU each kind of process spent during the run
    (wrk's own from its rusage) and the context switches of each kind."""
    before = {kind: cpu_and_switches(pids() if callable(pids) else pids) for kind, pids in (watched or {}).items()}
    proc = subprocess.Popen(["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "10s",
                             "-H", f"Authorization: Bearer {token}", f"http://127.0.0.1:{port}/v1/notes/{note_id}"],
                            stdout=subprocess.PIPE, text=True)
    out = proc.stdout.read()
    _, _, usage = os.wait4(proc.pid, 0)
    proc.returncode = 0
    # Postgres starts backends during the run (the overflow): look for the kind's processes again.
    after = {kind: cpu_and_switches(pids() if callable(pids) else pids) for kind, pids in (watched or {}).items()}
    spent = {kind: spent_between(before[kind], after[kind]) for kind in before}
    spent["wrk"] = (usage.ru_utime + usage.ru_stime, usage.ru_nvcsw + usage.ru_nivcsw)

    def number(pattern, default=0.0):
        match = re.search(pattern, out)
        return float(match.group(1)) if match else default

    def latency(percent):
        match = re.search(rf"^\s+{percent}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not match:
            return float("nan")
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    total = number(r"(\d+) requests in")
    non2xx = number(r"Non-2xx or 3xx responses: (\d+)")
    errors = sum(int(x) for x in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    duration = number(r"requests in ([\d.]+)s", seconds)
    ok_rps = (total - non2xx) / duration if duration else 0
    per_request = {}
    for kind, (cpu, switches) in spent.items():
        per_request[f"{kind}_us"] = 1e6 * cpu / total if total else float("nan")
        per_request[f"{kind}_cs"] = switches / total if total else float("nan")
    return {"rps": number(r"Requests/sec:\s+([\d.]+)"), "ok_rps": ok_rps, "p50": latency(50), "p99": latency(99),
            "non2xx": int(non2xx), "errors": errors, "requests": int(total), **per_request}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", required=True)
    parser.add_argument("--python-app", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--note-id", required=True)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--connections", default="64,512")
    parser.add_argument("--seconds", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--stacks", default="swift,python",
                        help="swift, python (redis-py pool that waits), python-seed (redis-py's default pool, which "
                             "raises), swift-baseline (the binaries of --baseline-bin)")
    parser.add_argument("--baseline-bin", help="a directory with an older build's supervisor and worker")
    args = parser.parse_args()

    dsn = os.environ["DATABASE_URL"]
    base_env = dict(os.environ, RATE_LIMIT_PER_MINUTE="100000000")
    results = []
    # Rounds interleave the stacks, so a slow minute on this shared machine hits both; each cell reports the
    # median of its rounds.
    for round_number in range(1, args.rounds + 1):
        for workers in [int(w) for w in args.workers.split(",")]:
            for stack in args.stacks.split(","):
                results += run_stack(stack, workers, args, base_env, dsn, round_number)

    def cell(stack, workers, connections):
        rows = [r for r in results if (r["stack"], r["workers"], r["connections"]) == (stack, workers, connections)]
        if not rows:
            return None
        median = lambda key: statistics.median(r[key] for r in rows)
        costs = {key: median(key) for key in rows[0] if key.endswith(("_us", "_cs"))}
        return {**costs, "ok_rps": median("ok_rps"), "p50": median("p50"), "p99": median("p99"),
                "non2xx": sum(r["non2xx"] for r in rows), "errors": sum(r["errors"] for r in rows),
                "requests": sum(r["requests"] for r in rows), "peak_pg": max(r["peak_pg"] for r in rows),
                "idle_rss": max(r["idle_rss"] for r in rows), "idle_uss": max(r["idle_uss"] for r in rows),
                "rounds": len(rows)}

    print()
    print(f"medians of {args.rounds} interleaved rounds of {args.seconds} s each:")
    print("| W | C | Swift ok rps | Python ok rps | ratio | Swift p50 / p99 ms | Python p50 / p99 ms | p99 ratio "
          "| non-2xx / socket errors (Swift; Python) | peak Postgres conns (Swift / Python) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for workers in [int(w) for w in args.workers.split(",")]:
        for connections in [int(c) for c in args.connections.split(",")]:
            swift, python = cell("swift", workers, connections), cell("python", workers, connections)
            if not swift or not python:
                continue
            ratio = swift["ok_rps"] / python["ok_rps"] if python["ok_rps"] else float("inf")
            p99_ratio = python["p99"] / swift["p99"] if swift["p99"] else float("nan")
            print(f"| {workers} | {connections} | {swift['ok_rps']:,.0f} | {python['ok_rps']:,.0f} | {ratio:.1f}x "
                  f"| {swift['p50']:.2f} / {swift['p99']:.2f} | {python['p50']:.2f} / {python['p99']:.2f} | {p99_ratio:.1f}x "
                  f"| {swift['non2xx']} / {swift['errors']}; {python['non2xx']} / {python['errors']} "
                  f"| {swift['peak_pg']} / {python['peak_pg']} |")
    stacks = args.stacks.split(",")
    if "swift-baseline" in stacks:
        print("\nthis build against the baseline (--baseline-bin), same run, interleaved:")
        print("| W | C | ok rps (this / baseline) | ratio | p99 ms (this / baseline) |")
        print("|---|---|---|---|---|")
        for workers in [int(w) for w in args.workers.split(",")]:
            for connections in [int(c) for c in args.connections.split(",")]:
                now, then = cell("swift", workers, connections), cell("swift-baseline", workers, connections)
                if now and then:
                    print(f"| {workers} | {connections} | {now['ok_rps']:,.0f} / {then['ok_rps']:,.0f} "
                          f"| {now['ok_rps'] / then['ok_rps']:.2f}x | {now['p99']:.2f} / {then['p99']:.2f} |")
    print("\nCPU per request in microseconds, by kind of process, and the workers' context switches per request "
          "(summed over every thread, from /proc, during the measured run):")
    print("| stack | W | C | worker us | worker switches | Postgres us | Redis us | wrk us |")
    print("|---|---|---|---|---|---|---|---|")
    for workers in [int(w) for w in args.workers.split(",")]:
        for connections in [int(c) for c in args.connections.split(",")]:
            for stack in stacks:
                c = cell(stack, workers, connections)
                if c and "worker_us" in c:
                    print(f"| {stack} | {workers} | {connections} | {c['worker_us']:.1f} | {c['worker_cs']:.2f} "
                          f"| {c['postgres_us']:.1f} | {c['redis_us']:.1f} | {c['wrk_us']:.1f} |")
    print("\nidle memory per worker, largest of the workers, RSS / private (USS):")
    for workers in [int(w) for w in args.workers.split(",")]:
        for stack in args.stacks.split(","):
            c = cell(stack, workers, int(args.connections.split(",")[0]))
            if c:
                print(f"  {stack:11s} W={workers}: {c['idle_rss']:.1f} MB / {c['idle_uss']:.1f} MB")
    for workers in [int(w) for w in args.workers.split(",")]:
        for connections in [int(c) for c in args.connections.split(",")]:
            seed = cell("python-seed", workers, connections)
            if seed:
                print(f"\nthe seed's redis-py pool (max_connections=5, raises when all are busy), W={workers} "
                      f"C={connections}: {seed['non2xx']} of {seed['requests']} requests failed "
                      f"({100 * seed['non2xx'] / max(1, seed['requests']):.1f}%)")


def run_stack(stack, workers, args, base_env, dsn, round_number):
    port = free_port()
    if stack in ("swift", "swift-baseline"):
        directory = args.bin if stack == "swift" else args.baseline_bin
        running = Stack(stack, [f"{directory}/supervisor", "--workers", str(workers), "--bind",
                                f"127.0.0.1:{port}", "--", f"{directory}/worker"],
                        None, base_env, workers, r"/worker$|/worker ")
    else:
        # python-seed: redis-py's default pool, which raises when its 5 connections are busy (the seed's).
        env = dict(base_env, REDIS_POOL_BLOCKING="0") if stack == "python-seed" else base_env
        running = Stack(stack, [sys.executable, "-m", "uvicorn", "app:app", "--workers", str(workers),
                                "--host", "127.0.0.1", "--port", str(port), "--no-access-log",
                                "--log-level", "warning"],
                        args.python_app, env, workers, r"spawn_main")
    deadline = time.monotonic() + 60
    while not (http_ok(port) and len(running.worker_pids()) >= workers):
        if time.monotonic() > deadline:
            running.stop()
            sys.exit(f"{stack} with {workers} workers did not start")
        time.sleep(0.1)
    time.sleep(1)
    pids = running.worker_pids()
    idle = sorted(rss_mb(pid) for pid in pids)
    unique = sorted(uss_mb(pid) for pid in pids)
    wrk(port, 64, 2, args.token, args.note_id)  # warm-up: pools filled, caches hot
    rows = []
    for connections in [int(c) for c in args.connections.split(",")]:
        sampler = Sampler(dsn)
        sampler.start()
        watched = {"worker": pids, "postgres": lambda: pids_named("postgres"), "redis": lambda: pids_named("redis-server")}
        result = wrk(port, connections, args.seconds, args.token, args.note_id, watched)
        sampler.running = False
        sampler.join()
        result.update(stack=stack, workers=workers, connections=connections, peak_pg=sampler.peak,
                      idle_rss=max(idle) if idle else 0, idle_uss=max(unique) if unique else 0)
        rows.append(result)
        print(f"round {round_number} {stack:11s} W={workers} C={connections:4d}  {result['ok_rps']:9.0f} ok/s  "
              f"p50 {result['p50']:7.2f} ms  p99 {result['p99']:8.2f} ms  non-2xx {result['non2xx']:6d}  "
              f"socket errors {result['errors']:5d}  peak pg {sampler.peak:3d}  idle rss/worker "
              f"{result['idle_rss']:.1f} MB (private {result['idle_uss']:.1f} MB)  worker {result['worker_us']:.1f} us "
              f"{result['worker_cs']:.2f} switches/request", flush=True)
    running.stop()
    time.sleep(1)
    return rows


if __name__ == "__main__":
    main()
