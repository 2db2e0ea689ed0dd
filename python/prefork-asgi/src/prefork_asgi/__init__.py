"""An ASGI app under the prefork supervisor (or systemd): it says when it is ready, keeps a heartbeat from its event
loop, says when it stops, and sizes its database pool as the supervisor's connection budget chose."""
from .lifespan import Prefork
from .notify import notify, watchdog_interval
from .pools import PoolSettingError, pool_settings

__all__ = ["Prefork", "notify", "watchdog_interval", "pool_settings", "PoolSettingError"]
