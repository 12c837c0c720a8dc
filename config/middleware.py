"""The Content Security Policy header, and one log line per request.

Django 5.2 has no CSP of its own. Every response gets the site's policy: everything from the
site itself, no inline script or style, no plugins, no framing. One place needs more, on its
own paths only:

- ``/api/`` (DRF's browsable API): its templates use ``style`` attributes and an inline
  ``<style>`` for highlighting; scripts stay the site's own.

``/api/docs/`` (Swagger UI) keeps the site's policy: Swagger UI is served from our static files
(drf-spectacular-sidecar), its page's script from the split view's own URL
(``SpectacularSwaggerSplitView``) and its style from a file
(templates/drf_spectacular/swagger_ui.html).

With DEBUG, Django's yellow error pages (inline script and style) are allowed theirs.
A view that sets its own ``Content-Security-Policy`` header keeps it.
"""

import logging
import time
import uuid
from collections.abc import Callable
from contextvars import ContextVar

from django.conf import settings
from django.core.exceptions import MiddlewareNotUsed
from django.http import HttpRequest, HttpResponse

API_DOCS = "/api/docs/"

# The request being answered, for log lines written while answering it (config/logging.py).
request_context: ContextVar[dict | None] = ContextVar("request_context", default=None)

request_log = logging.getLogger("config.request")


def site_policy() -> dict[str, list[str]]:
    return {
        "default-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "style-src": ["'self'"],
        "script-src": ["'self'"],
        "form-action": list(getattr(settings, "CSP_FORM_ACTION", ["'self'"])),
        "frame-ancestors": ["'none'"],
        "base-uri": ["'self'"],
        "object-src": ["'none'"],
    }


def policy_for(request: HttpRequest, response: HttpResponse) -> dict[str, list[str]]:
    policy = site_policy()
    path = request.path_info
    if settings.DEBUG and response.status_code >= 400:
        policy["style-src"].append("'unsafe-inline'")
        policy["script-src"].append("'unsafe-inline'")
    elif path.startswith("/api/") and not path.startswith(API_DOCS):
        policy["style-src"].append("'unsafe-inline'")
    return policy


def header_value(policy: dict[str, list[str]]) -> str:
    return "; ".join(f"{name} {' '.join(sources)}" for name, sources in policy.items())


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = header_value(policy_for(request, response))
        return response


class RequestLogMiddleware:
    """Logs method, path, status and duration of each request (``LOG_REQUESTS``).

    The request id is the proxy's ``X-Request-ID`` when it sends a sensible one, else a new one;
    it is returned in the response's ``X-Request-ID`` and added to every log line written while
    the request is answered.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        if not getattr(settings, "LOG_REQUESTS", False):
            raise MiddlewareNotUsed
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-ID", "")
        request_id = (
            incoming if 0 < len(incoming) <= 64 and incoming.isprintable() else uuid.uuid4().hex
        )
        token = request_context.set(
            {"request_id": request_id, "method": request.method, "path": request.path}
        )
        started = time.monotonic()
        try:
            response = self.get_response(request)
            response["X-Request-ID"] = request_id
            request_log.info(
                "%s %s %s",
                request.method,
                request.path,
                response.status_code,
                extra={
                    "status": response.status_code,
                    "duration_ms": round((time.monotonic() - started) * 1000, 1),
                },
            )
            return response
        finally:
            request_context.reset(token)
