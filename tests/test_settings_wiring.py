"""DATABASE_URL and REDIS_URL really switch the platform onto PostgreSQL and Redis."""

import uuid

import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import connection

PROJECT_APPS = {"accounts", "proposals", "fund", "donations", "grants"}


@pytest.mark.postgres
@pytest.mark.django_db
def test_database_url_selects_postgresql_through_psycopg_3():
    import psycopg

    assert connection.vendor == "postgresql"
    assert connection.Database is psycopg
    with connection.cursor() as cursor:
        cursor.execute("SHOW TIMEZONE")
        # Django sets the connection to UTC; Japan time is applied when values are shown.
        assert cursor.fetchone()[0] == "UTC"


@pytest.mark.redis
def test_redis_url_makes_redis_the_cache():
    import redis
    from django.conf import settings
    from django.core.cache import caches
    from django.core.cache.backends.redis import RedisCache

    assert isinstance(caches["default"], RedisCache)
    key = f"wiring-{uuid.uuid4()}"
    cache.set(key, "佐賀", timeout=30)
    # Look for the key with a separate Redis client: a local-memory cache could not pass this.
    raw = redis.Redis.from_url(settings.REDIS_URL)
    assert raw.keys(f"*{key}")
    assert cache.get(key) == "佐賀"
    cache.delete(key)


@pytest.mark.redis
def test_redis_url_makes_redis_the_celery_broker():
    from django.conf import settings

    from config.celery import app

    assert settings.CELERY_BROKER_URL == settings.REDIS_URL
    assert settings.CELERY_TASK_ALWAYS_EAGER is False
    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1)
        assert conn.transport_cls in ("redis", "rediss") or "redis" in conn.transport.driver_type


def test_the_visibility_timeout_outlasts_every_retry_countdown():
    """Redis hands an unacknowledged task to another worker after the visibility timeout; a
    retry waiting longer than that would run twice."""
    from config.celery import app

    app.loader.import_default_modules()
    timeout = settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]
    ours = {n: t for n, t in app.tasks.items() if n.split(".")[0] in PROJECT_APPS}
    assert ours, "no project tasks registered"
    for name, task in ours.items():
        if not getattr(task, "autoretry_for", ()):
            continue
        # Exponential backoff is capped at retry_backoff_max (Celery's default: 600 s);
        # otherwise the fixed delay.
        if getattr(task, "retry_backoff", False):
            longest = getattr(task, "retry_backoff_max", 600)
        else:
            longest = task.default_retry_delay
        assert longest < timeout, name
