"""The ASGI wrapper: follows the app's lifespan and speaks for it to the manager."""
import asyncio
import logging
import os
from typing import Any, Awaitable, Callable, Dict, Optional, Set

from .notify import ABSENT, BUSY, REFUSED, SENT, send, watchdog_interval, watchdog_usec

Scope = Dict[str, Any]
Message = Dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

logger = logging.getLogger("prefork_asgi")

# A STATUS= longer than this is cut: a datagram past the socket's limit would take READY=1 down with it.
STATUS_LIMIT = 1024


class _Lifespan:
    """What the app did of its lifespan so far."""

    def __init__(self) -> None:
        self.received: Set[str] = set()
        self.sent: Set[str] = set()


class Prefork:
    """Wraps an ASGI app. Once the app's lifespan startup has completed it sends `READY=1` (with `status` as
    `STATUS=`), then `WATCHDOG=1` every half of `WATCHDOG_USEC` from the event loop; when shutdown begins it sends
    `STOPPING=1`, and the heartbeat goes on until the app's shutdown has run. Requests pass through untouched, and
    every other attribute is the app's (`app.include_router`, `app.state`).

    READY and STOPPING are said once, so they are sent again until the manager's queue takes them: a READY lost to
    a full queue would leave a worker that started counted as booting, and killed at the boot timeout.

    An app that takes no part in the lifespan (it raises or returns on the lifespan scope without reading a
    message) is ready as soon as uvicorn runs it: the wrapper answers the lifespan for it, and warns once. An app
    whose startup raises instead of sending `lifespan.startup.failed` gets that sent for it, so uvicorn exits and
    the manager never counts the worker as ready."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], *, status: Optional[str] = None):
        self.app = app
        self.status = _clean_status(status)
        self._heartbeat: Optional["asyncio.Task[None]"] = None
        self._deliveries: Set["asyncio.Task[None]"] = set()
        self._warned: Set[str] = set()

    def __getattr__(self, name: str) -> Any:
        # Only for what the wrapper itself does not have: the app's routes, state, routers.
        app = self.__dict__.get("app")
        if app is None:
            raise AttributeError(name)
        return getattr(app, name)

    async def __call__(self, scope: Scope, receive: Receive, send_: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send_)
            return
        lifespan = _Lifespan()

        async def receive_message() -> Message:
            message = await receive()
            lifespan.received.add(message["type"])
            if message["type"] == "lifespan.shutdown":
                self._deliver("STOPPING=1")
            return message

        async def send_message(message: Message) -> None:
            await send_(message)
            lifespan.sent.add(message["type"])
            if message["type"] == "lifespan.startup.complete":
                self._ready()
            elif message["type"] in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
                self._stop_heartbeat()

        try:
            await self.app(scope, receive_message, send_message)
        except Exception as error:
            if not lifespan.received:
                self._warn_once("no-lifespan", "the app does not run the ASGI lifespan (%r on the lifespan scope): "
                                "prefork-asgi answers it, and the worker is ready as soon as uvicorn serves", error)
                await self._finish(lifespan, receive_message, send_message)
                return
            if "lifespan.startup.complete" not in lifespan.sent and "lifespan.startup.failed" not in lifespan.sent:
                # uvicorn's --lifespan auto would take an exception here for "lifespan unsupported" and serve an
                # app whose startup failed; startup.failed makes it exit, and the manager sees a failed boot.
                logger.error("the app's lifespan startup raised: no READY=1, uvicorn exits", exc_info=error)
                await send_message({"type": "lifespan.startup.failed", "message": f"{type(error).__name__}: {error}"})
                return
            raise
        if "lifespan.startup.failed" not in lifespan.sent:
            # An app that returned without finishing its part: it ignores the lifespan, or it stopped reading
            # after its startup. uvicorn serves it either way, so the wrapper finishes the exchange.
            if not lifespan.received:
                self._warn_once("no-lifespan", "the app does not run the ASGI lifespan: prefork-asgi answers it, "
                                "and the worker is ready as soon as uvicorn serves")
            await self._finish(lifespan, receive_message, send_message)

    async def _finish(self, lifespan: _Lifespan, receive: Receive, send_: Send) -> None:
        """The rest of the lifespan exchange, for an app that left it: startup, READY, shutdown, STOPPING."""
        if "lifespan.startup" not in lifespan.received:
            await receive()
        if "lifespan.startup.complete" not in lifespan.sent:
            await send_({"type": "lifespan.startup.complete"})
        if "lifespan.shutdown" not in lifespan.received:
            await receive()
        if not lifespan.sent & {"lifespan.shutdown.complete", "lifespan.shutdown.failed"}:
            await send_({"type": "lifespan.shutdown.complete"})

    def _ready(self) -> None:
        # The first heartbeat rides in READY's datagram: it arms the manager's heartbeat timeout from READY on (a
        # loop that hangs at once is caught) and takes one place in the manager's queue, not two.
        beats = watchdog_interval() is not None and _running_loop() is not None
        message = "READY=1" + ("\nWATCHDOG=1" if beats else "") + (f"\nSTATUS={self.status}" if self.status else "")
        self._deliver(message, then=self._start_heartbeat)

    def _start_heartbeat(self) -> None:
        interval = watchdog_interval()
        if interval is None:
            pid = os.environ.get("WATCHDOG_PID")
            if watchdog_usec() is not None and pid and pid != str(os.getpid()):
                self._warn_once("watchdog-pid", "WATCHDOG_PID is %s, not this process (%s): no heartbeat, as systemd "
                                "defines it. Start the server with exec from a wrapper script, and run one uvicorn "
                                "process per worker (no --workers, no --reload)", pid, os.getpid())
            return
        loop = _running_loop()
        if loop is None:
            self._warn_once("no-loop", "no asyncio event loop (trio?): no heartbeat")
            return
        if self._heartbeat is None:
            self._heartbeat = loop.create_task(self._beat(interval))

    def _stop_heartbeat(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            self._heartbeat = None

    def _deliver(self, message: str, then: Optional[Callable[[], None]] = None) -> None:
        """Sends a message that is said once; while the manager's queue is full, again every 10 ms to 1 s."""
        outcome = send(message)
        if outcome == BUSY:
            loop = _running_loop()
            if loop is not None:
                task = loop.create_task(self._retry(message, then))
                self._deliveries.add(task)
                task.add_done_callback(self._deliveries.discard)
                return
        self._after(message, outcome)
        if then is not None and outcome in (SENT, ABSENT):
            then()

    async def _retry(self, message: str, then: Optional[Callable[[], None]]) -> None:
        delay = 0.01
        outcome = BUSY
        while outcome == BUSY:
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)
            outcome = send(message)
        self._after(message, outcome)
        if then is not None and outcome == SENT:
            then()

    def _after(self, message: str, outcome: str) -> None:
        if outcome == REFUSED:
            self._warn_once("refused", "cannot send %r to NOTIFY_SOCKET=%s: nothing listens there, or the message "
                            "cannot be sent", message.split("\n", 1)[0], os.environ.get("NOTIFY_SOCKET"))

    def _warn_once(self, key: str, text: str, *arguments: Any) -> None:
        if key not in self._warned:
            self._warned.add(key)
            logger.warning("prefork-asgi: " + text, *arguments)

    @staticmethod
    async def _beat(interval: float) -> None:
        # From the event loop itself: a loop blocked by a stuck request stops beating, and the supervisor
        # replaces the worker. The first one went out with READY=1.
        while True:
            await asyncio.sleep(interval)
            send("WATCHDOG=1")


def _running_loop() -> Optional[asyncio.AbstractEventLoop]:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _clean_status(status: Optional[str]) -> Optional[str]:
    """One line (a newline would add keys of its own to the message), at most STATUS_LIMIT characters."""
    if status is None:
        return None
    line = " ".join(status.splitlines())
    return line.encode("utf-8", "replace").decode("utf-8")[:STATUS_LIMIT]
