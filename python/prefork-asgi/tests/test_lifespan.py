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
    assert messages[0] == "READY=1\nWATCHDOG=1\nSTATUS=pool 10 + 10"
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


def test_ready_is_sent_again_until_a_full_queue_takes_it(manager):
    import socket

    filler = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_NONBLOCK)
    queued = 0
    try:
        while True:
            filler.sendto(b"WATCHDOG=1", manager.path)
            queued += 1
    except BlockingIOError:
        pass
    filler.close()
    seen = []

    async def drain_later():
        await asyncio.sleep(0.2)  # READY=1 found the queue full and waits
        for _ in range(100):
            seen.extend(manager.messages())
            if "READY=1" in seen:
                return
            await asyncio.sleep(0.02)

    asyncio.run(run_lifespan(Prefork(lifespan_app([])), drain_later))
    assert queued >= 1 and "READY=1" in seen, (queued, seen)
    assert seen.index("READY=1") == queued, "READY=1 came before the queue was drained"


def test_the_heartbeat_goes_on_through_the_shutdown(manager, monkeypatch):
    monkeypatch.setenv("WATCHDOG_USEC", "100000")  # a beat every 50 ms

    async def app(scope, receive, send):
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await asyncio.sleep(0.3)  # disposing pools
                await send({"type": "lifespan.shutdown.complete"})
                return

    asyncio.run(run_lifespan(Prefork(app), lambda: asyncio.sleep(0.1)))
    messages = manager.messages()
    after_stopping = messages[messages.index("STOPPING=1") + 1:]
    assert after_stopping.count("WATCHDOG=1") >= 3, messages


def test_an_app_that_returns_after_its_startup_keeps_its_heartbeat_and_gets_its_shutdown(manager, monkeypatch):
    monkeypatch.setenv("WATCHDOG_USEC", "100000")

    async def app(scope, receive, send):
        await receive()
        await send({"type": "lifespan.startup.complete"})  # and returns: uvicorn accepts that

    sent = asyncio.run(run_lifespan(Prefork(app), lambda: asyncio.sleep(0.3)))
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    messages = manager.messages()
    assert messages[0] == "READY=1\nWATCHDOG=1" and messages[-1] == "STOPPING=1" and messages.count("WATCHDOG=1") >= 4, messages


def test_an_app_without_a_lifespan_is_ready_once_served(manager, caplog):
    async def http_only(scope, receive, send):
        assert scope["type"] == "http"

    async def ignores(scope, receive, send):
        return

    for app in (http_only, ignores):
        with caplog.at_level("WARNING", logger="prefork_asgi"):
            sent = asyncio.run(run_lifespan(Prefork(app), lambda: asyncio.sleep(0)))
        assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"], app
        assert manager.messages() == ["READY=1", "STOPPING=1"], app
        assert "does not run the ASGI lifespan" in caplog.text
        caplog.clear()


def test_a_startup_that_raises_is_a_failed_startup(manager):
    async def app(scope, receive, send):
        await receive()
        raise RuntimeError("no database")

    sent = asyncio.run(run_lifespan(Prefork(app), lambda: asyncio.sleep(0)))
    assert sent == ["lifespan.startup.failed"]
    assert manager.messages() == []


def test_no_heartbeat_for_another_process_and_a_warning(manager, monkeypatch, caplog):
    monkeypatch.setenv("WATCHDOG_USEC", "100000")
    monkeypatch.setenv("WATCHDOG_PID", "1")
    with caplog.at_level("WARNING", logger="prefork_asgi"):
        asyncio.run(run_lifespan(Prefork(lifespan_app([])), lambda: asyncio.sleep(0.2)))
    assert manager.messages() == ["READY=1", "STOPPING=1"]
    assert "WATCHDOG_PID is 1" in caplog.text


def test_the_wrapper_is_the_app_for_everything_else(manager):
    class App:
        state = "the app's state"

        def include_router(self, router):
            return f"included {router}"

        async def __call__(self, scope, receive, send):
            pass

    app = Prefork(App())
    assert app.state == "the app's state" and app.include_router("r") == "included r"


def test_a_status_is_one_line_and_bounded(manager):
    app = Prefork(lifespan_app([]), status="pool 1\nWATCHDOG=trigger \ud800" + "x" * 5000)
    asyncio.run(run_lifespan(app, lambda: asyncio.sleep(0)))
    ready = manager.messages()[0]
    assert ready.startswith("READY=1\nSTATUS=pool 1 WATCHDOG=trigger ?") and ready.count("\n") == 1
    assert len(ready) <= len("READY=1\nSTATUS=") + 1024
