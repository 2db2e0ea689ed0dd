import os
import socket
import tempfile

import pytest


class Manager:
    """A notify socket as the supervisor (or systemd) holds it: what the app sent, one datagram a message."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.setblocking(False)

    def messages(self):
        received = []
        while True:
            try:
                received.append(self.sock.recv(65536).decode())
            except BlockingIOError:
                return received

    def close(self):
        self.sock.close()


@pytest.fixture
def manager(monkeypatch):
    folder = tempfile.mkdtemp(prefix="prefork-asgi-")
    path = os.path.join(folder, "notify.sock")
    m = Manager(path)
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    yield m
    m.close()
    os.unlink(path)
    os.rmdir(folder)
