"""The pool size the supervisor's connection budget chose for this worker."""
import os
from typing import Dict, Mapping, Optional


class PoolSettingError(ValueError):
    """A pool variable the app cannot use; the message names it."""


def pool_settings(environ: Optional[Mapping[str, str]] = None, *, size: int = 10, overflow: int = 10) -> Dict[str, int]:
    """`{"pool_size": ..., "max_overflow": ...}` for SQLAlchemy's `create_engine` / `create_async_engine`, from
    `DB_POOL_SIZE` and `DB_MAX_OVERFLOW`: the variables the supervisor's budget counts, and sets for each worker
    (with `DB_POOL_SIZE=auto`, the largest pool that fits). `size` and `overflow` when they are unset; the
    supervisor's defaults are 10 and 10. `DB_POOL_SIZE=0` (only overflow connections) becomes a pool of that many
    with no overflow: SQLAlchemy reads `pool_size=0` as no limit."""
    env = environ if environ is not None else os.environ
    pool_size, max_overflow = _count(env, "DB_POOL_SIZE", size), _count(env, "DB_MAX_OVERFLOW", overflow)
    if pool_size == 0:
        # To the supervisor's budget (and this project's pools) 0 persistent means only the overflow, closed when
        # returned; to SQLAlchemy pool_size=0 means no limit at all. The same ceiling, kept open instead:
        if max_overflow == 0:
            raise PoolSettingError("DB_POOL_SIZE=0 and DB_MAX_OVERFLOW=0: a pool of no connections")
        pool_size, max_overflow = max_overflow, 0
    return {"pool_size": pool_size, "max_overflow": max_overflow}


def _count(env: Mapping[str, str], name: str, default: int) -> int:
    text = env.get(name, "").strip()
    if not text:
        return default
    if text == "auto":
        raise PoolSettingError(f"{name}=auto is worked out by the supervisor; run under it, or set a number")
    if not text.isdigit() or not text.isascii():
        raise PoolSettingError(f"{name}: expected a whole number, got {text!r}")
    return int(text)
