"""An ASGI app for the foreign-worker tests under uvicorn and gunicorn: answers every request with its pid.

With ASGI_APP_NOTIFY=1 it sends READY=1 from its lifespan startup, as a notify-aware app does, from whichever
process runs it: behind a shell wrapper that did not exec, that is a child of the supervisor's worker."""
import os
import socket


def notify(message):
    path = os.environ.get("NOTIFY_SOCKET", "")
    if os.environ.get("ASGI_APP_NOTIFY") != "1" or not path.startswith("/"):
        return
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.sendto(message.encode(), path)


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                notify("READY=1")
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    body = f"pid {os.getpid()}\n".encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
