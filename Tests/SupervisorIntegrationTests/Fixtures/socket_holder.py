"""Plays systemd's socket unit: holds a listening socket (Backlog=2048) across two runs of a socket-activated
supervisor (fd 3, LISTEN_FDS=1, LISTEN_PID=<its pid>), as systemd does across `systemctl restart`.

  python3 socket_holder.py SUPERVISOR WORKER      prints one JSON object with what it saw

Between the runs it checks the socket as the next instance will find it: its backlog, and whether a client can
still connect and send a request (which the second run must then answer).
"""
import json
import os
import signal
import socket
import subprocess
import sys
import time

supervisor, worker = sys.argv[1], sys.argv[2]
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(2048)
port = listener.getsockname()[1]


def backlog():
    lines = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True).stdout.split("\n")
    return int(lines[0].split()[2]) if lines and lines[0].strip() else -1


def answered(client):
    client.settimeout(10)
    try:
        return client.recv(100).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


started = []


def run(log):
    open(log, "w").close()
    pid = os.fork()
    if pid == 0:
        os.dup2(listener.fileno(), 3)
        os.set_inheritable(3, True)
        fd = os.open(log, os.O_WRONLY | os.O_TRUNC)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.dup2(os.open("/dev/null", os.O_RDONLY), 0)
        os.closerange(4, 1024)
        env = dict(os.environ, LISTEN_FDS="1", LISTEN_PID=str(os.getpid()), LISTEN_FDNAMES="http")
        os.execve(supervisor, ["supervisor", "--workers", "2", "--no-cleanup", "--control-socket", "none", "--", worker], env)
    started.append(pid)
    deadline = time.time() + 20
    while time.time() < deadline and "all 2 workers ready" not in open(log).read():
        time.sleep(0.05)
    return pid


result = {"backlog_before": backlog()}
log = f"/tmp/socket-holder-{os.getpid()}.log"
try:
    first = run(log)
    os.kill(first, signal.SIGTERM)
    _, status = os.waitpid(first, 0)
    result["first_exit"] = os.waitstatus_to_exitcode(status)
    result["first_log"] = open(log).read()[-2000:]
    result["backlog_between"] = backlog()
    # A client during the restart: systemd's queue holds it for the next instance.
    try:
        waiting = socket.create_connection(("127.0.0.1", port), timeout=2)
        waiting.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    except OSError:
        waiting = None  # the filter the stop left on the socket drops every connection
    second = run(log)
    result["waiting_client_answered"] = waiting is not None and answered(waiting)
    result["backlog_second_run"] = backlog()
    os.kill(second, signal.SIGTERM)
    _, status = os.waitpid(second, 0)
    result["second_exit"] = os.waitstatus_to_exitcode(status)
    result["backlog_after"] = backlog()
finally:
    for pid in started:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    os.unlink(log)
print(json.dumps(result))
