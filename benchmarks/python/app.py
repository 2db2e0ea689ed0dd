"""The example API service in Python, configured as a typical FastAPI service is: FastAPI, SQLAlchemy's async
engine (asyncpg) with pool_size 10, max_overflow 10, pool_recycle 3600, pool_pre_ping; redis-py with a
pool of 5; the engine disposed, then Redis closed, on shutdown. Same schema, same token hashing, same
one-round-trip auth cache + rate limit as the Swift worker, so scripts/bench api compares like with like.

Run: DATABASE_URL=postgresql://... REDIS_URL=redis://... uvicorn app:app --workers 4
Under the supervisor (docs/guides/uvicorn.md): supervisor --workers 4 -- uvicorn app:app --fd 3
It speaks sd_notify through the prefork-asgi helper (python/prefork-asgi): READY=1 once its pools answer,
WATCHDOG=1 from its event loop, STOPPING=1 on shutdown; its pool size is the one the supervisor chose
(DB_POOL_SIZE, DB_MAX_OVERFLOW). Without NOTIFY_SOCKET (plain uvicorn, or --no-notify) the messages are no-ops.
REDIS_POOL_BLOCKING=0 gives redis-py's default pool, which raises instead of waiting when all 5 are busy;
the default here waits, as the Swift worker does.
"""
import asyncio
import hashlib
import os
import time
from contextlib import asynccontextmanager

import redis.asyncio as redis
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from prefork_asgi import Prefork, pool_settings

DATABASE_URL = os.environ["DATABASE_URL"].replace("postgresql://", "postgresql+asyncpg://", 1)
REDIS_URL = os.environ["REDIS_URL"]
RATE_LIMIT = int(os.environ.get("RATE_LIMIT_PER_MINUTE", "1000"))
AUTH_CACHE_TTL = int(os.environ.get("AUTH_CACHE_TTL", "60"))

engine = create_async_engine(
    DATABASE_URL,
    echo=False,
    pool_pre_ping=True,
    **pool_settings(),
    pool_recycle=int(os.environ.get("DB_POOL_RECYCLE", "3600")),
    # How pg_stat_activity tells this pool apart, as the Swift worker's DB_APPLICATION_NAME does.
    connect_args={"server_settings": {"application_name": os.environ.get("DB_APPLICATION_NAME", "api-python")}},
)
pool_size = int(os.environ.get("REDIS_POOL_SIZE", "5"))
# The Swift worker's REDIS_SOCKET_TIMEOUT and REDIS_CONNECT_TIMEOUT (2 s): a Redis that hangs fails a call
# instead of hanging the request.
redis_timeouts = {"socket_timeout": float(os.environ.get("REDIS_SOCKET_TIMEOUT", "2")),
                  "socket_connect_timeout": float(os.environ.get("REDIS_CONNECT_TIMEOUT", "2"))}
if os.environ.get("REDIS_POOL_BLOCKING", "1") == "1":
    redis_pool = redis.BlockingConnectionPool.from_url(REDIS_URL, max_connections=pool_size, timeout=5, **redis_timeouts)
else:
    redis_pool = redis.ConnectionPool.from_url(REDIS_URL, max_connections=pool_size, **redis_timeouts)
redis_client = redis.Redis(connection_pool=redis_pool)


@asynccontextmanager
async def lifespan(app):
    # Ready only once Postgres answers: a version that cannot reach its database never completes its startup, so
    # the helper never says READY=1, and a rolling restart to it stops with the old workers serving. Redis is not
    # required (requests fall back).
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
    yield
    await engine.dispose()
    await redis_client.aclose()


api = FastAPI(lifespan=lifespan)
# READY=1 after the startup above, WATCHDOG=1 from the event loop, STOPPING=1 when shutdown begins.
app = Prefork(api, status=f"pool {engine.pool.size()} + overflow {engine.pool._max_overflow}")


@api.get("/healthz")
async def healthz():
    return {"status": "ok", "pid": os.getpid()}


@api.get("/readyz")
async def readyz():
    """Ready while Postgres answers; Redis down is reported as degraded, not as unready."""
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
    try:
        redis_ok = bool(await asyncio.wait_for(redis_client.ping(), 2))
    except Exception:
        redis_ok = False
    return {"status": "ready" if redis_ok else "degraded", "pid": os.getpid(),
            "pool_size": engine.pool.size(), "max_overflow": engine.pool._max_overflow}


async def user_from_postgres(token_hash: str) -> int:
    async with engine.connect() as conn:
        row = (await conn.execute(text(
            "SELECT user_id FROM api_tokens WHERE token_hash = :h AND (expires_at IS NULL OR expires_at > now())"
        ), {"h": token_hash})).first()
    if row is None:
        raise HTTPException(401, "unknown or expired token")
    return row[0]


async def cache_quietly(key: str, value: str, seconds: int) -> None:
    try:
        await redis_client.set(key, value, ex=seconds)
    except (redis.RedisError, OSError):
        pass


async def authenticate(request: Request) -> int:
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("bearer "):
        raise HTTPException(401, "missing bearer token")
    token_hash = hashlib.sha256(header[7:].strip().encode()).hexdigest()
    now = int(time.time())
    window = now - now % 60
    key = f"rl:{token_hash[:32]}:{window // 60}"
    try:
        async with redis_client.pipeline(transaction=False) as pipe:
            pipe.get("auth:" + token_hash)
            pipe.incr(key)
            pipe.expire(key, 65)
            cached, count, _ = await pipe.execute()
    except (redis.RedisError, OSError):
        # As the Swift worker does: without Redis, authenticate through Postgres, no rate limit (fails open).
        return await user_from_postgres(token_hash)
    if cached == b"-":
        raise HTTPException(401, "unknown or expired token")
    if cached is not None:
        user = int(cached)
    else:
        try:
            user = await user_from_postgres(token_hash)
        except HTTPException:
            await cache_quietly("auth:" + token_hash, "-", 10)
            raise
        await cache_quietly("auth:" + token_hash, str(user), AUTH_CACHE_TTL)
    if RATE_LIMIT > 0 and count > RATE_LIMIT:
        raise HTTPException(429, "rate limited", headers={"Retry-After": str(window + 60 - now)})
    return user


@api.get("/v1/notes/{note_id}")
async def get_note(note_id: int, request: Request):
    user = await authenticate(request)
    async with engine.connect() as conn:
        row = (await conn.execute(text(
            "SELECT id, title, body, created_at, updated_at FROM notes "
            "WHERE id = :id AND user_id = :user AND deleted_at IS NULL"
        ), {"id": note_id, "user": user})).first()
    if row is None:
        return JSONResponse({"error": "not_found", "message": "no such note"}, status_code=404)
    return {"id": row.id, "title": row.title, "body": row.body,
            "created_at": row.created_at.isoformat(), "updated_at": row.updated_at.isoformat()}
