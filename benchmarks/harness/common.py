"""What the benchmark and chaos scripts share: a free port, one HTTP request, the processes of a tree and what
they spend, percentiles. One place each, so every figure is measured the same way.

Process trees, CPU time and memory come from psutil. Context switches do not: psutil's `num_ctx_switches`
reads /proc/PID/status, which counts only the main thread's, and the worker switches on several threads; so
`cpu_and_switches` sums /proc/PID/task/*/status itself.
"""
import os
import socket
import statistics


def _psutil():
    """psutil, imported when a process is measured: the image check and the timelines need only the rest, and run
    under a Python that may not have it."""
    import psutil
    return psutil


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


def fetch(port, path="/", timeout=10):
    """One request on a new connection: (status or None, body, error or None)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        if not data.startswith(b"HTTP/1.") or b"\r\n\r\n" not in data:
            return None, b"", "not HTTP"
        return int(data[9:12]), data.split(b"\r\n\r\n", 1)[1], None
    except ConnectionRefusedError:
        return None, b"", "refused"
    except OSError as error:
        return None, b"", type(error).__name__


def _living(processes):
    psutil = _psutil()
    found = []
    for process in processes:
        try:
            if process.status() != psutil.STATUS_ZOMBIE:
                found.append(process.pid)
        except psutil.Error:
            continue
    return sorted(found)


def children(pid):
    """The living children of `pid` (not zombies), sorted."""
    psutil = _psutil()
    try:
        return _living(psutil.Process(pid).children())
    except psutil.Error:
        return []


def descendants(pid):
    """Every living process below `pid`."""
    psutil = _psutil()
    try:
        return _living(psutil.Process(pid).children(recursive=True))
    except psutil.Error:
        return []


def cpu_seconds(pid):
    """User + system CPU seconds of a process (all its threads)."""
    times = _psutil().Process(pid).cpu_times()
    return times.user + times.system


def rss_mb(pid):
    return _psutil().Process(pid).memory_info().rss / (1 << 20)


def memory_kb(pid):
    """RSS, PSS and USS (private pages) of one process, in kB: RSS counts shared pages in full for every process,
    PSS divides them among their sharers, so PSS adds up to what a stack really holds."""
    psutil = _psutil()
    try:
        info = psutil.Process(pid).memory_full_info()
        return {"rss": info.rss // 1024, "pss": info.pss // 1024, "uss": info.uss // 1024}
    except psutil.Error:
        return {"rss": 0, "pss": 0, "uss": 0}


def percentile(values, fraction):
    """The `fraction` quantile (0.99 for p99); nan for no values."""
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=1000, method="inclusive")[min(998, max(0, round(fraction * 1000) - 1))]


TICKS = os.sysconf("SC_CLK_TCK")


def cpu_and_switches(pids):
    """CPU seconds (user + system) and context switches (voluntary + involuntary) of each of these processes,
    summed over its threads. {pid: (cpu, switches)}; a process already gone is left out."""
    return {pid: _one_process(pid) for pid in pids if os.path.isdir(f"/proc/{pid}/task")}


def spent_between(before, after):
    """What the processes spent between two snapshots: only processes seen in both (a Postgres backend that
    exits during the run would otherwise subtract its whole life), plus new ones from zero."""
    cpu = sum(after[pid][0] - before.get(pid, (0.0, 0))[0] for pid in after)
    switches = sum(after[pid][1] - before.get(pid, (0.0, 0))[1] for pid in after)
    return cpu, switches


def _one_process(pid):
    cpu, switches = 0.0, 0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return cpu, switches
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            cpu += (int(fields[11]) + int(fields[12])) / TICKS
            with open(f"/proc/{pid}/task/{task}/status") as f:
                for line in f:
                    if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                        switches += int(line.split()[1])
        except (OSError, IndexError, ValueError):
            continue
    return cpu, switches
