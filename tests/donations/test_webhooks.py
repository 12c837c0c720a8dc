"""Stripe's webhook: only genuine, recent, signed events are stored; each is acted on once.

Signatures are made here exactly as Stripe makes them (``fake_stripe.sign``: HMAC-SHA256 of
``"{timestamp}.{raw body}"`` with the endpoint's secret), and the requests go through a test
client that enforces CSRF, as a browser-less sender meets the site.
"""

import json
import random
import time
from collections import Counter

import pytest
from django.db.models import F, Sum
from django.test import Client

from donations.models import Donation, Gift, Receipt, Refund, WebhookEvent
from fund.checks import run_checks
from fund.ledger import EntryKind
from fund.models import JournalEntry
from tests.donations.fake_stripe import (
    WEBHOOK_PATH,
    WEBHOOK_SECRET,
    deliver,
    eager_tasks_fixture,  # noqa: F401
    fake_stripe_fixture,  # noqa: F401
    sign,
)
from tests.donations.test_stripe import start
from tests.factories import ProjectFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("eager_tasks")]


@pytest.fixture
def stripe_client():
    return Client(enforce_csrf_checks=True)


@pytest.fixture(autouse=True)
def _no_receipt_mail(monkeypatch):
    monkeypatch.setattr("donations.receipt_mail.send_receipt_email", lambda receipt_id: True)


def an_event(event_type="checkout.session.completed", object_id="cs_test_unknown"):
    return {
        "id": f"evt_test_{time.monotonic_ns()}",
        "object": "event",
        "type": event_type,
        "data": {"object": {"id": object_id, "object": "checkout.session"}},
    }


def post(client, body: bytes, signature: str | None):
    headers = {"HTTP_STRIPE_SIGNATURE": signature} if signature is not None else {}
    return client.post(WEBHOOK_PATH, data=body, content_type="application/json", **headers)


# --- Signatures ----------------------------------------------------------------------------------


def test_a_signed_event_is_stored_and_acknowledged(fake_stripe, stripe_client):
    event = an_event("customer.created")  # a type we do not act on: stored, acknowledged

    response = deliver(stripe_client, event)

    assert response.status_code == 200
    stored = WebhookEvent.objects.get()
    assert (stored.id, stored.type, stored.provider) == (event["id"], event["type"], "stripe")
    assert stored.payload == event
    assert stored.processed_at is not None


def test_a_signature_with_several_v1_values_passes_if_one_matches(fake_stripe, stripe_client):
    # While a secret is being rolled, Stripe signs with the old and the new one.
    body = json.dumps(an_event("customer.created")).encode()
    good = sign(body)
    other = sign(body, secret="whsec_old")
    header = f"{good},v1={other.split('v1=')[1]}"

    assert post(stripe_client, body, header).status_code == 200


BAD_DELIVERIES = {
    "tampered body": lambda body: (body.replace(b"customer", b"charge"), sign(body)),
    "wrong secret": lambda body: (body, sign(body, secret="whsec_someone_else")),
    "stale timestamp": lambda body: (body, sign(body, timestamp=int(time.time()) - 301)),
    "missing header": lambda body: (body, None),
    "empty header": lambda body: (body, ""),
    "garbled header": lambda body: (body, "t=abc,v1="),
    "not JSON": lambda body: (b"<xml/>", sign(b"<xml/>")),
    "not an event": lambda body: (b'{"id": 1}', sign(b'{"id": 1}')),
    "a list": lambda body: (b"[1, 2]", sign(b"[1, 2]")),
    "data not an object": lambda body: (
        b'{"id": "evt_1", "type": "x", "data": []}',
        sign(b'{"id": "evt_1", "type": "x", "data": []}'),
    ),
    "not UTF-8": lambda body: (b"\xff\xfe", sign(b"\xff\xfe")),
}


@pytest.mark.parametrize("case", BAD_DELIVERIES)
def test_a_delivery_that_is_not_a_genuine_recent_event_is_refused_and_not_stored(
    fake_stripe, stripe_client, case
):
    body, signature = BAD_DELIVERIES[case](json.dumps(an_event("customer.created")).encode())

    response = post(stripe_client, body, signature)

    assert response.status_code == 400
    assert len(response.content) < 100
    assert not WebhookEvent.objects.exists()


def test_without_a_configured_secret_nothing_is_accepted(fake_stripe, stripe_client, settings):
    settings.STRIPE_WEBHOOK_SECRET = ""

    assert deliver(stripe_client, an_event()).status_code == 400
    assert not WebhookEvent.objects.exists()


def test_a_recent_timestamp_within_the_tolerance_is_accepted(fake_stripe, stripe_client):
    response = deliver(
        stripe_client, an_event("customer.created"), timestamp=int(time.time()) - 290
    )

    assert response.status_code == 200


def test_only_post_is_answered(fake_stripe, stripe_client):
    assert stripe_client.get(WEBHOOK_PATH).status_code == 405


def test_the_secret_is_the_configured_one(fake_stripe, stripe_client, settings):
    settings.STRIPE_WEBHOOK_SECRET = "whsec_rotated"
    event = an_event("customer.created")

    assert deliver(stripe_client, event).status_code == 400
    assert deliver(stripe_client, event, secret="whsec_rotated").status_code == 200
    assert WEBHOOK_SECRET != "whsec_rotated"


# --- A thousand events, each three times, in any order ------------------------------------------


def test_a_thousand_events_delivered_three_times_in_random_order_act_once_each(
    fake_stripe, stripe_client
):
    rng = random.Random(20261028)
    projects = [ProjectFactory(goal_yen=100_000_000) for _ in range(4)] + [None]
    counter = iter(range(100_000))

    def donation(amount=3000, frequency="once"):
        return start(
            rng.choice(projects),
            amount=amount,
            frequency=frequency,
            email=f"donor{next(counter)}@example.jp",
        )

    # First the payments (800 events)…
    events, card_gifts = [], []
    for _ in range(400):
        d = donation()
        events.append(fake_stripe.pay(d.checkout_session_id)[-1])  # the completion only
        card_gifts.append(d)
    for _ in range(60):
        d = donation()
        events += fake_stripe.pay(d.checkout_session_id)  # charge, intent, completion
        card_gifts.append(d)
    konbini_paid = [donation(amount=5000) for _ in range(20)]
    for d in konbini_paid:
        events += fake_stripe.pay(d.checkout_session_id, method="konbini")
        events += fake_stripe.store_paid(d.checkout_session_id)
    konbini_expired = [donation(amount=5000) for _ in range(10)]
    for d in konbini_expired:
        events += fake_stripe.pay(d.checkout_session_id, method="konbini")
        events += fake_stripe.store_expired(d.checkout_session_id)
    monthly = [donation(amount=1000, frequency="monthly") for _ in range(20)]
    for d in monthly:
        events += fake_stripe.pay(d.checkout_session_id)
        events += fake_stripe.next_invoice(fake_stripe.subscription_of(d.checkout_session_id))
    assert len(events) == 800
    deliveries = events * 3
    rng.shuffle(deliveries)
    for event in deliveries:
        assert deliver(stripe_client, event).status_code == 200

    # …then refunds and disputes on those gifts (200 events), also each three times.
    intent_of = {d.pk: fake_stripe.intent_of(d.checkout_session_id)["id"] for d in card_gifts}
    refunded, lost, won = card_gifts[:25], card_gifts[25:50], card_gifts[50:75]
    later = []
    for d in refunded:
        later += fake_stripe.refund_in_dashboard(intent_of[d.pk], 1000)
        later += fake_stripe.refund_in_dashboard(intent_of[d.pk], 500)
    for group, outcome in ((lost, "lost"), (won, "won")):
        for d in group:
            (opened,) = fake_stripe.dispute(intent_of[d.pk])
            later += [opened, *fake_stripe.close_dispute(opened["data"]["object"]["id"], outcome)]
    assert len(later) == 200
    deliveries = later * 3
    rng.shuffle(deliveries)
    for event in deliveries:
        assert deliver(stripe_client, event).status_code == 200

    # Every event stored once and acted on once.
    assert WebhookEvent.objects.count() == 1000
    assert set(WebhookEvent.objects.values_list("attempts", flat=True)) == {1}
    assert not WebhookEvent.objects.filter(processed_at__isnull=True).exists()
    # One gift per payment: each one-time payment intent, each paid invoice.
    paid_intents = {intent_of[d.pk] for d in card_gifts} | {
        fake_stripe.intent_of(d.checkout_session_id)["id"] for d in konbini_paid
    }
    paid_invoices = {o["id"] for o in fake_stripe._of_type("invoice", status="paid")}
    assert len(paid_invoices) == 40
    assert set(Gift.objects.values_list("payment_id", flat=True)) == paid_intents | paid_invoices
    assert Gift.objects.count() == len(paid_intents) + len(paid_invoices) == 520
    # One ledger entry per gift and per refund.
    assert JournalEntry.objects.filter(kind=EntryKind.GIFT_SUCCEEDED).count() == 520
    assert Refund.objects.count() == 25 * 2 + 25
    assert JournalEntry.objects.filter(kind=EntryKind.GIFT_REFUNDED).count() == 75
    refunded_ids = [d.pk for d in refunded]
    assert set(
        Gift.objects.filter(donation__in=refunded_ids).values_list("refunded_amount", flat=True)
    ) == {1500}
    assert set(
        Gift.objects.filter(donation__in=[d.pk for d in lost]).values_list("state", flat=True)
    ) == {Gift.State.REFUNDED}
    assert not Gift.objects.filter(disputed=True).exists()
    assert Gift.objects.filter(donation__in=[d.pk for d in won], refunded_amount=0).count() == 25
    # One live receipt for every gift with money left; none for one fully given back.
    live = Counter(
        Receipt.objects.filter(kind="single", voided_at__isnull=True).values_list("gift", flat=True)
    )
    with_money = set(
        Gift.objects.filter(amount__gt=F("refunded_amount")).values_list("pk", flat=True)
    )
    assert set(live) == with_money and set(live.values()) == {1}
    # Each donation ended where Stripe says it is.
    statuses = Counter(Donation.objects.values_list("status", flat=True))
    assert statuses == {
        Donation.Status.SUCCEEDED: 460 + 20,
        Donation.Status.FAILED: 10,
        Donation.Status.ACTIVE: 20,
    }
    raised = Gift.objects.aggregate(net=Sum(F("amount") - F("refunded_amount")))["net"]
    assert raised == 460 * 3000 + 20 * 5000 + 40 * 1000 - 25 * 1500 - 25 * 3000
    assert fake_stripe.refusals == []
    assert run_checks() == {}
