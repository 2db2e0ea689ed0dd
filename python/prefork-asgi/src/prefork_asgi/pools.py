"""The pool size the supervisor's connection budget chose for this worker."""
import os
from typing import Dict, Mapping, Optional


class PoolSettingError(ValueError):
    """A pool variable the app cannot use; the message names it."""


def pool_settings(environ: Optional[Mapping[str, str]] = None, *, size: int = 10, overflow: int = 10) -> Dict[str, int]:
    """`{"pool_size": ..., "max_overflow": ...}` for SQLAlchemy's `create_engine` / `create_async_engine`, from
    `DB_POOL_SIZE` and `DB_MAX_OVERFLOW`: the variables the supervisor's budget counts, and sets for each worker
    (with `DB_POOL_SIZE=auto`, the largest pool that fits). `size` and `overflow` when they are unset; the
    supervisor's defaults are 10 and 10."""
    env = environ if environ is not None else os.environ
    return {"pool_size": _count(env, "DB_POOL_SIZE", size), "max_overflow": _count(env, "DB_MAX_OVERFLOW", overflow)}


def _count(env: Mapping[str, str], name: str, default: int) -> int:
    text = env.get(name, "").strip()
    if not text:
        return default
    if text == "auto":
        raise PoolSettingError(f"{name}=auto is worked out by the supervisor; run under it, or set a number")
    if not text.isdigit() or not text.isascii():
        raise PoolSettingError(f"{name}: expected a whole number, got {text!r}")
    return int(text)
