"""Runs the real image as it ships and checks what a user of it relies on (scripts/check-image calls it).

As shipped means: the image's own non-root uid, the container runtime's default capabilities, a read-only root
file system with a tmpfs on /tmp (where the notify, control and metrics sockets live), and the entrypoint's
defaults unless a check sets a variable. Postgres and Redis are the throwaway ones scripts/check-image started,
reached over the host network.

  run_image.py --image TAG --loadgen PATH --podman "podman --runtime runc ..."

Checks, each printed as ok/FAIL; exit 1 if any failed:
  1. worker migrate and worker create-token run from the image;
  2. WEB_CONCURRENCY, API_WORKERS and PORT are honoured (status --json inside the container, /healthz on that port);
  3. /healthz, /readyz and authenticated notes CRUD;
  4. `podman healthcheck run` passes;
  5. `podman stop` under load: exit 0 within the graceful timeout, no accepted connection reset (bounded by one
     where the kernel allows no socket filter, see docs/signals.md), every worker disposed its pools, no
     Postgres backend left;
  6. with --cap-add NET_ADMIN, as docs/deploy/docker.md suggests, the stop uses the socket filter and the workers do not
     inherit the capability;
  7. while no worker is ready (a database that never answers), the HEALTHCHECK fails and nothing is served;
  8. GRACEFUL_TIMEOUT is honoured: a request blocked on a row lock is cut at the end of the drain (a second before
     it), its statement cancelled in Postgres, not committed, no backend left; no SIGKILL; exit 0.
"""
import argparse
import json
import os
import shlex
import socket
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "benchmarks", "harness"))
import timeline  # noqa: E402  (the load generator's runner, shared with scripts/bench and scripts/chaos)

failures = []


def check(ok, text):
    print(("ok    " if ok else "FAIL  ") + text, flush=True)
    if not ok:
        failures.append(text)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def psql(sql):
    out = subprocess.run(["psql", os.environ["DATABASE_URL"], "-Atq", "-c", sql], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"psql: {out.stderr.strip()}")
    return out.stdout.strip()


def backends(application_name, settle=3.0):
    """Backends of the container's pools; waits up to `settle` s for closed ones to leave pg_stat_activity."""
    deadline = time.monotonic() + settle
    while True:
        count = int(psql(f"SELECT count(*) FROM pg_stat_activity WHERE application_name = '{application_name}'"))
        if count == 0 or time.monotonic() > deadline:
            return count
        time.sleep(0.1)


def request(port, method, path, token=None, body=None, timeout=5):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    data = body.encode() if body is not None else None
    if data is not None:
        headers["Content-Type"] = "application/json"
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


class Container:
    """One `podman run -d` of the image, as shipped plus the given environment."""

    serial = 0

    def __init__(self, args, environment, flags=(), services=("DATABASE_URL", "REDIS_URL"), health="/healthz"):
        Container.serial += 1
        self.health = health
        self.podman, self.args = args.podman, args
        self.name = f"prefork-check-{os.getpid()}-{Container.serial}"
        self.port = int(environment["PORT"])
        flags = ["--network", "host", "--read-only", "--tmpfs", "/tmp", *flags]
        for key in services:
            flags += ["-e", f"{key}={os.environ[key]}"]
        for key, value in environment.items():
            flags += ["-e", f"{key}={value}"]
        self.run("run", "-d", "--name", self.name, *flags, args.image)

    def run(self, *words, check=True, timeout=120):
        out = subprocess.run(self.podman + list(words), capture_output=True, text=True, timeout=timeout)
        if check and out.returncode != 0:
            raise RuntimeError(f"{' '.join(words[:2])}: {out.stderr.strip()}")
        return out

    def wait_healthy(self, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if request(self.port, "GET", self.health, timeout=1)[0] == 200:
                    return True
            except OSError:
                pass
            if self.state() != "running":
                return False
            time.sleep(0.1)
        return False

    def state(self):
        return self.run("inspect", "--format", "{{.State.Status}}", self.name, check=False).stdout.strip()

    def exit_code(self):
        return int(self.run("inspect", "--format", "{{.State.ExitCode}}", self.name).stdout.strip())

    def status(self):
        out = self.run("exec", self.name, "/usr/local/bin/supervisor", "status", "--json", check=False)
        return json.loads(out.stdout) if out.returncode == 0 else None

    def status_when_ready(self, workers, timeout=10):
        """`supervisor status --json` once `workers` are ready, or the last answer after `timeout` s."""
        deadline = time.monotonic() + timeout
        status = self.status()
        while not (status and status["ready"] == workers) and time.monotonic() < deadline:
            time.sleep(0.1)
            status = self.status()
        return status

    def logs(self):
        out = self.run("logs", self.name, check=False)
        return out.stdout + out.stderr

    def stop(self, timeout):
        """`podman stop` (STOPSIGNAL, then SIGKILL after `timeout`); seconds it took."""
        started = time.monotonic()
        self.run("stop", "-t", str(timeout), self.name, timeout=timeout + 30)
        return time.monotonic() - started

    def remove(self):
        self.run("rm", "-f", self.name, check=False)


def one_shot(args, *command):
    """The image with another entrypoint (`worker migrate`, `worker create-token`), as an operator runs them."""
    argv = args.podman + ["run", "--rm", "--no-healthcheck", "--network", "host", "--read-only", "--tmpfs", "/tmp",
                          "-e", f"DATABASE_URL={os.environ['DATABASE_URL']}", "-e", f"REDIS_URL={os.environ['REDIS_URL']}",
                          "--entrypoint", command[0], args.image, *command[1:]]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--image", required=True)
    parser.add_argument("--loadgen", required=True)
    parser.add_argument("--podman", required=True, help="the podman command and its global flags, one string")
    parser.add_argument("--scratch", required=True)
    args = parser.parse_args()
    args.podman = shlex.split(args.podman)

    print("== worker migrate and create-token from the image")
    migrated = one_shot(args, "/usr/local/bin/worker", "migrate")
    check(migrated.returncode == 0, f"worker migrate exits 0 ({migrated.stderr.strip()[-200:]})")
    created = one_shot(args, "/usr/local/bin/worker", "create-token", "--user", f"image-{os.getpid()}", "--ttl", "1h")
    token = created.stdout.strip()
    check(created.returncode == 0 and token.startswith("nt_"), "worker create-token prints a token")

    for program in ("supervisor", "worker", "cleanup"):
        version = one_shot(args, f"/usr/local/bin/{program}", "--version")
        line = version.stdout.strip()
        check(version.returncode == 0 and line.startswith(f"{program} ") and "(commit unknown)" not in line,
              f"{program} --version names its commit ({line})")

    print("== as shipped: its uid, default capabilities, read-only root, WEB_CONCURRENCY=3 PORT=<free> GRACEFUL_TIMEOUT=6")
    application_name = f"image-check-{os.getpid()}"
    # WEB_CONCURRENCY, as a platform sets it: the image must not override it (the next container sets API_WORKERS).
    environment = {"WEB_CONCURRENCY": "3", "PORT": str(free_port()), "GRACEFUL_TIMEOUT": "6",
                   "DB_APPLICATION_NAME": application_name, "RATE_LIMIT_PER_MINUTE": "100000000"}
    container = Container(args, environment)
    try:
        healthy = container.wait_healthy()
        check(healthy, f"/healthz answers 200 on PORT={container.port}")
        if not healthy:
            print(container.logs()[-3000:])
            return
        uid = container.run("exec", container.name, "/usr/local/bin/supervisor", "healthcheck").returncode
        check(uid == 0, "supervisor healthcheck (the image's HEALTHCHECK command) exits 0")
        liveness = container.run("exec", container.name, "/usr/local/bin/supervisor", "status", check=False).returncode
        check(liveness == 0, "supervisor status (deploy/kubernetes' liveness probe) exits 0 on a read-only root")
        top = container.run("top", container.name, "user", "args", check=False).stdout
        users = {line.split()[0] for line in top.splitlines()[1:] if line.strip()}
        check(users == {"10001"} or users == {"api"}, f"every process runs as the image's uid 10001 ({sorted(users)})")
        identity = container.run("exec", container.name, "id", check=False).stdout.strip()
        check(identity == "uid=10001(api) gid=10001(api) groups=10001(api)", f"user and group api, 10001 ({identity})")
        status = container.status_when_ready(3)
        check(status is not None and status["workers"] == 3 and status["ready"] == 3,
              f"WEB_CONCURRENCY=3 honoured: {status and status['ready']} of {status and status['workers']} ready")
        mechanism = status.get("listener_stop") if status else None
        print(f"      the stop mechanism in the container: {mechanism}")
        check(mechanism in ("socket-filter", "backlog"), "supervisor status names the stop mechanism")
        check(f"stop={mechanism}" in container.logs(), "the log names it too")

        code, body = request(container.port, "GET", "/readyz")
        check(code == 200 and '"postgres":"ok"' in body.replace(" ", "") and '"redis":"ok"' in body.replace(" ", ""),
              f"/readyz 200 with postgres and redis ok ({code})")
        code, body = request(container.port, "POST", "/v1/notes", token, '{"title":"from the image","body":"b"}')
        check(code == 201, f"POST /v1/notes 201 ({code})")
        note_id = json.loads(body)["id"] if code == 201 else 0
        code, body = request(container.port, "GET", f"/v1/notes/{note_id}", token)
        check(code == 200 and json.loads(body)["title"] == "from the image", f"GET the note 200 ({code})")
        code, body = request(container.port, "PATCH", f"/v1/notes/{note_id}", token, '{"title":"renamed"}')
        check(code == 200 and json.loads(body)["title"] == "renamed", f"PATCH 200 ({code})")
        code, _ = request(container.port, "GET", "/v1/notes?limit=5", token)
        check(code == 200, f"GET /v1/notes 200 ({code})")
        code, _ = request(container.port, "GET", f"/v1/notes/{note_id}")
        check(code == 401, f"without a token 401 ({code})")
        code, _ = request(container.port, "DELETE", f"/v1/notes/{note_id}", token)
        check(code == 204, f"DELETE 204 ({code})")
        code, _ = request(container.port, "GET", f"/v1/notes/{note_id}", token)
        check(code == 404, f"GET after DELETE 404 ({code})")
        health = container.run("healthcheck", "run", container.name, check=False)
        check(health.returncode == 0, f"podman healthcheck run passes ({(health.stdout + health.stderr).strip()})")

        code, body = request(container.port, "POST", "/v1/notes", token, '{"title":"load"}')
        check(code == 201, f"POST /v1/notes 201 ({code} {body[:100]})")
        load_id = json.loads(body)["id"]
        print("== podman stop under load (16 clients, a new connection per request)")
        out = os.path.join(args.scratch, "stop.csv")
        run = timeline.Run(args.loadgen, container.port, f"/v1/notes/{load_id}", [f"Authorization: Bearer {token}"],
                           16, 6, out, close=True, timeout=10)
        run.sleep_until(2.0)
        seconds = container.stop(timeout=10)
        rows = run.finish()
        outcomes = timeline.outcomes(rows)
        before_stop = sum(1 for start, latency, status in rows if 200 <= status < 300 and start < 2.0)
        resets = outcomes.get("reset or closed", 0)
        print(f"      {seconds:.2f} s; outcomes {outcomes}")
        check(before_stop > 100, f"served under load before the stop ({before_stop})")
        check(container.exit_code() == 0, f"exit code 0 ({container.exit_code()})")
        check(seconds < 6 + 2, f"stopped within the graceful timeout (6 s): {seconds:.2f} s")
        bound = 0 if mechanism == "socket-filter" else 1
        check(resets <= bound, f"accepted connections reset: {resets} (at most {bound} with {mechanism})")
        check(set(outcomes) <= {"2xx", "connect failed", "reset or closed"},
              f"nothing but answers and refused connections ({outcomes})")
        logs = container.logs()
        disposed = logs.count("postgres_disposed=true redis_closed=true")
        check(disposed == 3, f"every worker disposed its pools ({disposed} of 3)")
        left = backends(application_name)
        check(left == 0, f"no Postgres backend left ({left})")
    finally:
        container.remove()

    print("== --cap-add NET_ADMIN: the supervisor may attach the socket filter, its workers get no capability")
    container = Container(args, {"API_WORKERS": "2", "PORT": str(free_port())}, flags=["--cap-add", "NET_ADMIN"])
    try:
        check(container.wait_healthy(), "serving")
        status = container.status_when_ready(2)
        check(status is not None and status.get("listener_stop") == "socket-filter",
              f"the stop mechanism is the socket filter ({status and status.get('listener_stop')})")

        def effective(pid):
            text = container.run("exec", container.name, "cat", f"/proc/{pid}/status", check=False).stdout
            line = next((line for line in text.splitlines() if line.startswith("CapEff:")), "CapEff: ?")
            return line.split()[1]

        supervisor = effective(1)
        check(supervisor != "?" and int(supervisor, 16) & (1 << 12), f"the supervisor holds CAP_NET_ADMIN ({supervisor})")
        workers = [effective(slot["pid"]) for slot in (status or {}).get("slots", []) if slot["pid"]]
        check(len(workers) == 2 and all(value != "?" and int(value, 16) == 0 for value in workers),
              f"its workers hold no capability ({workers})")
    finally:
        container.remove()

    print("== a database that accepts connections and never answers: no worker ready, the HEALTHCHECK says so")
    # A listener nobody accepts on: libpq's connect completes in the kernel and then waits for the server's answer
    # until its connect timeout (10 s), as against a stopped postmaster. The worker boots that long, accepts nothing.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    container = Container(args, {"API_WORKERS": "1", "PORT": str(free_port()),
                                 "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{silent.getsockname()[1]}/postgres"})
    try:
        time.sleep(2)
        health = container.run("healthcheck", "run", container.name, check=False)
        check(health.returncode != 0, f"podman healthcheck run fails ({health.returncode})")
        check_out = container.run("exec", container.name, "/usr/local/bin/supervisor", "healthcheck", check=False)
        check(check_out.returncode == 1 and "no worker is ready" in check_out.stderr,
              f"supervisor healthcheck: exit 1, no worker is ready ({check_out.returncode}: {check_out.stderr.strip()})")
        try:
            code = request(container.port, "GET", "/healthz", timeout=1)[0]
        except OSError as error:
            code = type(error).__name__
        check(code != 200, f"the booting worker takes no request ({code})")
    finally:
        container.remove()
        silent.close()

    print("== GRACEFUL_TIMEOUT=2 with a request held by a row lock: cancelled, not committed, no backend left")
    application_name = f"image-grace-{os.getpid()}"
    container = Container(args, {"API_WORKERS": "1", "PORT": str(free_port()), "GRACEFUL_TIMEOUT": "2",
                                 "DB_APPLICATION_NAME": application_name, "RATE_LIMIT_PER_MINUTE": "100000000"})
    locker = None
    try:
        check(container.wait_healthy(), "serving")
        code, body = request(container.port, "POST", "/v1/notes", token, '{"title":"locked"}')
        check(code == 201, f"POST /v1/notes 201 ({code} {body[:100]})")
        locked_id = json.loads(body)["id"]
        # Holds the note's row until killed, so the PATCH below waits inside Postgres.
        locker = subprocess.Popen(["psql", os.environ["DATABASE_URL"], "-Atq", "-c", "BEGIN",
                                   "-c", f"SELECT id FROM notes WHERE id = {locked_id} FOR UPDATE",
                                   "-c", "SELECT pg_sleep(60)"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  env={**os.environ, "PGAPPNAME": f"{application_name}-locker"})
        time.sleep(0.5)
        patch = subprocess.Popen([sys.executable, "-c", f"""
import urllib.request
req = urllib.request.Request("http://127.0.0.1:{container.port}/v1/notes/{locked_id}", data=b'{{"title":"x"}}',
    method="PATCH", headers={{"Authorization": "Bearer {token}", "Content-Type": "application/json"}})
try:
    urllib.request.urlopen(req, timeout=30)
except Exception as error:
    print(type(error).__name__)
"""], stdout=subprocess.PIPE, text=True)
        time.sleep(0.5)
        seconds = container.stop(timeout=10)
        print(f"      {seconds:.2f} s")
        # The drain has the graceful timeout less its last second; then the worker cancels the PATCH in Postgres,
        # disposes its pools and exits, before the supervisor's SIGKILL at 2 s.
        check(1.0 <= seconds < 2.0, f"the stop cut the request at the drain's end (1 s), before the SIGKILL: {seconds:.2f} s")
        check(container.exit_code() == 0, f"exit code 0 ({container.exit_code()})")
        logs = container.logs()
        check("cancelling their statements" in logs and "SIGKILL" not in logs,
              "the worker cancelled the request's statement itself; no SIGKILL was needed")
        left = backends(application_name)
        check(left == 0, f"with the row still locked, no backend of the worker is left ({left})")
        patch.wait(timeout=30)
        # The lock goes: a PATCH still waiting in a backend would commit now.
        psql(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '{application_name}-locker'")
        locker.wait(timeout=10)
        locker = None
        time.sleep(0.5)
        title = psql(f"SELECT title FROM notes WHERE id = {locked_id}")
        check(title == "locked", f"the cut PATCH was not committed once the lock went (title {title!r})")
    finally:
        if locker:
            locker.kill()
            locker.wait()
        container.remove()


if __name__ == "__main__":
    try:
        main()
    except Exception as error:  # a check that could not even run is a failure, with its reason
        check(False, f"{type(error).__name__}: {error}")
    if failures:
        print(f"check-image: {len(failures)} check(s) of the running image failed", file=sys.stderr)
        sys.exit(1)
    print("check-image: the image serves as shipped, stops cleanly under load and honours its settings")
