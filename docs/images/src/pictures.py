#!/usr/bin/env python3
"""The pictures of the user documentation that show the supervisor at work: docs/images/budget.svg,
rolling-restart.svg and stop-timeline.svg.

Each picture has two steps: *record* runs the real binaries (`supervisor budget`, a supervisor with the test
worker through a rolling restart, and through a graceful stop) and keeps what they printed in data/*.json;
*draw* makes the SVG from that file alone. So a picture can be redrawn without the binaries (`--redraw`), and a
rerun replaces the data and the picture together.

    .build/bench-venv/bin/python docs/images/src/pictures.py all --bin .build/release   # record and draw
    .build/bench-venv/bin/python docs/images/src/pictures.py all --redraw               # draw only

Every number in a picture comes from the recording: the budget's from `supervisor budget`'s table and verdict,
the timelines' from the supervisor's log (its timestamps) and the client's clock, the supervisor's graceful
timeout from its `--help`, and the deploy files' stop timeouts from deploy/. Only the platforms' own defaults
(Docker, Kubernetes, systemd) are constants here."""
import argparse
import datetime
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Patch, Rectangle  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", "..", ".."))
DATA = os.path.join(HERE, "data")
IMAGES = os.path.normpath(os.path.join(HERE, ".."))

# Plain colours that read on a white page.
BOOTING = "#b8c4d0"
SERVING = "#3b6fb6"
DRAINING = "#f08c2e"
EXITING = "#f7c79a"
POOL = "#3b6fb6"
OVERFLOW = "#8fb3e3"
UNUSED = "#eeeeee"
RESERVE = "#efe3c4"
CLEANUP = "#b08a3e"
OVER = "#d62828"
INK = "#222222"
GREY = "#777777"

# The platforms' own defaults, not this project's: what `docker stop` waits before SIGKILL (its --time), a pod's
# terminationGracePeriodSeconds, and systemd's DefaultTimeoutStopSec.
DOCKER_STOP = 10.0
KUBERNETES_GRACE = 30.0
SYSTEMD_DEFAULT = 90.0

# The test worker's switches for the timelines: a boot and a pool disposal long enough to see.
BOOT_DELAY_MS = 800
DRAIN_DELAY_MS = 300
# Any well-formed URL turns the budget on; the test worker never connects to it.
FAKE_DATABASE_URL = "postgresql://prefork@127.0.0.1:1/pictures"


def style():
    plt.rcParams.update({
        "svg.fonttype": "none",          # text stays text: small files, crisp at any zoom
        "svg.hashsalt": "prefork-docs",  # stable ids, so a redraw of the same data gives the same file
        "font.family": "sans-serif",
        "font.sans-serif": ["DejaVu Sans", "Helvetica", "Arial"],
        "font.size": 9,
        "axes.titlesize": 10,
        "axes.edgecolor": GREY,
        "axes.labelcolor": INK,
        "xtick.color": INK,
        "ytick.color": INK,
        "text.color": INK,
        "figure.facecolor": "white",
        "axes.facecolor": "white",
        "savefig.facecolor": "white",
    })


def save(fig, name):
    path = os.path.join(IMAGES, name)
    fig.savefig(path, format="svg", metadata={"Date": None, "Creator": None})
    plt.close(fig)
    print(f"wrote {os.path.relpath(path, ROOT)} ({os.path.getsize(path) // 1024} KB)")


def write_data(name, data):
    os.makedirs(DATA, exist_ok=True)
    path = os.path.join(DATA, name)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print(f"recorded {os.path.relpath(path, ROOT)}")


def read_data(name):
    with open(os.path.join(DATA, name), encoding="utf-8") as f:
        return json.load(f)


def clean_environment(**settings):
    """Only PATH and what a run sets: no DB_*, API_WORKERS, GRACEFUL_TIMEOUT... of the caller's shell."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
    env.update({key: str(value) for key, value in settings.items()})
    return env


def shown(argv, bin_dir, tmp=None):
    """argv as recorded: the binaries' folder as $BIN and the private folder as $TMP, so the data does not
    carry this machine's paths."""
    out = []
    for arg in argv:
        arg = arg.replace(bin_dir, "$BIN")
        if tmp:
            arg = arg.replace(tmp, "$TMP")
        out.append(arg)
    return out


# ---------------------------------------------------------------------------------------------------------
# The supervisor's text log: `2026-12-07T01:28:48.530Z supervisor[17590] notice: message key=value ...`

LINE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z) supervisor\[\d+\] (\w+): (.*)$")


def epoch(stamp):
    return datetime.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def events(lines):
    """(epoch seconds, message, {key: value}) for every log line that starts with a timestamp."""
    out = []
    for line in lines:
        m = LINE.match(line)
        if not m:
            continue
        message = m.group(3)
        fields = dict(re.findall(r"(\w+)=(\S+)", message))
        out.append((epoch(m.group(1)), message, fields))
    return out


class Supervisor:
    """A supervisor with the test worker, its stderr in a file that `wait_for` reads as it grows."""

    def __init__(self, bin_dir, tmp, args, env):
        self.log_path = os.path.join(tmp, "supervisor.log")
        self.control = os.path.join(tmp, "supervisor.sock")
        self.argv = [os.path.join(bin_dir, "supervisor"), "--bind", "127.0.0.1:0", "--control-socket",
                     self.control, *args, "--", os.path.join(bin_dir, "test-worker")]
        self.bin_dir = bin_dir
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=self.log, env=env)

    def lines(self):
        with open(self.log_path, encoding="utf-8") as f:
            return f.read().splitlines()

    def wait_for(self, pattern, timeout=20.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.lines():
                m = re.search(pattern, line)
                if m:
                    return m
            if self.proc.poll() is not None:
                raise RuntimeError(f"the supervisor exited ({self.proc.returncode}):\n" + "\n".join(self.lines()))
            time.sleep(0.02)
        raise RuntimeError(f"no {pattern!r} in the log within {timeout} s:\n" + "\n".join(self.lines()))

    def port(self):
        return int(self.wait_for(r"listening on 127\.0\.0\.1:(\d+)").group(1))

    def command(self, *words):
        result = subprocess.run([os.path.join(self.bin_dir, "supervisor"), *words, "--control-socket",
                                 self.control], capture_output=True, text=True, timeout=30)
        return result.stdout + result.stderr

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


# ---------------------------------------------------------------------------------------------------------
# 1. The connection budget

BUDGET_RUNS = [
    ["budget", "--workers", "4"],
    # Smaller pools, as the rolling restart's surge run has them: the surge fits.
    ["budget", "--workers", "4", "--pool-size", "5", "--max-overflow", "5"],
]


def record_budget(bin_dir):
    runs = []
    for args in BUDGET_RUNS:
        argv = [os.path.join(bin_dir, "supervisor"), *args]
        result = subprocess.run(argv, capture_output=True, text=True, env=clean_environment(), timeout=30)
        runs.append({"argv": shown(argv, bin_dir), "exit": result.returncode, "stdout": result.stdout,
                     "stderr": result.stderr})
    write_data("budget.json", {"runs": runs})


def parse_budget(text):
    """The numbers of `supervisor budget`'s table and of its verdict on the surge."""
    rows = {}
    for line in text.splitlines():
        if line.startswith("|") and not line.startswith("|--"):
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            rows[cells[0].strip("*")] = cells[1:]
    number = lambda name: int(rows[name][0])  # noqa: E731
    plan = {
        "workers": number("Workers"),
        "pool": number("DB_POOL_SIZE"),
        "overflow": number("DB_MAX_OVERFLOW"),
        "cleanup": sum(int(part) for part in rows["Cleanup pool"][0].split("+")),
        "reserved": number("Reserved"),
        "max": number("max_connections"),
    }
    verdict = next(line for line in text.splitlines() if line.startswith("surge"))
    m = re.search(r"\((\d+) \+ (\d+) \+ (\d+) = (\d+) of (\d+)", verdict)
    plan.update(verdict=verdict, surge_fits=verdict.startswith("surge fits"), held=int(m.group(1)),
                surge=int(m.group(2)), peak=int(m.group(4)))
    # The verdict's sum is the table's: workers × (pool + overflow) + one more worker + the cleanup.
    per_worker = plan["pool"] + plan["overflow"]
    assert plan["held"] == plan["workers"] * per_worker and plan["surge"] == per_worker, verdict
    assert int(m.group(3)) == plan["cleanup"] and int(m.group(5)) == plan["max"], verdict
    return plan


def draw_budget():
    data = read_data("budget.json")
    plans = [parse_budget(run["stdout"]) for run in data["runs"]]
    fig, ax = plt.subplots(figsize=(8.6, 3.5))
    height = 0.42
    ys = list(range(len(plans)))[::-1]
    for y, plan in zip(ys, plans):
        w, pool, over, mx = plan["workers"], plan["pool"], plan["overflow"], plan["max"]
        limit = mx - plan["reserved"]  # what the workers may use
        x = 0
        for i in range(w):
            ax.barh(y, pool, left=x, height=height, color=POOL, edgecolor="white", linewidth=0.8)
            ax.barh(y, over, left=x + pool, height=height, color=OVERFLOW, edgecolor="white", linewidth=0.8)
            text = f"worker {i + 1}\n{pool} + {over}" if pool + over >= 15 else f"{pool}+{over}"
            ax.text(x + (pool + over) / 2, y, text, ha="center", va="center", fontsize=7.5, color="white")
            x += pool + over
        held = x
        if limit > held:
            ax.barh(y, limit - held, left=held, height=height, color=UNUSED, edgecolor="white", linewidth=0.8)
        ax.barh(y, plan["reserved"], left=limit, height=height, color=RESERVE, edgecolor="white", linewidth=0.8)
        ax.barh(y, plan["cleanup"], left=limit, height=height, color=CLEANUP, edgecolor="white", linewidth=0.8)
        ax.text(limit + plan["reserved"] / 2 + plan["cleanup"] / 2, y, f"reserve {plan['reserved']}",
                ha="center", va="center", fontsize=7.5)
        # Above the bar, the sum the supervisor checks before it starts a new worker ahead of the old one: the
        # workers' connections, one worker more, and the cleanup's, against max_connections.
        sy = y + height / 2 + 0.13
        lane = 0.14
        ax.barh(sy, held, left=0, height=lane, color="#d5e1f2", linewidth=0)
        ax.add_patch(Rectangle((held, sy - lane / 2), plan["surge"], lane, facecolor="white", edgecolor=SERVING,
                               hatch="////", linewidth=0.8))
        ax.barh(sy, plan["cleanup"], left=held + plan["surge"], height=lane, color=CLEANUP, linewidth=0)
        if plan["peak"] > mx:
            ax.add_patch(Rectangle((mx, sy - lane / 2), plan["peak"] - mx, lane, facecolor="none", edgecolor=OVER,
                                   linewidth=1.6))
        ax.text(plan["peak"] + 1.5, sy, f"surge: {plan['held']} + {plan['surge']} + {plan['cleanup']} = "
                f"{plan['peak']} of {mx}", va="center", fontsize=7.5,
                color=INK if plan["surge_fits"] else OVER, fontweight="normal" if plan["surge_fits"] else "bold")
        verdict = plan["verdict"].split(":")[0] if not plan["surge_fits"] else "surge fits"
        mode = "retire-first" if not plan["surge_fits"] else "new worker first"
        ax.text(0, y - height / 2 - 0.07, f"supervisor budget: \"{verdict}\" → restarts go {mode}", va="top",
                fontsize=7.5, color=GREY)
    first = plans[0]
    mx, limit = first["max"], first["max"] - first["reserved"]
    ax.axvline(mx, color=OVER, linewidth=1.2)
    ax.text(mx + 0.8, len(plans) - 0.45, f"max_connections {mx}", color=OVER, ha="left", va="bottom", fontsize=8)
    ax.axvline(limit, color=GREY, linewidth=0.8, linestyle="--")
    ax.text(limit - 0.8, len(plans) - 0.45, f"workers' share {limit}", color=GREY, ha="right", va="bottom",
            fontsize=8)
    ax.set_yticks(ys)
    ax.set_yticklabels([f"DB_POOL_SIZE={p['pool']}\nDB_MAX_OVERFLOW={p['overflow']}"
                        + ("\n(the defaults)" if p is first else "") for p in plans])
    ax.set_ylim(-0.6, len(plans) - 0.3)
    ax.set_xlim(0, max(p["peak"] for p in plans) + 34)
    ax.set_xticks(range(0, mx + 1, 10))
    base = data["runs"][0]["argv"]
    more = " ".join(data["runs"][1]["argv"][len(base):])
    ax.set_xlabel(f"Postgres connections: supervisor {' '.join(base[1:])} (above; below with {more})")
    ax.spines[["top", "right"]].set_visible(False)
    fig.legend(handles=[Patch(color=POOL, label="DB_POOL_SIZE"), Patch(color=OVERFLOW, label="DB_MAX_OVERFLOW"),
                        Patch(color=UNUSED, label="unallotted"), Patch(color=RESERVE, label="reserve"),
                        Patch(color=CLEANUP, label="cleanup job"),
                        Patch(facecolor="white", edgecolor=SERVING, hatch="////", label="a restart's extra worker")],
               loc="lower center", fontsize=7.5, frameon=False, ncol=6)
    per = first["pool"] + first["overflow"]
    fig.suptitle(f"{first['workers']} workers × {per} fill their share: a surge-first restart would need "
                 f"{first['peak']} of {mx}, so it goes retire-first", x=0.01, ha="left", fontsize=10)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    save(fig, "budget.svg")


# ---------------------------------------------------------------------------------------------------------
# 2. A rolling restart, surge and retire-first

RESTART_MODES = [
    # (name, extra environment): both with the budget on and the cleanup job counted in the reserve, as with the
    # project's own worker; smaller pools make the surge fit.
    ("surge", {"DB_POOL_SIZE": "5", "DB_MAX_OVERFLOW": "5"}),
    ("retire-first", {}),
]


def record_restart(bin_dir):
    runs = []
    for name, extra in RESTART_MODES:
        tmp = tempfile.mkdtemp(prefix="prefork-pictures-")
        settings = {"DATABASE_URL": FAKE_DATABASE_URL, "TEST_WORKER_BOOT_DELAY": BOOT_DELAY_MS,
                    "TEST_WORKER_DRAIN_DELAY": DRAIN_DELAY_MS, **extra}
        # A cleanup setting schedules the job with a test worker too (a stand-in command, daily: it does not run
        # here), so its pool counts in the reserve as it does in production.
        args = ["--workers", "4", "--cleanup-command", "/bin/true", "--cleanup-schedule", "@every 24h"]
        sup = Supervisor(bin_dir, tmp, args, clean_environment(**settings))
        try:
            sup.port()
            sup.wait_for(r"all 4 workers ready")
            time.sleep(1.0)
            before = sup.command("status")
            hup = time.time()
            sup.proc.send_signal(signal.SIGHUP)
            sup.wait_for(r"rolling restart done generation=2", timeout=30)
            old = {f["pid"] for _, message, f in events(sup.lines())
                   if message.startswith("spawned") and f.get("generation") == "1"}
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                gone = {f["pid"] for _, message, f in events(sup.lines()) if message.startswith("exited")}
                if old <= gone:
                    break
                time.sleep(0.02)
            time.sleep(0.3)
            after = sup.command("status")
            lines = sup.lines()
        finally:
            sup.stop()
            shutil.rmtree(tmp, ignore_errors=True)
        runs.append({"mode": name, "argv": shown(sup.argv, bin_dir, tmp), "environment": settings,
                     "status_before": before.replace(tmp, "$TMP"), "status_after": after.replace(tmp, "$TMP"),
                     "hup_sent": hup, "log": [line.replace(tmp, "$TMP").replace(bin_dir, "$BIN") for line in lines
                                              if not line.startswith("|")]})
    write_data("rolling-restart.json", {"runs": runs})


def restart_timeline(run):
    """Per process: slot, generation, spawned, ready, drain (TERM) and exited, in seconds from the HUP."""
    t0 = run["hup_sent"]
    procs = {}
    ready_by_slot = {}
    done = hup_seen = None
    for at, message, f in events(run["log"]):
        t = at - t0
        if message.startswith("spawned"):
            procs[f["pid"]] = {"slot": int(f["slot"]), "gen": int(f["generation"]), "spawned": t, "ready": None,
                               "term": None, "exited": None}
        elif message.startswith("ready "):
            procs[f["pid"]]["ready"] = t
            ready_by_slot.setdefault(int(f["slot"]), []).append((t, f["pid"]))
        elif message.startswith("surge does not fit"):
            procs[f["pid"]]["term"] = t  # retire-first: TERM to the old worker, logged
        elif message.startswith("exited"):
            procs[f["pid"]]["exited"] = t
        elif message.startswith("rolling restart generation="):
            hup_seen = t
        elif message.startswith("rolling restart done"):
            done = t
    for proc in procs.values():
        if proc["gen"] == 1 and proc["term"] is None and proc["exited"] is not None:
            # Surge: the supervisor sends TERM to the old worker as its successor sends READY=1 (no log line
            # of its own; its exit one drain delay later confirms it).
            successor = [t for t, pid in ready_by_slot.get(proc["slot"], []) if procs[pid]["gen"] == 2]
            proc["term"] = successor[0] if successor else None
    return procs, hup_seen, done


def serving_count(procs, t):
    return sum(1 for p in procs.values() if p["ready"] is not None and p["ready"] <= t
               and (p["term"] is None or t < p["term"]))


def restart_summary(run):
    procs, hup_seen, done = restart_timeline(run)
    times = sorted({t for p in procs.values() for t in (p["ready"], p["term"]) if t is not None and 0 <= t <= done})
    least = min(serving_count(procs, t) for t in [0.0, *times])
    most = max(serving_count(procs, t) for t in [0.0, *times])
    old = [p for p in procs.values() if p["gen"] == 1]
    new = {p["slot"]: p for p in procs.values() if p["gen"] == 2}
    overlap = [p["exited"] - new[p["slot"]]["ready"] for p in old]
    last_exit = max(p["exited"] for p in old)
    return {"procs": procs, "hup_seen": hup_seen, "done": done, "least": least, "most": most,
            "old_exit_after_new_ready": overlap, "last_exit": last_exit}


def draw_restart():
    data = read_data("rolling-restart.json")
    runs = data["runs"]
    fig, axes = plt.subplots(len(runs), 1, figsize=(8.6, 6.0), sharex=True)
    end = max(max(restart_summary(run)["last_exit"], restart_summary(run)["done"]) for run in runs) + 0.4
    start = -0.6
    lane = 0.34
    for ax, run in zip(axes, runs):
        s = restart_summary(run)
        procs = s["procs"]
        budget = next(line for line in run["status_before"].splitlines() if line.startswith("budget:"))
        decision = budget.rsplit(";", 1)[1].strip()
        for p in procs.values():
            y = 3 - p["slot"] + (lane / 2 + 0.02 if p["gen"] == 1 else -lane / 2 - 0.02)
            segments = [(p["spawned"], p["ready"], BOOTING), (p["ready"], p["term"], SERVING),
                        (p["term"], p["exited"], DRAINING)]
            for a, b, colour in segments:
                if a is None:
                    continue
                b = end if b is None else b
                a = max(a, start)
                if b > a:
                    ax.barh(y, b - a, left=a, height=lane, color=colour, edgecolor="white", linewidth=0.5)
            if p["exited"] is not None:
                ax.plot([p["exited"]], [y], marker="|", color=INK, markersize=7)
            ax.text(max(p["spawned"], start) + 0.03, y, f"gen {p['gen']}", va="center", fontsize=6.5,
                    color=INK if p["spawned"] > start else "white")
        ax.axvline(0, color=INK, linewidth=1)
        ax.text(0.03, 4.05 - 0.5, "SIGHUP", fontsize=7.5, va="bottom")
        ax.axvline(s["done"], color=GREY, linewidth=0.8, linestyle="--")
        ax.text(s["done"] - 0.03, 3.55, "rolling restart done", fontsize=7.5, va="bottom", ha="right",
                color=GREY)
        ax.set_yticks([3, 2, 1, 0])
        ax.set_yticklabels([f"slot {i}" for i in range(4)])
        ax.set_ylim(-0.55, 3.95)
        ax.spines[["top", "right"]].set_visible(False)
        env = run["environment"]
        pools = f"DB_POOL_SIZE={env.get('DB_POOL_SIZE', 10)}, DB_MAX_OVERFLOW={env.get('DB_MAX_OVERFLOW', 10)}"
        workers = 4
        serving = (f"{workers} of {workers} serving throughout" if s["least"] == workers
                   else f"{s['least']} of {workers} serving at worst")
        ax.set_title(f"{run['mode']}: {serving}, done {s['done']:.1f} s after the HUP\n"
                     f"{pools}; supervisor status: \"{decision}\"", loc="left", fontsize=8.5)
    axes[-1].set_xlim(start, end)
    axes[-1].set_xlabel(f"seconds from SIGHUP (4 test workers that take {BOOT_DELAY_MS} ms to boot and "
                        f"{DRAIN_DELAY_MS} ms to exit after TERM)")
    fig.legend(handles=[Patch(color=BOOTING, label="booting"), Patch(color=SERVING, label="serving"),
                        Patch(color=DRAINING, label="draining after TERM"),
                        plt.Line2D([], [], color=INK, marker="|", linestyle="none", markersize=7, label="exited")],
               loc="lower center", ncol=4, fontsize=7.5, frameon=False)
    fig.suptitle("A rolling restart: surge keeps every slot serving; retire-first gives one slot up at a time",
                 x=0.01, ha="left", fontsize=10)
    fig.tight_layout(rect=(0, 0.035, 1, 1))
    save(fig, "rolling-restart.svg")


# ---------------------------------------------------------------------------------------------------------
# 3. A graceful stop against the platforms' SIGKILL

# Slow requests in flight when TERM comes, each on a worker of its own: what remains of them after TERM.
STOP_REQUESTS_MS = [2500, 4000, 5500]
REQUEST_LEAD = 1.0  # they are sent this long before TERM


def http_get(sock, path, close=False):
    extra = "Connection: close\r\n" if close else ""
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: pictures\r\n{extra}\r\n".encode())
    data = b""
    while True:
        if b"\r\n\r\n" in data:
            head, body = data.split(b"\r\n\r\n", 1)
            m = re.search(rb"content-length: (\d+)", head, re.I)
            if m and len(body) >= int(m.group(1)):
                return head.decode(), body.decode()
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("closed before the response")
        data += chunk


def parse_duration(text):
    m = re.fullmatch(r"([\d.]+)(ms|s|m|h)?", text)
    return float(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, None: 1}[m.group(2)]


def deploy_settings():
    """The stop timeouts of this repository's deploy files, as they are now."""
    unit = open(os.path.join(ROOT, "deploy/systemd/prefork-api.service"), encoding="utf-8").read()
    pod = open(os.path.join(ROOT, "deploy/kubernetes/api.yaml"), encoding="utf-8").read()
    pre_stop = re.search(r"preStop:\s*\n\s*exec: \{ command: \[\"/bin/sleep\", \"(\d+)\"\]", pod)
    return {"systemd_unit_timeout_stop_sec": int(re.search(r"^TimeoutStopSec=(\d+)", unit, re.M).group(1)),
            "kubernetes_termination_grace_period": int(
                re.search(r"terminationGracePeriodSeconds: (\d+)", pod).group(1)),
            "kubernetes_pre_stop_sleep": int(pre_stop.group(1)) if pre_stop else 0}


def record_stop(bin_dir):
    helptext = subprocess.run([os.path.join(bin_dir, "supervisor"), "--help"], capture_output=True, text=True,
                              env=clean_environment()).stdout
    graceful = re.search(r"--graceful-timeout <duration>.*?\(default ([^)]+)\)", helptext, re.S).group(1)
    tmp = tempfile.mkdtemp(prefix="prefork-pictures-")
    settings = {"TEST_WORKER_BOOT_DELAY": 200, "TEST_WORKER_DRAIN_DELAY": DRAIN_DELAY_MS}
    sup = Supervisor(bin_dir, tmp, ["--workers", "4"], clean_environment(**settings))
    requests, probes, extra = [], [], []
    try:
        port = sup.port()
        sup.wait_for(r"all 4 workers ready")
        time.sleep(0.5)
        # One keep-alive connection per worker that should have a request in flight: a connection stays with the
        # worker that accepted it, and `/` says which one that is.
        pinned = {}
        for _ in range(60):
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            _, body = http_get(sock, "/")
            slot = int(re.search(r"slot (\d+)", body).group(1))
            if slot not in pinned and len(pinned) < len(STOP_REQUESTS_MS):
                pinned[slot] = sock
            else:
                extra.append(sock)
            if len(pinned) == len(STOP_REQUESTS_MS):
                break
        for sock in extra:
            sock.close()
        time.sleep(0.5)  # the closes reach the workers

        def slow(slot, sock, ms):
            record = {"slot": slot, "path": f"/sleep/{ms}", "sent": time.time()}
            try:
                head, body = http_get(sock, record["path"])
                record.update(answered=time.time(), status=head.split()[1], body=body.strip(),
                              connection_close="connection: close" in head.lower())
            except OSError as error:
                record.update(answered=time.time(), status=None, error=str(error))
            sock.close()
            requests.append(record)

        threads = [threading.Thread(target=slow, args=(slot, sock, ms))
                   for (slot, sock), ms in zip(sorted(pinned.items()), STOP_REQUESTS_MS)]
        for thread in threads:
            thread.start()
        term_at = time.time() + REQUEST_LEAD

        def probe():
            """A new connection every 50 ms around the TERM: accepted and answered, or refused."""
            at = term_at - 0.3
            while at < term_at + 0.7:
                time.sleep(max(0.0, at - time.time()))
                started = time.time()
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
                        sock.settimeout(2)
                        _, body = http_get(sock, "/", close=True)
                        outcome = "answered by slot " + re.search(r"slot (\d+)", body).group(1)
                except OSError as error:
                    outcome = type(error).__name__
                probes.append({"at": started, "outcome": outcome})
                at += 0.05

        prober = threading.Thread(target=probe)
        prober.start()
        time.sleep(max(0.0, term_at - time.time()))
        term = time.time()
        sup.proc.send_signal(signal.SIGTERM)
        code = sup.proc.wait(60)
        exited = time.time()
        for thread in [*threads, prober]:
            thread.join()
        lines = sup.lines()
    finally:
        sup.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    write_data("stop.json", {
        "argv": shown(sup.argv, bin_dir, tmp), "environment": settings,
        "graceful_timeout_default": graceful, "deploy": deploy_settings(),
        "term_sent": term, "supervisor_exit_seen": exited, "exit_code": code,
        "requests": sorted(requests, key=lambda r: r["slot"]), "probes": probes,
        "log": [line.replace(tmp, "$TMP").replace(bin_dir, "$BIN") for line in lines if not line.startswith("|")]})


class Compressed:
    """An x axis linear up to `knee` seconds and `factor` times denser after it, so that 90 s fits beside a
    drain of a few seconds."""

    def __init__(self, knee, factor):
        self.knee, self.factor = knee, factor

    def forward(self, x):
        x = np.asarray(x, dtype=float)
        return np.where(x <= self.knee, x, self.knee + (x - self.knee) / self.factor)

    def inverse(self, y):
        y = np.asarray(y, dtype=float)
        return np.where(y <= self.knee, y, self.knee + (y - self.knee) * self.factor)


def stop_summary(data):
    t0 = data["term_sent"]
    slots, stop_logged, stopped = {}, None, None
    for at, message, f in events(data["log"]):
        if message.startswith("spawned"):
            slots[int(f["slot"])] = {"pid": f["pid"], "ready": None, "exited": None, "request": None}
        elif message.startswith("ready "):
            slots[int(f["slot"])]["ready"] = at - t0
        elif message.startswith("graceful stop"):
            stop_logged = at - t0
        elif message.startswith("exited"):
            slots[int(f["slot"])]["exited"] = at - t0
            slots[int(f["slot"])]["how"] = message.split(" pid=")[0]
        elif message.startswith("stopped"):
            stopped = at - t0
    for request in data["requests"]:
        slots[request["slot"]]["request"] = request
    refused = [p["at"] - t0 for p in data["probes"] if not p["outcome"].startswith("answered")]
    answered = [p["at"] - t0 for p in data["probes"] if p["outcome"].startswith("answered")]
    return {"slots": slots, "stop_logged": stop_logged, "stopped": stopped,
            "exit": data["supervisor_exit_seen"] - t0, "refused": refused, "answered": answered}


def draw_stop():
    data = read_data("stop.json")
    s = stop_summary(data)
    t0 = data["term_sent"]
    graceful = parse_duration(data["graceful_timeout_default"])
    deploy = data["deploy"]
    scale = Compressed(knee=12.0, factor=8.0)
    fig, ax = plt.subplots(figsize=(8.6, 5.4))
    ax.set_xscale("function", functions=(scale.forward, scale.inverse))
    start, stop = -1.5, SYSTEMD_DEFAULT + 6
    labels = []

    def row(label):
        y = -len(labels) - (0.4 if len(labels) > len(s["slots"]) + 1 else 0)
        labels.append((y, label))
        return y

    for slot in sorted(s["slots"]):
        w = s["slots"][slot]
        r = row(f"worker, slot {slot}")
        request = w["request"]
        drained = (request["answered"] - t0) if request else 0.0
        ax.barh(r, 0 - start, left=start, height=0.5, color=SERVING)
        ax.barh(r, drained, left=0, height=0.5, color=DRAINING)
        ax.barh(r, w["exited"] - drained, left=drained, height=0.5, color=EXITING)
        ax.plot([w["exited"]], [r], marker="|", color=INK, markersize=10)
        note = f"exited {w['exited']:.1f} s"
        if request:
            sent = request["sent"] - t0
            ax.plot([sent, drained], [r + 0.34, r + 0.34], color=INK, linewidth=1)
            ax.plot([drained], [r + 0.34], marker="|", color=INK, markersize=4)
            note += f"; its GET {request['path']} answered at {drained:.1f} s"
        else:
            note += "; no request in flight"
        ax.text(w["exited"] + 0.15, r, note, va="center", fontsize=7)
    r = row("new connections")
    ax.plot(s["answered"], [r] * len(s["answered"]), linestyle="none", marker="o", markersize=3, color=SERVING)
    ax.plot(s["refused"], [r] * len(s["refused"]), linestyle="none", marker="x", markersize=3, color=OVER)
    if s["refused"]:
        ax.text(max(s["refused"]) + 0.15, r, f"refused from {min(s['refused']):.2f} s (a connection every 50 ms)",
                va="center", fontsize=7)
    r = row("supervisor")
    ax.barh(r, 0 - start, left=start, height=0.5, color=SERVING)
    ax.barh(r, s["exit"], left=0, height=0.5, color=DRAINING)
    ax.plot([s["exit"]], [r], marker="|", color=INK, markersize=10)
    ax.text(s["exit"] + 0.15, r, f"exited {s['exit']:.1f} s after SIGTERM, exit code {data['exit_code']}",
            va="center", fontsize=7.5, fontweight="bold")
    kills = [
        ("GRACEFUL_TIMEOUT", graceful, f"SIGKILL at {graceful:g} s, the default: from the supervisor, to a worker "
         "still draining"),
        ("docker stop", DOCKER_STOP, f"SIGKILL at {DOCKER_STOP:g} s: docker stop's default -t"),
        ("systemd, deploy/systemd", float(deploy["systemd_unit_timeout_stop_sec"]),
         f"SIGKILL at {deploy['systemd_unit_timeout_stop_sec']} s: TimeoutStopSec in deploy/systemd"),
        ("Kubernetes, deploy/kubernetes",
         float(deploy["kubernetes_termination_grace_period"] - deploy["kubernetes_pre_stop_sleep"]),
         f"SIGKILL {deploy['kubernetes_termination_grace_period'] - deploy['kubernetes_pre_stop_sleep']} s after "
         f"SIGTERM: grace {deploy['kubernetes_termination_grace_period']} s, its "
         f"{deploy['kubernetes_pre_stop_sleep']} s preStop first"),
        ("Kubernetes default", KUBERNETES_GRACE,
         f"SIGKILL at {KUBERNETES_GRACE:g} s: terminationGracePeriodSeconds' default"),
        ("systemd default", SYSTEMD_DEFAULT, f"SIGKILL at {SYSTEMD_DEFAULT:g} s: systemd's DefaultTimeoutStopSec"),
    ]
    for label, at, note in kills:
        r = row(label)
        ax.barh(r, at, left=0, height=0.22, color=UNUSED, edgecolor="#c8c8c8", linewidth=0.5)
        ax.plot([at], [r], marker="X", color=OVER, markersize=6, linestyle="none")
        text = note
        if at <= 12:
            ax.text(at + 0.3, r, text, va="center", fontsize=7)
        else:
            ax.text(scale.inverse(scale.forward(at) - 0.25), r + 0.2, text, va="bottom", ha="right", fontsize=7)
    top = 0.95
    ax.axvline(0, color=INK, linewidth=1)
    ax.text(0.1, top - 0.02, "SIGTERM", fontsize=7.5, va="top")
    ax.axvline(graceful, color=OVER, linewidth=0.8, linestyle="--")
    ax.axvspan(scale.knee, stop, color="#f4f4f4", zorder=-1, linewidth=0)
    ax.text(scale.knee + 1, top - 0.02, f"after {scale.knee:g} s the axis is {scale.factor:g}× compressed",
            fontsize=6.5, color=GREY, va="top")
    ax.set_yticks([y for y, _ in labels])
    ax.set_yticklabels([label for _, label in labels])
    ax.set_ylim(labels[-1][0] - 0.55, top)
    ax.set_xlim(start, stop)
    ticks = [-1, 0, 2, 4, 6, 8, 10, 15, 30, 60, 90]
    ax.set_xticks(ticks)
    ax.set_xticklabels([str(t) for t in ticks])
    ax.set_xlabel(f"seconds from SIGTERM (4 test workers, {len(data['requests'])} with a slow request in flight; "
                  f"{DRAIN_DELAY_MS} ms from drained to exit)")
    ax.spines[["top", "right"]].set_visible(False)
    fig.legend(handles=[Patch(color=SERVING, label="serving"),
                        Patch(color=DRAINING, label="draining: finishing its requests, taking no new ones"),
                        Patch(color=EXITING, label="drained, exiting"),
                        plt.Line2D([], [], color=INK, linewidth=1, label="a request, sent to answered")],
               loc="lower center", ncol=4, fontsize=7.5, frameon=False)
    fig.suptitle(f"A graceful stop: the supervisor is gone {s['exit']:.1f} s after SIGTERM, before any "
                 "platform's SIGKILL", x=0.01, ha="left", fontsize=10)
    fig.tight_layout(rect=(0, 0.035, 1, 1))
    save(fig, "stop-timeline.svg")


# ---------------------------------------------------------------------------------------------------------

PICTURES = {
    "budget": (record_budget, draw_budget),
    "rolling-restart": (record_restart, draw_restart),
    "stop": (record_stop, draw_stop),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("picture", choices=[*PICTURES, "all"])
    parser.add_argument("--bin", default=os.path.join(ROOT, ".build", "release"),
                        help="where supervisor and test-worker are (default .build/release)")
    parser.add_argument("--redraw", action="store_true", help="draw from the recorded data only, run nothing")
    args = parser.parse_args()
    style()
    bin_dir = os.path.abspath(args.bin)
    names = list(PICTURES) if args.picture == "all" else [args.picture]
    for name in names:
        record, draw = PICTURES[name]
        if not args.redraw:
            for tool in ("supervisor", "test-worker"):
                if not os.access(os.path.join(bin_dir, tool), os.X_OK):
                    sys.exit(f"{os.path.join(bin_dir, tool)} not found: give --bin, or --redraw")
            record(bin_dir)
        draw()


if __name__ == "__main__":
    main()
