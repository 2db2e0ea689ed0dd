#!/usr/bin/env python3
"""Fault scenarios against the real supervisor, API workers, Postgres and Redis on loopback. Each scenario is
bounded in time, prints what a client lost, and checks what must hold; the exit status is 1 if any check
failed. Load comes from loadgen.c, which records every request with its start, latency and outcome.

Usage (scripts/chaos does the setup): chaos.py --bin DIR --loadgen PATH --token T --note-id N --scratch DIR
    [--only kill,postgres,redis,supervisor,crashloop,overload,stalledlog,closedlog] [--kill-seconds 60]
"""
import argparse
import fcntl
import json
import os
import random
import re
import select
import signal
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
# The load generator's runner and the process measurements are the benchmarks' own.
sys.path.insert(0, os.path.join(ROOT, "benchmarks", "harness"))

import timeline  # noqa: E402
from common import cpu_seconds, free_port, http_ok  # noqa: E402

WORKERS = 4
BUDGET = WORKERS * 20  # the seed's pools: 10 persistent + 10 overflow per worker


class Checks:
    def __init__(self):
        self.failed = []

    def expect(self, ok, what):
        print(f"  {'ok  ' if ok else 'FAIL'} {what}", flush=True)
        if not ok:
            self.failed.append(what)


def shell(function):
    """pause_postgres, resume_postgres, pause_redis, resume_redis from the scripts (same cluster, same port)."""
    library = "postgres.sh" if "postgres" in function else "redis.sh"
    subprocess.run(["bash", "-c", f'source "{ROOT}/scripts/{library}"; {function}'], check=True)


def psql(sql):
    out = subprocess.run(["psql", os.environ["DATABASE_URL"], "-Atq", "-c", sql], capture_output=True, text=True)
    return out.stdout.strip() if out.returncode == 0 else None


def client_backends():
    """Client backends other than psql's own, or None while Postgres is down."""
    value = psql("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' "
                 "AND pid <> pg_backend_pid()")
    return int(value) if value is not None else None


class Supervisor:
    def __init__(self, args, extra=(), env=None, command=None, name="supervisor", stderr=None):
        self.control = os.path.join(args.scratch, f"{name}.sock")
        self.port = free_port()
        self.metrics_port = free_port()
        self.log_path = os.path.join(args.scratch, f"{name}.log")
        self.args = args
        argv = [f"{args.bin}/supervisor", "--workers", str(WORKERS), "--bind", f"127.0.0.1:{self.port}",
                "--control-socket", self.control, "--metrics-bind", f"127.0.0.1:{self.metrics_port}", *extra,
                "--", *(command or [f"{args.bin}/worker"])]
        self.log = open(self.log_path, "w")
        environment = dict(os.environ, RATE_LIMIT_PER_MINUTE="100000000", **(env or {}))
        # --user: the supervisor and its workers run as that user, as the image runs them (non-root, no
        # capabilities); this script keeps root's rights to stop Postgres, SIGSTOP workers and read their sockets.
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=self.log if stderr is None else stderr,
                                     env=environment, user=args.user)

    def status(self):
        # As the supervisor's own user: the command refuses a socket whose listener runs as someone else.
        out = subprocess.run([f"{self.args.bin}/supervisor", "status", "--json", "--control-socket", self.control],
                             capture_output=True, text=True, timeout=5, user=self.args.user)
        return json.loads(out.stdout) if out.returncode == 0 else None

    def ready_pids(self):
        status = self.status()
        if not status:
            return []
        return [slot["pid"] for slot in status["slots"] if slot["state"] == "ready" and slot["pid"]]

    def wait_ready(self, timeout=30, exclude=()):
        """Seconds until every slot is ready with a worker not in `exclude`."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            pids = self.ready_pids()
            if len(pids) == WORKERS and not set(pids) & set(exclude):
                return time.monotonic() - started
            time.sleep(0.005)
        raise TimeoutError(f"not all {WORKERS} workers ready within {timeout} s; see {self.log_path}")

    def scrape(self):
        with socket.create_connection(("127.0.0.1", self.metrics_port), timeout=5) as s:
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        return data.decode(errors="replace").split("\r\n\r\n", 1)[-1]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def metric_sum(text, name, **labels):
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{key}="{value}"' in line for key, value in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def alive(pid):
    """Running, not a zombie waiting for a parent that is gone (init reaps those)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_stopped(pid, timeout=1.0):
    """kill() returns before the signal is acted on: wait until the process is really stopped ('T')."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(f"/proc/{pid}/stat") as f:
            if f.read().rsplit(")", 1)[1].split()[0] == "T":
                return
        time.sleep(0.0005)
    raise TimeoutError(f"{pid} did not stop")


def open_fds(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def in_flight(pid, port):
    """Established TCP connections to `port` held by process `pid`: with a new connection per request, each is
    a request the worker accepted and has not finished closing. Call it on a stopped process (SIGSTOP), so
    the count cannot change before the kill."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    # ss filters in the kernel: /proc/net/tcp would list every TIME_WAIT socket of the run too.
    out = subprocess.run(["ss", "-tnHe", "state", "established", f"( sport = :{port} )"], capture_output=True,
                         text=True).stdout
    return sum(1 for inode in re.findall(r"ino:(\d+)", out) if inode in inodes)


def summarize(rows, start=0.0, end=float("inf")):
    """Outcomes and latencies of the requests that started in [start, end)."""
    chosen = [r for r in rows if start <= r[0] < end]
    ok = [r[1] * 1000 for r in chosen if 200 <= r[2] < 300]
    return {"requests": len(chosen), "ok": len(ok), "outcomes": timeline.outcomes(chosen),
            "p99_ok": timeline.percentile(ok, 0.99), "max_ms": max((r[1] * 1000 for r in chosen), default=0)}


def load(args, port, connections, seconds, name, close=False, timeout=10):
    return timeline.Run(args.loadgen, port, f"/v1/notes/{args.note_id}", [f"Authorization: Bearer {args.token}"],
                        connections, seconds, os.path.join(args.scratch, f"{name}.csv"), close=close,
                        timeout=timeout)


def scenario_kill(args, checks):
    seconds = args.kill_seconds
    print(f"\n## kill -9 of a random worker every 2 s, {seconds} s of load (32 clients, a new connection per "
          "request)", flush=True)
    sup = Supervisor(args, name="kill")
    try:
        sup.wait_ready()
        run = load(args, sup.port, 32, seconds, "kill", close=True)
        rng = random.Random(8)
        kills, helds, recoveries = [], [], []
        at = 2.0
        while at < seconds - 1:
            run.sleep_until(at)
            pids = sup.ready_pids()
            victim = rng.choice(pids)
            # Stopped, the victim neither accepts nor finishes a request while its connections are counted.
            os.kill(victim, signal.SIGSTOP)
            wait_stopped(victim)
            held = in_flight(victim, sup.port)
            os.kill(victim, signal.SIGKILL)
            run.event("kill")
            kills.append(run.now())
            helds.append(held)
            recoveries.append(sup.wait_ready(timeout=2, exclude=(victim,)))
            at += 2.0
        rows = run.finish()
        flight = sum(helds)
        total = summarize(rows)
        failed = total["requests"] - total["ok"]
        causes = {k: v for k, v in total["outcomes"].items() if k != "2xx"}
        print(f"  {len(kills)} kills; {total['requests']:,} requests, {failed} failed ({causes or 'none'}); "
              f"{flight} requests were in flight on the killed workers when they were killed")
        failures = [r for r in rows if not 200 <= r[2] < 300]
        near = lambda r, k: k - 0.05 <= r[0] + r[1] <= k + 0.1
        per_kill = [(held, sum(1 for r in failures if near(r, k))) for k, held in zip(kills, helds)]
        elsewhere = sum(1 for r in failures if not any(near(r, k) for k in kills))
        print("  per kill, in flight / failed: " + ", ".join(f"{h}/{f}" for h, f in per_kill)
              + f"; failures not at a kill: {elsewhere}")
        print(f"  every slot ready again after each kill: slowest {max(recoveries) * 1000:.0f} ms, median "
              f"{sorted(recoveries)[len(recoveries) // 2] * 1000:.0f} ms after the kill")
        checks.expect(len(recoveries) == len(kills) and max(recoveries) < 2,
                      "all 4 slots ready before the next kill, every time")
        checks.expect(set(causes) <= {"reset or closed"},
                      "the only failures are connections reset by a dying worker (no refusals, timeouts or 5xx)")
        # A request is lost only if the killed worker had accepted it. (Some counted ones had their answer sent
        # and were only waiting to be closed: those do not fail.)
        checks.expect(failed <= flight, f"failed ({failed}) ≤ in flight on the killed workers ({flight})")
        checks.expect(sup.proc.poll() is None and http_ok(sup.port), "the supervisor still serves")
    finally:
        sup.stop()


def scenario_postgres(args, checks):
    print("\n## Postgres stopped for 5 s mid-load (pg_ctl stop -m fast, then start), 32 keep-alive clients",
          flush=True)
    sup = Supervisor(args, name="postgres")
    try:
        sup.wait_ready()
        pids = sup.ready_pids()
        fds_before = {pid: open_fds(pid) for pid in pids}
        run = load(args, sup.port, 32, 22, "postgres", timeout=30)
        run.sleep_until(5)
        run.event("stop")
        stopped = run.now()
        shell("pause_postgres")
        run.sleep_until(stopped + 5)
        shell("resume_postgres")
        started = run.now()
        run.event("start")
        peak = 0
        while run.now() < 21:
            count = client_backends()
            peak = max(peak, count or 0)
            time.sleep(0.05)
        rows = run.finish()
        outage = summarize(rows, stopped, started)
        print(f"  during the outage: {outage['requests']:,} requests, {outage['outcomes']}, slowest answer "
              f"{outage['max_ms']:.0f} ms")
        # Recovery: the end of the last 250 ms bucket after the start that still had a failure.
        series = timeline.buckets(rows, 22)
        last_bad = max((b["t"] + timeline.BUCKET for b in series if b["failed_rps"] and b["t"] >= started - 1),
                       default=started)
        recovery = max(0.0, last_bad - started)
        after = summarize(rows, last_bad, 21)
        recovered = (f"full recovery {recovery * 1000:.0f} ms after Postgres accepted connections again" if recovery
                     else "no request failed once Postgres accepted connections again")
        print(f"  {recovered}; afterwards {after['requests']:,} requests, {after['outcomes']}")
        time.sleep(1)
        metrics = sup.scrape()
        checked_out = metric_sum(metrics, "pool_connections", state="checked_out")
        waiting = metric_sum(metrics, "pool_waiting_checkouts")
        backends = client_backends()
        fds_after = {pid: open_fds(pid) for pid in sup.ready_pids()}
        print(f"  Postgres connections: peak {peak} after the restart, {backends} idle now (budget {BUDGET}); "
              f"pools: {checked_out:.0f} checked out, {waiting:.0f} waiting; worker fds before {sorted(fds_before.values())} "
              f"after {sorted(fds_after.values())}")
        non_503 = {k: v for k, v in outage["outcomes"].items() if k not in ("2xx", "503")}
        checks.expect(not non_503, "during the outage every answer is a 200 or a 503, no resets or timeouts")
        checks.expect(outage["max_ms"] < 1000, f"no hangs: the slowest answer in the outage took "
                                                f"{outage['max_ms']:.0f} ms (< 1 s)")
        checks.expect(recovery < 3, f"full recovery within 3 s of the restart ({recovery:.2f} s)")
        checks.expect(peak <= BUDGET and (backends or 0) <= BUDGET, f"connections ≤ the budget of {BUDGET}")
        checks.expect(checked_out == 0 and waiting == 0, "nothing leaked: no connection checked out, no waiter")
        checks.expect(set(fds_before) == set(fds_after) and all(abs(fds_after[p] - fds_before[p]) <= BUDGET // WORKERS
                                                                for p in fds_before),
                      "the same workers serve, their descriptors within a pool's worth of before")
    finally:
        if client_backends() is None:
            shell("resume_postgres")
        sup.stop()


def scenario_redis(args, checks):
    print("\n## Redis killed for 5 s mid-load, then started again, 32 keep-alive clients", flush=True)
    sup = Supervisor(args, name="redis")
    try:
        sup.wait_ready()
        run = load(args, sup.port, 32, 16, "redis")
        run.sleep_until(4)
        stopped = run.now()
        shell("pause_redis")
        run.event("kill")
        run.sleep_until(stopped + 5)
        shell("resume_redis")
        started = run.now()
        run.event("start")
        rows = run.finish()
        outage = summarize(rows, stopped, started)
        after = summarize(rows, started + 2, 16)
        total = summarize(rows)
        metrics = sup.scrape()
        fallbacks = metric_sum(metrics, "redis_fallbacks_total")
        print(f"  during the outage: {outage['requests']:,} requests, {outage['outcomes']}, p99 "
              f"{outage['p99_ok']:.1f} ms; whole run {total['outcomes']}; {fallbacks:.0f} fallbacks to Postgres")
        checks.expect(outage["ok"] == outage["requests"] > 0, "every authenticated read during the outage succeeded")
        checks.expect(total["ok"] == total["requests"], "no request failed in the whole run")
        checks.expect(after["requests"] > 0 and after["ok"] == after["requests"], "reads go on after Redis is back")
    finally:
        if subprocess.run(["redis-cli", "-p", os.environ["TEST_REDIS_PORT"], "ping"], capture_output=True).returncode:
            shell("resume_redis")
        sup.stop()


def scenario_supervisor(args, checks):
    print("\n## The supervisor SIGKILLed with 4 workers serving and the cleanup job running", flush=True)
    # Enough expired notes, deleted 10 at a time, to keep the job busy for a while.
    psql("INSERT INTO notes (user_id, title, body, deleted_at) SELECT (SELECT id FROM users WHERE name = 'bench'), "
         "'expired', 'x', now() - interval '40 days' FROM generate_series(1, 200000)")
    sup = Supervisor(args, extra=["--cleanup-on-start", "--cleanup-command", f"{args.bin}/cleanup"],
                     env={"CLEANUP_BATCH_SIZE": "10"}, name="supervisor-kill")
    try:
        sup.wait_ready()
        job = None
        deadline = time.monotonic() + 10
        while job is None and time.monotonic() < deadline:
            job = (sup.status() or {}).get("cleanup", {}).get("running_pid")
            time.sleep(0.01)
        run = load(args, sup.port, 16, 3, "supervisor-kill")
        time.sleep(1)
        pids = sup.ready_pids() + ([job] if job else [])
        backends = client_backends()
        killed = time.monotonic()
        sup.proc.kill()
        sup.proc.wait()
        gone = backends_gone = None
        while time.monotonic() - killed < 5 and (gone is None or backends_gone is None):
            if gone is None and not any(alive(pid) for pid in pids):
                gone = time.monotonic() - killed
            if backends_gone is None and client_backends() == 0:
                backends_gone = time.monotonic() - killed
            time.sleep(0.005)
        run.finish()
        print(f"  before: {len(pids) - (1 if job else 0)} workers and the cleanup job (pid {job}), {backends} client "
              f"backends; after SIGKILL: every process gone in "
              f"{'never' if gone is None else f'{gone * 1000:.0f} ms'}, no backend left after "
              f"{'never' if backends_gone is None else f'{backends_gone * 1000:.0f} ms'}")
        checks.expect(job is not None, "the cleanup job was running")
        checks.expect(gone is not None and gone <= 1, "every worker and the cleanup job gone within 1 s")
        checks.expect(backends_gone is not None and backends_gone <= 1, "no Postgres backend left within 1 s")
    finally:
        sup.stop()
        psql("DELETE FROM notes WHERE title = 'expired'")


def scenario_crashloop(args, checks):
    print("\n## A crash-looping worker: 2 of 4 slots' workers exit 3 at every start from now on, for 20 s",
          flush=True)
    marker = os.path.join(args.scratch, "crash")
    wrapper = os.path.join(args.scratch, "crashing-worker.sh")
    with open(wrapper, "w") as f:
        f.write(f'#!/bin/sh\n# Boots normally until {marker} exists, then fails at once, as a bad deploy would.\n'
                f'[ -e "{marker}" ] && exit 3\nexec "{args.bin}/worker" "$@"\n')
    os.chmod(wrapper, 0o755)
    if os.path.exists(marker):
        os.unlink(marker)
    sup = Supervisor(args, command=[wrapper], name="crashloop")
    try:
        sup.wait_ready()
        open(marker, "w").close()
        run = load(args, sup.port, 16, 20, "crashloop")
        victims = sup.ready_pids()[:2]
        cpu_before = cpu_seconds(sup.proc.pid)
        started = time.monotonic()
        kill_at = run.now()
        for pid in victims:
            os.kill(pid, signal.SIGKILL)
        rows = run.finish()
        elapsed = time.monotonic() - started
        cpu = cpu_seconds(sup.proc.pid) - cpu_before
        status = sup.status()
        with open(sup.log_path) as f:
            log = f.read()
        # "restarting after backoff delay=250ms failures=2 slot=1", per slot.
        delays = {}
        for value, unit, slot in re.findall(r"restarting after backoff delay=([\d.]+)(ms|s) .*?slot=(\d+)", log):
            delays.setdefault(slot, []).append(float(value) / (1000 if unit == "ms" else 1))
        slot, growth = max(delays.items(), key=lambda item: len(item[1]), default=("-", []))
        # The killed workers' own requests in flight fail with them; after that, nothing may.
        after = summarize(rows, kill_at + 0.1)
        print(f"  {sum(s['restarts'] for s in status['slots'])} restarts in {elapsed:.0f} s; slot {slot}'s delays: "
              f"{', '.join(f'{d:g}s' for d in growth) or 'none logged'}; supervisor CPU {cpu:.2f} s "
              f"({100 * cpu / elapsed:.1f}% of a core); after the kills the healthy slots served {after['ok']:,} of "
              f"{after['requests']:,} requests")
        checks.expect(len(growth) >= 3 and all(b >= a for a, b in zip(growth, growth[1:])) and growth[-1] > growth[0],
                      "the backoff grows from one restart to the next")
        checks.expect(cpu / elapsed < 0.05, "the supervisor uses under 5% of a core while its workers crash-loop")
        checks.expect(after["ok"] == after["requests"] > 0, "the other workers keep serving, nothing failed")
    finally:
        if os.path.exists(marker):
            os.unlink(marker)
        sup.stop()


def scenario_overload(args, checks):
    print("\n## 10x overload: 2048 keep-alive clients for 15 s against 4 workers (pool timeout 100 ms, so "
          "waiting shows within the run)", flush=True)
    sup = Supervisor(args, env={"DB_POOL_TIMEOUT": "0.1"}, name="overload")
    try:
        sup.wait_ready()
        sampler = timeline.PeakConnections(os.environ["DATABASE_URL"])
        sampler.start()
        run = load(args, sup.port, 2048, 15, "overload", timeout=20)
        rows = run.finish()
        peak = sampler.stop()
        total = summarize(rows)
        errors = [r for r in rows if not 200 <= r[2] < 300]
        fast_503 = [r for r in errors if r[2] == 503 and r[1] < 0.1]
        status = sup.status()
        restarts = sum(s["restarts"] for s in status["slots"])
        metrics = sup.scrape()
        timeouts = metric_sum(metrics, "pool_checkout_timeouts_total")
        print(f"  {total['requests']:,} requests, {total['outcomes']}, p99 of successes {total['p99_ok']:.0f} ms; "
              f"peak Postgres connections {peak} (budget {BUDGET}); {timeouts:.0f} pool checkout timeouts; "
              f"{restarts} worker restarts")
        checks.expect(peak <= BUDGET, f"Postgres connections never above the budget ({peak} ≤ {BUDGET})")
        checks.expect(all(r[2] == 503 for r in errors), "every error is a 503, no resets, refusals or timeouts")
        checks.expect(not fast_503, f"every 503 came after the pool timeout (100 ms), none before "
                                    f"({len(errors)} 503s in this run)")
        checks.expect(restarts == 0 and len(sup.ready_pids()) == WORKERS, "no worker crashed, all 4 ready")
    finally:
        sup.stop()


def last_reload(sup, generation, timeout=30):
    """The outcome of the rolling restart to `generation`, once it has one (None if it never does)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = sup.status() or {}
        record = status.get("last_reload") or {}
        if record.get("generation") == generation and record.get("outcome") != "rolling":
            return record["outcome"]
        time.sleep(0.05)
    return None


def log_pipe():
    """A pipe for the supervisor's stderr, its buffer at the minimum (one page), so that it is full at once."""
    read_end, write_end = os.pipe()
    fcntl.fcntl(write_end, 1031, 4096)  # F_SETPIPE_SZ
    return read_end, write_end


def scenario_stalledlog(args, checks):
    seconds = 60
    print(f"\n## A log pipe nobody reads for {seconds} s: access logs on, 32 keep-alive clients, a rolling restart "
          "and a status every 5 s meanwhile", flush=True)
    read_end, write_end = log_pipe()
    sup = Supervisor(args, name="stalledlog", env={"ACCESS_LOG": "1"}, stderr=write_end)
    os.close(write_end)
    try:
        sup.wait_ready()
        run = load(args, sup.port, 32, seconds, "stalledlog")
        status_times, hup_outcome = [], None
        for at in range(5, seconds, 5):
            run.sleep_until(at)
            started = time.monotonic()
            status = sup.status()
            status_times.append(time.monotonic() - started if status else float("inf"))
            if at == 20:
                before = status["generation"]
                sup.proc.send_signal(signal.SIGHUP)
                run.event("hup")
                hup_outcome = last_reload(sup, before + 1)
        queued = len(os.read(read_end, 1 << 20)) if select.select([read_end], [], [], 0)[0] else 0
        rows = run.finish()
        total = summarize(rows)
        dropped = metric_sum(sup.scrape(), "log_lines_dropped_total")
        print(f"  {total['requests']:,} requests, {total['requests'] - total['ok']} failed "
              f"({ {k: v for k, v in total['outcomes'].items() if k != '2xx'} or 'none'}); slowest status "
              f"{max(status_times) * 1000:.0f} ms; rolling restart {hup_outcome}; {dropped:.0f} worker log lines "
              f"dropped; {queued} bytes were waiting in the pipe")
        checks.expect(total["ok"] == total["requests"] > 0, "no request lost while nobody read the log")
        checks.expect(max(status_times) < 1, "supervisor status answered within 1 s every time")
        checks.expect(hup_outcome == "finished", "a rolling restart finished while nobody read the log")
        checks.expect(dropped > 0, "the workers counted the log lines they dropped (log_lines_dropped_total)")
        sup.wait_ready(timeout=5)
        checks.expect(True, "every worker serving at the end")
    finally:
        sup.stop()
        os.close(read_end)


def scenario_closedlog(args, checks):
    print("\n## The log reader goes away: stderr's pipe closed after the boot, access logs on, 32 keep-alive "
          "clients for 20 s, a rolling restart (new workers start with a closed stderr) and a graceful stop",
          flush=True)
    read_end, write_end = log_pipe()
    sup = Supervisor(args, name="closedlog", env={"ACCESS_LOG": "1"}, stderr=write_end)
    os.close(write_end)
    try:
        sup.wait_ready()
        os.close(read_end)
        run = load(args, sup.port, 32, 20, "closedlog")
        run.sleep_until(5)
        before = sup.status()["generation"]
        sup.proc.send_signal(signal.SIGHUP)
        run.event("hup")
        outcome = last_reload(sup, before + 1)
        rows = run.finish()
        total = summarize(rows)
        restarts = sum(slot["restarts"] for slot in (sup.status() or {}).get("slots", []))
        print(f"  {total['requests']:,} requests, {total['requests'] - total['ok']} failed "
              f"({ {k: v for k, v in total['outcomes'].items() if k != '2xx'} or 'none'}); rolling restart {outcome}; "
              f"{restarts} unplanned restarts")
        checks.expect(total["ok"] == total["requests"] > 0, "no request lost after the log reader went away")
        checks.expect(outcome == "finished", "a rolling restart finished: new workers live with a closed stderr")
        checks.expect(restarts == 0 and len(sup.ready_pids()) == WORKERS, "no worker died (of SIGPIPE), all 4 ready")
        # A stop under load with a closed stderr: every worker drains (and logs into the void) without dying.
        run = load(args, sup.port, 32, 3, "closedlog-stop")
        run.sleep_until(1)
        sup.proc.send_signal(signal.SIGTERM)
        code = sup.proc.wait(20)
        # Connections refused once the listener is closed are the stop working; a reset is a lost request.
        resets = [r for r in run.finish() if r[2] == -2]
        checks.expect(code == 0, f"the supervisor exited 0 (got {code})")
        checks.expect(not resets, f"no request reset by a worker dying at its draining line ({len(resets)} were)")
    finally:
        sup.stop()


SCENARIOS = {"kill": scenario_kill, "postgres": scenario_postgres, "redis": scenario_redis,
             "supervisor": scenario_supervisor, "crashloop": scenario_crashloop, "overload": scenario_overload,
             "stalledlog": scenario_stalledlog, "closedlog": scenario_closedlog}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", required=True)
    parser.add_argument("--loadgen", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--note-id", required=True)
    parser.add_argument("--scratch", required=True)
    parser.add_argument("--only", default=",".join(SCENARIOS))
    parser.add_argument("--kill-seconds", type=int, default=60)
    parser.add_argument("--user", help="run the supervisor and its workers as this user (the scratch folder must be theirs)")
    args = parser.parse_args()
    unknown = set(args.only.split(",")) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenario {', '.join(sorted(unknown))}; choose from {', '.join(SCENARIOS)}")
    checks = Checks()
    for name in args.only.split(","):
        try:
            SCENARIOS[name](args, checks)
        except Exception as error:  # a scenario that breaks is a failed check, and the others still run
            checks.expect(False, f"{name}: {type(error).__name__}: {error}")
    print()
    if checks.failed:
        print(f"chaos: {len(checks.failed)} checks failed: " + "; ".join(checks.failed))
        sys.exit(1)
    print("chaos: every check held")


if __name__ == "__main__":
    main()
