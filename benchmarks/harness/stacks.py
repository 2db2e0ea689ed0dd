"""The three stacks the report compares, started the same way and seen the same way from outside.

- swift:    our supervisor with --workers W in front of the API worker
- uvicorn:  uvicorn --workers W running the seed's FastAPI app (benchmarks/python/app.py)
- gunicorn: gunicorn -w W with uvicorn-worker's UvicornWorker running the same app (gunicorn's sync workers
            cannot serve an ASGI app)

Each stack runs in its own session, so the whole tree can be signalled at the end. Worker pids are the
manager's children that look like workers (uvicorn's multiprocessing resource tracker is not one).
"""
import os
import re
import signal
import socket
import subprocess
import sys
import time

from common import children, cpu_seconds, descendants, free_port, http_ok, memory_kb  # noqa: F401 (used by the importers)

STACKS = ("swift", "uvicorn", "gunicorn")


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


class Stack:
    def __init__(self, kind, workers, bin_dir, python_app, env, extra=(), log=None):
        self.kind, self.workers = kind, workers
        self.port = free_port()
        python = sys.executable
        if kind == "swift":
            argv = [f"{bin_dir}/supervisor", "--workers", str(workers), "--bind", f"127.0.0.1:{self.port}", *extra,
                    "--", f"{bin_dir}/worker"]
            self.pattern = r"/worker( |$)"
        elif kind == "uvicorn":
            argv = [python, "-m", "uvicorn", "app:app", "--workers", str(workers), "--host", "127.0.0.1",
                    "--port", str(self.port), "--no-access-log", "--log-level", "warning"]
            self.pattern = r"spawn_main"
        elif kind == "gunicorn":
            argv = [python, "-m", "gunicorn", "app:app", "-w", str(workers), "-k", "uvicorn_worker.UvicornWorker",
                    "-b", f"127.0.0.1:{self.port}", "--log-level", "warning"]
            self.pattern = r"gunicorn"
        else:
            raise ValueError(kind)
        self.argv = argv
        self.log = open(log, "w") if log else subprocess.DEVNULL
        self.proc = subprocess.Popen(argv, cwd=None if kind == "swift" else python_app, env=env,
                                     stdout=self.log, stderr=self.log, start_new_session=True)

    @property
    def pid(self):
        return self.proc.pid

    def worker_pids(self):
        # uvicorn --workers 1 serves in its own process.
        if self.kind == "uvicorn" and self.workers == 1:
            return [self.pid]
        return [pid for pid in children(self.pid) if re.search(self.pattern, cmdline(pid))]

    def wait_ready(self, timeout=60):
        deadline = time.monotonic() + timeout
        while not (http_ok(self.port) and len(self.worker_pids()) >= self.workers):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.kind} with {self.workers} workers did not start ({' '.join(self.argv)})")
            time.sleep(0.1)
        # Every worker answering, not just the first one up.
        time.sleep(1)
        return self

    def memory(self):
        """The manager's, each worker's and the whole tree's memory, in MB."""
        tree = [self.pid] + descendants(self.pid)
        workers = self.worker_pids()
        mb = lambda kb: kb / 1024
        per_worker = [memory_kb(pid) for pid in workers]
        manager = memory_kb(self.pid)
        total = [memory_kb(pid) for pid in tree]
        return {"manager_rss": mb(manager["rss"]), "manager_pss": mb(manager["pss"]),
                "worker_rss": mb(sum(w["rss"] for w in per_worker) / max(1, len(per_worker))),
                "worker_uss": mb(sum(w["uss"] for w in per_worker) / max(1, len(per_worker))),
                "total_pss": mb(sum(p["pss"] for p in total)), "processes": len(tree)}

    def signal(self, sig):
        os.kill(self.pid, sig)

    def stop(self, timeout=30):
        try:
            os.killpg(self.pid, signal.SIGTERM)
            self.proc.wait(timeout=timeout)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(self.pid, signal.SIGKILL)
            self.proc.wait()
        # A stack whose manager exited leaves nothing behind in its session.
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if self.log is not subprocess.DEVNULL:
            self.log.close()


def versions():
    """What each stack runs, for the report."""
    import importlib.metadata as metadata
    found = {}
    for package in ("fastapi", "uvicorn", "gunicorn", "uvicorn-worker", "uvloop", "httptools", "sqlalchemy", "asyncpg",
                    "redis"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found
