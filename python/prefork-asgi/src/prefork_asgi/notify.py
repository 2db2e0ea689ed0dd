"""sd_notify(3), written out: one datagram to $NOTIFY_SOCKET, never blocking the caller."""
import errno
import os
import socket
from typing import Mapping, Optional

# What one attempt to send came to.
SENT = "sent"
ABSENT = "absent"  # no manager: NOTIFY_SOCKET unset or not a socket address
BUSY = "busy"  # the manager's queue is full: the same message may fit a moment later
REFUSED = "refused"  # nothing listens there, or the message cannot be sent at all

# The longest heartbeat interval used, and the shortest: a WATCHDOG_USEC of days is honoured by beating every hour,
# one of microseconds by beating every 10 ms rather than flooding the manager's queue, which every worker shares.
LONGEST_INTERVAL = 3600.0
SHORTEST_INTERVAL = 0.01


def send(message: str, environ: Optional[Mapping[str, str]] = None) -> str:
    """One attempt to send `message`; SENT, ABSENT, BUSY or REFUSED."""
    path = (environ if environ is not None else os.environ).get("NOTIFY_SOCKET", "")
    if not path.startswith(("/", "@")) or path == "@":
        return ABSENT
    address = "\0" + path[1:] if path.startswith("@") else path
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC) as sock:
            sock.sendto(message.encode("utf-8", "replace"), address)
        return SENT
    except OSError as error:
        return BUSY if error.errno in (errno.EAGAIN, errno.EWOULDBLOCK, errno.ENOBUFS) else REFUSED
    except ValueError:  # a NUL in the path
        return REFUSED


def notify(message: str, environ: Optional[Mapping[str, str]] = None) -> bool:
    """Sends `message` (`READY=1`, `WATCHDOG=1`, `STOPPING=1`, `STATUS=...`, several joined by newlines) to the
    manager. True when it was sent; False when there is no manager, or its queue is full.

    Non-blocking on purpose: a datagram queue holds only `net.unix.max_dgram_qlen` messages (often 10, shared by
    every worker), and a blocking send would freeze the event loop, and every request on it, until the manager
    reads again. `Prefork` retries the messages that are said once (READY, STOPPING); a heartbeat that does not
    fit is dropped, and the next one follows."""
    return send(message, environ) == SENT


def watchdog_usec(environ: Optional[Mapping[str, str]] = None) -> Optional[int]:
    """`WATCHDOG_USEC` as a positive number, or None when it is unset or not one."""
    text = (environ if environ is not None else os.environ).get("WATCHDOG_USEC", "").strip()
    if not text.isascii() or not text.isdigit():
        return None
    value = int(text)
    return value if value > 0 else None


def watchdog_interval(environ: Optional[Mapping[str, str]] = None) -> Optional[float]:
    """Seconds between two `WATCHDOG=1`: half of `WATCHDOG_USEC`, as sd_watchdog_enabled(3) advises (kept between
    10 ms and an hour); None when the manager asks for no heartbeat, or asks another process (`WATCHDOG_PID`)."""
    env = environ if environ is not None else os.environ
    microseconds = watchdog_usec(env)
    if microseconds is None:
        return None
    pid = env.get("WATCHDOG_PID")
    if pid and pid != str(os.getpid()):
        return None
    seconds = min(microseconds, int(LONGEST_INTERVAL * 2_000_000)) / 2_000_000  # no float overflow on a huge value
    return max(seconds, SHORTEST_INTERVAL)
