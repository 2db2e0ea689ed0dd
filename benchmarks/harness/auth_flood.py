#!/usr/bin/env python3
"""Valid traffic under a flood of made-up bearer tokens, with and without the worker's cap on concurrent
authentication misses (AUTH_MISS_CONCURRENCY), side by side in one run.

Each distinct unknown token is a Redis miss and one Postgres lookup; a flood of them took the pool that valid
requests need. For each setting the supervisor runs W workers; 64 keep-alive connections read a note with a
valid (cached) token while 64 more send a fresh made-up token every request. Rounds are interleaved (the
machine is shared and noisy). Printed per setting: valid req/s, p50/p99, valid errors; flood req/s and its
statuses; the peak number of Postgres backends of the workers (sampled every 20 ms).

Usage (scripts/bench auth-flood does the setup): auth_flood.py --bin DIR --loadgen PATH --token T --note-id N
"""
import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import free_port, http_ok, percentile  # noqa: E402


def read_records(path):
    rows = []
    with open(path) as f:
        for line in f:
            parts = line.strip().split(",")
            if len(parts) == 3:
                rows.append((int(parts[0]), int(parts[1]), int(parts[2])))
    return rows


def backends(app):
    out = subprocess.run(["psql", os.environ["DATABASE_URL"], "-Atqc",
                          f"SELECT count(*) FROM pg_stat_activity WHERE application_name = '{app}'"],
                         capture_output=True, text=True)
    try:
        return int(out.stdout.strip())
    except ValueError:
        return 0


def run(args, label, cap, seconds, scratch):
    port = free_port()
    app = f"flood-{label}-{os.getpid()}"
    env = dict(os.environ, API_WORKERS=str(args.workers), AUTH_MISS_CONCURRENCY=str(cap),
               DB_APPLICATION_NAME=app, RATE_LIMIT_PER_MINUTE="100000000", LOG_LEVEL="warning")
    supervisor = subprocess.Popen([f"{args.bin}/supervisor", "--bind", f"127.0.0.1:{port}", "--no-cleanup",
                                   "--control-socket", "none", "--", f"{args.bin}/worker"],
                                  env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 30
        while not http_ok(port, "/readyz"):
            if time.time() > deadline:
                raise SystemExit("the supervisor did not get ready")
            time.sleep(0.1)
        valid_out = os.path.join(scratch, f"{label}-valid.csv")
        flood_out = os.path.join(scratch, f"{label}-flood.csv")
        common = [args.loadgen, "--port", str(port), "--seconds", str(seconds), "--connections", "64"]
        valid = subprocess.Popen(common + ["--path", f"/v1/notes/{args.note_id}",
                                           "--header", f"Authorization: Bearer {args.token}", "--out", valid_out],
                                 stderr=subprocess.DEVNULL)
        flood = None
        if label != "no flood":
            flood = subprocess.Popen(common + ["--path", "/v1/notes",
                                               "--header", "Authorization: Bearer nt_@@@@@@@@@@@@@@@@", "--out", flood_out],
                                     stderr=subprocess.DEVNULL)
        peak = 0
        stop = threading.Event()

        def sample():
            nonlocal peak
            while not stop.is_set():
                peak = max(peak, backends(app))
                time.sleep(0.02)

        sampler = threading.Thread(target=sample)
        sampler.start()
        valid.wait()
        if flood:
            flood.wait()
        stop.set()
        sampler.join()
        rows = read_records(valid_out)
        ok = [r for r in rows if r[2] == 200]
        result = {
            "valid_rps": len(ok) / seconds,
            "p50_ms": percentile([r[1] for r in ok], 0.5) / 1000,
            "p99_ms": percentile([r[1] for r in ok], 0.99) / 1000,
            "valid_errors": len(rows) - len(ok),
            "peak_backends": peak,
            "flood_rps": 0.0,
            "flood_statuses": {},
        }
        if flood:
            frows = read_records(flood_out)
            result["flood_rps"] = len(frows) / seconds
            for r in frows:
                result["flood_statuses"][r[2]] = result["flood_statuses"].get(r[2], 0) + 1
        return result
    finally:
        supervisor.send_signal(signal.SIGTERM)
        try:
            supervisor.wait(timeout=15)
        except subprocess.TimeoutExpired:
            supervisor.kill()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", required=True)
    parser.add_argument("--loadgen", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--note-id", required=True)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=6)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    settings = [("no flood", 2), ("flood, cap off", 0), ("flood, cap 2", 2)]
    results = {label: [] for label, _ in settings}
    with tempfile.TemporaryDirectory() as scratch:
        for round_number in range(args.rounds):
            for label, cap in settings:
                results[label].append(run(args, label, cap, args.seconds, scratch))
                print(f"round {round_number + 1}: {label}: {results[label][-1]}", file=sys.stderr)
    print(f"\nauth flood: W={args.workers}, 64 valid + 64 flooding keep-alive connections, {args.seconds:g} s x "
          f"{args.rounds} interleaved rounds (medians); pool 10 + 10 per worker")
    print(f"{'setting':<16} {'valid req/s':>12} {'p50 ms':>8} {'p99 ms':>8} {'valid errors':>13} "
          f"{'flood req/s':>12} {'flood statuses':<28} {'peak PG conns':>13}")
    for label, _ in settings:
        runs = results[label]
        med = lambda key: sorted(r[key] for r in runs)[len(runs) // 2]  # noqa: E731
        statuses = {}
        for r in runs:
            for status, count in r["flood_statuses"].items():
                statuses[status] = statuses.get(status, 0) + count
        status_text = ", ".join(f"{s}: {c}" for s, c in sorted(statuses.items())) or "-"
        print(f"{label:<16} {med('valid_rps'):>12.0f} {med('p50_ms'):>8.2f} {med('p99_ms'):>8.2f} "
              f"{sum(r['valid_errors'] for r in runs):>13} {med('flood_rps'):>12.0f} {status_text:<28} "
              f"{max(r['peak_backends'] for r in runs):>13}")
    base = sorted(r["valid_rps"] for r in results["no flood"])[args.rounds // 2]
    for label in ("flood, cap off", "flood, cap 2"):
        rps = sorted(r["valid_rps"] for r in results[label])[args.rounds // 2]
        print(f"valid throughput under the flood, {label}: {rps / base:.2f} of the no-flood run")


if __name__ == "__main__":
    main()
