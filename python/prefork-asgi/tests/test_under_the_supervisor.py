"""The helper against the real thing: uvicorn running a FastAPI app wrapped in `Prefork`, under the prefork
supervisor built from this repository (`PREFORK_BIN_DIR`, else `.build/release`)."""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
BIN = os.environ.get("PREFORK_BIN_DIR") or os.path.join(ROOT, ".build", "release")
SUPERVISOR = os.path.join(BIN, "supervisor")

APP = '''
import os, time
from contextlib import asynccontextmanager
from fastapi import FastAPI
from prefork_asgi import Prefork, pool_settings

settings = pool_settings()

@asynccontextmanager
async def lifespan(app):
    if os.path.exists(os.environ["BROKEN_MARKER"]):
        raise RuntimeError("this version cannot start")
    yield

# As the guide writes it: the wrapper in place of the app, its routes declared on the wrapper.
app = Prefork(FastAPI(lifespan=lifespan), status="pool {pool_size} + {max_overflow}".format(**settings))

@app.get("/")
async def root():
    return {"pid": os.getpid(), **settings}

@app.get("/hang")
async def hang():
    time.sleep(30)  # blocks the event loop, as a stuck request would
'''


class Supervisor:
    def __init__(self, folder, workers=2, extra=()):
        assert os.access(SUPERVISOR, os.X_OK), f"no supervisor at {SUPERVISOR}: build it (scripts/test does)"
        self.folder = folder
        self.control = os.path.join(folder, "control.sock")
        self.log_path = os.path.join(folder, "supervisor.log")
        with open(os.path.join(folder, "app.py"), "w") as f:
            f.write(APP)
        env = dict(os.environ, BROKEN_MARKER=os.path.join(folder, "broken"), DB_POOL_SIZE="3", DB_MAX_OVERFLOW="2",
                   PYTHONPATH=os.pathsep.join(sys.path))
        env.pop("DATABASE_URL", None)
        self.log = open(self.log_path, "w")
        self.process = subprocess.Popen(
            [SUPERVISOR, "--workers", str(workers), "--bind", "127.0.0.1:0", "--control-socket", self.control,
             "--no-cleanup", *extra, "--", sys.executable, "-m", "uvicorn", "--app-dir", folder, "app:app",
             "--fd", "3", "--log-level", "warning"],
            stdout=self.log, stderr=subprocess.STDOUT, env=env)

    def text(self):
        with open(self.log_path) as f:
            return f.read()

    def wait_for(self, fragment, timeout=30, count=1):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.text().count(fragment) >= count:
                return
            assert self.process.poll() is None, f"the supervisor exited:\n{self.text()}"
            time.sleep(0.1)
        raise AssertionError(f"no {fragment!r} within {timeout} s:\n{self.text()}")

    def status(self):
        out = subprocess.run([SUPERVISOR, "status", "--json", "--control-socket", self.control],
                             capture_output=True, text=True, timeout=15)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            code = self.process.wait(timeout=30)
        else:
            code = self.process.returncode
        self.log.close()
        return code


@pytest.fixture
def folder():
    path = tempfile.mkdtemp(prefix="prefork-asgi-e2e-")
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_ready_after_startup_with_a_heartbeat_and_the_pool_size(folder):
    supervisor = Supervisor(folder)
    try:
        supervisor.wait_for("all 2 workers ready")
        status = supervisor.status()
        slots = status["slots"]
        assert [slot["state"] for slot in slots] == ["ready", "ready"], status
        assert all(slot["heartbeat_age_seconds"] is not None for slot in slots), "no WATCHDOG=1 arrived"
        assert all(slot["status"] == "pool 3 + 2" for slot in slots), status
    finally:
        assert supervisor.stop() == 0, supervisor.text()


def test_a_version_that_cannot_start_never_replaces_the_old_workers(folder):
    supervisor = Supervisor(folder)
    try:
        supervisor.wait_for("all 2 workers ready")
        open(os.path.join(folder, "broken"), "w").close()
        supervisor.process.send_signal(signal.SIGHUP)
        supervisor.wait_for("rolling restart aborted")
        slots = supervisor.status()["slots"]
        assert [slot["generation"] for slot in slots] == [1, 1], slots
    finally:
        assert supervisor.stop() == 0, supervisor.text()


def test_a_hung_event_loop_is_replaced(folder):
    supervisor = Supervisor(folder, workers=1, extra=("--timeout", "2s"))
    try:
        supervisor.wait_for("all 1 workers ready")
        status = supervisor.status()
        port = status["listening"].rsplit(":", 1)[1]
        hung = status["slots"][0]["pid"]
        subprocess.Popen(["python3", "-c", f"import urllib.request as u; u.urlopen('http://127.0.0.1:{port}/hang', timeout=20)"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        supervisor.wait_for("heartbeat missed", timeout=15)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            slot = supervisor.status()["slots"][0]
            if slot["pid"] not in (None, hung) and slot["state"] == "ready":
                break
            time.sleep(0.2)
        else:
            raise AssertionError(f"the hung worker was not replaced:\n{supervisor.text()}")
    finally:
        assert supervisor.stop() == 0, supervisor.text()


BURST_APP = '''
import os, time, asyncio
from prefork_asgi import Prefork

async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                # Every worker finishes its startup in the same instant, as when a database they all wait on
                # comes back: their READY=1 arrive together, more than the supervisor's queue holds at once.
                await asyncio.sleep(max(0.0, float(os.environ["READY_AT"]) - time.time()))
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    else:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

app = Prefork(app)
'''


def test_readiness_of_many_workers_at_once_is_never_lost(folder):
    workers = 16
    with open(os.path.join(folder, "burst.py"), "w") as f:
        f.write(BURST_APP)
    log_path = os.path.join(folder, "burst.log")
    env = dict(os.environ, READY_AT=str(time.time() + 8), PYTHONPATH=os.pathsep.join(sys.path))
    env.pop("DATABASE_URL", None)
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [SUPERVISOR, "--workers", str(workers), "--bind", "127.0.0.1:0", "--control-socket",
             os.path.join(folder, "control.sock"), "--no-cleanup", "--boot-timeout", "25s", "--", sys.executable,
             "-m", "uvicorn", "--app-dir", folder, "burst:app", "--fd", "3", "--log-level", "warning"],
            stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            deadline = time.monotonic() + 40
            while time.monotonic() < deadline:
                text = open(log_path).read()
                if f"all {workers} workers ready" in text or "boot timeout" in text:
                    break
                time.sleep(0.2)
            text = open(log_path).read()
            assert f"all {workers} workers ready" in text and "boot timeout" not in text, text
        finally:
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=30) == 0, open(log_path).read()
