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
