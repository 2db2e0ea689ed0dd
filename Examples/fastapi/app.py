"""A FastAPI app as you would put it under the supervisor: `Prefork(...)` says when each worker is ready, keeps
its heartbeat and says when it stops; `pool_settings()` is the pool size the supervisor's budget counts (this
app opens no database, it only shows the numbers)."""
import asyncio
import os
from contextlib import asynccontextmanager

from fastapi import FastAPI, Query
from prefork_asgi import Prefork, pool_settings

POOL = pool_settings()  # {"pool_size": ..., "max_overflow": ...}: hand it to create_async_engine(url, **POOL)


@asynccontextmanager
async def lifespan(app):
    # Open pools and check the database here: READY=1 goes out when this returns, so a version that cannot
    # start never replaces a working one.
    yield
    # Dispose pools here: it runs within the supervisor's graceful timeout.


api = FastAPI(lifespan=lifespan)


@api.get("/")
async def root():
    return {"pid": os.getpid(), "pool": POOL}


@api.get("/health")
async def health():
    return {"ok": True}


@api.get("/slow")
async def slow(seconds: float = Query(2.0, ge=0, le=30, allow_inf_nan=False)):
    """A request that is still running when a deploy stops the container: it is answered before the worker exits."""
    await asyncio.sleep(seconds)
    return {"pid": os.getpid(), "slept": seconds}


app = Prefork(api)
