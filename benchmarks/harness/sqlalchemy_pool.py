"""SQLAlchemy's async engine (asyncpg) with the same pool settings: the Python stack's pooled SELECT 1."""
import asyncio
import os
import sys
import time

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

SECONDS = float(os.environ.get("BENCH_SECONDS", "2"))


async def measure(engine, tasks):
    deadline = time.monotonic() + SECONDS

    async def loop():
        count = 0
        while time.monotonic() < deadline:
            for _ in range(16):
                async with engine.connect() as connection:
                    await connection.execute(text("SELECT 1"))
            count += 16
        return count

    started = time.monotonic()
    total = sum(await asyncio.gather(*(loop() for _ in range(tasks))))
    return total / (time.monotonic() - started)


async def main(url):
    engine = create_async_engine(url.replace("postgresql://", "postgresql+asyncpg://", 1), pool_size=10,
                                 max_overflow=10, pool_recycle=3600, pool_pre_ping=True, pool_timeout=30)
    await measure(engine, 20)  # warm up: open the connections
    for tasks in (1, 64):
        ops = await measure(engine, tasks)
        print(f"sqlalchemy_select1_{tasks}_task{'s' if tasks > 1 else ''} {ops:.0f} ops/s {1e6 / ops:.2f} us/op")
    await engine.dispose()


asyncio.run(main(sys.argv[1]))
