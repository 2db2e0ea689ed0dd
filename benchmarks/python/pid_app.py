"""The smallest app that says which process answered, for uvicorn (ASGI) and gunicorn (WSGI)."""
import os


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = f"pid {os.getpid()}\n".encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def wsgi(environ, start_response):
    body = f"pid {os.getpid()}\n".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
