"""The Celery app (tasks run eagerly unless REDIS_URL names a broker; see settings), and the
guard that keeps a periodic job from running twice at once."""

import logging
import os
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("civicfund")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])


def one_at_a_time(name: str, *, timeout: int) -> Callable[[F], F]:
    """A periodic job that must not overlap itself: a run that starts while another holds the
    lock returns ``None`` at once. Beat may fire again before a slow run ends, and two beats
    (a deploy overlapping the old one) may fire the same job.

    With Redis the lock is a Redis lock (a token, released only by its holder, expiring after
    ``timeout`` seconds so a killed worker cannot hold it for ever); without Redis (development,
    one process) the cache's ``add`` serves.
    """

    def decorator(func: F) -> F:
        @wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            lock = _lock(f"civicfund:one-at-a-time:{name}", timeout)
            if not lock.acquire(blocking=False):
                log.info("%s is already running; this run is skipped", name)
                return None
            try:
                return func(*args, **kwargs)
            finally:
                lock.release()

        return wrapper  # type: ignore[return-value]

    return decorator


class _CacheLock:
    """The local stand-in for a Redis lock (locmem cache: one process)."""

    def __init__(self, key: str, timeout: int) -> None:
        self.key, self.timeout = key, timeout

    def acquire(self, blocking: bool = False) -> bool:
        from django.core.cache import cache

        return cache.add(self.key, 1, self.timeout)

    def release(self) -> None:
        from django.core.cache import cache

        cache.delete(self.key)


def _lock(key: str, timeout: int) -> Any:
    from django.conf import settings

    if not settings.REDIS_URL:
        return _CacheLock(key, timeout)
    from django.core.cache import cache
    from redis.exceptions import LockNotOwnedError

    lock = cache._cache.get_client(write=True).lock(key, timeout=timeout)
    release = lock.release

    def release_if_still_ours() -> None:
        # A run that outlived its timeout lost the lock to the next run: leave that one's lock.
        try:
            release()
        except LockNotOwnedError:
            log.warning("%s: the lock expired before the run ended", key)

    lock.release = release_if_still_ours
    return lock
