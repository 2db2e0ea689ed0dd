"""Runs the example FastAPI image (Examples/fastapi/Dockerfile) as a user of it would, and checks what the install
and Docker pages promise (scripts/check-image calls it after building it on a slim Python image):

  run_example.py --image TAG --prefork-image TAG --podman "podman --runtime runc ..."

  1. the supervisor copied into a Python image runs there: it links nothing but glibc, libstdc++ and libgcc_s,
     and its --version is the prefork image's;
  2. it serves as the Dockerfile says: WEB_CONCURRENCY workers, each ready after its lifespan startup (READY=1
     from the helper), `supervisor healthcheck` and `podman healthcheck run` pass, every worker answers;
  3. the helper hands each worker the pool size the budget chose (DB_POOL_SIZE=auto);
  4. `podman stop` with requests in flight: every one is answered, each worker runs its lifespan shutdown, the
     supervisor exits 0 well inside podman's 10 s, and nothing is killed.
Each check prints ok/FAIL; exit 1 if any failed.
"""
import argparse
import json
import os
import shlex
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run_image import Container, check, failures, free_port, request  # noqa: E402

# What a binary built with --static-swift-stdlib may still need: the C and C++ runtimes every Debian-based image has.
ALLOWED_LIBRARIES = ("linux-vdso.so", "libc.so", "libm.so", "libstdc++.so", "libgcc_s.so", "ld-linux")


def supervisor_libraries(args):
    out = subprocess.run(args.podman + ["run", "--rm", "--no-healthcheck", "--entrypoint", "/usr/bin/ldd", args.image,
                                        "/usr/local/bin/supervisor"], capture_output=True, text=True, timeout=120)
    names = [os.path.basename(line.split()[0]) for line in out.stdout.splitlines() if line.strip()]
    return out.returncode, names, out.stdout + out.stderr


def version(args, image):
    out = subprocess.run(args.podman + ["run", "--rm", "--no-healthcheck", "--entrypoint", "/usr/local/bin/supervisor",
                                        image, "--version"], capture_output=True, text=True, timeout=120)
    return out.stdout.strip()


def pids_answering(port, workers, tries=200):
    """The worker pids seen over fresh connections (each is accepted by whichever worker is free)."""
    seen = set()
    for _ in range(tries):
        status, body = request(port, "GET", "/", timeout=5)
        if status == 200:
            seen.add(json.loads(body)["pid"])
        if len(seen) == workers:
            break
    return seen


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--image", required=True)
    parser.add_argument("--prefork-image", required=True)
    parser.add_argument("--podman", required=True)
    args = parser.parse_args()
    args.podman = shlex.split(args.podman)

    code, names, text = supervisor_libraries(args)
    foreign = [name for name in names if not name.startswith(ALLOWED_LIBRARIES)]
    check(code == 0 and not foreign and "not found" not in text,
          f"the supervisor in a Python image needs only glibc, libstdc++ and libgcc_s ({', '.join(names)})")
    ours, theirs = version(args, args.image), version(args, args.prefork_image)
    check(ours == theirs and ours.startswith("supervisor "), f"--version is the prefork image's ({ours!r})")

    workers = 2
    port = free_port()
    box = Container(args, {"PORT": str(port), "WEB_CONCURRENCY": str(workers)}, services=(), health="/health")
    try:
        check(box.wait_healthy(), f"serves /health on PORT {port}")
        status = box.status_when_ready(workers, timeout=30)
        check(status is not None and status["ready"] == workers,
              f"WEB_CONCURRENCY={workers}: {status and status['ready']} workers ready (READY=1 from the lifespan)")
        health = box.run("exec", box.name, "supervisor", "healthcheck", "--path", "/health", check=False)
        check(health.returncode == 0, f"supervisor healthcheck --path /health: exit {health.returncode}")
        health = box.run("healthcheck", "run", box.name, check=False)
        check(health.returncode == 0, f"podman healthcheck run passes ({(health.stdout + health.stderr).strip()})")
        seen = pids_answering(port, workers)
        check(len(seen) == workers, f"every worker answers: pids {sorted(seen)}")

        answers, lock = [], threading.Lock()

        def slow():
            result = request(port, "GET", "/slow?seconds=3", timeout=20)
            with lock:
                answers.append(result[0])

        clients = [threading.Thread(target=slow) for _ in range(4)]
        for client in clients:
            client.start()
        time.sleep(1.0)  # the requests are in the workers' hands
        took = box.stop(10)
        for client in clients:
            client.join(30)
        log = box.logs()
        check(answers == [200] * 4, f"every request in flight at the stop is answered: {answers}")
        check(box.exit_code() == 0 and took < 8, f"podman stop: exit {box.exit_code()} in {took:.1f} s (SIGKILL at 10 s)")
        check(log.count("Application shutdown complete") == workers,
              f"each worker ran its lifespan shutdown ({log.count('Application shutdown complete')} of {workers})")
        check("stopped exit=0" in log and "SIGKILL" not in log and "sending KILL" not in log,
              "the supervisor says stopped exit=0, and killed nothing")
        if failures:
            print(log[-4000:], file=sys.stderr)
    finally:
        box.remove()

    # The pool size the budget chose reaches the app: 3 workers within 100 − 20 is 26 each, half of it overflow
    # (docs/connection-budget.md).
    port = free_port()
    box = Container(args, {"PORT": str(port), "WEB_CONCURRENCY": "3", "DB_POOL_SIZE": "auto",
                           "DATABASE_URL": "postgresql://app@127.0.0.1:1/app"}, services=(), health="/health")
    try:
        box.wait_healthy()
        status, body = request(port, "GET", "/", timeout=5)
        pool = json.loads(body)["pool"] if status == 200 else None
        each = (100 - 20) // 3
        check(pool == {"pool_size": each - each // 2, "max_overflow": each // 2},
              f"DB_POOL_SIZE=auto: the app is handed the budget's choice ({pool}; 3 × {each} of 100 − 20)")
    finally:
        box.remove()

    if failures:
        print(f"check-image: {len(failures)} check(s) of the example FastAPI image failed", file=sys.stderr)
        sys.exit(1)
    print("check-image: the example FastAPI image serves, hands the app its pool size and stops cleanly")


if __name__ == "__main__":
    main()
