"""The grants app's ledger checks, run by ``manage.py check_ledger`` and after every test."""

from django.db.models import Sum

from fund.checks import register
from fund.ledger import balance
from fund.models import JournalEntry

from .models import Grant, Tranche


@register("grants agree with the ledger")
def grants_agree_with_ledger() -> list[str]:
    """An approved grant has its entry; what it owes (grant_payable) is its unpaid tranches."""
    problems = []
    approved_keys = set(
        JournalEntry.objects.filter(
            key__startswith="grant:", key__endswith=":approved"
        ).values_list("key", flat=True)
    )
    live = Grant.objects.filter(state__in=("approved", "paid", "closed"))
    for grant in live:
        if f"grant:{grant.pk}:approved" not in approved_keys:
            problems.append(f"{grant}: approved without its ledger entry")
            continue
        unpaid = (
            grant.tranches.exclude(state=Tranche.State.PAID).aggregate(t=Sum("amount_yen"))["t"]
            or 0
        )
        owed = balance(grant.payable_account)
        if owed != unpaid:
            problems.append(f"{grant}: grant_payable ¥{owed:,} but unpaid tranches ¥{unpaid:,}")
    for grant in Grant.objects.filter(state="cancelled"):
        owed = balance(grant.payable_account)
        if owed:
            problems.append(f"{grant}: cancelled but grant_payable still holds ¥{owed:,}")
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
