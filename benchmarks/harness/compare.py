"""Side by side in one run: our supervisor, uvicorn --workers and gunicorn, 4 workers each, measured the
same way from outside: start until 4 distinct pids answer; kill -9 of a worker until a new pid answers; the
idle RSS of the managing process. uvicorn and gunicorn come from PyPI into .build/bench-venv."""
import os
import signal
import socket
import statistics
import subprocess
import sys
import time

from common import fetch, free_port, rss_mb

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
# Where pid_app.py (the foreign workers' app, which says which process answered) lives.
PID_APP = os.path.join(ROOT, "benchmarks", "python")
VENV = os.path.join(ROOT, ".build", "bench-venv")


def ensure_venv():
    python = os.path.join(VENV, "bin", "python")
    if not os.path.exists(os.path.join(VENV, "bin", "gunicorn")):
        subprocess.run([sys.executable, "-m", "venv", VENV], check=True)
        subprocess.run([python, "-m", "pip", "install", "-q", "-r",
                        os.path.join(ROOT, "benchmarks", "python", "requirements.txt")], check=True)
    return os.path.join(VENV, "bin")


def answering_pid(port, timeout=2):
    status, body, _ = fetch(port, timeout=timeout)
    words = body.split()
    if status != 200 or b"pid" not in words[:-1]:
        return None
    return int(words[words.index(b"pid") + 1])


def wait_for_pids(port, count, exclude=(), timeout=30):
    """Polls until `count` distinct pids (not in `exclude`) have answered; returns them."""
    seen = set()
    deadline = time.monotonic() + timeout
    while len(seen) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {len(seen)} of {count} pids answered on {port}")
        pid = answering_pid(port)
        if pid is not None and pid not in exclude:
            seen.add(pid)
        elif pid is None:
            time.sleep(0.001)
    return seen


def measure(name, argv, port, cwd, kills=10):
    started = time.monotonic()
    proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        workers = wait_for_pids(port, 4)
        startup = time.monotonic() - started
        time.sleep(2)
        rss = rss_mb(proc.pid)
        replacements = []
        born = {pid: 0 for pid in workers}
        for round in range(kills):
            # The oldest worker, 300 ms apart: each has served over a second (see bench_kill).
            victim = min(workers, key=lambda pid: born[pid])
            killed = time.monotonic()
            os.kill(victim, signal.SIGKILL)
            new = wait_for_pids(port, 1, exclude=workers)
            replacements.append(time.monotonic() - killed)
            workers = (workers - {victim}) | new
            born.update({pid: round + 1 for pid in new})
            time.sleep(0.3)
        return name, startup, replacements, rss
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


def run(bin_dir):
    venv = ensure_venv()
    rows = []
    port = free_port()
    rows.append(measure("supervisor + test-worker (ours)",
                        [f"{bin_dir}/supervisor", "--workers", "4", "--bind", f"127.0.0.1:{port}", "--",
                         f"{bin_dir}/test-worker"], port, PID_APP))
    port = free_port()
    rows.append(measure("uvicorn 0.54 --workers 4",
                        [f"{venv}/uvicorn", "pid_app:app", "--workers", "4", "--host", "127.0.0.1",
                         "--port", str(port), "--log-level", "warning"], port, PID_APP))
    port = free_port()
    rows.append(measure("gunicorn 27 -w 4 (sync)",
                        [f"{venv}/gunicorn", "pid_app:wsgi", "-w", "4", "-b", f"127.0.0.1:{port}",
                         "--log-level", "warning"], port, PID_APP))
    print()
    print("side by side, measured from outside (a new pid answering HTTP), 4 workers each:")
    print(f"{'':34} {'start to 4 serving':>19} {'kill -9 to new pid serving':>30} {'manager RSS':>12}")
    ours = rows[0]
    for name, startup, replacements, rss in rows:
        median = statistics.median(replacements)
        ratio = "" if name == ours[0] else f" ({median / statistics.median(ours[2]):.1f}x ours)"
        print(f"{name:34} {startup * 1000:>16.0f} ms {median * 1000:>10.1f} ms median, max "
              f"{max(replacements) * 1000:.0f} ms{ratio:>12} {rss:>9.1f} MB")
