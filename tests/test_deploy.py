"""Production settings from the environment: check --deploy, CSP, /healthz, JSON logs, static files.

Production settings are read at import, so they are checked in a subprocess with a production
environment; everything else runs in-process on the test settings.
"""

import json
import logging
import os
import re
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.contrib.staticfiles import finders
from django.db import OperationalError, connection

from config.logging import JsonFormatter
from config.middleware import request_context

ROOT = Path(__file__).resolve().parents[1]
# Variables of this process's environment that would leak into the subprocess's settings.
SETTINGS_VARIABLES = (
    "DEBUG",
    "SECRET_KEY",
    "ALLOWED_HOSTS",
    "CSRF_TRUSTED_ORIGINS",
    "DATABASE_URL",
    "REDIS_URL",
    "STATIC_ROOT",
    "LOG_FORMAT",
    "LOG_REQUESTS",
    "SECURE_SSL_REDIRECT",
    "SECURE_COOKIES",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
    "BEHIND_PROXY",
    "DJANGO_SETTINGS_MODULE",
    # Set by tests/browser/conftest.py for Playwright's event loop; never in a deployment.
    "DJANGO_ALLOW_ASYNC_UNSAFE",
)


def environment(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SETTINGS_VARIABLES}
    env["DJANGO_SETTINGS_MODULE"] = "config.settings"
    env.update(values)
    return env


def production(tmp_path: Path, **values: str) -> dict[str, str]:
    return environment(
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(64),
        ALLOWED_HOSTS="fund.example.jp",
        CSRF_TRUSTED_ORIGINS="https://fund.example.jp",
        DATABASE_URL=f"sqlite:///{tmp_path / 'deploy.sqlite3'}",
        **values,
    )


def run(args: list[str], env: dict[str, str], timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


SHOW_SETTINGS = """
import json, django
django.setup()
from django.conf import settings as s
print(json.dumps({name: getattr(s, name, None) for name in [
    "DEBUG", "SECURE_SSL_REDIRECT", "SECURE_PROXY_SSL_HEADER", "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE", "SECURE_HSTS_SECONDS", "LOG_FORMAT", "LOG_REQUESTS",
]}))
"""


# --- settings -------------------------------------------------------------------------------


def test_check_deploy_passes_without_warnings(tmp_path):
    result = run(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"], production(tmp_path)
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "WARNING" not in output
    assert "System check identified no issues" in output


def test_check_deploy_would_catch_a_weakened_setting(tmp_path):
    # The control: the check above is able to fail.
    result = run(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        production(tmp_path, SECURE_HSTS_SECONDS="0"),
    )
    assert result.returncode != 0
    assert "security.W004" in result.stdout + result.stderr


def test_production_and_development_defaults(tmp_path):
    prod = json.loads(run(["-c", SHOW_SETTINGS], production(tmp_path)).stdout)
    assert prod == {
        "DEBUG": False,
        "SECURE_SSL_REDIRECT": True,
        "SECURE_PROXY_SSL_HEADER": None,
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
        "SECURE_HSTS_SECONDS": 31536000,
        "LOG_FORMAT": "json",
        "LOG_REQUESTS": True,
    }
    proxied = json.loads(
        run(["-c", SHOW_SETTINGS], production(tmp_path, BEHIND_PROXY="true")).stdout
    )
    assert proxied["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    # `make run`: nothing set.
    dev = json.loads(run(["-c", SHOW_SETTINGS], environment()).stdout)
    assert dev == {
        "DEBUG": True,
        "SECURE_SSL_REDIRECT": False,
        "SECURE_PROXY_SSL_HEADER": None,
        "SESSION_COOKIE_SECURE": False,
        "CSRF_COOKIE_SECURE": False,
        "SECURE_HSTS_SECONDS": 0,
        "LOG_FORMAT": "text",
        "LOG_REQUESTS": False,
    }


SERVE_STATIC = """
import json, django
django.setup()
from django.contrib.staticfiles.storage import staticfiles_storage
from django.test import Client
url = staticfiles_storage.url("css/progress.css")
response = Client().get(url, secure=True, headers={"host": "fund.example.jp"})
body = b"".join(response.streaming_content) if response.streaming else response.content
print(json.dumps({
    "url": url,
    "status": response.status_code,
    "class": type(response).__name__,
    "cache": response.get("Cache-Control", ""),
    "csp": response.get("Content-Security-Policy", ""),
    "body": body.decode()[:400],
}))
"""


def test_whitenoise_serves_collected_static_files_with_debug_off(tmp_path):
    env = production(tmp_path, STATIC_ROOT=str(tmp_path / "static"))
    collected = run(["manage.py", "collectstatic", "--no-input", "-v", "0"], env, timeout=600)
    assert collected.returncode == 0, collected.stderr
    served = run(["-c", SERVE_STATIC], env)
    assert served.returncode == 0, served.stderr
    result = json.loads(served.stdout.strip().splitlines()[-1])
    # The manifest storage's hashed name, served by WhiteNoise (not by Django's static view,
    # which does not serve at all with DEBUG off) with a far-future cache lifetime.
    assert result["url"].startswith("/static/css/progress.") and result["url"] != (
        "/static/css/progress.css"
    )
    assert result["status"] == 200
    assert result["class"] == "WhiteNoiseFileResponse"
    assert "immutable" in result["cache"]
    assert ".progress__fill" in result["body"]


# --- Content Security Policy -----------------------------------------------------------------


def directives(header: str) -> dict[str, list[str]]:
    parts = (item.split() for item in header.split(";") if item.strip())
    return {part[0]: part[1:] for part in parts}


@pytest.mark.django_db
def test_pages_carry_the_strict_policy(client):
    response = client.get("/")
    assert response.status_code == 200
    policy = directives(response["Content-Security-Policy"])
    assert policy == {
        "default-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "style-src": ["'self'"],
        "script-src": ["'self'"],
        "form-action": ["'self'", "https://checkout.stripe.com"],
        "frame-ancestors": ["'none'"],
        "base-uri": ["'self'"],
        "object-src": ["'none'"],
    }
    assert response["X-Frame-Options"] == "DENY"


@pytest.mark.django_db
def test_the_api_carries_a_policy(client):
    response = client.get("/api/v1/operations/", headers={"accept": "application/json"})
    policy = directives(response["Content-Security-Policy"])
    assert policy["script-src"] == ["'self'"]
    assert policy["frame-ancestors"] == ["'none'"]


@pytest.mark.django_db
def test_swagger_ui_keeps_the_site_policy(client):
    """The API docs load nothing from elsewhere: no CDN, no inline script or style."""
    response = client.get("/api/docs/")
    assert response.status_code == 200
    assert directives(response["Content-Security-Policy"]) == directives(
        client.get("/")["Content-Security-Policy"]
    )
    html = response.content.decode()
    # Every script and stylesheet is a file: Swagger UI's from our static files (pinned by
    # drf-spectacular-sidecar), the page's own script from the split view.
    assert "<script>" not in html and "<style" not in html and "style=" not in html
    sources = re.findall(r'(?:src|href)="([^"]*)"', html)
    assert sources and all(s.startswith(("/static/", "/api/docs/?script=")) for s in sources)
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in sources
    assert "/static/css/api_docs.css" in sources
    for source in sources:  # and each is there to collect
        if source.startswith("/static/"):
            assert finders.find(source.removeprefix("/static/")), source
    script = client.get("/api/docs/", {"script": ""})
    assert script.status_code == 200
    assert "SwaggerUIBundle" in script.content.decode()
    # No badge from validator.swagger.io (it would send the schema's address there).
    assert '"validatorUrl": null' in script.content.decode()


# --- /healthz --------------------------------------------------------------------------------


@pytest.fixture
def no_redis(settings):
    settings.REDIS_URL = ""


@pytest.mark.django_db
def test_healthz_on_the_defaults(client, no_redis):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "redis": "not configured"}
    assert "no-store" in response["Cache-Control"]
    assert "Content-Security-Policy" in response


@pytest.mark.django_db
def test_healthz_answers_plain_http_when_https_is_enforced(client, settings, no_redis):
    settings.SECURE_SSL_REDIRECT = True
    assert client.get("/").status_code == 301
    assert client.get("/healthz").status_code == 200


@pytest.mark.django_db
def test_healthz_reports_a_failing_database(client, monkeypatch, no_redis):
    def broken_cursor(*args, **kwargs):
        raise OperationalError("could not connect to server at 10.0.0.5")

    # Undone before the after-test ledger checks, which need the database.
    with monkeypatch.context() as patch:
        patch.setattr(connection, "cursor", broken_cursor)
        response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "error"
    assert body["database"] == "error: OperationalError"
    assert body["redis"] == "not configured"


def _get_while_reading_the_session_fails(client, monkeypatch, path: str, error: Exception):
    """Every page reads the visitor's session (in a middleware, before any view): GET ``path``
    with that read failing as it does when the database or Redis has gone away."""
    from django.contrib.sessions.backends.db import SessionStore

    def load(self):
        raise error

    client.raise_request_exception = False
    client.cookies["sessionid"] = "x" * 32
    with monkeypatch.context() as patch:  # undone before the after-test ledger checks
        patch.setattr(SessionStore, "load", load)
        return client.get(path)


@pytest.mark.django_db
def test_a_database_gone_away_is_a_503_page_to_try_again(client, monkeypatch):
    response = _get_while_reading_the_session_fails(
        client, monkeypatch, "/projects/", OperationalError("terminating connection due to admin")
    )
    assert response.status_code == 503
    assert response["Retry-After"] == "30"
    html = response.content.decode()
    assert "<html" in html and "まもなく復旧します" in html  # Japanese, from the 503 template


@pytest.mark.django_db
def test_redis_gone_away_is_a_503_and_the_api_answers_json(client, monkeypatch):
    import redis

    response = _get_while_reading_the_session_fails(
        client, monkeypatch, "/api/v1/projects/", redis.exceptions.ConnectionError("refused")
    )
    assert response.status_code == 503
    assert response.json()["detail"]


@pytest.mark.django_db
def test_a_bug_is_still_a_500(client, monkeypatch):
    response = _get_while_reading_the_session_fails(
        client, monkeypatch, "/projects/", ValueError("a bug")
    )
    assert response.status_code == 500
    assert "Retry-After" not in response


@pytest.mark.django_db
def test_an_api_address_no_route_matches_is_a_json_404(client):
    for path in ("/api/v1/no-such-collection/", "/api/v1/projects/1/a/b/"):
        response = client.get(path)
        assert response.status_code == 404
        assert response["Content-Type"] == "application/json"
        assert response.json()["detail"]
    assert "<html" in client.get("/no-such-page/").content.decode()  # pages stay pages


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.django_db
def test_healthz_reports_redis_on_a_closed_port_quickly(client, settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{closed_port()}/0"
    started = time.monotonic()
    response = client.get("/healthz")
    assert time.monotonic() - started < 2
    assert response.status_code == 503
    assert response.json() == {
        "status": "error",
        "database": "ok",
        "redis": "error: ConnectionError",
    }


@pytest.mark.django_db
def test_healthz_gives_up_on_a_redis_that_never_answers(client, settings):
    # Accepts the connection (the kernel's backlog) but never replies to PING.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        settings.REDIS_URL = f"redis://127.0.0.1:{silent.getsockname()[1]}/0"
        started = time.monotonic()
        response = client.get("/healthz")
        assert time.monotonic() - started < 2.5
    assert response.status_code == 503
    assert response.json()["redis"].startswith("error: ")


@pytest.mark.redis
@pytest.mark.django_db
def test_healthz_with_redis(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "redis": "ok"}


# --- logs ------------------------------------------------------------------------------------


def record(message: str = "gift %s recorded", *args, **extra) -> logging.LogRecord:
    entry = logging.LogRecord("donations.services", logging.INFO, __file__, 1, message, args, None)
    for name, value in extra.items():
        setattr(entry, name, value)
    return entry


def test_json_log_line():
    line = JsonFormatter().format(record("gift %s recorded", 42, donation=42))
    assert "\n" not in line
    entry = json.loads(line)
    assert entry.pop("time").endswith("+00:00")
    assert entry == {
        "level": "INFO",
        "logger": "donations.services",
        "message": "gift 42 recorded",
        "donation": 42,
    }


def test_json_log_line_during_a_request_and_with_an_exception():
    token = request_context.set({"request_id": "abc123", "method": "POST", "path": "/give/"})
    try:
        try:
            raise ValueError("寄附")
        except ValueError:
            entry = record("failed")
            entry.exc_info = sys.exc_info()
            parsed = json.loads(JsonFormatter().format(entry))
    finally:
        request_context.reset(token)
    assert parsed["request_id"] == "abc123"
    assert parsed["method"] == "POST"
    assert parsed["path"] == "/give/"
    assert "ValueError: 寄附" in parsed["exception"]


def test_json_log_line_from_djangos_request_logger(rf):
    # django.request attaches the request (not serialisable) and the status code.
    entry = record("Not Found: %s", "/nope/", request=rf.get("/nope/"), status_code=404)
    parsed = json.loads(JsonFormatter().format(entry))
    assert parsed["path"] == "/nope/"
    assert parsed["method"] == "GET"
    assert parsed["status_code"] == 404
    assert "request" not in parsed


@pytest.mark.django_db
def test_each_request_is_logged_once_with_its_status_and_duration(client, settings, caplog):
    settings.LOG_REQUESTS = True
    settings.REDIS_URL = ""
    with caplog.at_level(logging.INFO, logger="config.request"):
        response = client.get("/healthz", headers={"x-request-id": "probe-1"})
    assert response["X-Request-ID"] == "probe-1"
    [line] = [r for r in caplog.records if r.name == "config.request"]
    assert line.getMessage() == "GET /healthz 200"
    assert line.status == 200
    assert line.duration_ms >= 0
