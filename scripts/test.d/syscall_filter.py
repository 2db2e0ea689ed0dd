#!/usr/bin/env python3
"""The systemd unit's sandbox against what the programs really do.

The unit (deploy/systemd/prefork-api.service) restricts system calls (SystemCallFilter=) and forbids writable
executable memory (MemoryDenyWriteExecute=). A call the filter denies fails with EPERM in production only, under
systemd, where no test of ours runs. So: strace -f the supervisor, two API workers and the cleanup job through a
boot, requests, a rolling restart (HUP), cleanup runs and a stop (TERM), expand the unit's filter with
`systemd-analyze syscall-filter` (systemd's own group definitions), and fail on any call made that the unit would
deny, and on any W+X mapping.

  scripts/test.d/syscall_filter.py --bin .build/release [--unit deploy/systemd/prefork-api.service]
Needs DATABASE_URL and REDIS_URL (scripts/test starts both), strace, systemd-analyze. Exit 0 when allowed, 1 if not.
"""
import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def expand(name, seen=None):
    """A filter entry (`@group` or a call) as the set of calls it names, groups expanded recursively."""
    if not name.startswith("@"):
        return {name}
    seen = seen if seen is not None else set()
    if name in seen:
        return set()
    seen.add(name)
    output = subprocess.run(["systemd-analyze", "syscall-filter", "--no-pager", name], check=True,
                            capture_output=True, text=True).stdout
    calls = set()
    for line in output.splitlines()[1:]:
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        calls |= expand(entry, seen)
    return calls


def allowed_calls(unit):
    """The unit's SystemCallFilter= lines, combined as systemd combines them: the first allow list, minus every
    `~` deny list after it."""
    allowed = None
    for line in open(unit):
        match = re.match(r"\s*SystemCallFilter=(~?)(.*)", line)
        if not match:
            continue
        deny, entries = match.group(1) == "~", match.group(2).split()
        calls = set().union(*(expand(entry) for entry in entries))
        if deny:
            assert allowed is not None, "a deny list before any allow list"
            allowed -= calls
        else:
            allowed = calls if allowed is None else allowed | calls
    assert allowed, f"{unit} has no SystemCallFilter="
    return allowed


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(port, path, headers=None, data=None):
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers or {}, data=data)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def traced_run(bin_dir, trace):
    """Everything the service does in a day, in a few seconds, under strace."""
    subprocess.run([f"{bin_dir}/worker", "migrate"], check=True, capture_output=True)
    token = subprocess.run([f"{bin_dir}/worker", "create-token", "--user", "syscall-filter"], check=True,
                           capture_output=True, text=True).stdout.strip().splitlines()[-1]
    port = free_port()
    environment = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}")
    log = open(trace + ".log", "w")
    tracer = subprocess.Popen(["strace", "-f", "-qq", "-o", trace, f"{bin_dir}/supervisor", "--workers", "2",
                               "--bind", f"127.0.0.1:{port}", "--cleanup-schedule", "@every 1s",
                               "--", f"{bin_dir}/worker"], stdout=log, stderr=log, env=environment)
    try:
        deadline = time.time() + 60
        while True:
            try:
                if get(port, "/readyz")[0] == 200:
                    break
            except OSError:
                pass
            if time.time() > deadline or tracer.poll() is not None:
                raise SystemExit(f"syscall_filter: the traced supervisor never served (log: {trace}.log)")
            time.sleep(0.2)
        supervisor = int(subprocess.run(["pgrep", "-P", str(tracer.pid), "-f", "supervisor"], check=True,
                                        capture_output=True, text=True).stdout.split()[0])
        auth = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        for _ in range(20):
            status, body = get(port, "/v1/notes", auth, json.dumps({"title": "traced"}).encode())
            assert status == 201, (status, body)
            get(port, f"/v1/notes/{json.loads(body)['id']}", auth)
            get(port, "/metrics")
        time.sleep(1.5)  # a cleanup run or two
        os.kill(supervisor, signal.SIGHUP)
        deadline = time.time() + 30
        while "rolling restart done" not in open(trace + ".log").read():
            if time.time() > deadline:
                raise SystemExit(f"syscall_filter: the rolling restart did not finish (log: {trace}.log)")
            time.sleep(0.2)
        get(port, "/readyz")
        os.kill(supervisor, signal.SIGTERM)
        tracer.wait(timeout=30)
    finally:
        if tracer.poll() is None:
            tracer.kill()
    if tracer.returncode != 0:
        raise SystemExit(f"syscall_filter: the traced supervisor exited {tracer.returncode} (log: {trace}.log)")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", required=True)
    parser.add_argument("--unit", default=os.path.join(ROOT, "deploy/systemd/prefork-api.service"))
    arguments = parser.parse_args()
    allowed = allowed_calls(arguments.unit)
    with tempfile.TemporaryDirectory() as directory:
        trace = os.path.join(directory, "trace")
        traced_run(os.path.abspath(arguments.bin), trace)
        made = {}
        writable_executable = []
        for line in open(trace):
            match = re.match(r"\d+\s+(?:<\.\.\. )?([a-z0-9_]+)\(", line)
            if match:
                made.setdefault(match.group(1), line.strip())
            if re.search(r"\b(mmap|mprotect|pkey_mprotect)\(.*PROT_WRITE\|PROT_EXEC|PROT_EXEC\|PROT_WRITE", line) \
                    or re.search(r"\bmprotect\(.*PROT_EXEC", line):
                writable_executable.append(line.strip())
    denied = sorted(call for call in made if call not in allowed)
    print(f"syscall_filter: {len(made)} distinct system calls made by the supervisor, its workers and the cleanup; "
          f"{len(allowed)} allowed by {os.path.relpath(arguments.unit, ROOT)}")
    failed = False
    for call in denied:
        print(f"syscall_filter: {call} would fail with EPERM under the unit, e.g. {made[call]}", file=sys.stderr)
        failed = True
    for line in writable_executable[:5]:
        print(f"syscall_filter: MemoryDenyWriteExecute=yes would refuse {line}", file=sys.stderr)
        failed = True
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
