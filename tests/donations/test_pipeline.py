"""The gift pipeline end to end through the demo provider, and each event type's handling
against a scripted provider (what Stripe would answer when the object is fetched).

The Stripe SDK itself over HTTP is tested in test_stripe.py; the webhook's signature and
redelivery in test_webhooks.py.
"""

import datetime as dt
import threading
import time

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.utils import timezone

from donations import services
from donations.models import Donation, DonationEvent, Gift, Refund, WebhookEvent
from donations.providers import (
    ChargeState,
    CheckoutState,
    DisputeState,
    InvoiceState,
    Payment,
    RefundState,
    demo_act,
)
from fund.checks import run_checks
from fund.ledger import balance, designated
from fund.models import JournalEntry, Project
from fund.selectors import project_progress
from tests.factories import (
    DonationFactory,
    FoundationRoleFactory,
    ProjectFactory,
    UserFactory,
    give,
)

# transaction=True: the pipeline queues its tasks after commit, so tests must really commit.
pytestmark = pytest.mark.django_db(transaction=True)


def start(project, amount=3000, frequency="once", email="hanako@example.jp", **donor):
    donor = {"name": "佐賀 花子", "address": "佐賀県佐賀市", **donor}
    return services.donation_start(
        project=project,
        amount=amount,
        frequency=frequency,
        donor=services.DonorDetails(email=email, **donor),
        user=None,
        success_url="/donations/{donation_id}/thanks/",
        cancel_url="/projects/",
    )


def entries(kind):
    return JournalEntry.objects.filter(kind=kind).count()


# --- Through the demo provider ------------------------------------------------------------------


def test_a_paid_demo_checkout_is_one_gift_one_entry_and_counts_as_raised():
    project = ProjectFactory()
    donation = start(project)
    assert donation.status == Donation.Status.PENDING
    assert donation.checkout_url.startswith("/checkout/demo/")

    event_id = demo_act(donation.checkout_session_id, "pay")

    assert WebhookEvent.objects.get(pk=event_id).processed_at is not None
    donation.refresh_from_db()
    assert donation.status == Donation.Status.SUCCEEDED
    gift = donation.gifts.get()
    assert gift.amount == 3000 and gift.project == project
    assert balance(designated(project)) == 3000
    assert balance("stripe_receivable") == 3000
    assert project_progress(project).raised == 3000
    # A second click, and the return page confirming again, change nothing.
    assert demo_act(donation.checkout_session_id, "pay") is None
    services.confirm_checkout(donation.checkout_session_id, source="return-page")
    assert Gift.objects.count() == 1 and entries("gift_succeeded") == 1
    actions = list(donation.events.values_list("action", flat=True))
    assert actions == ["start", "gift_received", "paid"]


def test_declined_checkout_expires_and_records_no_money():
    donation = start(ProjectFactory())
    demo_act(donation.checkout_session_id, "decline")
    donation.refresh_from_db()
    assert donation.status == Donation.Status.EXPIRED
    assert not Gift.objects.exists() and not JournalEntry.objects.exists()


def test_konbini_gift_waits_for_the_store_then_succeeds_or_fails():
    project = ProjectFactory()
    paid_later = start(project, amount=2000, email="a@example.jp")
    demo_act(paid_later.checkout_session_id, "pay_later")
    paid_later.refresh_from_db()
    assert paid_later.status == Donation.Status.AWAITING_PAYMENT
    assert not Gift.objects.exists()
    demo_act(paid_later.checkout_session_id, "store_paid")
    paid_later.refresh_from_db()
    assert paid_later.status == Donation.Status.SUCCEEDED

    never_paid = start(project, amount=5000, email="b@example.jp")
    demo_act(never_paid.checkout_session_id, "pay_later")
    demo_act(never_paid.checkout_session_id, "store_expired")
    never_paid.refresh_from_db()
    assert never_paid.status == Donation.Status.FAILED
    assert project_progress(project).raised == 2000


def test_monthly_gift_is_one_gift_per_paid_month_until_cancelled():
    project = ProjectFactory()
    donation = start(project, amount=1000, frequency="monthly")
    demo_act(donation.checkout_session_id, "pay")
    demo_act(donation.checkout_session_id, "next_month")
    demo_act(donation.checkout_session_id, "next_month")
    donation.refresh_from_db()
    assert donation.status == Donation.Status.ACTIVE
    assert donation.gifts.count() == 3
    assert project_progress(project).raised == 3000

    services.cancel_monthly(donation=donation, actor=None, holds_donor_link=True)
    donation.refresh_from_db()
    assert donation.status == Donation.Status.CANCELLED
    assert demo_act(donation.checkout_session_id, "next_month") is None


def test_only_the_donor_or_staff_may_cancel_a_monthly_gift():
    donation = start(ProjectFactory(), amount=1000, frequency="monthly")
    demo_act(donation.checkout_session_id, "pay")
    for stranger in (None, UserFactory()):
        with pytest.raises(PermissionDenied):
            services.cancel_monthly(donation=donation, actor=stranger)
    donation.refresh_from_db()
    assert donation.status == Donation.Status.ACTIVE
    staff = FoundationRoleFactory(role="programme_officer").user
    services.cancel_monthly(donation=donation, actor=staff)
    assert donation.events.get(action="cancelled").actor == staff


def test_the_general_fund_takes_undesignated_gifts():
    donation = start(None, amount=10_000)
    demo_act(donation.checkout_session_id, "pay")
    assert balance("general_fund") == 10_000


@pytest.mark.parametrize("amount", [99, 10_000_001, 0, -100, 3000.5, "3000", True, None], ids=repr)
def test_bad_amounts_are_refused_and_write_nothing(amount):
    with pytest.raises(ValidationError):
        start(ProjectFactory(), amount=amount)
    assert not Donation.objects.exists()


@pytest.mark.parametrize("state", ["draft", "closed", "granted", "cancelled"])
def test_a_project_not_open_takes_no_gifts(state):
    with pytest.raises(ValidationError):
        start(ProjectFactory(state=state))
    assert not Donation.objects.exists()


def test_a_project_outside_its_window_takes_no_gifts():
    now = timezone.now()
    ended = ProjectFactory(opens_at=now - dt.timedelta(days=30), closes_at=now - dt.timedelta(1))
    with pytest.raises(ValidationError):
        start(ended)
    assert not Donation.objects.exists()


def test_card_testing_limits_stop_the_sixth_checkout_from_one_email(settings):
    settings.CHECKOUT_LIMIT_PER_DONOR = 5
    project = ProjectFactory()
    for _ in range(5):
        start(project, email="tester@example.jp")
    with pytest.raises(services.TooManyAttempts):
        start(project, email="TESTER@example.jp")
    assert Donation.objects.count() == 5


def test_card_testing_limit_per_ip(settings):
    settings.CHECKOUT_LIMIT_PER_IP = 2
    project = ProjectFactory()
    for n in range(2):
        services.donation_start(
            project=project,
            amount=1000,
            frequency="once",
            donor=services.DonorDetails(email=f"d{n}@example.jp", name="x", wants_receipt=False),
            user=None,
            success_url="/",
            cancel_url="/",
            ip="203.0.113.9",
        )
    with pytest.raises(services.TooManyAttempts):
        services.donation_start(
            project=project,
            amount=1000,
            frequency="once",
            donor=services.DonorDetails(email="d9@example.jp", name="x", wants_receipt=False),
            user=None,
            success_url="/",
            cancel_url="/",
            ip="203.0.113.9",
        )


def test_a_receipt_needs_a_name_and_address():
    with pytest.raises(ValidationError):
        start(ProjectFactory(), name="", address="")
    donation = start(ProjectFactory(), name="", address="", wants_receipt=False)
    assert donation.pk


def test_close_at_goal_closes_the_project_with_the_gift_that_reaches_it():
    project = ProjectFactory(goal_yen=5000, close_at_goal=True)
    give(project, 3000)
    project.refresh_from_db()
    assert project.state == Project.State.OPEN
    give(project, 2000)
    project.refresh_from_db()
    assert project.state == Project.State.CLOSED
    event = project.events.get(action="close")
    assert event.actor is None and event.source.startswith("gift:")


# --- Refunds ------------------------------------------------------------------------------------


def finance():
    return FoundationRoleFactory(role="finance").user


def test_staff_refunds_full_and_partial_reverse_the_ledger_once():
    project = ProjectFactory()
    gift = give(project, 5000)
    officer = finance()
    services.refund_gift(gift=gift, amount=2000, actor=officer)
    gift.refresh_from_db()
    assert (gift.refunded_amount, gift.state) == (2000, Gift.State.PARTIALLY_REFUNDED)
    assert project_progress(project).raised == 3000
    services.refund_gift(gift=gift, amount=3000, actor=officer)
    gift.refresh_from_db()
    assert (gift.refunded_amount, gift.state) == (5000, Gift.State.REFUNDED)
    assert balance(designated(project)) == 0
    assert entries("gift_refunded") == 2
    with pytest.raises(ValidationError):
        services.refund_gift(gift=gift, amount=1, actor=officer)
    assert Refund.objects.count() == 2


def test_a_refund_larger_than_what_is_left_writes_nothing():
    gift = give(ProjectFactory(), 5000)
    with pytest.raises(ValidationError):
        services.refund_gift(gift=gift, amount=5001, actor=finance())
    assert not Refund.objects.exists() and entries("gift_refunded") == 0


def test_only_finance_staff_may_refund():
    gift = give(ProjectFactory(), 5000)
    for role in ("programme_officer", "approver"):
        with pytest.raises(PermissionDenied):
            services.refund_gift(gift=gift, amount=100, actor=FoundationRoleFactory(role=role).user)
    assert not Refund.objects.exists()


# --- Events from a provider we script -----------------------------------------------------------


class ScriptedProvider:
    """Answers as Stripe would when an object is fetched; tests set what it holds."""

    name = "stripe"

    def __init__(self):
        self.sessions, self.invoices, self.subscriptions = {}, {}, {}
        self.charges, self.disputes = {}, {}

    def checkout_state(self, session_id):
        return self.sessions[session_id]

    def settled_checkout(self, session, event_created):
        return None  # these tests script what a fetch answers

    def invoice_state(self, invoice_id):
        return self.invoices[invoice_id]

    def subscription_status(self, subscription_id):
        return self.subscriptions[subscription_id]

    def charge_state(self, charge_id):
        return self.charges[charge_id]

    def dispute_state(self, dispute_id):
        return self.disputes[dispute_id]

    def cancel_subscription(self, subscription_id):
        self.subscriptions[subscription_id] = "canceled"

    def refund(self, *, payment_intent_id, amount, idempotency_key):
        # Stripe answers a repeated idempotency key with the same refund.
        return RefundState(f"re_{idempotency_key}", amount, "succeeded")


@pytest.fixture
def provider(monkeypatch):
    scripted = ScriptedProvider()
    monkeypatch.setattr(services, "get_provider", lambda name=None: scripted)
    return scripted


def stripe_donation(**fields):
    fields.setdefault("checkout_session_id", f"cs_{Donation.objects.count() + 1}")
    return DonationFactory(provider="stripe", wants_receipt=False, **fields)


def deliver(event_type, object_id, event_id=None):
    event_id = event_id or f"evt_{WebhookEvent.objects.count() + 1}"
    services.store_event(
        provider="stripe",
        event_id=event_id,
        event_type=event_type,
        payload={"id": event_id, "type": event_type, "data": {"object": {"id": object_id}}},
    )
    return WebhookEvent.objects.get(pk=event_id)


def paid(payment_id, amount=3000):
    return Payment(
        payment_id=payment_id,
        payment_intent_id=payment_id,
        amount=amount,
        received_at=timezone.now(),
    )


def test_a_redelivered_event_is_stored_and_processed_once(provider):
    donation = stripe_donation()
    provider.sessions["cs_1"] = CheckoutState(
        "cs_1", str(donation.pk), "complete", "paid", payment=paid("pi_1")
    )
    for _ in range(3):
        deliver("checkout.session.completed", "cs_1", event_id="evt_same")
    event = WebhookEvent.objects.get()
    assert event.attempts == 1 and event.processed_at
    assert Gift.objects.count() == 1


def test_an_event_trusts_the_fetched_state_not_its_own_type(provider):
    """checkout.session.completed arriving after the session was fetched as expired (or the
    other way round) ends where the provider says."""
    donation = stripe_donation()
    provider.sessions["cs_1"] = CheckoutState("cs_1", str(donation.pk), "open", "unpaid")
    deliver("checkout.session.completed", "cs_1")
    donation.refresh_from_db()
    assert donation.status == Donation.Status.PENDING  # the session is not complete yet
    provider.sessions["cs_1"] = CheckoutState(
        "cs_1", str(donation.pk), "complete", "paid", payment=paid("pi_1")
    )
    deliver("checkout.session.expired", "cs_1")  # a stale event: the session is paid
    donation.refresh_from_db()
    assert donation.status == Donation.Status.SUCCEEDED


def test_invoice_paid_before_the_checkout_event_still_records_one_gift(provider):
    donation = stripe_donation(frequency="monthly", amount=1000)
    provider.invoices["in_1"] = InvoiceState(
        "in_1", "sub_1", str(donation.pk), True, paid("in_1", 1000)
    )
    deliver("invoice.paid", "in_1")
    provider.sessions["cs_1"] = CheckoutState(
        "cs_1", str(donation.pk), "complete", "paid", "sub_1", paid("in_1", 1000)
    )
    deliver("checkout.session.completed", "cs_1")
    donation.refresh_from_db()
    assert donation.subscription_id == "sub_1"
    assert donation.status == Donation.Status.ACTIVE
    assert donation.gifts.count() == 1


def test_failed_instalment_and_subscription_end(provider):
    donation = stripe_donation(
        frequency="monthly", amount=1000, subscription_id="sub_1", status="active"
    )
    provider.invoices["in_2"] = InvoiceState("in_2", "sub_1", str(donation.pk), False, None)
    provider.subscriptions["sub_1"] = "past_due"
    deliver("invoice.payment_failed", "in_2")
    donation.refresh_from_db()
    assert donation.status == Donation.Status.PAST_DUE
    assert donation.events.filter(action="instalment_failed").exists()
    provider.subscriptions["sub_1"] = "canceled"
    deliver("customer.subscription.deleted", "sub_1")
    donation.refresh_from_db()
    assert donation.status == Donation.Status.CANCELLED
    provider.subscriptions["sub_1"] = "active"  # a stale update cannot revive it
    deliver("customer.subscription.updated", "sub_1")
    donation.refresh_from_db()
    assert donation.status == Donation.Status.CANCELLED


def test_charge_refunded_records_each_refund_once(provider):
    project = ProjectFactory()
    gift = give(project, 5000, payment_id="pi_9")
    provider.charges["ch_9"] = ChargeState("ch_9", "pi_9", [RefundState("re_1", 1000, "succeeded")])
    deliver("charge.refunded", "ch_9")
    provider.charges["ch_9"] = ChargeState(
        "ch_9",
        "pi_9",
        [
            RefundState("re_1", 1000, "succeeded"),
            RefundState("re_2", 500, "succeeded"),
            RefundState("re_3", 700, "pending"),
        ],
    )
    deliver("charge.refunded", "ch_9")
    deliver("charge.refunded", "ch_9")
    gift.refresh_from_db()
    assert gift.refunded_amount == 1500
    assert sorted(Refund.objects.values_list("provider_refund_id", flat=True)) == ["re_1", "re_2"]
    assert project_progress(project).raised == 3500


def test_a_staff_refund_then_its_charge_refunded_event_records_it_once(provider):
    gift = give(ProjectFactory(), 5000, payment_id="pi_7")
    refund = services.refund_gift(gift=gift, amount=1200, actor=finance())
    provider.charges["ch_7"] = ChargeState(
        "ch_7", "pi_7", [RefundState(refund.provider_refund_id, 1200, "succeeded")]
    )
    deliver("charge.refunded", "ch_7")
    gift.refresh_from_db()
    assert gift.refunded_amount == 1200
    assert Refund.objects.count() == 1 and entries("gift_refunded") == 1


def test_a_lost_dispute_gives_the_money_back_once_and_a_won_one_clears_the_flag(provider):
    project = ProjectFactory()
    lost = give(project, 4000, payment_id="pi_lost")
    won = give(project, 2000, payment_id="pi_won")
    provider.disputes["dp_1"] = DisputeState("dp_1", "pi_lost", 4000, "needs_response")
    provider.disputes["dp_2"] = DisputeState("dp_2", "pi_won", 2000, "needs_response")
    deliver("charge.dispute.created", "dp_1")
    deliver("charge.dispute.created", "dp_2")
    lost.refresh_from_db()
    assert lost.disputed
    provider.disputes["dp_1"] = DisputeState("dp_1", "pi_lost", 4000, "lost")
    provider.disputes["dp_2"] = DisputeState("dp_2", "pi_won", 2000, "won")
    for _ in range(2):
        deliver("charge.dispute.closed", "dp_1")
        deliver("charge.dispute.closed", "dp_2")
    lost.refresh_from_db()
    won.refresh_from_db()
    assert (lost.disputed, lost.state, lost.refunded_amount) == (False, "refunded", 4000)
    assert (won.disputed, won.refunded_amount) == (False, 0)
    assert Refund.objects.get().reason == Refund.Reason.DISPUTE_LOST
    assert project_progress(project).raised == 2000


def test_a_failing_event_keeps_its_error_and_is_processed_on_the_next_try(provider):
    donation = stripe_donation()
    # The provider cannot answer yet (nothing scripted): the event stays stored, unprocessed.
    event = deliver("checkout.session.completed", "cs_1", event_id="evt_x")
    assert event.processed_at is None and event.attempts == 1 and "KeyError" in event.last_error
    provider.sessions["cs_1"] = CheckoutState(
        "cs_1", str(donation.pk), "complete", "paid", payment=paid("pi_1")
    )
    assert services.process_event("evt_x") is True
    assert services.process_event("evt_x") is False
    event.refresh_from_db()
    assert event.processed_at and event.attempts == 2 and event.last_error == ""
    assert Gift.objects.count() == 1


def test_unhandled_event_types_are_stored_and_marked_processed(provider):
    event = deliver("customer.created", "cus_1")
    event.refresh_from_db()
    assert event.processed_at is not None


# --- The ledger check sees what the pipeline guards ---------------------------------------------


@pytest.mark.ledger_left_broken
def test_check_ledger_reports_a_gift_without_its_entry_and_an_entry_without_its_gift():
    gift = give(ProjectFactory(), 3000, payment_id="pi_a")
    JournalEntry.objects.get(key="gift:pi_a").postings.all().delete()
    JournalEntry.objects.filter(key="gift:pi_a").delete()
    problems = run_checks()["one payment = one gift = one ledger group"]
    assert any("pi_a" in p and "no ledger entry" in p for p in problems)
    give(ProjectFactory(), 1000, payment_id="pi_b")
    Gift.objects.filter(payment_id="pi_b").update(amount=999)
    problems = run_checks()["one payment = one gift = one ledger group"]
    assert any("pi_b" in p for p in problems)
    assert gift.pk


# --- The one confirm step, twice at once (PostgreSQL) -------------------------------------------


def _confirm_at_once(session_id: str, clients: int = 8) -> list[BaseException]:
    barrier = threading.Barrier(clients)
    errors = []

    def client():
        try:
            connection.ensure_connection()
            barrier.wait()
            services.confirm_checkout(session_id, source="race")
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_return_page_and_webhook_confirming_at_once_record_one_gift_and_one_history_row():
    donation = start(ProjectFactory(), email="race@example.jp", wants_receipt=False)
    demo_act(donation.checkout_session_id, "pay")  # its event is processed eagerly too
    assert _confirm_at_once(donation.checkout_session_id) == []
    assert Gift.objects.count() == 1
    assert DonationEvent.objects.filter(action="paid").count() == 1
    assert run_checks() == {}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_control_without_the_donation_lock_the_confirm_step_writes_twice(monkeypatch):
    """The same race with the row lock turned off: clients that all read "pending" each
    write the status change, so the history records the payment more than once. (The gift
    itself stays single: its unique payment id is the second line of defence.)"""
    donation = start(ProjectFactory(), email="race2@example.jp", wants_receipt=False)
    # The demo session is paid, but no event is processed: only the racing clients confirm.
    checkout = donation.demo_checkout
    checkout.status, checkout.payment_status = "complete", "paid"
    checkout.paid_at, checkout.payment_intent_id = timezone.now(), "demo_pi_race"
    checkout.save()
    real_set_status = services._set_status

    def unlocked(*, donation_id=None, **lookup):
        query = Donation.objects.all()
        return query.get(pk=donation_id) if donation_id else query.get(**lookup)

    def slow_set_status(*args, **kwargs):
        time.sleep(0.2)  # widen the window between reading the status and writing it
        return real_set_status(*args, **kwargs)

    monkeypatch.setattr(services, "_lock_donation", unlocked)
    monkeypatch.setattr(services, "_set_status", slow_set_status)
    assert _confirm_at_once(donation.checkout_session_id) == []
    assert Gift.objects.count() == 1
    assert DonationEvent.objects.filter(action="paid").count() > 1
