#!/usr/bin/env python3
"""The cleanup job under load: deletes the expired notes (scripts/bench cleanup seeds 1,000,000) in batches while
the API serves GET /v1/notes/{id} through the supervisor, and prints rows/s and the API's p99 before and during.

Usage (scripts/bench cleanup does the setup): cleanup.py --bin DIR --token T --note-id N [--workers 2]
"""
import argparse
import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from api import Stack, wrk  # noqa: E402
from common import free_port, http_ok  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--note-id", required=True)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()

    env = dict(os.environ, RATE_LIMIT_PER_MINUTE="100000000")
    port = free_port()
    api = Stack("swift", [f"{args.bin}/supervisor", "--workers", str(args.workers), "--no-cleanup", "--bind",
                          f"127.0.0.1:{port}", "--", f"{args.bin}/worker"], None, env, args.workers, r"/worker$")
    deadline = time.monotonic() + 30
    while not http_ok(port):
        if time.monotonic() > deadline:
            sys.exit("the API did not start")
        time.sleep(0.1)
    wrk(port, args.connections, 2, args.token, args.note_id)  # warm-up
    before = wrk(port, args.connections, args.seconds, args.token, args.note_id)

    # The job with the supervisor's defaults for it: a pool of 1 + 1, batches of 1000.
    job_env = dict(env, DB_POOL_SIZE="1", DB_MAX_OVERFLOW="1")
    finished = {}

    def run_job():
        started = time.monotonic()
        out = subprocess.run([f"{args.bin}/cleanup"], env=job_env, capture_output=True, text=True)
        finished["seconds"] = time.monotonic() - started
        finished["output"] = out.stderr.strip().splitlines()[-1] if out.stderr.strip() else ""
        finished["code"] = out.returncode

    job = threading.Thread(target=run_job)
    job.start()
    during = wrk(port, args.connections, args.seconds, args.token, args.note_id)
    job.join()
    api.stop()

    deleted = 0
    for part in finished.get("output", "").split():
        if part.startswith("notes_deleted="):
            deleted = int(part.split("=", 1)[1])
    print(f"cleanup: exit {finished.get('code')}, {deleted:,} notes in {finished['seconds']:.1f} s "
          f"= {deleted / finished['seconds']:,.0f} rows/s  ({finished.get('output')})")
    print(f"API before:  {before['ok_rps']:8,.0f} ok rps  p50 {before['p50']:.2f} ms  p99 {before['p99']:.2f} ms  "
          f"non-2xx {before['non2xx']}")
    print(f"API during:  {during['ok_rps']:8,.0f} ok rps  p50 {during['p50']:.2f} ms  p99 {during['p99']:.2f} ms  "
          f"non-2xx {during['non2xx']}  (the first {args.seconds} s of the job)")
    print(f"p99 during / before: {during['p99'] / before['p99']:.2f}x (target <= 1.5x)")


if __name__ == "__main__":
    main()
