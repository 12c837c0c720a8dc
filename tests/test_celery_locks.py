"""Periodic jobs never overlap themselves (``config.celery.one_at_a_time``).

With Redis (as in production), two workers starting the same job at the same moment: one runs,
the other returns at once. The control runs the same job without the guard and shows the
overlap it prevents. Without Redis the cache's ``add`` stands in (one process).
"""

import threading
import time

import pytest
from django.core.cache import cache

from config.celery import _lock, one_at_a_time


def _job(entered: list[int], *, hold: float = 0.4):
    def job(n: int) -> int:
        entered.append(n)
        time.sleep(hold)
        return n

    return job


def _at_once(func, clients: int = 2) -> list:
    barrier = threading.Barrier(clients)
    results = []

    def client(n):
        barrier.wait()
        results.append(func(n))

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


@pytest.fixture
def redis_lock_key():
    key = "civicfund:one-at-a-time:test-job"
    cache._cache.get_client(write=True).delete(key)
    yield key
    cache._cache.get_client(write=True).delete(key)


@pytest.mark.redis
def test_two_runs_at_once_one_runs_the_other_returns(redis_lock_key):
    entered: list[int] = []
    guarded = one_at_a_time("test-job", timeout=30)(_job(entered))
    results = _at_once(guarded)
    assert len(entered) == 1
    assert sorted(results, key=lambda r: r is None) == [entered[0], None]
    # Released: the next run goes ahead.
    assert guarded(7) == 7


@pytest.mark.redis
def test_control_without_the_guard_both_run_at_once(redis_lock_key):
    entered: list[int] = []
    assert sorted(_at_once(_job(entered))) == [0, 1]
    assert len(entered) == 2


@pytest.mark.redis
def test_a_lock_left_by_a_killed_run_expires(redis_lock_key):
    stale = _lock("civicfund:one-at-a-time:test-job", 1)
    assert stale.acquire(blocking=False)  # a worker took it and died
    guarded = one_at_a_time("test-job", timeout=30)(lambda: "ran")
    assert guarded() is None
    time.sleep(1.2)
    assert guarded() == "ran"


@pytest.mark.redis
def test_a_run_that_outlives_its_lock_does_not_release_the_next_runs_lock(redis_lock_key):
    slow = one_at_a_time("test-job", timeout=1)(lambda: time.sleep(1.3) or "slow")
    holder = {}

    def next_run():
        time.sleep(1.1)  # the slow run's lock has expired; this run takes a new one
        lock = _lock(redis_lock_key, 30)
        holder["took"] = lock.acquire(blocking=False)

    thread = threading.Thread(target=next_run)
    thread.start()
    assert slow() == "slow"
    thread.join()
    assert holder["took"]
    assert cache._cache.get_client(write=True).exists(redis_lock_key)


def test_without_redis_the_cache_stands_in(settings):
    settings.REDIS_URL = ""
    if settings.CACHES["default"]["BACKEND"].endswith("RedisCache"):
        pytest.skip("the cache is Redis in this run; the Redis tests cover it")
    cache.delete("civicfund:one-at-a-time:local-job")
    guarded = one_at_a_time("local-job", timeout=30)(lambda: "ran")
    held = _lock("civicfund:one-at-a-time:local-job", 30)
    assert held.acquire()
    assert guarded() is None
    held.release()
    assert guarded() == "ran"
