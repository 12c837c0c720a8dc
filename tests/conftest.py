"""Shared fixtures, and the rule that CI may not skip the tests that need real services.

Tests marked ``postgres``, ``redis`` or ``browser`` skip with a reason where that service is
missing. With ``REQUIRE_SERVICES=1`` (CI's second run) a missing service fails those tests
instead, and any skip among them fails the session.
"""

import os
import shutil

import pytest
from django.conf import settings

CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
SERVICE_MARKERS = ("postgres", "redis", "browser")


def _require_services() -> bool:
    return os.environ.get("REQUIRE_SERVICES") == "1"


def _missing_reason(marker: str) -> str | None:
    missing = {
        "postgres": settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql",
        "redis": not settings.REDIS_URL,
        "browser": not os.path.exists(CHROMIUM),
    }
    reasons = {
        "postgres": "needs PostgreSQL: set DATABASE_URL=postgres://…",
        "redis": "needs Redis: set REDIS_URL=redis://…",
        "browser": "needs Debian's Chromium (apt-get install chromium)",
    }
    return reasons[marker] if missing[marker] else None


def pytest_runtest_setup(item):
    for marker in SERVICE_MARKERS:
        if item.get_closest_marker(marker) is None:
            continue
        reason = _missing_reason(marker)
        if reason is None:
            continue
        if _require_services():
            pytest.fail(f"REQUIRE_SERVICES=1: {reason}", pytrace=False)
        pytest.skip(reason)


_skipped_required: list[str] = []


def pytest_runtest_logreport(report):
    if not _require_services():
        return
    if report.skipped and any(m in report.keywords for m in SERVICE_MARKERS):
        _skipped_required.append(report.nodeid)


def pytest_sessionfinish(session, exitstatus):
    if _skipped_required:
        session.exitstatus = 1


def pytest_terminal_summary(terminalreporter):
    if _skipped_required:
        terminalreporter.write_line(
            "REQUIRE_SERVICES=1 but these service tests did not run: "
            + ", ".join(sorted(set(_skipped_required))),
            red=True,
        )


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # PBKDF2's deliberate slowness protects stored passwords, not tests; users are made often.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _japanese_defaults(settings):
    """Tests see the site as a first-time visitor does: Japanese, Japan time."""
    settings.LANGUAGE_CODE = "ja"
    settings.TIME_ZONE = "Asia/Tokyo"


def forget_checkout_counters() -> None:
    """Drop the card-testing counters from the cache — only those: with Redis the same server
    is Celery's broker."""
    from django.core.cache import cache

    if settings.REDIS_URL:
        client = cache._cache.get_client(write=True)
        for key in client.scan_iter(match="*checkout:*"):
            client.delete(key)
    else:
        cache.clear()


@pytest.fixture(autouse=True)
def _fresh_checkout_counters():
    """Each test starts with no card-testing counters (they live in the cache)."""
    forget_checkout_counters()


@pytest.fixture(autouse=True)
def _ledger_checked_after_each_test(request, django_db_blocker):
    """Every test that uses the database ends with the same checks as ``manage.py
    check_ledger`` (tests that break the ledger on purpose are marked ``ledger_left_broken``)."""
    yield
    uses_db = request.node.get_closest_marker("django_db") or {
        "db",
        "transactional_db",
        "live_server",
    } & set(request.fixturenames)
    if not uses_db or request.node.get_closest_marker("ledger_left_broken"):
        return
    from fund.checks import run_checks

    with django_db_blocker.unblock():
        assert run_checks() == {}


@pytest.fixture(autouse=True)
def _tasks_run_in_process(monkeypatch):
    """Celery tasks (event processing, receipts) run in-process in tests, even when REDIS_URL
    names a broker: the PostgreSQL + Redis run has no worker, except in the tests that start a
    real one (tests/donations/test_worker.py), which turn this off for themselves."""
    from config.celery import app

    monkeypatch.setitem(app.conf, "task_always_eager", True)
