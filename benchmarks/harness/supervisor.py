#!/usr/bin/env python3
"""The supervisor's figures, measured with real processes on loopback.

Every timestamp is taken by this process with time.monotonic(): a reader thread stamps each log line of
the supervisor as it arrives on the pipe, so "ready" means the moment the supervisor knew. The load is a
pool of threads that each open a new connection per request, so every failure (refused, reset, timeout,
non-200) is counted, none hidden by a client's retry.
"""
import argparse
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

from common import children, fetch


class Logged:
    """A child process whose stderr lines are kept with the time they arrived."""

    def __init__(self, argv, env=None):
        self.lines = []
        self.cond = threading.Condition()
        self.proc = subprocess.Popen(argv, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                                     bufsize=1, env=env)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stderr:
            with self.cond:
                self.lines.append((time.monotonic(), line.rstrip("\n")))
                self.cond.notify_all()

    def mark(self):
        with self.cond:
            return len(self.lines)

    def wait_for(self, pattern, start=0, timeout=15, where=None):
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self.cond:
            index = start
            while True:
                while index < len(self.lines):
                    stamp, line = self.lines[index]
                    index += 1
                    match = regex.search(line)
                    if match and (where is None or where(match)):
                        return stamp, match
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    tail = "\n".join(l for _, l in self.lines[-20:])
                    raise TimeoutError(f"no /{pattern}/ within {timeout}s; last lines:\n{tail}")
                self.cond.wait(remaining)

    def stop(self, sig=signal.SIGTERM, timeout=15):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout)


def status_kb(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return None


def get(port, path="/", timeout=10):
    """One request on a new connection: (status or None, error or None)."""
    status, _, error = fetch(port, path, timeout)
    return status, error


class Load:
    """Threads sending requests until stopped; each result is kept with its start time."""

    def __init__(self, port, paths=("/",), threads=8):
        self.port = port
        self.running = True
        self.results = []  # (started, status, error, finished)
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, args=(paths[i % len(paths)],)) for i in range(threads)]
        for thread in self.threads:
            thread.start()

    def _run(self, path):
        # Staggered starts, so slow requests are at every stage of completion when a signal arrives.
        time.sleep(random.random() * 0.2)
        while self.running:
            started = time.monotonic()
            status, error = get(self.port, path)
            with self.lock:
                self.results.append((started, status, error, time.monotonic()))
            if error == "refused":
                time.sleep(0.001)

    def stop(self):
        self.running = False
        for thread in self.threads:
            thread.join()
        return self.results


def ms(seconds):
    return f"{seconds * 1000:.1f} ms"


def start_supervisor(bin_dir, workers, extra=()):
    argv = [f"{bin_dir}/supervisor", "--bind", "127.0.0.1:0", "--workers", str(workers), *extra,
            "--", f"{bin_dir}/test-worker"]
    started = time.monotonic()
    sup = Logged(argv)
    _, match = sup.wait_for(r"listening on 127\.0\.0\.1:(\d+)")
    port = int(match.group(1))
    ready_at, _ = sup.wait_for(rf"all {workers} workers ready")
    return sup, port, ready_at - started


def bench_startup(bin_dir, rounds=10):
    times = []
    for _ in range(rounds):
        sup, _, elapsed = start_supervisor(bin_dir, 4)
        times.append(elapsed)
        sup.stop()
    return times


def bench_kill(bin_dir, rounds=20):
    """Kills the oldest worker every 300 ms: with 4 slots each victim has served for over a second, past
    the supervisor's 1 s minimum uptime, so this measures the replacement of an established worker (a
    worker dying sooner counts as a crash loop and is restarted with backoff, by design)."""
    sup, port, _ = start_supervisor(bin_dir, 4)
    times = []
    started = {pid: time.monotonic() for pid in children(sup.proc.pid)}
    time.sleep(1.1)
    try:
        for _ in range(rounds):
            live = children(sup.proc.pid)
            for pid in live:
                started.setdefault(pid, time.monotonic())
            victim = min(live, key=lambda pid: started[pid])
            mark = sup.mark()
            killed_at = time.monotonic()
            os.kill(victim, signal.SIGKILL)
            ready_at, _ = sup.wait_for(r"info: ready boot=\S+ pid=(\d+)", start=mark,
                                       where=lambda m: int(m.group(1)) != victim)
            times.append(ready_at - killed_at)
            time.sleep(0.3)
        status, _ = get(port)
        assert status == 200
    finally:
        sup.stop()
    return times


def bench_rss(bin_dir):
    sup, _, _ = start_supervisor(bin_dir, 4)
    time.sleep(2)
    figures = {field: status_kb(sup.proc.pid, field) for field in ("VmRSS", "RssAnon", "RssFile")}
    sup.stop()
    return figures


def bench_hup(bin_dir):
    sup, port, _ = start_supervisor(bin_dir, 4)
    load = Load(port)
    time.sleep(1)
    mark = sup.mark()
    sent = time.monotonic()
    sup.proc.send_signal(signal.SIGHUP)
    done, _ = sup.wait_for(r"rolling restart done", start=mark)
    time.sleep(1)
    results = load.stop()
    sup.stop()
    failed = [r[1:3] for r in results if r[1] != 200]
    return done - sent, len(results), failed


def bench_term(bin_dir):
    sup, port, _ = start_supervisor(bin_dir, 4)
    load = Load(port, paths=("/", "/sleep/200"))
    time.sleep(1)
    sent = time.monotonic()
    sup.proc.send_signal(signal.SIGTERM)
    code = sup.proc.wait(30)
    exited = time.monotonic()
    time.sleep(0.05)
    results = load.stop()
    before = [r for r in results if r[0] < sent]
    after = [r for r in results if r[0] >= sent]
    failed_before = [r for r in before if r[1] != 200]
    refused_after = sum(1 for r in after if r[2] == "refused")
    other_after = [r for r in after if r[1] != 200 and r[2] != "refused"]
    slow = [r for r in before if r[3] > sent]
    last_served = max((r[3] for r in slow if r[1] == 200), default=sent) - sent
    return exited - sent, code, len(before), failed_before, refused_after, other_after, len(slow), last_served


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", required=True)
    parser.add_argument("--compare", action="store_true")
    args = parser.parse_args()
    bin_dir = args.bin

    print("supervisor benchmark: 4 test workers on 127.0.0.1, release build, static Swift runtime")
    startup = bench_startup(bin_dir)
    print(f"start to all 4 workers ready:      median {ms(statistics.median(startup))}, "
          f"max {ms(max(startup))} ({len(startup)} starts)")
    kills = bench_kill(bin_dir)
    print(f"kill -9 to replacement ready:      median {ms(statistics.median(kills))}, "
          f"max {ms(max(kills))} ({len(kills)} kills)")
    rss = bench_rss(bin_dir)
    print(f"supervisor idle RSS:               {rss['VmRSS'] / 1024:.1f} MB "
          f"(anonymous {rss['RssAnon'] / 1024:.1f} MB, file-backed {rss['RssFile'] / 1024:.1f} MB)")
    duration, total, failed = bench_hup(bin_dir)
    print(f"HUP of 4 workers under load:       {ms(duration)}, {total} requests, {len(failed)} failed"
          + (f" {sorted(set(map(str, failed)))}" if failed else ""))
    took, code, before, failed_before, refused_after, other_after, in_flight, last = bench_term(bin_dir)
    print(f"TERM under load:                   exit {code} after {ms(took)}; {before} requests started "
          f"before TERM, {len(failed_before)} failed ({in_flight} were in flight at TERM, the last answered "
          f"{ms(last)} after it); after TERM: {refused_after} refused, {len(other_after)} other failures")
    if args.compare:
        import compare
        compare.run(bin_dir)
    ok = not failed and not failed_before and code == 0
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    main()
