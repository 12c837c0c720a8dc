"""Stripe payouts in the ledger and the daily reconciliation, against the local fake Stripe.

Gifts are posted at gross; Stripe keeps 3.6% of each (the fake's fee, rounded down) and pays the
rest to the bank. A ``payout.paid`` event — however often it comes — posts one entry: bank +net,
payment_fees +fees, stripe_receivable −gross. The reconciliation compares Stripe's payouts and
balance with the ledger and lists what differs for finance staff.
"""

import datetime as dt

import pytest
from django.core.exceptions import PermissionDenied
from django.test import Client
from django.urls import reverse
from django.utils import timezone, translation

from accounts.models import FoundationRole, User
from donations import services
from donations.models import (
    Payout,
    ReconciliationDifference,
    ReconciliationRun,
    WebhookEvent,
)
from donations.reconciliation import reconcile, resolve_difference
from donations.tasks import reconcile_stripe_task
from fund.ledger import EntryKind, balance
from fund.models import JournalEntry
from proposals.models import Proposal
from tests.donations.fake_stripe import (
    deliver,
    eager_tasks_fixture,  # noqa: F401
    fake_stripe_fixture,  # noqa: F401
    fee_of,
)
from tests.factories import (
    FoundationRoleFactory,
    MembershipFactory,
    ProjectFactory,
    SiteAdminFactory,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("eager_tasks")]

SITE = "https://civicfund.example"
Kind = ReconciliationDifference.Kind


@pytest.fixture(autouse=True)
def _no_receipt_mail(monkeypatch):
    monkeypatch.setattr("donations.receipt_mail.send_receipt_email", lambda receipt_id: True)


def deliver_all(client, events):
    for event in events:
        response = deliver(client, event)
        assert response.status_code == 200, response.content


def gift_through_stripe(client, fake, project, amount):
    donation = services.donation_start(
        project=project,
        amount=amount,
        frequency="once",
        donor=services.DonorDetails(
            email="hanako@example.jp", name="佐賀 花子", address="佐賀県佐賀市城内1-1-59"
        ),
        user=None,
        success_url=SITE + "/donations/{donation_id}/thanks/",
        cancel_url=SITE + "/projects/",
        rate_limited=False,
    )
    deliver_all(client, fake.pay(donation.checkout_session_id))
    return donation


def paid_out(events):
    (event,) = [e for e in events if e["type"] == "payout.paid"]
    return event


def finance() -> User:
    return FoundationRoleFactory(role=FoundationRole.Role.FINANCE).user


def signed_in(user: User, language: str = "ja") -> Client:
    client = Client()
    client.force_login(user)
    client.cookies["django_language"] = language
    return client


@pytest.fixture
def two_gifts(client, fake_stripe):
    """¥3,000 and ¥12,345 received through Stripe: fees ¥108 + ¥444."""
    project = ProjectFactory()
    gift_through_stripe(client, fake_stripe, project, 3000)
    gift_through_stripe(client, fake_stripe, project, 12_345)
    assert balance("stripe_receivable") == 15_345
    return project


GROSS = 15_345
FEES = fee_of(3000) + fee_of(12_345)
NET = GROSS - FEES


# --- Posting payouts -----------------------------------------------------------------------------


def test_fees_are_whole_yen_rounded_down():
    assert (fee_of(3000), fee_of(12_345), FEES, NET) == (108, 444, 552, 14_793)


def test_a_payout_paid_twice_posts_once(client, fake_stripe, two_gifts):
    event = paid_out(fake_stripe.payout())

    deliver_all(client, [event, event])  # the same event redelivered
    services.process_event(event["id"])  # and processed again: nothing more

    payout = Payout.objects.get()
    assert payout.provider_id == event["data"]["object"]["id"]
    assert (payout.amount, payout.fee_total, payout.gross) == (NET, FEES, GROSS)
    assert payout.status == Payout.Status.PAID
    assert payout.arrival_date == timezone.localdate()
    assert payout.entry_key == f"payout:{payout.provider_id}"
    assert JournalEntry.objects.filter(kind=EntryKind.PAYOUT).count() == 1
    assert balance("bank") == NET
    assert balance("payment_fees") == FEES
    assert balance("stripe_receivable") == 0
    assert WebhookEvent.objects.get(pk=event["id"]).processed_at is not None


def test_a_second_event_for_the_same_payout_posts_nothing_more(client, fake_stripe, two_gifts):
    events = fake_stripe.payout(status="in_transit")
    deliver_all(client, events)  # payout.created: not handled, nothing posted
    assert not Payout.objects.exists()
    payout_id = events[0]["data"]["object"]["id"]

    paid = fake_stripe.payout_paid(payout_id)
    deliver_all(client, paid)
    deliver_all(client, fake_stripe.payout_paid(payout_id))  # a new event id, same payout

    assert JournalEntry.objects.filter(kind=EntryKind.PAYOUT).count() == 1
    assert (balance("bank"), balance("payment_fees")) == (NET, FEES)


def test_a_payout_that_fails_after_it_was_paid_gives_the_net_back(client, fake_stripe, two_gifts):
    event = paid_out(fake_stripe.payout())
    deliver_all(client, [event])
    payout_id = event["data"]["object"]["id"]

    failed = fake_stripe.fail_payout(payout_id)
    deliver_all(client, failed + failed)

    payout = Payout.objects.get()
    assert payout.status == Payout.Status.FAILED
    assert payout.reversal_key == f"payout:{payout_id}:failed"
    assert balance("bank") == 0
    assert balance("payment_fees") == FEES  # Stripe keeps its fees
    assert balance("stripe_receivable") == NET  # back at Stripe, in the next payout

    deliver_all(client, [paid_out(fake_stripe.payout())])
    assert balance("bank") == NET
    assert balance("stripe_receivable") == 0
    assert reconcile().outcome == ReconciliationRun.Outcome.CLEAN


def test_a_payout_that_fails_before_it_was_posted_posts_its_fees(client, fake_stripe, two_gifts):
    events = fake_stripe.payout(status="in_transit")
    payout_id = events[0]["data"]["object"]["id"]

    deliver_all(client, fake_stripe.fail_payout(payout_id))

    assert Payout.objects.get().status == Payout.Status.FAILED
    assert (balance("bank"), balance("payment_fees")) == (0, FEES)
    assert balance("stripe_receivable") == NET


def test_a_refund_is_carried_by_the_payout(client, fake_stripe, two_gifts):
    gift = two_gifts.gifts.get(amount=3000)
    deliver_all(client, fake_stripe.refund_in_dashboard(gift.payment_intent_id, 1000))
    assert balance("stripe_receivable") == GROSS - 1000

    deliver_all(client, [paid_out(fake_stripe.payout())])

    assert balance("bank") == NET - 1000
    assert balance("payment_fees") == FEES
    assert balance("stripe_receivable") == 0


# --- Reconciliation ------------------------------------------------------------------------------


def test_the_fakes_payout_reconciles_without_differences(client, fake_stripe, two_gifts):
    before = reconcile()  # gifts not paid out yet: Stripe holds them net of fees
    assert before.outcome == ReconciliationRun.Outcome.CLEAN, list(before.found.values())

    deliver_all(client, [paid_out(fake_stripe.payout())])
    run = reconcile()

    assert run.outcome == ReconciliationRun.Outcome.CLEAN, list(run.found.values())
    assert (run.payouts_checked, run.differences) == (1, 0)
    assert (run.stripe_balance, run.ledger_receivable) == (0, 0)
    assert not ReconciliationDifference.objects.exists()
    requests = [r.path for r in fake_stripe.requests if r.method == "GET"]
    assert "/v1/balance" in requests and "/v1/payouts" in requests


def test_a_payout_missing_from_the_ledger_is_a_difference(client, fake_stripe, two_gifts):
    event = paid_out(fake_stripe.payout())  # the webhook never arrived
    payout_id = event["data"]["object"]["id"]

    run = reconcile()

    assert run.outcome == ReconciliationRun.Outcome.DIFFERENCES
    found = {d.kind: d for d in run.found.all()}
    assert set(found) == {Kind.MISSING, Kind.BALANCE}
    assert found[Kind.MISSING].reference == payout_id
    assert (found[Kind.MISSING].stripe_amount, found[Kind.MISSING].ledger_amount) == (NET, None)
    # Stripe paid the net out; the ledger still holds it as receivable.
    assert found[Kind.BALANCE].ledger_amount - found[Kind.BALANCE].stripe_amount == NET

    # Posted now (the stored event re-driven): a second run of the date finds nothing.
    deliver_all(client, [event])
    again = reconcile()
    assert again.outcome == ReconciliationRun.Outcome.CLEAN
    assert not ReconciliationDifference.objects.exists()


def test_a_changed_fee_is_a_difference(client, fake_stripe, two_gifts):
    event = paid_out(fake_stripe.payout())
    deliver_all(client, [event])
    payout_id = event["data"]["object"]["id"]
    # Stripe corrects a fee on one of the payout's transactions after we posted it.
    (charge_txn, *_rest) = [
        o
        for o in fake_stripe.objects.values()
        if o["object"] == "balance_transaction" and o["_payout"] == payout_id and o["fee"]
    ]
    charge_txn["fee"] += 10

    run = reconcile()

    (difference,) = run.found.all()
    assert difference.kind == Kind.FEES
    assert (difference.stripe_amount, difference.ledger_amount) == (FEES + 10, FEES)
    assert difference.reference == payout_id


def test_a_rerun_of_the_same_day_replaces_open_differences(client, fake_stripe, two_gifts):
    paid_out(fake_stripe.payout())  # not posted: two differences
    reconcile()
    reconcile()
    assert ReconciliationDifference.objects.count() == 2
    assert ReconciliationRun.objects.count() == 2

    difference = ReconciliationDifference.objects.get(kind=Kind.MISSING)
    resolve_difference(difference=difference, actor=finance())
    run = reconcile()

    assert ReconciliationDifference.objects.count() == 2
    assert ReconciliationDifference.objects.get(kind=Kind.MISSING).resolved
    assert run.differences == 1  # only the open one is new


def test_the_window_starts_at_the_last_run(fake_stripe):
    today = timezone.localdate()
    from donations.reconciliation import DEFAULT_WINDOW_DAYS, window_start

    assert window_start(today) == today - dt.timedelta(days=DEFAULT_WINDOW_DAYS)
    ReconciliationRun.objects.create(
        day=today - dt.timedelta(days=2), outcome=ReconciliationRun.Outcome.CLEAN
    )
    assert window_start(today) == today - dt.timedelta(days=2)


DEMO_NOTE = {
    "ja": "照合する対象はありません（デモ決済）。",
    "en": "Nothing to reconcile (demo provider).",
}


def test_the_demo_provider_has_nothing_to_reconcile(settings):
    settings.STRIPE_SECRET_KEY = ""

    with translation.override("ja"):  # whatever language the worker has active
        assert reconcile_stripe_task.delay().get() == ReconciliationRun.Outcome.NOTHING

    run = ReconciliationRun.objects.get()
    # A code, not the worker's words: each reader gets the note in their own language.
    assert (run.note_code, run.note) == (ReconciliationRun.Note.DEMO_PROVIDER, "")
    for language, note in DEMO_NOTE.items():
        with translation.override(language):
            assert run.note_text == note
    assert not ReconciliationDifference.objects.exists()


def test_stripe_unreachable_is_a_failed_run_not_a_crash(fake_stripe):
    fake_stripe.stop()

    with translation.override("ja"):
        run = reconcile()

    assert run.outcome == ReconciliationRun.Outcome.FAILED
    # Stored untranslated whoever ran it, worded for each reader.
    assert run.note == "Stripe could not be reached. Please try again later."
    with translation.override("ja"):
        assert run.note_text.startswith("Stripeに接続できませんでした。")
    with translation.override("en"):
        assert run.note_text == run.note


def test_the_differences_figures_are_stored_not_words(client, fake_stripe, two_gifts):
    paid_out(fake_stripe.payout())  # not posted: missing, and the balance differs
    arrival = timezone.localdate().isoformat()

    with translation.override("ja"):
        reconcile()

    found = {d.kind: d for d in ReconciliationDifference.objects.all()}
    assert found[Kind.MISSING].figures == {"arrival_date": arrival, "fees": FEES}
    assert found[Kind.MISSING].detail == ""
    balance_figures = found[Kind.BALANCE].figures
    assert set(balance_figures) == {"held", "in_flight", "fees"}
    assert sum(balance_figures.values()) == found[Kind.BALANCE].stripe_amount
    with translation.override("en"):
        assert found[Kind.MISSING].detail_text == f"Paid out on {arrival}; fees ¥{FEES:,}."
        assert found[Kind.BALANCE].detail_text.startswith("Stripe balance ¥")
    with translation.override("ja"):
        assert found[Kind.MISSING].detail_text == f"{arrival}に入金、手数料 ¥{FEES:,}。"
        assert found[Kind.BALANCE].detail_text.startswith("Stripeの残高 ¥")


def test_only_finance_may_run_it():
    with pytest.raises(PermissionDenied):
        reconcile(actor=FoundationRoleFactory(role=FoundationRole.Role.PROGRAMME_OFFICER).user)
    assert not ReconciliationRun.objects.exists()


# --- The finance page ----------------------------------------------------------------------------

URL = "/staff/reconciliation/"


def test_the_page_lists_runs_differences_and_payouts_in_yen(client, fake_stripe, two_gifts):
    deliver_all(client, [paid_out(fake_stripe.payout())])
    gift_through_stripe(client, fake_stripe, two_gifts, 12_345)
    paid_out(fake_stripe.payout())  # not posted
    reconcile()

    response = signed_in(finance()).get(reverse("donations:staff-reconciliation"))

    assert reverse("donations:staff-reconciliation") == URL
    assert response.status_code == 200
    html = response.content.decode()
    assert "¥14,793" in html  # the first payout, net
    assert "¥552" in html  # its fees
    assert f"¥{12_345 - fee_of(12_345):,}" in html  # the one missing from the ledger
    # Japanese UI (this page's own strings wait for the catalogue: English msgids until then)
    assert '<html lang="ja">' in html
    assert 'name="run"' in html  # finance may run it
    assert response["Cache-Control"] == "private, no-store"


def test_finance_runs_it_and_resolves_a_difference(client, fake_stripe, two_gifts):
    paid_out(fake_stripe.payout())
    staff = signed_in(finance())

    response = staff.post(URL, {"run": "1"})
    assert response.status_code == 302
    run = ReconciliationRun.objects.get()
    assert run.started_by is not None and run.differences == 2

    difference = ReconciliationDifference.objects.get(kind=Kind.MISSING)
    response = staff.post(URL, {"resolve": difference.pk})
    assert response.status_code == 302
    difference.refresh_from_db()
    assert difference.resolved and difference.resolved_by == run.started_by


def test_a_site_admin_may_run_it(fake_stripe):
    response = signed_in(SiteAdminFactory()).post(URL, {"run": "1"})
    assert response.status_code == 302
    assert ReconciliationRun.objects.get().outcome == ReconciliationRun.Outcome.CLEAN


def test_other_foundation_staff_read_only(fake_stripe):
    officer = signed_in(FoundationRoleFactory(role=FoundationRole.Role.PROGRAMME_OFFICER).user)

    response = officer.get(URL)
    assert response.status_code == 200
    assert 'name="run"' not in response.content.decode()
    assert officer.post(URL, {"run": "1"}).status_code == 403
    assert not ReconciliationRun.objects.exists()


def test_the_page_is_403_for_a_cso_member():
    assert signed_in(MembershipFactory().user).get(URL).status_code == 403


@pytest.mark.parametrize("runner_language", ["en", "ja"])
def test_the_page_shows_a_run_in_the_readers_language(settings, runner_language):
    settings.STRIPE_SECRET_KEY = ""
    runner = signed_in(finance(), language=runner_language)
    response = runner.post(URL, {"run": "1"}, follow=True)
    # Told at once, in the runner's language.
    assert DEMO_NOTE[runner_language] in response.content.decode()

    # The same stored row, read by an English and a Japanese reader.
    for language, note in DEMO_NOTE.items():
        html = signed_in(finance(), language=language).get(URL).content.decode()
        assert note in html
        other = DEMO_NOTE["ja" if language == "en" else "en"]
        assert other not in html


def test_the_page_words_a_difference_for_its_reader(client, fake_stripe, two_gifts):
    paid_out(fake_stripe.payout())  # not posted
    signed_in(finance(), language="en").post(URL, {"run": "1"})
    arrival = timezone.localdate().isoformat()

    english = signed_in(finance(), language="en").get(URL).content.decode()
    japanese = signed_in(finance(), language="ja").get(URL).content.decode()

    assert f"Paid out on {arrival}; fees ¥{FEES:,}." in english
    assert f"{arrival}に入金、手数料 ¥{FEES:,}。" in japanese
    assert "Paid out on" not in japanese


def test_a_payouts_pending_is_not_a_budgets_pending():
    # The budget's "Pending" is 未定 (not decided yet); a payout's is on its way.
    with translation.override("ja"):
        assert str(Proposal.BudgetProvision.PENDING.label) == "未定"
        assert str(Payout.Status.PENDING.label) != "未定"
