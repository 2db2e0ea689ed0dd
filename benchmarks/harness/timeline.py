"""Requests per second and p99 over time while something happens to a stack: the load generator (loadgen.c)
keeps every request with its start time and outcome, and the events are stamped on the same clock (the
load generator's start), so the plot shows what a client saw at the moment of each signal."""
import csv
import os
import random
import signal
import subprocess
import threading
import time

from common import percentile

BUCKET = 0.25  # seconds per point of the timeline


class Run:
    """One load generator run in the background; `at(seconds)` is the run's clock."""

    def __init__(self, loadgen, port, path, headers, connections, seconds, out, close=False, timeout=10):
        argv = [loadgen, "--port", str(port), "--path", path, "--connections", str(connections),
                "--seconds", str(seconds), "--out", out, "--timeout", str(timeout)]
        for header in headers:
            argv += ["--header", header]
        if close:
            argv.append("--close")
        self.out, self.seconds = out, seconds
        self.started = time.monotonic()
        self.proc = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True)
        self.events = []  # (offset in seconds, label)

    def now(self):
        return time.monotonic() - self.started

    def sleep_until(self, offset):
        delay = offset - self.now()
        if delay > 0:
            time.sleep(delay)

    def event(self, label):
        self.events.append((self.now(), label))

    def finish(self):
        _, err = self.proc.communicate(timeout=self.seconds + 30)
        if self.proc.returncode != 0:
            raise RuntimeError(f"loadgen failed: {err}")
        with open(self.out) as f:
            rows = [(int(a) / 1e6, int(b) / 1e6, int(c)) for a, b, c in csv.reader(f)]
        return rows


def buckets(rows, seconds):
    """Per BUCKET: successful responses per second, failures per second and the p99 of the successes (ms).
    A request is placed where it ended, which is when a client would have counted it."""
    count = int(seconds / BUCKET)
    ok = [[] for _ in range(count)]
    failed = [0] * count
    for start, latency, status in rows:
        index = int((start + latency) / BUCKET)
        if index >= count:
            continue
        if 200 <= status < 300:
            ok[index].append(latency * 1000)
        else:
            failed[index] += 1
    return [{"t": i * BUCKET, "rps": len(ok[i]) / BUCKET, "failed_rps": failed[i] / BUCKET,
             "p99": percentile(ok[i], 0.99)} for i in range(count)]


def outcomes(rows):
    """Counts by outcome: 2xx, each other status, each socket error."""
    names = {-1: "connect failed", -2: "reset or closed", -3: "timed out", -4: "not HTTP"}
    counts = {}
    for _, _, status in rows:
        key = "2xx" if 200 <= status < 300 else names.get(status, str(status))
        counts[key] = counts.get(key, 0) + 1
    return counts


def hup(stack, run, settle=3.0):
    """A rolling restart at `settle` s."""
    run.sleep_until(settle)
    run.event("HUP")
    stack.signal(signal.SIGHUP)


def kill_every(stack, run, seconds, workers, every=2.0, start=2.0, rng=None):
    """kill -9 of a random worker every `every` s from `start` until a second before the end. Returns the
    number of kills and how many of them were made good: the stack back to `workers` workers 50 ms before the
    next kill (or at the end)."""
    rng = rng or random.Random(8)
    kills = refilled = 0
    at = start
    while at < seconds - 1:
        run.sleep_until(at)
        pids = stack.worker_pids()
        if pids:
            try:
                os.kill(rng.choice(pids), signal.SIGKILL)
                run.event("kill -9")
                kills += 1
            except ProcessLookupError:
                pass
        at += every
        run.sleep_until(min(at, seconds - 0.2) - 0.05)
        refilled += len(stack.worker_pids()) >= workers
    return kills, refilled


def term(stack, run, settle=3.0):
    """SIGTERM to the manager only, as a container runtime sends it; returns (exit code, seconds to exit)."""
    run.sleep_until(settle)
    run.event("TERM")
    sent = time.monotonic()
    stack.signal(signal.SIGTERM)
    try:
        code = stack.proc.wait(30)
    except subprocess.TimeoutExpired:
        code = None
    return code, time.monotonic() - sent


class PeakConnections(threading.Thread):
    """The highest number of client backends in pg_stat_activity, sampled every 10 ms on one connection of
    its own (excluded from the count)."""

    def __init__(self, dsn):
        super().__init__(daemon=True)
        self.dsn, self.peak, self.running, self.samples = dsn, 0, True, []

    def run(self):
        import asyncio
        import asyncpg

        async def sample():
            conn = await asyncpg.connect(self.dsn)
            started = time.monotonic()
            while self.running:
                count = await conn.fetchval("SELECT count(*) FROM pg_stat_activity WHERE backend_type = "
                                            "'client backend' AND pid <> pg_backend_pid()")
                self.peak = max(self.peak, count)
                self.samples.append((time.monotonic() - started, count))
                await asyncio.sleep(0.01)
            await conn.close()
        asyncio.run(sample())

    def stop(self):
        self.running = False
        self.join()
        return self.peak
