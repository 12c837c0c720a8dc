"""The daily reconciliation with Stripe: payouts and the balance against the ledger.

``reconcile(day=…)`` (run by beat each morning, or by finance staff from
``/staff/reconciliation/``) compares, for the payouts that arrived since the last run (at most
``MAX_WINDOW_DAYS`` back; ``DEFAULT_WINDOW_DAYS`` before the first run):

- each paid payout at Stripe with its ledger entry ``payout:<id>``: missing from the ledger, the
  amount paid to the bank differs, the fees (its balance transactions') differ;
- each payout the ledger has as paid in the window that Stripe does not list;
- the ledger's stripe_receivable with what Stripe holds. The ledger holds gifts at gross until
  they are paid out; Stripe's balance (available + pending) is net of its fees and no longer
  holds what is on its way to the bank. So the ledger should equal Stripe's balance + payouts
  not yet paid (in flight) + the fees of balance transactions not carried by a posted payout
  (those created in the last ``FEE_LOOKBACK_DAYS``).

Differences are stored as rows for the date; a second run on the same date replaces that date's
open differences (those finance resolved stay, and are not raised again). Each run writes a
``ReconciliationRun`` with its counts. With the demo provider there is nothing to reconcile.

Nothing is stored translated: the scheduled run has no reader, and staff of either language read
the same rows. Runs store a note code, differences their figures; the models word them for the
reader (``note_text``, ``detail_text``).
"""

import datetime as dt
import logging
from dataclasses import dataclass

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from accounts.models import User
from accounts.policy import may
from fund.ledger import balance
from fund.models import Posting

from .models import Donation, Payout, ReconciliationDifference, ReconciliationRun
from .payouts import BANK, PAYMENT_FEES, STRIPE_RECEIVABLE, payout_entry_key, payout_reversal_key
from .providers import ProviderError, configured_provider_name
from .stripe_api import StripeProvider, stripe_provider

log = logging.getLogger(__name__)

RUN = "gift.refund"  # finance staff (or a site admin) may run it from the page
DEFAULT_WINDOW_DAYS = 7
MAX_WINDOW_DAYS = 31
# Stripe JP pays out at least monthly: what is older and still unpaid shows as a difference.
FEE_LOOKBACK_DAYS = 35
IN_FLIGHT = (Payout.Status.PENDING, Payout.Status.IN_TRANSIT)

Kind = ReconciliationDifference.Kind
Outcome = ReconciliationRun.Outcome


@dataclass(frozen=True)
class Found:
    kind: str
    reference: str
    stripe_amount: int | None
    ledger_amount: int | None
    figures: dict | None = None


def window_start(day: dt.date) -> dt.date:
    """From the last run's date before ``day`` (that date again: a payout can arrive after the
    run), else ``DEFAULT_WINDOW_DAYS`` back; never more than ``MAX_WINDOW_DAYS``."""
    last = (
        ReconciliationRun.objects.filter(
            day__lt=day, outcome__in=[Outcome.CLEAN, Outcome.DIFFERENCES]
        )
        .order_by("-day")
        .values_list("day", flat=True)
        .first()
    )
    start = last or day - dt.timedelta(days=DEFAULT_WINDOW_DAYS)
    return max(start, day - dt.timedelta(days=MAX_WINDOW_DAYS))


def reconcile(*, day: dt.date | None = None, actor: User | None = None) -> ReconciliationRun:
    """Compare Stripe with the ledger for ``day`` (today in Japan by default) and store what
    differs. ``actor`` None is the scheduled run; a person needs ``gift.refund``."""
    if actor is not None and not may(actor, RUN):
        raise PermissionDenied(_("Only finance staff may run the reconciliation."))
    day = day or timezone.localdate()
    if configured_provider_name() != Donation.Provider.STRIPE:
        return ReconciliationRun.objects.create(
            day=day,
            outcome=Outcome.NOTHING,
            note_code=ReconciliationRun.Note.DEMO_PROVIDER,
            started_by=actor,
        )
    since = window_start(day)
    try:
        # Untranslated: a provider's message is stored as its msgid, translated when shown.
        with translation.override(None):
            found, checked, stripe_side, ledger_side = _compare(
                stripe_provider(), day=day, since=since
            )
    except ProviderError as error:
        log.warning("reconciliation %s: %s", day, error)
        return ReconciliationRun.objects.create(
            day=day, window_start=since, outcome=Outcome.FAILED, note=str(error), started_by=actor
        )
    return _store(
        day=day,
        since=since,
        found=found,
        checked=checked,
        stripe_side=stripe_side,
        ledger_side=ledger_side,
        actor=actor,
    )


@transaction.atomic
def _store(
    *,
    day: dt.date,
    since: dt.date,
    found: list[Found],
    checked: int,
    stripe_side: int,
    ledger_side: int,
    actor: User | None,
) -> ReconciliationRun:
    run = ReconciliationRun.objects.create(
        day=day,
        window_start=since,
        outcome=Outcome.CLEAN,
        payouts_checked=checked,
        stripe_balance=stripe_side,
        ledger_receivable=ledger_side,
        started_by=actor,
    )
    ReconciliationDifference.objects.filter(day=day, resolved=False).delete()
    # A resolved difference stays resolved; the unique (date, kind, reference) keeps it single,
    # also when two runs of the same date meet.
    ReconciliationDifference.objects.bulk_create(
        [
            ReconciliationDifference(
                day=day,
                run=run,
                kind=f.kind,
                reference=f.reference,
                stripe_amount=f.stripe_amount,
                ledger_amount=f.ledger_amount,
                figures=f.figures or {},
            )
            for f in found
        ],
        ignore_conflicts=True,
    )
    run.differences = ReconciliationDifference.objects.filter(run=run).count()
    run.outcome = Outcome.DIFFERENCES if run.differences else Outcome.CLEAN
    run.save(update_fields=["differences", "outcome"])
    return run


def _ledger_by_payout(payout_ids: list[str]) -> dict[str, dict[str, int]]:
    """Per payout id: what its entries (paid, and a reversal) moved on bank and payment_fees."""
    keys = {payout_entry_key(p): p for p in payout_ids}
    keys |= {payout_reversal_key(p): p for p in payout_ids}
    figures: dict[str, dict[str, int]] = {}
    rows = (
        Posting.objects.filter(entry__key__in=list(keys))
        .values("entry__key", "account__code")
        .annotate(total=Sum("amount"))
        .order_by()
        .values_list("entry__key", "account__code", "total")
    )
    for key, code, total in rows:
        per = figures.setdefault(keys[key], {})
        per[code] = per.get(code, 0) + total
    return figures


def _compare(
    stripe: StripeProvider, *, day: dt.date, since: dt.date
) -> tuple[list[Found], int, int, int]:
    found: list[Found] = []
    listed = stripe.payouts(arrival_from=since, arrival_to=day)
    paid = [p for p in listed if p.status == Payout.Status.PAID]
    ledger = _ledger_by_payout([p.payout_id for p in paid])
    carried: dict[str, list] = {}
    for payout in paid:
        carried[payout.payout_id] = stripe.balance_transactions(payout_id=payout.payout_id)
        fees = sum(t.fee for t in carried[payout.payout_id])
        posted = ledger.get(payout.payout_id)
        if posted is None:
            found.append(
                Found(
                    Kind.MISSING,
                    payout.payout_id,
                    payout.amount,
                    None,
                    {"arrival_date": _iso(payout.arrival_date), "fees": fees},
                )
            )
            continue
        bank = posted.get(BANK, 0)
        if bank != payout.amount:
            found.append(Found(Kind.AMOUNT, payout.payout_id, payout.amount, bank))
        posted_fees = posted.get(PAYMENT_FEES, 0)
        if posted_fees != fees:
            found.append(Found(Kind.FEES, payout.payout_id, fees, posted_fees))
    listed_ids = {p.payout_id for p in listed}
    for payout in Payout.objects.filter(
        status=Payout.Status.PAID, arrival_date__gte=since, arrival_date__lte=day
    ).exclude(entry_key=""):
        if payout.provider_id not in listed_ids:
            found.append(
                Found(
                    Kind.NOT_AT_STRIPE,
                    payout.provider_id,
                    None,
                    payout.amount,
                    {"arrival_date": _iso(payout.arrival_date)},
                )
            )

    stripe_side, figures = _stripe_gross(stripe, day=day, carried=carried)
    ledger_side = balance(STRIPE_RECEIVABLE)
    if stripe_side != ledger_side:
        found.append(Found(Kind.BALANCE, "", stripe_side, ledger_side, figures))
    return found, len(paid), stripe_side, ledger_side


def _iso(day: dt.date | None) -> str:
    return day.isoformat() if day else ""


def _stripe_gross(
    stripe: StripeProvider, *, day: dt.date, carried: dict
) -> tuple[int, dict[str, int]]:
    """What the ledger's stripe_receivable should hold by Stripe's figures, and how it adds up."""
    held = stripe.balance_total()
    lookback = day - dt.timedelta(days=FEE_LOOKBACK_DAYS)
    recent = stripe.payouts(created_from=lookback)
    in_flight = sum(p.amount for p in recent if p.status in IN_FLIGHT)
    posted_ids = set(
        Payout.objects.filter(provider_id__in=[p.payout_id for p in recent])
        .exclude(entry_key="")
        .values_list("provider_id", flat=True)
    )
    in_posted = set()
    for payout_id in posted_ids:
        if payout_id not in carried:
            carried[payout_id] = stripe.balance_transactions(payout_id=payout_id)
        in_posted |= {t.transaction_id for t in carried[payout_id]}
    unposted_fees = sum(
        t.fee
        for t in stripe.balance_transactions(created_from=lookback)
        if t.transaction_id not in in_posted
    )
    figures = {"held": held, "in_flight": in_flight, "fees": unposted_fees}
    return held + in_flight + unposted_fees, figures


@transaction.atomic
def resolve_difference(
    *, difference: ReconciliationDifference, actor: User
) -> ReconciliationDifference:
    """Finance staff mark a difference as looked into; it is not raised again for its date."""
    if not may(actor, RUN):
        raise PermissionDenied(_("Only finance staff may resolve differences."))
    difference = ReconciliationDifference.objects.select_for_update().get(pk=difference.pk)
    if not difference.resolved:
        difference.resolved = True
        difference.resolved_by = actor
        difference.resolved_at = timezone.now()
        difference.save(update_fields=["resolved", "resolved_by", "resolved_at"])
    return difference
