"""``/healthz``: is this web process able to reach its database and Redis? (What a visitor
sees when it cannot is ``config.errors.server_error``.)

For load balancers and orchestrators: no sign-in, never cached, plain HTTP allowed
(``SECURE_REDIRECT_EXEMPT``). 200 when every configured part answers, else 503. The body names a
failure's kind only (the full error goes to the log, not to an anonymous caller). Each check
gives up after about two seconds: Redis through socket timeouts, PostgreSQL through
``connect_timeout``.
"""

import logging

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

log = logging.getLogger(__name__)

TIMEOUT = 2.0  # seconds


def _error(part: str, error: Exception) -> str:
    log.warning("health check: %s failed", part, exc_info=error)
    return f"error: {type(error).__name__}"


def check_database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as error:
        return _error("database", error)
    return "ok"


def check_redis() -> str:
    if not settings.REDIS_URL:
        return "not configured"
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    try:
        client = redis.Redis.from_url(
            settings.REDIS_URL,
            socket_connect_timeout=TIMEOUT / 2,
            socket_timeout=TIMEOUT / 2,
            retry=Retry(NoBackoff(), 0),  # one attempt: the client retries by default
        )
        try:
            client.ping()
        finally:
            client.close()
    except Exception as error:
        return _error("redis", error)
    return "ok"


@never_cache
@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    database = check_database()
    redis = check_redis()
    healthy = database == "ok" and redis in {"ok", "not configured"}
    return JsonResponse(
        {"status": "ok" if healthy else "error", "database": database, "redis": redis},
        status=200 if healthy else 503,
    )
