"""Stripe payouts into the ledger (DOMAIN.md §2, "Stripe payout / fees").

Gifts are posted at gross (stripe_receivable → fund). Stripe takes its fee from each payment and
pays the rest out to the bank; a paid payout is posted once, under ``payout:<payout id>``:

    debit bank               the net paid out (the payout's amount)
    debit payment_fees       the fees of the payout's balance transactions
    credit stripe_receivable the gross (net + fees)

A payout that fails (or is cancelled) after it was posted gives its net back to the Stripe
balance: ``payout:<id>:failed`` debits stripe_receivable and credits bank. One that fails before
we posted it still cost its fees: those are posted alone under ``payout:<id>``. Either way the
ledger ends the same: the fees taken, the net back in stripe_receivable (Stripe puts it into a
later payout).

``payout.paid`` and ``payout.failed`` events come through the webhook pipeline
(``services._apply``); as for every event, the payout's *current* state is fetched from Stripe.
The ``Payout`` row (unique ``provider_id``) is locked while it changes and the entries are keyed,
so an event processed twice — or two at once — posts once.
"""

import logging

from django.db import transaction
from django.db.models import Sum

from fund.ledger import EntryKind, Line, account_code, post_entry
from fund.models import LedgerAccount, Posting

from .models import Donation, Payout
from .stripe_api import BalanceTransaction, PayoutState, stripe_provider

log = logging.getLogger(__name__)

BANK = account_code(LedgerAccount.Kind.BANK)
PAYMENT_FEES = account_code(LedgerAccount.Kind.PAYMENT_FEES)
STRIPE_RECEIVABLE = account_code(LedgerAccount.Kind.STRIPE_RECEIVABLE)
# Stripe gives a payout's money back to the balance when it fails or is cancelled.
RETURNED = (Payout.Status.FAILED, Payout.Status.CANCELED)


def payout_entry_key(payout_id: str) -> str:
    return f"payout:{payout_id}"


def payout_reversal_key(payout_id: str) -> str:
    return f"payout:{payout_id}:failed"


def record_payout(payout_id: str, *, provider: str, source: str) -> Payout | None:
    """``payout.paid`` / ``payout.failed``: fetch the payout and its balance transactions from
    Stripe and bring its row and ledger entries up to date. The demo provider has no payouts."""
    if provider != Donation.Provider.STRIPE:
        return None
    stripe = stripe_provider()
    state = stripe.payout_state(payout_id)
    transactions: list[BalanceTransaction] = []
    if state.status == Payout.Status.PAID or state.status in RETURNED:
        transactions = stripe.balance_transactions(payout_id=payout_id)
    return apply_payout(state, transactions, source=source)


@transaction.atomic
def apply_payout(
    state: PayoutState, transactions: list[BalanceTransaction], *, source: str
) -> Payout:
    """Write the payout's row and post what its state calls for, once."""
    # Every fee Stripe took for what this payout carries (an instant payout's own fee too).
    fees = sum(t.fee for t in transactions)
    carried = sum(t.net for t in transactions if t.type != "payout")
    if transactions and carried != state.amount:
        log.warning(
            "payout %s: ¥%s paid out but its transactions net ¥%s",
            state.payout_id,
            state.amount,
            carried,
        )
    payout, _created = Payout.objects.get_or_create(
        provider_id=state.payout_id,
        defaults={"amount": state.amount, "status": state.status, "source": source},
    )
    payout = Payout.objects.select_for_update().get(pk=payout.pk)
    payout.amount = state.amount
    payout.arrival_date = state.arrival_date
    payout.status = state.status
    payout.source = source
    if transactions:
        payout.fee_total = fees
        payout.gross = state.amount + fees
    if state.status == Payout.Status.PAID and not payout.entry_key and state.amount >= 1:
        _post(
            key=payout_entry_key(payout.provider_id),
            lines=[
                Line(BANK, debit=state.amount),
                *([Line(PAYMENT_FEES, debit=fees)] if fees > 0 else []),
                Line(STRIPE_RECEIVABLE, credit=state.amount + fees),
            ],
            memo=f"Stripe payout {payout.provider_id}",
        )
        payout.entry_key = payout_entry_key(payout.provider_id)
    elif state.status in RETURNED:
        if payout.entry_key and not payout.reversal_key and _posted_to_bank(payout):
            # Posted as paid: the net comes back to the Stripe balance; the fees stay taken.
            net = _posted_to_bank(payout)
            _post(
                key=payout_reversal_key(payout.provider_id),
                lines=[Line(STRIPE_RECEIVABLE, debit=net), Line(BANK, credit=net)],
                memo=f"Stripe payout {payout.provider_id} failed",
            )
            payout.reversal_key = payout_reversal_key(payout.provider_id)
        elif not payout.entry_key and fees > 0:
            _post(
                key=payout_entry_key(payout.provider_id),
                lines=[Line(PAYMENT_FEES, debit=fees), Line(STRIPE_RECEIVABLE, credit=fees)],
                memo=f"Stripe payout {payout.provider_id} failed: fees",
            )
            payout.entry_key = payout_entry_key(payout.provider_id)
    payout.save()
    return payout


def _posted_to_bank(payout: Payout) -> int:
    """What the payout's entry put into the bank (0 for a fees-only entry)."""
    total = Posting.objects.filter(entry__key=payout.entry_key, account__code=BANK).aggregate(
        total=Sum("amount")
    )["total"]
    return total or 0


def _post(*, key: str, lines: list[Line], memo: str) -> None:
    post_entry(kind=EntryKind.PAYOUT, key=key, lines=lines, memo=memo)
