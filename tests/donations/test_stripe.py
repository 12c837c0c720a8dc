"""Gifts through Stripe: the real SDK over HTTP against the local fake (``fake_stripe``).

Each test plays what happens at Stripe (the donor pays, the store takes the konbini money, a
month passes, a bank opens a dispute…) and delivers the events Stripe would send, signed, to
our webhook — twice and out of order where Stripe could — then checks what a donor, the
foundation's finance staff and the ledger rely on.
"""

import datetime as dt

import pytest
from django.core.exceptions import ValidationError

from donations import services
from donations.models import Donation, Gift, Receipt, Refund, WebhookEvent
from donations.providers import ProviderError, _stripe_provider, get_provider
from fund.checks import run_checks
from fund.ledger import balance, designated
from fund.selectors import project_progress
from tests.donations.fake_stripe import (
    API_VERSION,
    deliver,
    eager_tasks_fixture,  # noqa: F401
    fake_stripe_fixture,  # noqa: F401
)
from tests.factories import FoundationRoleFactory, ProjectFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("eager_tasks")]

SITE = "https://civicfund.example"


@pytest.fixture(autouse=True)
def _no_receipt_mail(monkeypatch):
    # Receipts are issued (what is checked here); drawing and mailing the PDF is tested with
    # the receipts.
    monkeypatch.setattr("donations.receipt_mail.send_receipt_email", lambda receipt_id: True)


def start(project, amount=3000, frequency="once", email="hanako@example.jp", **donor):
    return services.donation_start(
        project=project,
        amount=amount,
        frequency=frequency,
        donor=services.DonorDetails(
            email=email, name="佐賀 花子", address="佐賀県佐賀市城内1-1-59", **donor
        ),
        user=None,
        success_url=SITE + "/donations/{donation_id}/thanks/",
        cancel_url=SITE + "/projects/",
        rate_limited=False,
    )


def deliver_all(client, events):
    for event in events:
        response = deliver(client, event)
        assert response.status_code == 200, response.content


def only(events, event_type):
    (event,) = [e for e in events if e["type"] == event_type]
    return event


def create_request(fake):
    (request,) = fake.requests_to("POST", "/v1/checkout/sessions")
    return request


def finance_user():
    return FoundationRoleFactory(role="finance").user


# --- One-time gifts ------------------------------------------------------------------------------


def test_a_card_gift_opens_a_checkout_in_whole_yen_with_our_ids_and_one_key(fake_stripe):
    project = ProjectFactory()

    donation = start(project, amount=3000)

    request = create_request(fake_stripe)
    params = request.params
    assert params["mode"] == "payment"
    assert params["line_items"] == [
        {
            "quantity": "1",
            "price_data": {
                "currency": "jpy",
                "unit_amount": "3000",  # ¥3,000 — JPY has no minor unit, never ×100
                "product_data": {"name": project.title},
            },
        }
    ]
    assert params["allowed_payment_method_types"] == ["card", "konbini"]
    assert "payment_method_types" not in params
    ours = {"donation_id": str(donation.id), "project_id": str(project.pk)}
    assert params["metadata"] == ours
    assert params["payment_intent_data"] == {"metadata": ours}
    assert params["client_reference_id"] == str(donation.id)
    assert params["customer_email"] == "hanako@example.jp"
    assert params["success_url"] == f"{SITE}/donations/{donation.id}/thanks/"
    assert request.idempotency_key == f"checkout:{donation.id}"
    assert request.headers["Stripe-Version"] == API_VERSION
    assert donation.checkout_session_id == fake_stripe.session(donation.checkout_session_id)["id"]
    assert donation.checkout_url.startswith("https://checkout.stripe.com/")
    assert donation.provider == Donation.Provider.STRIPE


def test_a_general_fund_gift_says_so_at_stripe(fake_stripe):
    donation = start(None, amount=700)

    params = create_request(fake_stripe).params
    assert params["metadata"] == {"donation_id": str(donation.id), "project_id": "general"}
    assert params["line_items"][0]["price_data"]["unit_amount"] == "700"
    assert params["line_items"][0]["price_data"]["product_data"]["name"]


def test_opening_the_same_checkout_twice_gets_the_same_session(fake_stripe):
    donation = start(ProjectFactory())
    provider = get_provider(Donation.Provider.STRIPE)

    again = provider.create_checkout(
        donation,
        success_url=f"{SITE}/donations/{donation.id}/thanks/",
        cancel_url=f"{SITE}/projects/",
    )

    assert again == (donation.checkout_session_id, donation.checkout_url)
    assert len(fake_stripe.requests_to("POST", "/v1/checkout/sessions")) == 2
    assert len(fake_stripe._of_type("checkout.session")) == 1


def test_a_paid_card_checkout_is_one_gift_whatever_arrives_twice(fake_stripe, client):
    project = ProjectFactory()
    donation = start(project, amount=3000)

    events = fake_stripe.pay(donation.checkout_session_id)
    deliver_all(client, events)
    deliver_all(client, events)  # Stripe delivers at least once
    services.confirm_checkout(donation.checkout_session_id, source="return-page")

    donation.refresh_from_db()
    assert donation.status == Donation.Status.SUCCEEDED
    gift = donation.gifts.get()
    intent = fake_stripe.intent_of(donation.checkout_session_id)
    assert (gift.payment_id, gift.payment_intent_id) == (intent["id"], intent["id"])
    assert gift.amount == 3000
    assert gift.received_at.tzinfo is not None
    assert abs(gift.received_at - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=5)
    assert balance(designated(project)) == 3000
    assert project_progress(project).raised == 3000
    assert Receipt.objects.filter(gift=gift).count() == 1
    # Every event is stored once and processed, also the types we do not act on.
    assert WebhookEvent.objects.count() == len(events)
    assert not WebhookEvent.objects.filter(processed_at__isnull=True).exists()
    assert fake_stripe.refusals == []  # Stripe accepted every request we made
    assert run_checks() == {}


def test_a_paid_one_time_checkout_event_is_settled_by_its_signed_copy_without_a_fetch(
    fake_stripe, client
):
    """Complete and paid cannot change: the signed event is enough (and a busy day stays under
    Stripe's rate limit). An event whose copy is not settled is fetched."""
    paid = start(ProjectFactory(), amount=4000, email="a@example.jp")
    session_path = f"/v1/checkout/sessions/{paid.checkout_session_id}"
    deliver(client, only(fake_stripe.pay(paid.checkout_session_id), "checkout.session.completed"))
    assert paid.gifts.get().amount == 4000
    assert fake_stripe.requests_to("GET", session_path) == []

    later = start(ProjectFactory(), amount=2000, email="b@example.jp")
    deliver_all(client, fake_stripe.pay(later.checkout_session_id, method="konbini"))
    later.refresh_from_db()
    assert later.status == Donation.Status.AWAITING_PAYMENT  # unpaid copy: fetched
    assert fake_stripe.requests_to("GET", f"/v1/checkout/sessions/{later.checkout_session_id}")


def test_a_checkout_the_donor_abandons_expires_without_a_gift(fake_stripe, client):
    donation = start(ProjectFactory())

    deliver_all(client, fake_stripe.expire(donation.checkout_session_id))

    donation.refresh_from_db()
    assert donation.status == Donation.Status.EXPIRED
    assert not Gift.objects.exists()


def test_stripe_refusing_the_checkout_fails_the_donation_with_a_safe_message(fake_stripe, settings):
    settings.STRIPE_SECRET_KEY = "sk_test_revoked"
    _stripe_provider.cache_clear()

    with pytest.raises(ProviderError) as refused:
        start(ProjectFactory())

    assert "sk_test" not in str(refused.value)
    assert Donation.objects.get().status == Donation.Status.FAILED


def test_a_session_stripe_does_not_know_is_a_provider_error(fake_stripe):
    with pytest.raises(ProviderError):
        get_provider(Donation.Provider.STRIPE).checkout_state("cs_test_unknown")


# --- Konbini -------------------------------------------------------------------------------------


def test_konbini_is_awaited_then_a_gift_when_paid_at_the_store(fake_stripe, client):
    project = ProjectFactory()
    donation = start(project, amount=5000)

    deliver_all(client, fake_stripe.pay(donation.checkout_session_id, method="konbini"))

    donation.refresh_from_db()
    assert donation.status == Donation.Status.AWAITING_PAYMENT
    assert not Gift.objects.exists()
    assert project_progress(project).raised == 0

    paid = fake_stripe.store_paid(donation.checkout_session_id)
    deliver_all(client, paid)
    deliver_all(client, paid)

    donation.refresh_from_db()
    assert donation.status == Donation.Status.SUCCEEDED
    gift = donation.gifts.get()
    assert gift.amount == 5000
    assert gift.payment_intent_id == fake_stripe.intent_of(donation.checkout_session_id)["id"]
    assert project_progress(project).raised == 5000
    assert run_checks() == {}


@pytest.mark.parametrize("intent_status", ["requires_payment_method", "canceled"])
def test_a_konbini_voucher_that_expires_unpaid_fails_the_donation(
    fake_stripe, client, intent_status
):
    donation = start(ProjectFactory(), amount=5000)
    deliver_all(client, fake_stripe.pay(donation.checkout_session_id, method="konbini"))

    deliver_all(
        client, fake_stripe.store_expired(donation.checkout_session_id, intent_status=intent_status)
    )

    donation.refresh_from_db()
    assert donation.status == Donation.Status.FAILED
    assert not Gift.objects.exists()


def test_the_store_payment_arriving_before_the_voucher_event_ends_the_same(fake_stripe, client):
    donation = start(ProjectFactory(), amount=5000)
    voucher = fake_stripe.pay(donation.checkout_session_id, method="konbini")
    paid = fake_stripe.store_paid(donation.checkout_session_id)

    deliver_all(client, paid)
    deliver_all(client, voucher)  # late: the state fetched now says paid

    donation.refresh_from_db()
    assert donation.status == Donation.Status.SUCCEEDED
    assert donation.gifts.count() == 1


# --- Monthly gifts -------------------------------------------------------------------------------


def test_a_monthly_gift_is_a_subscription_in_whole_yen_with_our_ids(fake_stripe):
    project = ProjectFactory()

    donation = start(project, amount=1000, frequency="monthly")

    params = create_request(fake_stripe).params
    assert params["mode"] == "subscription"
    assert params["allowed_payment_method_types"] == ["card"]
    assert params["line_items"][0]["price_data"] == {
        "currency": "jpy",
        "unit_amount": "1000",
        "recurring": {"interval": "month"},
        "product_data": {"name": project.title},
    }
    ours = {"donation_id": str(donation.id), "project_id": str(project.pk)}
    assert params["metadata"] == ours
    assert params["subscription_data"] == {"metadata": ours}
    assert "payment_intent_data" not in params


def test_each_paid_invoice_is_one_gift_and_the_end_cancels(fake_stripe, client):
    project = ProjectFactory()
    donation = start(project, amount=1000, frequency="monthly")
    first = fake_stripe.pay(donation.checkout_session_id)
    subscription_id = fake_stripe.subscription_of(donation.checkout_session_id)

    # The first invoice's event before the checkout's: the subscription's metadata finds us.
    deliver(client, only(first, "invoice.paid"))
    deliver(client, only(first, "invoice.paid"))
    deliver_all(client, first)

    donation.refresh_from_db()
    assert donation.status == Donation.Status.ACTIVE
    assert donation.subscription_id == subscription_id
    gift = donation.gifts.get()
    invoice = fake_stripe.objects[only(first, "invoice.paid")["data"]["object"]["id"]]
    assert gift.payment_id == invoice["id"]
    (payment,) = fake_stripe._of_type("invoice_payment", invoice=invoice["id"])
    assert gift.payment_intent_id == payment["payment"]["payment_intent"]
    assert gift.amount == 1000

    second = fake_stripe.next_invoice(subscription_id)
    deliver_all(client, second)
    deliver_all(client, second)

    assert donation.gifts.count() == 2
    assert project_progress(project).raised == 2000
    assert Receipt.objects.filter(gift__donation=donation).count() == 2

    deliver_all(client, fake_stripe.end_subscription(subscription_id))

    donation.refresh_from_db()
    assert donation.status == Donation.Status.CANCELLED
    assert donation.gifts.count() == 2
    assert fake_stripe.refusals == []
    assert run_checks() == {}


def test_a_failed_instalment_puts_the_gift_past_due_until_the_next_is_paid(fake_stripe, client):
    donation = start(ProjectFactory(), amount=1000, frequency="monthly")
    deliver_all(client, fake_stripe.pay(donation.checkout_session_id))
    subscription_id = fake_stripe.subscription_of(donation.checkout_session_id)

    deliver_all(client, fake_stripe.next_invoice(subscription_id, paid=False))

    donation.refresh_from_db()
    assert donation.status == Donation.Status.PAST_DUE
    assert donation.gifts.count() == 1
    assert donation.events.filter(action="instalment_failed").exists()

    deliver_all(client, fake_stripe.next_invoice(subscription_id))

    donation.refresh_from_db()
    assert donation.status == Donation.Status.ACTIVE
    assert donation.gifts.count() == 2


def test_the_donor_cancelling_twice_cancels_once_at_stripe(fake_stripe, client):
    donation = start(ProjectFactory(), amount=1000, frequency="monthly")
    deliver_all(client, fake_stripe.pay(donation.checkout_session_id))
    donation.refresh_from_db()

    services.cancel_monthly(donation=donation, actor=None, holds_donor_link=True)
    # A second click from another tab: Stripe refuses to cancel twice; that is fine.
    get_provider(Donation.Provider.STRIPE).cancel_subscription(donation.subscription_id)

    donation.refresh_from_db()
    assert donation.status == Donation.Status.CANCELLED
    assert fake_stripe.objects[donation.subscription_id]["status"] == "canceled"
    path = f"/v1/subscriptions/{donation.subscription_id}"
    assert len(fake_stripe.requests_to("DELETE", path)) == 2
    deliver_all(client, fake_stripe.end_subscription(donation.subscription_id))
    donation.refresh_from_db()
    assert donation.status == Donation.Status.CANCELLED


# --- Refunds and disputes ------------------------------------------------------------------------


def paid_gift(fake, client, project, amount=3000):
    donation = start(project, amount=amount, email=f"donor-{amount}@example.jp")
    deliver_all(client, fake.pay(donation.checkout_session_id))
    return donation.gifts.get()


def test_staff_refund_partly_then_fully_each_once_despite_the_webhook(fake_stripe, client):
    project = ProjectFactory()
    gift = paid_gift(fake_stripe, client, project)
    finance = finance_user()

    refund = services.refund_gift(gift=gift, amount=1000, actor=finance)

    (request,) = fake_stripe.requests_to("POST", "/v1/refunds")
    assert request.params == {"payment_intent": gift.payment_intent_id, "amount": "1000"}
    assert request.idempotency_key == f"refund:{gift.pk}:0:1000"
    gift.refresh_from_db()
    assert gift.refunded_amount == 1000
    assert gift.state == Gift.State.PARTIALLY_REFUNDED
    assert refund.provider_refund_id == fake_stripe._of_type("refund")[0]["id"]
    # Stripe then sends charge.refunded for the refund we made: nothing is recorded twice.
    deliver(client, fake_stripe.refunded_event(gift.payment_intent_id))
    assert Refund.objects.count() == 1
    assert balance(designated(project)) == 2000

    services.refund_gift(gift=gift, amount=2000, actor=finance)
    refunded = fake_stripe.refunded_event(gift.payment_intent_id)
    deliver(client, refunded)
    deliver(client, refunded)

    gift.refresh_from_db()
    assert gift.refunded_amount == 3000
    assert gift.state == Gift.State.REFUNDED
    assert Refund.objects.count() == 2
    assert balance(designated(project)) == 0
    assert project_progress(project).raised == 0
    assert not Receipt.objects.filter(gift=gift, voided_at__isnull=True).exists()
    assert run_checks() == {}


def test_a_double_submitted_refund_asks_stripe_with_the_same_key_and_records_once(
    fake_stripe, client
):
    project = ProjectFactory()
    gift = paid_gift(fake_stripe, client, project)
    provider = get_provider(Donation.Provider.STRIPE)
    key = f"refund:{gift.pk}:0:3000"

    first = provider.refund(
        payment_intent_id=gift.payment_intent_id, amount=3000, idempotency_key=key
    )
    second = provider.refund(
        payment_intent_id=gift.payment_intent_id, amount=3000, idempotency_key=key
    )

    assert first == second
    assert len(fake_stripe._of_type("refund")) == 1


def test_a_refund_beyond_the_gift_is_refused_before_asking_stripe(fake_stripe, client):
    gift = paid_gift(fake_stripe, client, ProjectFactory())

    with pytest.raises(ValidationError):
        services.refund_gift(gift=gift, amount=3001, actor=finance_user())

    assert fake_stripe.requests_to("POST", "/v1/refunds") == []


def test_a_refund_stripe_refuses_is_a_provider_error_and_records_nothing(fake_stripe, client):
    gift = paid_gift(fake_stripe, client, ProjectFactory())
    fake_stripe.refund_in_dashboard(gift.payment_intent_id, 3000)  # not yet told to us

    with pytest.raises(ProviderError):
        services.refund_gift(gift=gift, amount=1000, actor=finance_user())

    assert not Refund.objects.exists()


def test_a_refund_made_in_the_dashboard_is_recorded_once(fake_stripe, client):
    project = ProjectFactory()
    gift = paid_gift(fake_stripe, client, project)

    events = fake_stripe.refund_in_dashboard(gift.payment_intent_id, 500)
    deliver_all(client, events)
    deliver_all(client, events)

    gift.refresh_from_db()
    assert gift.refunded_amount == 500
    assert Refund.objects.get().amount == 500
    assert balance(designated(project)) == 2500
    assert run_checks() == {}


def test_all_of_many_refunds_are_read_past_the_first_page(fake_stripe, client):
    project = ProjectFactory()
    gift = paid_gift(fake_stripe, client, project, amount=12000)
    for _ in range(11):  # an expanded list holds 10
        fake_stripe.refund_in_dashboard(gift.payment_intent_id, 1000)

    deliver(client, fake_stripe.refunded_event(gift.payment_intent_id))

    gift.refresh_from_db()
    assert gift.refunded_amount == 11000
    assert Refund.objects.count() == 11
    assert run_checks() == {}


def test_a_dispute_flags_the_gift_and_a_lost_one_takes_the_money_back_once(fake_stripe, client):
    project = ProjectFactory()
    gift = paid_gift(fake_stripe, client, project)

    (opened,) = fake_stripe.dispute(gift.payment_intent_id)
    deliver(client, opened)

    gift.refresh_from_db()
    assert gift.disputed
    assert balance(designated(project)) == 3000

    dispute_id = opened["data"]["object"]["id"]
    (lost,) = fake_stripe.close_dispute(dispute_id, "lost")
    deliver(client, lost)
    deliver(client, lost)
    deliver(client, opened)  # a late redelivery of the opening changes nothing

    gift.refresh_from_db()
    assert not gift.disputed
    assert gift.refunded_amount == 3000
    refund = Refund.objects.get()
    assert (refund.provider_refund_id, refund.reason) == (f"dispute:{dispute_id}", "dispute_lost")
    assert balance(designated(project)) == 0
    assert run_checks() == {}


def test_a_won_dispute_clears_the_flag_and_keeps_the_money(fake_stripe, client):
    project = ProjectFactory()
    gift = paid_gift(fake_stripe, client, project)
    (opened,) = fake_stripe.dispute(gift.payment_intent_id)
    deliver(client, opened)

    deliver_all(client, fake_stripe.close_dispute(opened["data"]["object"]["id"], "won"))

    gift.refresh_from_db()
    assert not gift.disputed
    assert gift.refunded_amount == 0
    assert balance(designated(project)) == 3000


# --- Events out of order -------------------------------------------------------------------------


def test_checkout_events_in_any_order_end_in_the_state_stripe_has(fake_stripe, client):
    donation = start(ProjectFactory(), amount=1000, frequency="monthly")
    first = fake_stripe.pay(donation.checkout_session_id)
    subscription_id = fake_stripe.subscription_of(donation.checkout_session_id)
    second = fake_stripe.next_invoice(subscription_id)

    # Month two's invoice, then month one's, then the checkout: each fetched state is current.
    deliver_all(client, second)
    deliver(client, only(first, "invoice.paid"))
    deliver(client, only(first, "checkout.session.completed"))

    donation.refresh_from_db()
    assert donation.status == Donation.Status.ACTIVE
    assert donation.gifts.count() == 2
    assert run_checks() == {}


def retry_unprocessed():
    """What the task's retry (or the periodic re-drive) does for an event that failed."""
    for event_id in WebhookEvent.objects.filter(processed_at__isnull=True).values_list(
        "pk", flat=True
    ):
        services.process_event(event_id)


def test_a_refund_told_before_the_payment_is_recorded_once_the_gift_is(fake_stripe, client):
    project = ProjectFactory()
    donation = start(project)
    paid = fake_stripe.pay(donation.checkout_session_id)
    intent_id = fake_stripe.intent_of(donation.checkout_session_id)["id"]
    refunded = fake_stripe.refund_in_dashboard(intent_id, 1000)

    deliver_all(client, refunded)
    deliver_all(client, paid)
    retry_unprocessed()

    gift = donation.gifts.get()
    assert gift.refunded_amount == 1000
    assert balance(designated(project)) == 2000
    assert not WebhookEvent.objects.filter(processed_at__isnull=True).exists()


def test_a_dispute_told_before_the_payment_flags_the_gift_once_recorded(fake_stripe, client):
    donation = start(ProjectFactory())
    paid = fake_stripe.pay(donation.checkout_session_id)
    opened = fake_stripe.dispute(fake_stripe.intent_of(donation.checkout_session_id)["id"])

    deliver_all(client, opened)
    deliver_all(client, paid)
    retry_unprocessed()

    assert donation.gifts.get().disputed


def test_a_subscription_ended_before_its_checkout_event_stays_ended(fake_stripe, client):
    donation = start(ProjectFactory(), amount=1000, frequency="monthly")
    first = fake_stripe.pay(donation.checkout_session_id)
    ended = fake_stripe.end_subscription(fake_stripe.subscription_of(donation.checkout_session_id))

    deliver_all(client, ended)
    deliver_all(client, first)
    retry_unprocessed()

    donation.refresh_from_db()
    assert donation.status == Donation.Status.CANCELLED
