"""A person's account in a real browser: signing up and verifying the address, and a staff member
asked to set up two-factor authentication and then asked for codes.

Screenshots go to test-artifacts/screenshots/accounts-*.png for a person to look at.
"""

import re
import time

import pytest
from allauth.account.models import EmailAddress
from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value
from django.core import mail

from accounts.policy import has_mfa
from tests.factories import GovernmentStaffFactory, UserFactory

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery staple"  # UserFactory's
NEW_PASSWORD = "a brand new saga password 2026"


def current_code(secret: str) -> str:
    """The authenticator app's code now; waits for a fresh period rather than race its end."""
    if 30 - time.time() % 30 < 3:
        time.sleep(3.5)
    return format_hotp_value(hotp_value(secret, int(time.time()) // 30))


def submit(page) -> None:
    page.locator("main form.account-form button[type=submit]").first.click()


def sign_in(page, base_url: str, email: str, password: str = PASSWORD) -> None:
    page.goto(f"{base_url}/")
    page.locator(".account-nav a[href='/accounts/login/']").click()
    page.fill("#id_login", email)
    page.fill("#id_password", password)
    submit(page)


def test_a_visitor_signs_up_verifies_the_address_and_lands_on_my_page(
    page, live_server, transactional_db, screenshot
):
    page.goto(f"{live_server.url}/")
    page.locator(".account-nav a[href='/accounts/signup/']").click()
    page.wait_for_url("**/accounts/signup/")
    page.fill("#id_email", "hanako@example.jp")
    page.fill("#id_password1", NEW_PASSWORD)
    page.fill("#id_password2", NEW_PASSWORD)
    screenshot(page, "accounts-signup")
    submit(page)

    page.wait_for_url("**/accounts/confirm-email/")
    screenshot(page, "accounts-verification-sent")
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["hanako@example.jp"]
    link = re.search(r"http://\S+/accounts/confirm-email/\S+/", mail.outbox[0].body).group(0)
    assert link.startswith(live_server.url)

    page.goto(link)
    screenshot(page, "accounts-confirm-email")
    submit(page)
    page.wait_for_url(f"{live_server.url}/me/")
    assert "hanako@example.jp" in page.locator("main").inner_text()
    assert page.locator(".account-nav a[href='/me/']").is_visible()
    screenshot(page, "accounts-my-page-citizen")
    assert EmailAddress.objects.get(email="hanako@example.jp").verified


def test_a_staff_member_sets_up_two_factor_and_is_then_asked_for_codes(
    page, live_server, transactional_db, screenshot
):
    officer = GovernmentStaffFactory(mfa=False).user
    EmailAddress.objects.create(user=officer, email=officer.email, verified=True, primary=True)

    sign_in(page, live_server.url, officer.email)
    # allauth confirms the password once more before a second factor is added.
    page.wait_for_url(re.compile(r"/accounts/reauthenticate/\?next=.*2fa.*totp.*activate"))
    screenshot(page, "accounts-staff-reauthenticate")
    page.fill("#id_password", PASSWORD)
    submit(page)

    page.wait_for_url(re.compile(r"/accounts/2fa/totp/activate/"))
    assert page.locator("img.mfa-qr").is_visible()
    screenshot(page, "accounts-staff-totp-setup")
    secret = page.locator("#authenticator-secret").inner_text().strip()
    page.fill("#id_code", current_code(secret))
    submit(page)

    page.wait_for_url("**/accounts/2fa/recovery-codes/")
    assert page.locator(".recovery-codes li").count() == 10
    screenshot(page, "accounts-staff-recovery-codes")
    assert has_mfa(officer)
    page.locator(".account-settings__page a[href='/me/']").click()
    page.wait_for_url(f"{live_server.url}/me/")
    screenshot(page, "accounts-my-page-officer")

    page.locator(".account-nav button[type=submit]").click()
    page.wait_for_url(f"{live_server.url}/")
    sign_in(page, live_server.url, officer.email)
    page.wait_for_url("**/accounts/2fa/authenticate/")
    screenshot(page, "accounts-staff-code-prompt")
    page.fill("#id_code", current_code(secret))
    submit(page)
    page.wait_for_url(f"{live_server.url}/me/")


@pytest.mark.parametrize("language", ["ja", "en"])
def test_account_pages_in_both_languages(page, live_server, transactional_db, screenshot, language):
    user = UserFactory(email="taro@example.jp")
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    page.context.add_cookies(
        [{"name": "django_language", "value": language, "url": live_server.url}]
    )
    for path, name in [("/accounts/login/", "login"), ("/privacy/", "privacy")]:
        page.goto(f"{live_server.url}{path}")
        assert page.locator("html").get_attribute("lang") == language
        screenshot(page, f"accounts-{name}-{language}")
    sign_in(page, live_server.url, user.email)
    page.wait_for_url(f"{live_server.url}/me/")
    screenshot(page, f"accounts-my-page-{language}")
    for path, name in [
        ("/accounts/email/", "email"),
        ("/accounts/2fa/", "two-factor"),
        ("/accounts/password/change/", "password-change"),
        ("/accounts/logout/", "logout"),
        ("/me/close/", "close"),
    ]:
        page.goto(f"{live_server.url}{path}")
        assert page.locator("html").get_attribute("lang") == language
        screenshot(page, f"accounts-{name}-{language}")
    page.goto(f"{live_server.url}/me/")
    page.locator("form[action='/me/token/'] button").click()
    key = page.locator("#token-key").input_value()
    assert len(key) == 40
    screenshot(page, f"accounts-token-created-{language}")
    page.set_viewport_size({"width": 390, "height": 800})
    page.goto(f"{live_server.url}/me/")
    assert key not in page.content()
    screenshot(page, f"accounts-my-page-phone-{language}")
