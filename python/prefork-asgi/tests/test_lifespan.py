import asyncio

from prefork_asgi import Prefork


def lifespan_app(events, fail_startup=False):
    """A plain ASGI app with a lifespan, as FastAPI runs one."""

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    events.append("startup")
                    if fail_startup:
                        await send({"type": "lifespan.startup.failed", "message": "no database"})
                        return
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    events.append("shutdown")
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        elif scope["type"] == "http":
            events.append("request")
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})

    return app


async def run_lifespan(app, between):
    """Drives a lifespan as uvicorn does: startup, then `between()`, then shutdown."""
    inbox = asyncio.Queue()
    sent = []

    async def receive():
        return await inbox.get()

    async def send(message):
        sent.append(message["type"])

    task = asyncio.get_running_loop().create_task(app({"type": "lifespan"}, receive, send))
    await inbox.put({"type": "lifespan.startup"})
    for _ in range(100):
        if sent:
            break
        await asyncio.sleep(0.01)
    if sent == ["lifespan.startup.complete"]:
        await between()
        await inbox.put({"type": "lifespan.shutdown"})
    await asyncio.wait_for(task, 5)
    return sent


def test_ready_after_startup_heartbeats_then_stopping(manager, monkeypatch):
    monkeypatch.setenv("WATCHDOG_USEC", "100000")  # a beat every 50 ms
    events = []
    app = Prefork(lifespan_app(events), status="pool 10 + 10")
    sent = asyncio.run(run_lifespan(app, lambda: asyncio.sleep(0.3)))
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert events == ["startup", "shutdown"]
    messages = manager.messages()
    assert messages[0] == "READY=1\nSTATUS=pool 10 + 10"
    assert messages[-1] == "STOPPING=1"
    beats = messages[1:-1]
    assert set(beats) == {"WATCHDOG=1"} and 4 <= len(beats) <= 8, messages


def test_a_failed_startup_never_says_ready(manager):
    sent = asyncio.run(run_lifespan(Prefork(lifespan_app([], fail_startup=True)), lambda: asyncio.sleep(0)))
    assert sent == ["lifespan.startup.failed"]
    assert manager.messages() == []


def test_no_heartbeat_unless_asked(manager):
    asyncio.run(run_lifespan(Prefork(lifespan_app([])), lambda: asyncio.sleep(0.2)))
    assert manager.messages() == ["READY=1", "STOPPING=1"]


def test_a_hung_event_loop_stops_the_heartbeat(manager, monkeypatch):
    import time

    monkeypatch.setenv("WATCHDOG_USEC", "100000")

    async def hang():
        await asyncio.sleep(0.12)
        manager.messages()  # forget the beats so far
        time.sleep(0.4)  # a request that blocks the loop

    asyncio.run(run_lifespan(Prefork(lifespan_app([])), hang))
    after = manager.messages()
    # While the loop was blocked nothing was sent; after it, at most the one beat that was due, then STOPPING.
    assert after[-1] == "STOPPING=1" and after.count("WATCHDOG=1") <= 1, after


def test_requests_pass_through_untouched(manager):
    events = []
    app = Prefork(lifespan_app(events))
    sent = []

    async def receive():
        return {"type": "http.request", "body": b""}

    async def send(message):
        sent.append(message["type"])

    asyncio.run(app({"type": "http"}, receive, send))
    assert events == ["request"] and sent == ["http.response.start", "http.response.body"]
    assert manager.messages() == []
