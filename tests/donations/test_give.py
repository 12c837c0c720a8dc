"""Giving through the public pages, with the demo provider: the give form, the demo checkout,
the thank-you (return) page, the donor's page, their gifts and receipts.

Bad input creates nothing; each consent is stored as given; the card-testing limit answers 429;
only the browser that gave (or the signed link, the donor's account, foundation staff) sees a
donation; the return page and the webhook together record one gift.
"""

import datetime as dt
import re
import uuid
from typing import Any

import pytest
from allauth.account.models import EmailAddress
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import FoundationRole, User
from donations import access, services
from donations.models import DemoCheckout, Donation, DonationEvent, Gift, Receipt, WebhookEvent
from donations.providers import DemoProvider, ProviderError, demo_act
from fund.models import JournalEntry, Project
from fund.selectors import project_progress
from tests.factories import FoundationRoleFactory, ProjectFactory, UserFactory, give

pytestmark = pytest.mark.django_db
Status = Donation.Status


def open_project(**kw: Any) -> Project:
    now = timezone.now()
    return ProjectFactory(
        opens_at=now - dt.timedelta(days=10), closes_at=now + dt.timedelta(days=30), **kw
    )


def give_data(**overrides: Any) -> dict[str, str]:
    """A valid give form; an override of None leaves the field out (an unticked box)."""
    data = {
        "amount": "3000",
        "other_amount": "",
        "frequency": "once",
        "email": "hanako@example.jp",
        "name": "佐賀 花子",
        "wants_receipt": "on",
        "postal_code": "840-0041",
        "address": "佐賀県佐賀市城内1-1-59",
        "display_name": "",
        "message": "",
    }
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


def english_client(**kwargs: Any) -> Client:
    client = Client(**kwargs)
    client.cookies["django_language"] = "en"
    return client


def signed_in(user: User) -> Client:
    client = english_client()
    client.force_login(user)
    return client


def start(client: Client, project: Project | None, **overrides: Any) -> Donation:
    """Give through the form; returns the new donation (the browser now remembers it)."""
    url = (
        reverse("donations:give", args=[project.pk])
        if project
        else reverse("donations:give-general")
    )
    response = client.post(url, give_data(**overrides))
    assert response.status_code == 302, response.context["form"].errors
    donation = Donation.objects.latest("created_at")
    assert response["Location"] == donation.checkout_url
    return donation


def pay(client: Client, donation: Donation, action: str = "pay"):
    return client.post(
        reverse("donations:demo-checkout", args=[donation.checkout_session_id]), {"action": action}
    )


def verified(user: User, email: str | None = None) -> User:
    EmailAddress.objects.create(user=user, email=email or user.email, verified=True, primary=True)
    return user


def finance() -> User:
    return FoundationRoleFactory(role=FoundationRole.Role.FINANCE).user


# --- The give form -----------------------------------------------------------------------------


def test_the_give_page_offers_presets_and_prefills_a_signed_in_donor():
    project = open_project()
    response = english_client().get(reverse("donations:give", args=[project.pk]))
    assert response.status_code == 200
    content = response.content.decode()
    for preset in ("¥1,000", "¥3,000", "¥5,000", "¥10,000"):
        assert preset in content
    assert "no real money" in content
    user = UserFactory(email="taro@example.jp", first_name="太郎", last_name="佐賀")
    form = signed_in(user).get(reverse("donations:give", args=[project.pk])).context["form"]
    assert form["email"].value() == "taro@example.jp"
    assert form["name"].value() == "佐賀 太郎"


def test_the_project_pages_choices_carry_over_to_the_give_form():
    project = open_project()
    response = Client().get(
        reverse("donations:give", args=[project.pk]), {"amount": "5000", "frequency": "monthly"}
    )
    assert re.search(r'value="5000"[^>]*checked', response.content.decode())
    form = response.context["form"]
    assert (form["amount"].value(), form["frequency"].value()) == ("5000", "monthly")


def test_a_gift_opens_the_demo_checkout_with_what_the_donor_chose(client):
    project = open_project()
    donation = start(
        client,
        project,
        amount="other",
        other_amount="12,345",
        frequency="monthly",
        publish_name="on",
        display_name="さがの応援団",
        message="がんばってください",
    )
    assert donation.checkout_url == reverse(
        "donations:demo-checkout", args=[donation.checkout_session_id]
    )
    assert (donation.project, donation.amount, donation.frequency) == (project, 12_345, "monthly")
    assert (donation.status, donation.provider) == (Status.PENDING, Donation.Provider.DEMO)
    assert (donation.email, donation.name, donation.postal_code) == (
        "hanako@example.jp",
        "佐賀 花子",
        "840-0041",
    )
    assert (donation.display_name, donation.message) == ("さがの応援団", "がんばってください")
    assert donation.donor is None
    checkout = DemoCheckout.objects.get(donation=donation)
    assert checkout.success_url == f"http://testserver/donations/{donation.pk}/thanks/"
    assert checkout.cancel_url == f"http://testserver/projects/{project.pk}/give/"
    # The browser that gave may come back to the thank-you page.
    assert client.get(reverse("donations:thanks", args=[donation.pk])).status_code == 200


def test_a_signed_in_donors_gift_is_linked_to_their_account():
    user = UserFactory()
    donation = start(signed_in(user), open_project())
    assert donation.donor == user


@pytest.mark.parametrize(
    ("publish", "share"),
    [(True, False), (False, True), (False, False), (True, True)],
    ids=["name-only", "contact-only", "neither", "both"],
)
def test_the_consents_are_stored_separately(client, publish, share):
    donation = start(
        client,
        open_project(),
        publish_name="on" if publish else None,
        display_name="さが太郎",
        share_contact="on" if share else None,
    )
    assert (donation.publish_name, donation.share_contact) == (publish, share)
    # A name typed without the publish box is not kept for the wall.
    assert donation.display_name == ("さが太郎" if publish else "")


def test_a_gift_without_a_receipt_needs_no_address(client):
    donation = start(
        client, open_project(), wants_receipt=None, postal_code="", address="", amount="1000"
    )
    assert (donation.wants_receipt, donation.address, donation.amount) == (False, "", 1000)


def test_full_width_digits_and_postal_codes_are_understood(client):
    donation = start(
        client,
        open_project(),
        amount="other",
        other_amount="５，０００",
        postal_code="８４０００４１",
    )
    assert (donation.amount, donation.postal_code) == (5000, "840-0041")


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"amount": "other", "other_amount": "3000.5"}, "other_amount"),
        ({"amount": "other", "other_amount": "abc"}, "other_amount"),
        ({"amount": "other", "other_amount": "-3000"}, "other_amount"),
        ({"amount": "other", "other_amount": "99"}, "other_amount"),
        ({"amount": "other", "other_amount": "10000001"}, "other_amount"),
        ({"amount": "other", "other_amount": ""}, "other_amount"),
        ({"amount": None}, "amount"),
        ({"amount": "2999"}, "amount"),  # not a preset: refused, not trusted
        ({"frequency": "weekly"}, "frequency"),
        ({"email": "not-an-email"}, "email"),
        ({"name": ""}, "name"),
        ({"address": ""}, "address"),  # a receipt needs it
        ({"postal_code": "84-41"}, "postal_code"),
        ({"publish_name": "on", "display_name": ""}, "display_name"),
    ],
    ids=[
        "fraction",
        "letters",
        "negative",
        "below-100",
        "above-10m",
        "other-empty",
        "no-amount",
        "forged-preset",
        "frequency",
        "email",
        "name",
        "address-for-receipt",
        "postal-code",
        "wall-without-name",
    ],
)
def test_bad_input_is_a_form_error_and_creates_nothing(overrides, field):
    project = open_project()
    response = english_client().post(
        reverse("donations:give", args=[project.pk]), give_data(**overrides)
    )
    assert response.status_code == 200
    assert field in response.context["form"].errors
    assert not Donation.objects.exists()
    assert not DonationEvent.objects.exists()


def test_the_amount_error_says_the_range():
    response = english_client().post(
        reverse("donations:give", args=[open_project().pk]),
        give_data(amount="other", other_amount="50"),
    )
    assert "A gift is from ¥100 to ¥10,000,000." in response.content.decode()


def test_the_largest_and_smallest_gifts_are_accepted(client):
    project = open_project()
    assert start(client, project, amount="other", other_amount="100").amount == 100
    assert start(client, project, amount="other", other_amount="10000000").amount == 10_000_000


@pytest.mark.parametrize("state", [Project.State.CLOSED, Project.State.GRANTED])
def test_a_closed_project_takes_no_gift(state):
    project = open_project(state=state)
    client = english_client()
    url = reverse("donations:give", args=[project.pk])
    page = client.get(url)
    assert page.status_code == 200
    assert "Fundraising for this project has ended" in page.content.decode()
    assert "form" not in page.context
    assert client.post(url, give_data()).status_code == 200
    assert not Donation.objects.exists()


def test_a_project_past_its_window_takes_no_gift():
    project = open_project()
    Project.objects.filter(pk=project.pk).update(closes_at=timezone.now() - dt.timedelta(hours=1))
    response = Client().post(reverse("donations:give", args=[project.pk]), give_data())
    assert response.context["giving"] == "ended"
    assert not Donation.objects.exists()


def test_a_project_closing_while_the_donor_fills_the_form_is_a_form_error(monkeypatch):
    project = open_project()
    # The page let the donor in; the service's own check (at the moment of writing) refuses.
    monkeypatch.setattr("donations.views._giving_state", lambda project: "open")
    Project.objects.filter(pk=project.pk).update(state=Project.State.CLOSED)
    response = english_client().post(reverse("donations:give", args=[project.pk]), give_data())
    assert response.status_code == 200
    assert "This project is not taking gifts now." in response.context["form"].non_field_errors()
    assert not Donation.objects.exists()


@pytest.mark.parametrize("state", ["draft", "cancelled"])
def test_a_project_that_is_not_public_is_404(state):
    project = open_project(state=state)
    url = reverse("donations:give", args=[project.pk])
    assert Client().get(url).status_code == 404
    assert Client().post(url, give_data()).status_code == 404
    assert not Donation.objects.exists()


def test_an_unknown_project_is_404():
    response = Client().post(reverse("donations:give", args=[999_999]), give_data())
    assert response.status_code == 404
    assert not Donation.objects.exists()


def test_the_card_testing_limit_answers_429_and_creates_nothing(settings):
    settings.CHECKOUT_LIMIT_PER_IP = 2
    project = open_project()
    client = english_client()
    for i in range(2):
        start(client, project, email=f"donor{i}@example.jp")
    response = client.post(
        reverse("donations:give", args=[project.pk]), give_data(email="donor9@example.jp")
    )
    assert response.status_code == 429
    assert "Too many attempts to give" in response.content.decode()
    assert Donation.objects.count() == 2


def test_behind_a_proxy_the_limit_counts_each_donor_by_the_address_the_proxy_saw(settings):
    """With one trusted proxy, the X-Forwarded-For entry it appended is the donor: two donors
    behind it have a limit each, and an entry a donor adds on the left changes nothing."""
    settings.CHECKOUT_LIMIT_PER_IP = 2
    settings.CHECKOUT_LIMIT_PER_DONOR = 100
    settings.TRUSTED_PROXY_COUNT = 1
    project = open_project()
    url = reverse("donations:give", args=[project.pk])

    def post(forwarded_for: str, n: int) -> int:
        client = Client(HTTP_X_FORWARDED_FOR=forwarded_for)  # a new browser each time
        return client.post(url, give_data(email=f"donor{n}@example.jp")).status_code

    assert [post("203.0.113.7", n) for n in range(2)] == [302, 302]
    assert post("198.51.100.1, 203.0.113.7", 2) == 429  # a forged left entry is not a new donor
    assert post("198.51.100.20", 3) == 302  # another donor behind the same proxy
    assert Donation.objects.count() == 3


def test_without_a_trusted_proxy_a_forwarded_address_is_ignored(settings):
    settings.CHECKOUT_LIMIT_PER_IP = 1
    settings.CHECKOUT_LIMIT_PER_DONOR = 100
    settings.TRUSTED_PROXY_COUNT = 0
    url = reverse("donations:give", args=[open_project().pk])
    first = Client(HTTP_X_FORWARDED_FOR="203.0.113.7").post(url, give_data(email="a@example.jp"))
    second = Client(HTTP_X_FORWARDED_FOR="198.51.100.1").post(url, give_data(email="b@example.jp"))
    assert (first.status_code, second.status_code) == (302, 429)


def test_an_unavailable_payment_service_is_a_form_error(monkeypatch):
    def refuse(self, donation, **kwargs):
        raise ProviderError("connection refused")

    monkeypatch.setattr(DemoProvider, "create_checkout", refuse)
    response = english_client().post(
        reverse("donations:give", args=[open_project().pk]), give_data()
    )
    assert response.status_code == 200
    errors = response.context["form"].non_field_errors()
    assert any("payment service is unavailable" in str(error) for error in errors)
    # The service keeps its failed attempt; nothing is awaiting payment.
    assert list(Donation.objects.values_list("status", flat=True)) == [Status.FAILED]


def test_the_give_form_needs_the_csrf_token():
    client = Client(enforce_csrf_checks=True)
    response = client.post(reverse("donations:give", args=[open_project().pk]), give_data())
    assert response.status_code == 403
    assert not Donation.objects.exists()


def test_the_general_fund_takes_gifts_without_sharing_contact(client):
    response = client.get(reverse("donations:give-general"))
    assert "share_contact" not in response.context["form"].fields
    donation = start(client, None, share_contact="on")
    assert (donation.project, donation.share_contact) == (None, False)


# --- The demo checkout -------------------------------------------------------------------------


def test_the_demo_checkout_shows_the_gift_and_is_marked_demo(client):
    project = open_project(title="干潟を守るプロジェクト")
    donation = start(client, project)
    client.cookies["django_language"] = "en"
    response = client.get(donation.checkout_url)
    content = response.content.decode()
    assert "Demo checkout — no real money moves" in content
    assert "¥3,000" in content
    assert "干潟を守るプロジェクト" in content
    assert 'value="pay_later"' in content


def test_monthly_gifts_have_no_pay_later_at_a_store(client):
    donation = start(client, open_project(), frequency="monthly")
    assert 'value="pay_later"' not in client.get(donation.checkout_url).content.decode()


def test_another_browser_cannot_see_or_act_on_the_demo_checkout(client):
    donation = start(client, open_project())
    stranger = Client()
    assert stranger.get(donation.checkout_url).status_code == 404
    assert pay(stranger, donation).status_code == 404
    assert DemoCheckout.objects.get(donation=donation).status == DemoCheckout.OPEN
    assert not Gift.objects.exists()


def test_an_unknown_demo_session_is_404(client):
    assert client.get(reverse("donations:demo-checkout", args=["demo_cs_nope"])).status_code == 404


def test_paying_leads_to_the_thank_you_page_with_the_gift_received(client):
    project = open_project(goal_yen=100_000)
    donation = start(client, project)
    response = pay(client, donation)
    assert response.status_code == 302
    assert response["Location"] == f"http://testserver/donations/{donation.pk}/thanks/"
    client.cookies["django_language"] = "en"
    thanks = client.get(reverse("donations:thanks", args=[donation.pk]))
    assert thanks.status_code == 200
    donation.refresh_from_db()
    assert donation.status == Status.SUCCEEDED
    content = thanks.content.decode()
    assert "Thank you for your gift" in content
    assert "¥3,000" in content
    assert "Received" in content
    assert thanks.context["progress"].raised == 3000
    assert thanks.context["progress"].donors == 1
    assert reverse("donations:donation", args=[donation.pk]) in content


def test_declining_goes_back_to_the_form_with_a_message(client):
    project = open_project()
    donation = start(client, project)
    response = pay(client, donation, "decline")
    assert response["Location"] == f"http://testserver/projects/{project.pk}/give/"
    page = client.get(response["Location"])
    assert [m.level_tag for m in page.context["messages"]] == ["warning"]
    assert not Gift.objects.exists()


def test_a_konbini_gift_waits_for_the_store_then_counts(client):
    project = open_project()
    donation = start(client, project)
    response = pay(client, donation, "pay_later")
    assert response["Location"].endswith(reverse("donations:thanks", args=[donation.pk]))
    client.cookies["django_language"] = "en"
    thanks = client.get(reverse("donations:thanks", args=[donation.pk]))
    donation.refresh_from_db()
    assert donation.status == Status.AWAITING_PAYMENT
    content = thanks.content.decode()
    assert "convenience store" in content
    assert "Simulate paying at the store" in content
    assert project_progress(project).raised == 0
    response = pay(client, donation, "store_paid")
    assert response["Location"] == reverse("donations:thanks", args=[donation.pk])
    client.get(response["Location"])
    donation.refresh_from_db()
    assert donation.status == Status.SUCCEEDED
    assert project_progress(project).raised == 3000
    page = client.get(reverse("donations:thanks", args=[donation.pk])).content.decode()
    assert "Simulate paying at the store" not in page


def test_an_expired_konbini_voucher_fails_the_gift(client):
    donation = start(client, open_project())
    pay(client, donation, "pay_later")
    pay(client, donation, "store_expired")
    client.cookies["django_language"] = "en"
    page = client.get(reverse("donations:thanks", args=[donation.pk]))
    donation.refresh_from_db()
    assert donation.status == Status.FAILED
    assert "nothing was charged" in page.content.decode()
    assert not Gift.objects.exists()


def test_an_unknown_demo_action_is_refused(client):
    donation = start(client, open_project())
    assert pay(client, donation, "refund_everything").status_code == 400


def test_the_demo_checkout_is_post_only_for_actions(client):
    donation = start(client, open_project())
    client.get(donation.checkout_url, {"action": "pay"})
    assert DemoCheckout.objects.get(donation=donation).status == DemoCheckout.OPEN


# --- The thank-you (return) page ---------------------------------------------------------------


def test_the_return_page_and_the_webhook_record_one_gift(client):
    """The demo's event is stored but (inside the test's transaction) not processed yet: the
    return page confirms first, twice, then the webhook's processing finds nothing to add."""
    donation = start(client, open_project())
    event_id = demo_act(donation.checkout_session_id, "pay")
    assert WebhookEvent.objects.get(pk=event_id).processed_at is None
    url = reverse("donations:thanks", args=[donation.pk])
    assert client.get(url).status_code == 200
    assert client.get(url).status_code == 200
    assert services.process_event(event_id) is True
    assert Gift.objects.count() == 1
    assert JournalEntry.objects.filter(key__startswith="gift:").count() == 1
    donation.refresh_from_db()
    assert donation.status == Status.SUCCEEDED
    assert donation.events.filter(action="paid").get().source == "return-page"


def test_the_return_page_still_renders_when_the_provider_is_down(client, monkeypatch):
    donation = start(client, open_project())

    def down(*args, **kwargs):
        raise ProviderError("timeout")

    monkeypatch.setattr(services, "confirm_checkout", down)
    client.cookies["django_language"] = "en"
    response = client.get(reverse("donations:thanks", args=[donation.pk]))
    assert response.status_code == 200
    assert "Your payment is being confirmed" in response.content.decode()


def test_only_the_donor_sees_the_thank_you_page(client):
    donor = UserFactory()
    donation = start(signed_in(donor), open_project())
    url = reverse("donations:thanks", args=[donation.pk])
    assert Client().get(url).status_code == 404
    assert signed_in(UserFactory()).get(url).status_code == 404
    assert signed_in(donor).get(url).status_code == 200
    assert signed_in(finance()).get(url).status_code == 200
    # The signed link from the email, in any browser; a tampered one is refused.
    token = access.token_for(donation)
    assert Client().get(url, {"t": token}).status_code == 200
    assert Client().get(url, {"t": token[:-2] + "xx"}).status_code == 404
    other = Donation.objects.create(
        amount=1000, provider="demo", email="x@example.jp", name="X", wants_receipt=False
    )
    assert Client().get(url, {"t": access.token_for(other)}).status_code == 404


def test_an_unknown_donation_is_404(client):
    assert client.get(reverse("donations:thanks", args=[uuid.uuid4()])).status_code == 404
    assert client.get(reverse("donations:donation", args=[uuid.uuid4()])).status_code == 404


def test_the_thank_you_page_links_the_receipt_pdf(client, django_capture_on_commit_callbacks):
    donation = start(client, open_project())
    pay(client, donation)
    with django_capture_on_commit_callbacks(execute=True):
        client.get(reverse("donations:thanks", args=[donation.pk]))  # confirms; queues receipt
    receipt = Receipt.objects.get(gift__donation=donation)
    page = client.get(reverse("donations:thanks", args=[donation.pk])).content.decode()
    pdf_url = reverse("donations:receipt-pdf", args=[receipt.pk])
    assert pdf_url in page
    response = client.get(pdf_url)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")
    assert response["Content-Disposition"] == (
        f'attachment; filename="receipt-{receipt.display_number}.pdf"'
    )


# --- The donor's page, monthly gifts ----------------------------------------------------------


def monthly_gift(client: Client) -> Donation:
    donation = start(client, open_project(), frequency="monthly", amount="1000")
    pay(client, donation)
    client.get(reverse("donations:thanks", args=[donation.pk]))
    donation.refresh_from_db()
    assert donation.status == Status.ACTIVE
    return donation


def test_a_monthly_donor_sees_the_next_month_and_cancels(
    client, django_capture_on_commit_callbacks
):
    donation = monthly_gift(client)
    url = reverse("donations:donation", args=[donation.pk])
    client.cookies["django_language"] = "en"
    page = client.get(url).content.decode()
    assert "Simulate next month's payment" in page
    assert reverse("donations:cancel-monthly", args=[donation.pk]) in page
    with django_capture_on_commit_callbacks(execute=True):  # the invoice.paid event's processing
        response = client.post(donation.checkout_url, {"action": "next_month"})
    assert response["Location"] == url
    assert donation.gifts.count() == 2
    response = client.post(reverse("donations:cancel-monthly", args=[donation.pk]), follow=True)
    donation.refresh_from_db()
    assert donation.status == Status.CANCELLED
    assert [m.level_tag for m in response.context["messages"]] == ["success"]
    assert reverse("donations:cancel-monthly", args=[donation.pk]) not in (
        response.content.decode()
    )
    assert DemoCheckout.objects.get(donation=donation).subscription_status == "canceled"


def test_cancelling_is_post_only_and_for_the_donor_only(client):
    donation = monthly_gift(client)
    url = reverse("donations:cancel-monthly", args=[donation.pk])
    assert client.get(url).status_code == 405
    assert Client().post(url).status_code == 404
    assert signed_in(UserFactory()).post(url).status_code == 404
    donation.refresh_from_db()
    assert donation.status == Status.ACTIVE


def test_cancelling_a_one_time_gift_is_refused_with_a_message(client):
    donation = start(client, open_project())
    pay(client, donation)
    response = client.post(reverse("donations:cancel-monthly", args=[donation.pk]), follow=True)
    assert [m.level_tag for m in response.context["messages"]] == ["error"]


def test_a_failed_cancellation_says_so(client, monkeypatch):
    donation = monthly_gift(client)

    def down(self, subscription_id):
        raise ProviderError("timeout")

    monkeypatch.setattr(DemoProvider, "cancel_subscription", down)
    response = client.post(reverse("donations:cancel-monthly", args=[donation.pk]), follow=True)
    assert [m.level_tag for m in response.context["messages"]] == ["error"]
    donation.refresh_from_db()
    assert donation.status == Status.ACTIVE


def test_the_signed_link_lets_a_donor_without_an_account_cancel_from_another_browser(client):
    donation = monthly_gift(client)
    page = client.get(reverse("donations:donation", args=[donation.pk])).content.decode()
    [link] = re.findall(r"http://testserver/donations/[^<\s]+\?t=[^<\s]+", page)
    elsewhere = Client()
    assert elsewhere.get(link).status_code == 200
    elsewhere.post(reverse("donations:cancel-monthly", args=[donation.pk]))
    donation.refresh_from_db()
    assert donation.status == Status.CANCELLED


def test_the_donation_page_shows_refunds_and_the_void_receipt(
    client, django_capture_on_commit_callbacks
):
    donation = start(client, open_project())
    pay(client, donation)
    with django_capture_on_commit_callbacks(execute=True):
        client.get(reverse("donations:thanks", args=[donation.pk]))
    with django_capture_on_commit_callbacks(execute=True):
        services.refund_gift(gift=Gift.objects.get(), amount=1000, actor=finance())
    client.cookies["django_language"] = "en"
    page = client.get(reverse("donations:donation", args=[donation.pk])).content.decode()
    assert "¥1,000 refunded on" in page
    assert "void" in page
    receipts = Receipt.objects.filter(gift__donation=donation)
    assert receipts.filter(voided_at__isnull=False).count() == 1
    assert receipts.filter(voided_at__isnull=True).get().amount == 2000


# --- My gifts, annual summaries, receipts -------------------------------------------------------


def test_my_gifts_needs_signing_in():
    response = Client().get(reverse("donations:my-gifts"))
    assert response.status_code == 302
    assert reverse("account_login") in response["Location"]


def test_my_gifts_lists_gifts_by_account_and_by_verified_email():
    user = verified(UserFactory(email="hanako@example.jp"))
    project = open_project(title="自分の寄附の事業")
    by_account = give(project, 1000, donor=user, email="other@example.jp")
    by_email = give(project, 2000, email="HANAKO@example.jp")
    not_theirs = give(open_project(title="他人の事業"), 5000, email="someone@example.jp")
    response = signed_in(user).get(reverse("donations:my-gifts"))
    assert response.status_code == 200
    shown = {gift.pk for gift, _link in response.context["gifts"]}
    assert shown == {by_account.pk, by_email.pk}
    assert not_theirs.pk not in shown
    # Only the verified address gets an annual summary (the other might be anyone's).
    year = by_email.received_at.year
    assert response.context["summaries"] == [(year, "hanako@example.jp")]
    links = dict((gift.pk, link) for gift, link in response.context["gifts"])
    # Given without signing in, with the verified address: the page lets its owner in.
    assert signed_in(user).get(links[by_email.pk]).status_code == 200
    assert signed_in(UserFactory()).get(links[by_email.pk]).status_code == 404


def test_an_unverified_address_shows_nobody_elses_gifts():
    user = UserFactory(email="hanako@example.jp")  # address not verified
    give(open_project(), 2000, email="hanako@example.jp")
    response = signed_in(user).get(reverse("donations:my-gifts"))
    assert response.context["gifts"] == []


def test_my_gifts_lists_monthly_gifts_with_a_manage_link():
    user = verified(UserFactory())
    client = signed_in(user)
    donation = monthly_gift(client)
    response = client.get(reverse("donations:my-gifts"))
    assert response.context["monthly"] == [
        (donation, reverse("donations:donation", args=[donation.pk]))
    ]


def test_the_annual_summary_is_issued_and_downloaded():
    user = verified(UserFactory(email="hanako@example.jp"))
    gift = give(open_project(), 3000, email="hanako@example.jp")
    give(None, 2000, email="hanako@example.jp")
    year = gift.received_at.year
    client = signed_in(user)
    url = reverse("donations:annual-receipt", args=[year])
    assert client.get(url)["Location"] == reverse("donations:my-gifts")
    response = client.post(url, {"email": "hanako@example.jp"})
    receipt = Receipt.objects.get(kind=Receipt.Kind.ANNUAL)
    assert response["Location"] == reverse("donations:receipt-pdf", args=[receipt.pk])
    assert receipt.amount == 5000
    pdf = client.get(response["Location"])
    assert pdf["Content-Type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")
    # Asking again without any change gives the same summary, not a new number.
    client.post(url, {"email": "hanako@example.jp"})
    assert Receipt.objects.filter(kind=Receipt.Kind.ANNUAL).count() == 1


def test_an_annual_summary_only_for_ones_own_verified_address():
    give(open_project(), 3000, email="someone@example.jp")
    user = verified(UserFactory(email="hanako@example.jp"))
    year = timezone.now().year
    response = signed_in(user).post(
        reverse("donations:annual-receipt", args=[year]), {"email": "someone@example.jp"}
    )
    assert response.status_code == 404
    assert not Receipt.objects.exists()


def test_a_year_without_gifts_is_a_message_not_an_error():
    user = verified(UserFactory())
    response = signed_in(user).post(
        reverse("donations:annual-receipt", args=[2001]), {"email": user.email}, follow=True
    )
    assert [m.level_tag for m in response.context["messages"]] == ["error"]
    assert not Receipt.objects.exists()


def test_who_may_download_a_receipt(django_capture_on_commit_callbacks):
    user = verified(UserFactory(email="hanako@example.jp"))
    with django_capture_on_commit_callbacks(execute=True):
        give(open_project(), 3000, email="hanako@example.jp")
    receipt = Receipt.objects.get()
    url = reverse("donations:receipt-pdf", args=[receipt.pk])
    assert Client().get(url).status_code == 404
    assert signed_in(UserFactory()).get(url).status_code == 404
    assert signed_in(user).get(url).status_code == 200
    assert signed_in(finance()).get(url).status_code == 200
    token = access.token_for(receipt.gift.donation)
    assert Client().get(url, {"t": token}).status_code == 200
    assert Client().get(reverse("donations:receipt-pdf", args=[999_999])).status_code == 404
