"""``/healthz``: is this web process able to reach its database and Redis? And what a visitor
sees when it cannot (``server_error``).

For load balancers and orchestrators: no sign-in, never cached, plain HTTP allowed
(``SECURE_REDIRECT_EXEMPT``). 200 when every configured part answers, else 503. The body names a
failure's kind only (the full error goes to the log, not to an anonymous caller). Each check
gives up after about two seconds: Redis through socket timeouts, PostgreSQL through
``connect_timeout``.
"""

import logging
import sys

import redis.exceptions
from django.conf import settings
from django.db import InterfaceError, OperationalError, connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template import loader
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


# A database that refuses or drops connections (a restart, a failover), or Redis away: the
# request failed through no fault of its own and will work again shortly. psycopg reports a
# dropped connection as OperationalError or InterfaceError; other database errors (an
# IntegrityError…) are bugs and stay 500s.
UNAVAILABLE = (
    OperationalError,
    InterfaceError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
)
RETRY_AFTER_SECONDS = 30


def server_error(request: HttpRequest) -> HttpResponse:
    """``handler500``: 503 with Retry-After while a service we depend on is away, else 500.

    Called by Django inside its handling of the uncaught exception (raised in a view or a
    middleware), so ``sys.exc_info()`` is that exception. Both pages render without the
    database (no base template, no context processors); API clients get JSON.
    """
    error = sys.exc_info()[1]
    unavailable = isinstance(error, UNAVAILABLE)
    status = 503 if unavailable else 500
    if request.path.startswith("/api/"):
        from django.utils.translation import gettext as _

        detail = (
            _("The service is briefly unavailable. Please try again in a minute.")
            if unavailable
            else _("Server error.")
        )
        response: HttpResponse = JsonResponse({"detail": detail}, status=status)
    else:
        template = loader.get_template("503.html" if unavailable else "500.html")
        response = HttpResponse(template.render(), status=status)
    if unavailable:
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response
