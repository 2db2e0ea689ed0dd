"""sd_notify(3), written out: one datagram to $NOTIFY_SOCKET, never blocking the caller."""
import os
import socket
from typing import Mapping, Optional


def notify(message: str, environ: Optional[Mapping[str, str]] = None) -> bool:
    """Sends `message` (`READY=1`, `WATCHDOG=1`, `STOPPING=1`, `STATUS=...`, several joined by newlines) to the
    manager. True when it was sent; False when there is no manager, or its queue is full.

    Non-blocking on purpose: a datagram queue holds only `net.unix.max_dgram_qlen` messages (often 10, shared by
    every worker), and a blocking send would freeze the event loop, and every request on it, until the manager
    reads again. A heartbeat that does not fit is dropped; the next one follows."""
    path = (environ if environ is not None else os.environ).get("NOTIFY_SOCKET", "")
    if not path.startswith(("/", "@")):
        return False
    address = "\0" + path[1:] if path.startswith("@") else path
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC) as sock:
            sock.sendto(message.encode(), address)
        return True
    except OSError:
        return False


def watchdog_interval(environ: Optional[Mapping[str, str]] = None) -> Optional[float]:
    """Seconds between two `WATCHDOG=1`: half of `WATCHDOG_USEC`, as sd_watchdog_enabled(3) advises; None when the
    manager asks for no heartbeat, or asks another process (`WATCHDOG_PID`)."""
    env = environ if environ is not None else os.environ
    try:
        microseconds = int(env.get("WATCHDOG_USEC", "") or 0)
    except ValueError:
        return None
    if microseconds <= 0:
        return None
    pid = env.get("WATCHDOG_PID")
    if pid and pid != str(os.getpid()):
        return None
    return microseconds / 2_000_000
