"""Browser fixtures: Debian's Chromium, driven by Playwright's sync API, against ``live_server``.

Never downloads a browser (no ``playwright install``): it launches the system Chromium at the
``CHROMIUM`` path that the top-level conftest resolves, and the top-level conftest skips (or,
with REQUIRE_SERVICES=1, fails) ``browser`` tests where that Chromium is missing.
"""

import os
from pathlib import Path

import pytest

from tests.conftest import CHROMIUM

# Playwright's sync API runs an event loop in the test thread, and Django refuses ORM calls from
# a thread with a running loop. The ORM calls here (fixtures, assertions) are plain synchronous
# code that merely shares the thread with that loop, so the guard does not apply.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def chromium():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def page(chromium, live_server):
    """A fresh Japanese-speaking visitor; anything leaving the live server is blocked.

    After the test, fails on any request the page tried to make elsewhere (a CDN, a font
    service) and on any JavaScript error: both would otherwise go unnoticed in a screenshot.
    """
    context = chromium.new_context(
        viewport={"width": 1280, "height": 900},
        locale="ja-JP",
        timezone_id="Asia/Tokyo",
        accept_downloads=True,
    )
    blocked: list[str] = []
    errors: list[str] = []

    def only_live_server(route):
        if route.request.url.startswith(live_server.url):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    context.route("**/*", only_live_server)
    page = context.new_page()
    page.set_default_timeout(10_000)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    yield page
    context.close()
    assert blocked == [], f"requests outside the live server: {blocked}"
    assert errors == [], f"errors in the page: {errors}"


@pytest.fixture
def screenshot():
    """``screenshot(page, "name")`` saves a full-page PNG under test-artifacts/screenshots/."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(page, name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take
