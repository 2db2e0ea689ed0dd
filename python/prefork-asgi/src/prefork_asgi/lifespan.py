"""The ASGI wrapper: follows the app's lifespan and speaks for it to the manager."""
import asyncio
from typing import Any, Awaitable, Callable, Dict, Optional

from .notify import notify, watchdog_interval

Scope = Dict[str, Any]
Message = Dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class Prefork:
    """Wraps an ASGI app. Once the app's lifespan startup has completed it sends `READY=1` (with `status` as
    `STATUS=`), then `WATCHDOG=1` every half of `WATCHDOG_USEC` from the event loop; when shutdown begins it sends
    `STOPPING=1` and stops the heartbeat. Requests pass through untouched.

    The app must run its lifespan (FastAPI and Starlette do; uvicorn's `--lifespan auto` or `on`): without one,
    nothing would say when it is ready."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], *, status: Optional[str] = None):
        self.app = app
        self.status = status
        self._heartbeat: Optional["asyncio.Task[None]"] = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return

        async def receive_message() -> Message:
            message = await receive()
            if message["type"] == "lifespan.shutdown":
                self._stopping()
            return message

        async def send_message(message: Message) -> None:
            await send(message)
            if message["type"] == "lifespan.startup.complete":
                self._ready()

        try:
            await self.app(scope, receive_message, send_message)
        finally:
            self._stop_heartbeat()

    def _ready(self) -> None:
        notify("READY=1" + (f"\nSTATUS={self.status}" if self.status else ""))
        interval = watchdog_interval()
        if interval is not None and self._heartbeat is None:
            self._heartbeat = asyncio.get_running_loop().create_task(self._beat(interval))

    def _stopping(self) -> None:
        notify("STOPPING=1")
        self._stop_heartbeat()

    def _stop_heartbeat(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            self._heartbeat = None

    @staticmethod
    async def _beat(interval: float) -> None:
        # From the event loop itself: a loop blocked by a stuck request stops beating, and the supervisor
        # replaces the worker.
        while True:
            notify("WATCHDOG=1")
            await asyncio.sleep(interval)
