"""The grants app's ledger checks, run by ``manage.py check_ledger`` and after every test."""

from django.db.models import Q, Sum

from fund.checks import register
from fund.models import JournalEntry, LedgerAccount, Posting

from .models import Grant, Tranche


def _owed_by_grant() -> dict[int, int]:
    """Each grant's grant_payable balance (credit side), in one query."""
    rows = (
        Posting.objects.filter(account__kind=LedgerAccount.Kind.GRANT_PAYABLE)
        .values("account__code")
        .annotate(total=Sum("amount"))
        .order_by()
        .values_list("account__code", "total")
    )
    return {int(code.split(":")[1]): -total for code, total in rows}


@register("grants agree with the ledger")
def grants_agree_with_ledger() -> list[str]:
    """An approved grant has its entry; what it owes (grant_payable) is its unpaid tranches; a
    cancelled grant owes nothing. A fixed number of queries however many grants."""
    approved_keys = set(
        JournalEntry.objects.filter(
            key__startswith="grant:", key__endswith=":approved"
        ).values_list("key", flat=True)
    )
    owed = _owed_by_grant()
    grants = Grant.objects.filter(state__in=("approved", "paid", "closed", "cancelled")).annotate(
        unpaid=Sum("tranches__amount_yen", filter=~Q(tranches__state=Tranche.State.PAID))
    )
    problems = []
    for grant in grants:
        left = owed.get(grant.pk, 0)
        if grant.state == Grant.State.CANCELLED:
            if left:
                problems.append(f"{grant}: cancelled but grant_payable still holds ¥{left:,}")
            continue
        if f"grant:{grant.pk}:approved" not in approved_keys:
            problems.append(f"{grant}: approved without its ledger entry")
        elif left != (grant.unpaid or 0):
            problems.append(
                f"{grant}: grant_payable ¥{left:,} but unpaid tranches ¥{grant.unpaid or 0:,}"
            )
    return problems


@register("paid tranches are posted once")
def paid_tranches_posted() -> list[str]:
    paid = set(Tranche.objects.filter(state=Tranche.State.PAID).values_list("pk", flat=True))
    posted = {
        int(key.split(":")[1])
        for key in JournalEntry.objects.filter(
            key__startswith="tranche:", key__endswith=":paid"
        ).values_list("key", flat=True)
    }
    return [f"tranche {pk}: paid, no entry" for pk in sorted(paid - posted)] + [
        f"tranche {pk}: entry, not paid" for pk in sorted(posted - paid)
    ]
