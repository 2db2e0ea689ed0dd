"""Workers whose process trees a process group alone cannot hold, for the supervisor's process-tree tests.

  setsid-child   the worker forks a child that calls setsid() (its own session and group) and forks the server;
                 a signal to the worker's group never reaches the server, which is found once re-parented.
  daemon-helper  the worker serves, and double-forks a helper daemon (setsid, the middle process exits at once):
                 the helper is re-parented to the supervisor while the worker still runs.
  ignore-term    the worker and the child that serves both ignore SIGTERM: only SIGKILL ends them.
  chain N        N levels below the worker, each in a session of its own and ignoring SIGTERM, the last serving:
                 re-parented one level at a time as each dies.

Every process here says READY=1 from the worker (the supervisor's child), serves HTTP on the inherited fd 3, and
answers with its pid."""
import os
import signal
import socket
import sys
import time

from fd3_server import serve  # beside this file: HTTP on the inherited fd 3


def notify(message):
    path = os.environ.get("NOTIFY_SOCKET", "")
    if path.startswith("/"):
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.sendto(message.encode(), path)


def wait_forever():
    while True:
        try:
            os.wait()
        except ChildProcessError:
            time.sleep(3600)


mode = sys.argv[1]
if mode == "setsid-child":
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            serve()
        wait_forever()
    notify("READY=1")
    wait_forever()
elif mode == "daemon-helper":
    helper = os.fork()
    if helper == 0:
        os.setsid()
        if os.fork() == 0:
            os.closerange(3, 4)
            while True:
                time.sleep(3600)
        os._exit(0)
    os.waitpid(helper, 0)
    notify("READY=1")
    serve()
elif mode == "ignore-term":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if os.fork() == 0:
        serve()
    notify("READY=1")
    wait_forever()
elif mode == "chain":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    for level in range(int(sys.argv[2])):
        if os.fork() != 0:
            if level == 0:
                notify("READY=1")
            wait_forever()
        os.setsid()
    serve()
else:
    sys.exit(f"tree_worker.py: unknown mode {mode}")
