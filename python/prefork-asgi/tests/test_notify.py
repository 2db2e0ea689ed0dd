import os
import socket
import time

from prefork_asgi import notify, watchdog_interval


def test_a_message_is_one_datagram(manager):
    assert notify("READY=1\nSTATUS=pool 10 + 10")
    assert manager.messages() == ["READY=1\nSTATUS=pool 10 + 10"]


def test_an_abstract_socket_is_reached(monkeypatch):
    name = f"prefork-asgi-{os.getpid()}-{time.monotonic_ns()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        assert notify("WATCHDOG=1")
        assert sock.recv(100) == b"WATCHDOG=1"


def test_no_manager_is_not_an_error(monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert not notify("READY=1")
    monkeypatch.setenv("NOTIFY_SOCKET", "relative/path")
    assert not notify("READY=1")
    monkeypatch.setenv("NOTIFY_SOCKET", "/nonexistent/notify.sock")
    assert not notify("READY=1")


def test_a_full_queue_drops_the_message_at_once(manager):
    # Nobody reads: the queue fills (net.unix.max_dgram_qlen), and then a send must fail fast, not block.
    sent = sum(notify("WATCHDOG=1" + "x" * 60000) for _ in range(2000))
    assert sent < 2000
    started = time.monotonic()
    assert not notify("WATCHDOG=1" + "x" * 60000)
    assert time.monotonic() - started < 0.1


def test_the_heartbeat_is_half_of_watchdog_usec_and_only_ours():
    assert watchdog_interval({"WATCHDOG_USEC": "30000000"}) == 15.0
    assert watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}) == 15.0
    assert watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "0"}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "soon"}) is None
    assert watchdog_interval({}) is None


def test_the_heartbeat_interval_is_kept_between_10_ms_and_an_hour():
    assert watchdog_interval({"WATCHDOG_USEC": "1"}) == 0.01
    assert watchdog_interval({"WATCHDOG_USEC": "9" * 400}) == 3600.0
    assert watchdog_interval({"WATCHDOG_USEC": " 30000000 "}) == 15.0
    assert watchdog_interval({"WATCHDOG_USEC": "３０"}) is None
