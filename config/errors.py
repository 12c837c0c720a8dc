"""What a visitor sees when a request fails: Django's ``handler404`` and ``handler500``.

The API (``/api/``) answers JSON (``{"detail": …}``) like the rest of the API, pages answer HTML.
"""

import sys

import redis.exceptions
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template import loader
from django.utils.translation import gettext as _
from django.views import defaults

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
    middleware), so ``sys.exc_info()`` is that exception. The page renders without the
    database (no base template, no context processors); API clients get JSON.
    """
    error = sys.exc_info()[1]
    unavailable = isinstance(error, UNAVAILABLE)
    status = 503 if unavailable else 500
    if request.path.startswith("/api/"):
        detail = (
            _("The service is briefly unavailable. Please try again in a minute.")
            if unavailable
            else _("Server error.")
        )
        response: HttpResponse = JsonResponse({"detail": detail}, status=status)
    else:
        page = loader.get_template("500.html").render({"unavailable": unavailable})
        response = HttpResponse(page, status=status)
    if unavailable:
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """``handler404``: an address no route matches. Under ``/api/`` a JSON 404, as the API's
    own views answer, so a client never has to parse the site's HTML page."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": _("Not found.")}, status=404)
    return defaults.page_not_found(request, exception)
