"""A person's account: signing up and in, email and password, two-factor authentication for staff,
rate limits, API tokens, the privacy page, downloading one's data and closing the account."""

import contextlib
import json
import re
import time
import uuid

import pytest
import redis
from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import SECRET_SESSION_KEY, format_hotp_value, hotp_value
from django.conf import settings as django_settings
from django.contrib.auth import SESSION_KEY
from django.core import mail
from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache
from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.test import Client
from django.urls import NoReverseMatch, reverse
from django.utils import translation
from rest_framework.authtoken.models import Token

from accounts import services
from accounts.access import mfa_message
from accounts.models import AccountEvent, Invitation, Membership, User
from config.settings import email_settings
from proposals.models import ProposalEvent
from tests.factories import (
    FoundationRoleFactory,
    GovernmentStaffFactory,
    MembershipFactory,
    MunicipalityFactory,
    OrganizationFactory,
    ProposalFactory,
    SiteAdminFactory,
    UserFactory,
    give_mfa,
)

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"  # UserFactory's
NEW_PASSWORD = "a brand new saga password 2026"


@pytest.fixture(autouse=True)
def isolated_cache(settings):
    """Every test starts with an empty cache: rate-limit counters and used TOTP codes live there.

    On Redis the test gets a key prefix of its own and deletes only its own keys: the server is
    shared (Celery's broker, other test runs), so FLUSHDB is not this module's to call.
    """
    default = settings.CACHES["default"]
    if default["BACKEND"].endswith("RedisCache"):
        prefix = f"test-people-{uuid.uuid4().hex}"
        settings.CACHES = {"default": {**default, "KEY_PREFIX": prefix}}
        yield
        client = redis.Redis.from_url(default["LOCATION"])
        keys = list(client.scan_iter(f"{prefix}:*"))
        if keys:
            client.delete(*keys)
    else:
        cache.clear()
        yield
        cache.clear()


def verified(user: User) -> User:
    """Factories make bare users; allauth signs in only people with a confirmed address."""
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    return user


def sign_in(client: Client, email: str, password: str = PASSWORD, url: str = ""):
    return client.post(url or reverse("account_login"), {"login": email, "password": password})


def reauthenticate(client: Client, password: str = PASSWORD) -> None:
    response = client.post(reverse("account_reauthenticate"), {"password": password})
    assert response.status_code == 302, response.content.decode()


def signed_in(client: Client) -> bool:
    return SESSION_KEY in client.session


def current_code(secret: str) -> str:
    """The authenticator app's code now; waits for a fresh period rather than race its end."""
    if 30 - time.time() % 30 < 2:
        time.sleep(2.5)
    return format_hotp_value(hotp_value(secret, int(time.time()) // 30))


def link_in(message, path_fragment: str) -> str:
    match = re.search(rf"https?://[^\s]+{re.escape(path_fragment)}[^\s]*", message.body)
    assert match, message.body
    return match.group(0).split("testserver", 1)[1]


def client_after_sign_in(email: str, password: str = PASSWORD) -> Client:
    client = Client()
    sign_in(client, email, password)
    return client


def in_language(language: str, text: str) -> str:
    with translation.override(language):
        return translation.gettext(text)


# --- Signing up, email verification, password reset, email change ---------------------------


def test_sign_up_sends_a_verification_mail_and_signs_in_only_once_verified(client):
    response = client.post(
        reverse("account_signup"),
        {"email": "hanako@example.jp", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("account_email_verification_sent")
    assert not signed_in(client)
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["hanako@example.jp"]
    assert message.subject.startswith("[Civic Fund] ")
    confirm = link_in(message, "/accounts/confirm-email/")

    # Not verified yet: the password alone does not sign the person in.
    stranger = Client()
    response = sign_in(stranger, "hanako@example.jp", NEW_PASSWORD)
    assert response["Location"] == reverse("account_email_verification_sent")
    assert not signed_in(stranger)
    assert client.get(reverse("accounts:dashboard"))["Location"].startswith(
        reverse("account_login")
    )

    assert client.get(confirm).status_code == 200
    response = client.post(confirm)
    assert response["Location"] == reverse("accounts:dashboard")
    assert signed_in(client)
    assert EmailAddress.objects.get(email="hanako@example.jp").verified
    page = client.get(reverse("accounts:dashboard"))
    assert "hanako@example.jp" in page.content.decode()


def test_password_reset_by_mail(client):
    user = verified(UserFactory(email="taro@example.jp"))
    response = client.post(reverse("account_reset_password"), {"email": "taro@example.jp"})
    assert response["Location"] == reverse("account_reset_password_done")
    assert len(mail.outbox) == 1
    link = link_in(mail.outbox[0], "/accounts/password/reset/key/")

    # allauth moves the key from the URL into the session, then shows the form.
    form_url = client.get(link)["Location"]
    response = client.post(form_url, {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD})
    assert response["Location"] == reverse("account_reset_password_from_key_done")
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)
    assert signed_in(client_after_sign_in("taro@example.jp", NEW_PASSWORD))
    assert not signed_in(client_after_sign_in("taro@example.jp", PASSWORD))
    # The link worked once.
    assert in_language("ja", "This link does not work") in client.get(link).content.decode()


def test_changing_the_email_address_needs_verification(client):
    user = verified(UserFactory(email="old@example.jp"))
    sign_in(client, "old@example.jp")
    response = client.post(reverse("account_email"), {"email": "new@example.jp", "action_add": ""})
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.email == "old@example.jp"  # not until the new address is confirmed
    assert [m.to for m in mail.outbox] == [["new@example.jp"]]
    page = client.get(reverse("account_email")).content.decode()
    assert "new@example.jp" in page and "old@example.jp" in page

    confirm = link_in(mail.outbox[0], "/accounts/confirm-email/")
    client.post(confirm)
    user.refresh_from_db()
    assert user.email == "new@example.jp"
    assert list(EmailAddress.objects.filter(user=user).values_list("email", flat=True)) == [
        "new@example.jp"
    ]


# --- Pages in both languages ---------------------------------------------------------------


@pytest.mark.parametrize("language", ["ja", "en"])
def test_privacy_page_in_both_languages(client, language):
    client.cookies[django_settings.LANGUAGE_COOKIE_NAME] = language
    response = client.get(reverse("accounts:privacy"))
    assert response.status_code == 200
    html = response.content.decode()
    assert f'<html lang="{language}">' in html
    for heading in ["Privacy notice", "2. Purposes of use", "5. Your rights", "7. Contact"]:
        assert in_language(language, heading) in html
    assert "mailto:" in html


ANONYMOUS_PAGES = [
    "account_login",
    "account_signup",
    "account_reset_password",
    "account_reset_password_done",
    "account_email_verification_sent",
]
SIGNED_IN_PAGES = [
    "accounts:dashboard",
    "accounts:close",
    "account_logout",
    "account_email",
    "account_change_password",
    "mfa_index",
    "mfa_view_recovery_codes",
    "mfa_generate_recovery_codes",
    "mfa_deactivate_totp",
]


@pytest.mark.parametrize("language", ["ja", "en"])
def test_account_pages_render_in_the_sites_own_templates(client, language):
    client.cookies[django_settings.LANGUAGE_COOKIE_NAME] = language
    for name in ANONYMOUS_PAGES:
        html = client.get(reverse(name)).content.decode()
        assert f'<html lang="{language}">' in html, name
        assert 'class="site-header"' in html, name
        assert in_language(language, "Sign up") in html, name
    secret = give_mfa(verified(UserFactory(email="mfa@example.jp")))
    sign_in(client, "mfa@example.jp")
    assert client.get(reverse("mfa_authenticate")).status_code == 200
    client.post(reverse("mfa_authenticate"), {"code": current_code(secret)})
    assert signed_in(client)
    reauthenticate(client)
    client.post(reverse("mfa_generate_recovery_codes"))
    for name in SIGNED_IN_PAGES:
        response = client.get(reverse(name))
        assert response.status_code == 200, name
        html = response.content.decode()
        assert f'<html lang="{language}">' in html, name
        assert in_language(language, "Sign out") in html, name


def test_the_header_offers_sign_in_or_my_page_and_sign_out(client):
    html = client.get(reverse("proposals:home")).content.decode()
    assert reverse("account_login") in html and reverse("account_signup") in html
    assert reverse("accounts:dashboard") not in html

    verified(UserFactory(email="header@example.jp"))
    sign_in(client, "header@example.jp")
    html = client.get(reverse("proposals:home")).content.decode()
    assert reverse("accounts:dashboard") in html
    logout_form = re.search(
        rf'<form action="{reverse("account_logout")}" method="post">(.*?)</form>', html, re.S
    )
    assert logout_form and "csrfmiddlewaretoken" in logout_form.group(1)
    client.post(reverse("account_logout"))
    assert not signed_in(client)


def test_my_page_shows_roles_and_only_the_areas_open_to_them(client):
    officer = verified(GovernmentStaffFactory(body=MunicipalityFactory(name="唐津市")).user)
    client.force_login(officer)  # signing in with the second factor is tested below
    html = client.get(reverse("accounts:dashboard")).content.decode()
    assert "唐津市" in html
    for name, shown in [("officer:home", True), ("cso:home", False)]:
        try:
            url = reverse(name)
        except NoReverseMatch:  # the area is being written by a colleague
            continue
        assert (f'href="{url}"' in html) is shown, name

    member = MembershipFactory(organization=OrganizationFactory(name="NPO法人 からつ")).user
    client.force_login(member)
    html = client.get(reverse("accounts:dashboard")).content.decode()
    assert "NPO法人 からつ" in html
    for name, shown in [("officer:home", False), ("cso:home", True)]:
        with contextlib.suppress(NoReverseMatch):
            assert (f'href="{reverse(name)}"' in html) is shown, name

    citizen = verified(UserFactory())
    citizen_client = Client()
    sign_in(citizen_client, citizen.email)
    html = citizen_client.get(reverse("accounts:dashboard")).content.decode()
    assert "唐津市" not in html
    for name in ["officer:home", "cso:home"]:
        with contextlib.suppress(NoReverseMatch):  # the area is being written by a colleague
            assert f'href="{reverse(name)}"' not in html


# --- Data download ---------------------------------------------------------------------------


def test_data_download_holds_my_data_and_nobody_elses(client):
    me = verified(UserFactory(email="me@example.jp", first_name="花子"))
    organization = OrganizationFactory(name="NPO法人 さが子ども")
    MembershipFactory(user=me, organization=organization, role=Membership.Role.ADMIN)
    MembershipFactory(user=UserFactory(email="colleague@example.jp"), organization=organization)
    services.invitation_create(
        organization=organization, email="invitee@example.jp", role="member", actor=me
    )
    proposal = ProposalFactory(organization=organization, reference="P-000777")
    ProposalEvent.objects.create(proposal=proposal, action="submit", to_state="received", actor=me)
    ProposalEvent.objects.create(
        proposal=proposal, action="consult", to_state="consultation", actor=UserFactory()
    )

    assert client.get(reverse("accounts:data-export")).status_code == 302  # signed in only
    sign_in(client, "me@example.jp")
    response = client.get(reverse("accounts:data-export"))
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment;")
    raw = response.content.decode()
    data = json.loads(raw)

    assert data["account"]["email"] == "me@example.jp"
    assert data["account"]["first_name"] == "花子"
    assert data["email_addresses"] == [
        {"email": "me@example.jp", "verified": True, "primary": True}
    ]
    assert data["memberships"][0]["organization"] == "NPO法人 さが子ども"
    assert data["memberships"][0]["role"] == "admin"
    assert [e["proposal"] for e in data["proposal_history"]] == ["P-000777"]
    assert data["proposal_history"][0]["action"] == "submit"
    assert len(data["invitations_sent"]) == 1
    assert {e["action"] for e in data["account_history"]} >= {"invite"}
    for someone_else in ["colleague@example.jp", "invitee@example.jp"]:
        assert someone_else not in raw
    assert client.post(reverse("accounts:data-export")).status_code == 200


# --- Closing an account ----------------------------------------------------------------------


def test_closing_anonymises_the_person_keeps_the_records_and_signs_out(client):
    me = verified(UserFactory(email="leaving@example.jp", first_name="太郎", last_name="佐賀"))
    give_mfa(me)
    Token.objects.create(user=me)
    organization = OrganizationFactory()
    MembershipFactory(user=me, organization=organization, role=Membership.Role.MEMBER)
    proposal = ProposalFactory(organization=organization)
    event = ProposalEvent.objects.create(
        proposal=proposal, action="submit", to_state="received", actor=me
    )
    client.force_login(me)  # signing in with the second factor is tested below

    response = client.post(reverse("accounts:close"), {"password": PASSWORD})
    assert response["Location"] == reverse("accounts:closed")
    assert not signed_in(client)
    me.refresh_from_db()
    assert me.email == f"closed-{me.pk}@invalid"
    assert (me.first_name, me.last_name) == ("", "")
    assert not me.has_usable_password()
    assert not me.is_active and me.closed_at is not None
    assert not EmailAddress.objects.filter(user=me).exists()
    assert not Authenticator.objects.filter(user=me).exists()
    assert not Token.objects.filter(user=me).exists()
    assert not Membership.objects.filter(user=me).exists()
    event.refresh_from_db()
    assert event.actor_id == me.pk  # the history still points to the (anonymous) account
    assert AccountEvent.objects.filter(action="account_close", subject=me).exists()
    assert not signed_in(client_after_sign_in("leaving@example.jp"))
    assert client.get(reverse("accounts:closed")).status_code == 200


def test_closing_replaces_the_address_in_invitations_and_history(client):
    organization = OrganizationFactory()
    admin = MembershipFactory(organization=organization, role=Membership.Role.ADMIN).user
    services.invitation_create(
        organization=organization, email="joiner@example.jp", role="member", actor=admin
    )
    joiner = verified(UserFactory(email="joiner@example.jp"))
    invitation = Invitation.objects.get(email="joiner@example.jp")
    services.invitation_accept(token=invitation.token, user=joiner)

    services.account_close(user=joiner)
    invitation.refresh_from_db()
    assert invitation.email == f"closed-{joiner.pk}@invalid"
    assert not AccountEvent.objects.filter(details__email="joiner@example.jp").exists()


def test_the_last_admin_of_an_organisation_must_hand_over_before_closing(client):
    me = verified(UserFactory(email="admin@example.jp"))
    organization = OrganizationFactory(name="NPO法人 ひとりだち")
    MembershipFactory(user=me, organization=organization, role=Membership.Role.ADMIN)
    MembershipFactory(organization=organization, role=Membership.Role.MEMBER)
    sign_in(client, "admin@example.jp")

    response = client.post(reverse("accounts:close"), {"password": PASSWORD})
    assert response.status_code == 200
    assert "NPO法人 ひとりだち" in response.content.decode()
    me.refresh_from_db()
    assert me.email == "admin@example.jp" and me.is_active and me.closed_at is None
    assert Membership.objects.filter(user=me).exists()
    assert signed_in(client)

    # With a second admin, the first may leave.
    MembershipFactory(organization=organization, role=Membership.Role.ADMIN)
    assert client.post(reverse("accounts:close"), {"password": PASSWORD}).status_code == 302


def test_closing_needs_the_password_and_a_csrf_token():
    me = verified(UserFactory(email="careful@example.jp"))
    client = Client()
    sign_in(client, "careful@example.jp")
    response = client.post(reverse("accounts:close"), {"password": "not my password"})
    assert response.status_code == 200
    assert in_language("ja", "The password is not correct.") in response.content.decode()

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(me)
    assert strict.post(reverse("accounts:close"), {"password": PASSWORD}).status_code == 403
    me.refresh_from_db()
    assert me.is_active and me.closed_at is None


# --- API tokens ------------------------------------------------------------------------------


def test_a_token_is_shown_once_authenticates_scripts_and_can_be_revoked(client):
    verified(UserFactory(email="script@example.jp"))
    sign_in(client, "script@example.jp")
    response = client.post(reverse("accounts:token-create"))
    assert response.status_code == 200
    key = Token.objects.get(user__email="script@example.jp").key
    assert key in response.content.decode()
    assert key not in client.get(reverse("accounts:dashboard")).content.decode()

    api = Client()
    operations = "/api/v1/operations/"
    response = api.get(operations, headers={"Authorization": f"Token {key}"})
    assert response.status_code == 200
    assert response.wsgi_request.user.email == "script@example.jp"
    # An unknown key is refused outright (403: the session is the API's first authentication).
    assert api.get(operations, headers={"Authorization": "Token wrong"}).status_code == 403

    # A new token replaces the old one.
    client.post(reverse("accounts:token-create"))
    new_key = Token.objects.get(user__email="script@example.jp").key
    assert new_key != key
    assert api.get(operations, headers={"Authorization": f"Token {key}"}).status_code == 403

    assert client.post(reverse("accounts:token-revoke"))["Location"] == reverse(
        "accounts:dashboard"
    )
    assert not Token.objects.filter(user__email="script@example.jp").exists()
    assert api.get(operations, headers={"Authorization": f"Token {new_key}"}).status_code == 403
    assert list(
        AccountEvent.objects.filter(subject__email="script@example.jp").values_list(
            "action", flat=True
        )
    ) == ["api_token_create", "api_token_create", "api_token_revoke"]


def test_token_pages_refuse_a_missing_csrf_token():
    me = verified(UserFactory())
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(me)
    assert strict.post(reverse("accounts:token-create")).status_code == 403
    assert not Token.objects.filter(user=me).exists()


def test_staff_without_two_factor_get_no_token_and_the_api_refuses_theirs():
    officer = GovernmentStaffFactory(mfa=False).user
    with pytest.raises(PermissionDenied):
        services.api_token_create(user=officer)
    # A token made before the rule (or by an admin) is refused by the API itself.
    token = Token.objects.create(user=officer)
    response = Client().get("/api/v1/operations/", headers={"Authorization": f"Token {token.key}"})
    assert response.status_code == 403
    assert response.json()["detail"] == mfa_message()

    give_mfa(officer)
    assert services.api_token_create(user=officer)


# --- Rate limits -----------------------------------------------------------------------------


@pytest.fixture(params=["locmem", pytest.param("redis", marks=pytest.mark.redis)])
def cache_backend(request, settings):
    """The same test on the local-memory cache and, where REDIS_URL is set, on Redis."""
    if request.param == "locmem":
        settings.CACHES = {
            "default": {
                "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
                "LOCATION": f"people-{uuid.uuid4().hex}",
            }
        }
    else:
        assert isinstance(caches["default"], RedisCache)
    return request.param


TOO_MANY = "Too many failed login attempts. Try again later."


@pytest.mark.parametrize("start", ["/accounts/login/", "/admin/login/"])
def test_repeated_wrong_passwords_lock_the_account(client, cache_backend, start):
    verified(UserFactory(email="target@example.jp"))
    other = verified(UserFactory(email="bystander@example.jp"))
    response = client.get(start, follow=True)
    login_url = response.request["PATH_INFO"] + "?" + response.request["QUERY_STRING"]
    assert response.request["PATH_INFO"] == reverse("account_login")

    for _attempt in range(5):  # ACCOUNT_RATE_LIMITS: 5 failures per 5 minutes per account
        response = sign_in(client, "target@example.jp", "wrong password", url=login_url)
        assert response.status_code == 200
        assert in_language("ja", TOO_MANY) not in response.content.decode()
    response = sign_in(client, "target@example.jp", PASSWORD, url=login_url)
    assert in_language("ja", TOO_MANY) in response.content.decode()
    assert not signed_in(client)

    # The lock is on the account (and the address), not on everyone.
    assert signed_in(client_after_sign_in(other.email))
    if cache_backend == "redis":
        raw = redis.Redis.from_url(django_settings.REDIS_URL)
        prefix = caches["default"].key_prefix
        assert any(b"login_failed" in key for key in raw.scan_iter(f"{prefix}:*"))


# --- Two-factor authentication for staff -----------------------------------------------------


STAFF = {
    "government officer": lambda: GovernmentStaffFactory(mfa=False).user,
    "foundation staff": lambda: FoundationRoleFactory(mfa=False).user,
    "site admin": lambda: SiteAdminFactory(mfa=False),
}


@pytest.mark.parametrize("who", list(STAFF))
def test_staff_set_up_two_factor_before_anything_else_and_are_asked_for_codes(client, who):
    staff = verified(STAFF[who]())
    response = sign_in(client, staff.email)
    assert signed_in(client)
    setup = reverse("mfa_activate_totp")
    assert client.get(response["Location"])["Location"] == f"{setup}?next=%2Fme%2F"
    for page in [reverse("proposals:proposal-list"), reverse("proposals:home")]:
        assert client.get(page)["Location"].startswith(setup)
    assert client.get(reverse("accounts:privacy")).status_code == 200  # exempt

    # allauth asks for the password again before any change to the second factor.
    assert client.get(setup)["Location"].startswith(reverse("account_reauthenticate"))
    reauthenticate(client)
    page = client.get(setup)
    assert page.status_code == 200
    secret = client.session[SECRET_SESSION_KEY]
    assert secret in page.content.decode()
    response = client.post(setup, {"code": current_code(secret)})
    assert response["Location"] == reverse("mfa_view_recovery_codes")
    assert Authenticator.objects.filter(user=staff, type="totp").exists()
    assert client.get(reverse("accounts:dashboard")).status_code == 200

    client.post(reverse("account_logout"))
    response = sign_in(client, staff.email)
    assert response["Location"] == reverse("mfa_authenticate")
    assert not signed_in(client)
    response = client.post(reverse("mfa_authenticate"), {"code": "000000"})
    assert not signed_in(client)
    response = client.post(reverse("mfa_authenticate"), {"code": current_code(secret)})
    assert response["Location"] == reverse("accounts:dashboard")
    assert signed_in(client)


def test_a_citizen_is_never_asked_for_two_factor(client):
    member = MembershipFactory(organization=OrganizationFactory(name="NPO法人 からつ")).user
    client.force_login(member)
    html = client.get(reverse("accounts:dashboard")).content.decode()
    assert "NPO法人 からつ" in html
    for name, shown in [("officer:home", False), ("cso:home", True)]:
        with contextlib.suppress(NoReverseMatch):
            assert (f'href="{reverse(name)}"' in html) is shown, name

    citizen = verified(UserFactory())
    response = sign_in(client, citizen.email)
    assert response["Location"] == reverse("accounts:dashboard")
    assert client.get(reverse("accounts:dashboard")).status_code == 200
    assert client.get(reverse("proposals:proposal-list")).status_code == 200


# --- Email settings --------------------------------------------------------------------------


def test_email_url_chooses_the_mail_backend():
    console = "django.core.mail.backends.console.EmailBackend"
    assert email_settings("") == {"EMAIL_BACKEND": console}
    assert email_settings("console://") == {"EMAIL_BACKEND": console}
    assert email_settings("file:///srv/civic-fund/mail") == {
        "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
        "EMAIL_FILE_PATH": "/srv/civic-fund/mail",
    }
    assert email_settings("smtp://fund%40example.jp:p%40ss@mail.example.jp:587?tls=1") == {
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": "mail.example.jp",
        "EMAIL_PORT": 587,
        "EMAIL_HOST_USER": "fund@example.jp",
        "EMAIL_HOST_PASSWORD": "p@ss",
        "EMAIL_USE_TLS": True,
        "EMAIL_USE_SSL": False,
    }
    smtps = email_settings("smtps://mail.example.jp")
    assert (smtps["EMAIL_PORT"], smtps["EMAIL_USE_SSL"], smtps["EMAIL_USE_TLS"]) == (
        465,
        True,
        False,
    )
    with pytest.raises(ImproperlyConfigured):
        email_settings("sendmail:///usr/sbin/sendmail")


def test_my_gifts_are_in_my_data_and_closing_anonymises_them_but_keeps_gift_and_receipt(client):
    from donations.models import Donation, Receipt
    from donations.receipts import issue_receipt
    from tests.factories import ProjectFactory, give

    me = verified(UserFactory(email="giver@example.jp"))
    project = ProjectFactory()
    mine = give(
        project,
        3000,
        email="giver@example.jp",
        donor=me,
        display_name="さがの花子",
        publish_name=True,
        message="応援しています",
        share_contact=True,
    )
    give(project, 5000, email="other@example.jp", name="他人 太郎")
    receipt, _created = issue_receipt(mine)

    sign_in(client, "giver@example.jp")
    data = client.get(reverse("accounts:data-export")).json()
    assert [(d["amount"], d["display_name"]) for d in data["donations"]] == [(3000, "さがの花子")]
    assert "other@example.jp" not in json.dumps(data)

    services.account_close(user=me)
    donation = Donation.objects.get(pk=mine.donation_id)
    assert (donation.donor, donation.name, donation.address, donation.display_name) == (
        None,
        "",
        "",
        "",
    )
    assert donation.email == f"closed-{me.pk}@invalid"
    assert not donation.publish_name and not donation.share_contact and not donation.message
    # The money and the receipt as issued stay: accounting and tax records.
    mine.refresh_from_db()
    assert mine.amount == 3000
    assert Receipt.objects.get(pk=receipt.pk).donor_name == "佐賀 花子"
