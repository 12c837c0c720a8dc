"""The donations' ledger invariants, added to ``fund.checks`` (``manage.py check_ledger``).

One payment = one gift = one ledger group: every gift has exactly its own ``gift:<payment id>``
entry for its amount, every gift entry belongs to a gift, every refund has its entry, and a
gift's refunded total is the sum of its refunds.
"""

from django.db.models import Exists, F, OuterRef, Q, Subquery, Sum, Value
from django.db.models.functions import Coalesce, Concat, Substr

from fund.checks import register
from fund.ledger import EntryKind
from fund.models import JournalEntry, LedgerAccount, Posting

from .models import Gift, Refund

_RECEIVABLE = LedgerAccount.Kind.STRIPE_RECEIVABLE


def _entry_total(key_prefix: str, id_field: str):
    """The stripe_receivable amount of the entry keyed ``<prefix><row's id_field>``."""
    return Subquery(
        Posting.objects.filter(
            entry__key=Concat(Value(key_prefix), OuterRef(id_field)),
            account__kind=_RECEIVABLE,
        )
        .values("entry")
        .annotate(total=Sum("amount"))
        .values("total")[:1]
    )


@register("one payment = one gift = one ledger group")
def gifts_match_entries() -> list[str]:
    problems = []
    gifts = Gift.objects.annotate(posted=_entry_total("gift:", "payment_id")).filter(
        Q(posted__isnull=True) | ~Q(posted=F("amount"))
    )
    for payment_id, amount, posted in gifts.values_list("payment_id", "amount", "posted"):
        if posted is None:
            problems.append(f"gift {payment_id} (¥{amount:,}) has no ledger entry")
        else:
            problems.append(f"gift {payment_id} is ¥{amount:,} but its entry moved ¥{posted:,}")
    orphans = JournalEntry.objects.filter(kind=EntryKind.GIFT_SUCCEEDED).exclude(
        Exists(Gift.objects.filter(payment_id=Substr(OuterRef("key"), len("gift:") + 1)))
    )
    problems += [
        f"entry {key} records a gift that does not exist"
        for key in orphans.values_list("key", flat=True)
    ]
    refunds = Refund.objects.annotate(posted=_entry_total("refund:", "provider_refund_id")).filter(
        Q(posted__isnull=True) | ~Q(posted=-F("amount"))
    )
    problems += [
        f"refund {rid} (¥{amount:,}) has no matching ledger entry"
        for rid, amount in refunds.values_list("provider_refund_id", "amount")
    ]
    orphan_refunds = JournalEntry.objects.filter(kind=EntryKind.GIFT_REFUNDED).exclude(
        Exists(
            Refund.objects.filter(provider_refund_id=Substr(OuterRef("key"), len("refund:") + 1))
        )
    )
    problems += [
        f"entry {key} records a refund that does not exist"
        for key in orphan_refunds.values_list("key", flat=True)
    ]
    totals = Gift.objects.annotate(refunds_total=Coalesce(Sum("refunds__amount"), 0)).exclude(
        refunds_total=F("refunded_amount")
    )
    problems += [
        f"gift {payment_id}: refunded ¥{refunded:,} but its refunds sum to ¥{refunds:,}"
        for payment_id, refunded, refunds in totals.values_list(
            "payment_id", "refunded_amount", "refunds_total"
        )
    ]
    return problems


@register("payouts agree with the ledger")
def payouts_posted() -> list[str]:
    """A payout recorded as posted has its entry, and every payout entry has its payout."""
    from .models import Payout

    recorded = set(Payout.objects.exclude(entry_key="").values_list("entry_key", flat=True))
    recorded |= set(Payout.objects.exclude(reversal_key="").values_list("reversal_key", flat=True))
    posted = set(JournalEntry.objects.filter(kind=EntryKind.PAYOUT).values_list("key", flat=True))
    return [
        f"{key}: recorded on a payout, not in the ledger" for key in sorted(recorded - posted)
    ] + [f"{key}: in the ledger, no payout records it" for key in sorted(posted - recorded)]
