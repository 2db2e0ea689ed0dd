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

from supervisor import children  # the /proc walk shared with the supervisor's bench

STACKS = ("swift", "uvicorn", "gunicorn")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_ok(port, path="/healthz"):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            return s.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def descendants(pid):
    found, frontier = [], [pid]
    while frontier:
        for child in children(frontier.pop()):
            found.append(child)
            frontier.append(child)
    return found


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def memory_kb(pid):
    """RSS, PSS and USS (private pages) of one process, in kB, from smaps_rollup: RSS counts shared pages in
    full for every process, PSS divides them among their sharers, so PSS adds up to what a stack really holds."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            fields = {}
            for line in f:
                if ":" in line and not line.startswith(" "):
                    key, value = line.split(":", 1)
                    parts = value.split()
                    if parts and parts[0].isdigit():
                        fields[key] = int(parts[0])
        return {"rss": fields.get("Rss", 0), "pss": fields.get("Pss", 0),
                "uss": fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0)}
    except OSError:
        return {"rss": 0, "pss": 0, "uss": 0}


def cpu_seconds(pid):
    """utime + stime of a process, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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
