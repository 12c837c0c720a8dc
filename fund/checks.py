"""The ledger's invariants (DOMAIN.md §2), checked by ``manage.py check_ledger`` and the tests.

Each check returns a list of problems (empty when all is well). Later apps add their own with
``register`` (e.g. donations: one payment = one gift = one ledger group) from their AppConfig.
"""

from collections.abc import Callable

from django.db.models import Count, Q, Sum

from .ledger import EntryKind
from .models import JournalEntry, LedgerAccount, MatchAllocation, MatchPool, MatchRelease, Posting

Check = Callable[[], list[str]]
_CHECKS: list[tuple[str, Check]] = []


def register(name: str) -> Callable[[Check], Check]:
    def decorator(check: Check) -> Check:
        _CHECKS.append((name, check))
        return check

    return decorator


def run_checks() -> dict[str, list[str]]:
    """Every registered check's problems, by check name (only the ones that found any)."""
    results = {}
    for name, check in _CHECKS:
        problems = check()
        if problems:
            results[name] = problems
    return results


@register("entries balance")
def entries_balance() -> list[str]:
    rows = (
        JournalEntry.objects.annotate(total=Sum("postings__amount"), lines=Count("postings"))
        .filter(~Q(total=0) | Q(lines__lt=2) | Q(total__isnull=True))
        .values_list("key", "total", "lines")
    )
    return [
        f"entry {key}: postings sum to {total} over {lines} line(s)" for key, total, lines in rows
    ]


@register("funds never below zero")
def funds_not_negative() -> list[str]:
    rows = (
        LedgerAccount.objects.filter(kind__in=LedgerAccount.FUNDS)
        .annotate(total=Sum("postings__amount"))
        .filter(total__gt=0)  # credit-normal: a positive sum is a negative balance
        .values_list("code", "total")
    )
    return [f"{code} is ¥{-total:,}" for code, total in rows]


@register("amounts are whole yen of at least ¥1")
def whole_yen() -> list[str]:
    # The column is an integer; zero is refused by a constraint. What remains to check is that
    # no posting slipped in as zero on a database without the constraint.
    count = Posting.objects.filter(amount=0).count()
    return [f"{count} posting(s) of ¥0"] if count else []


@register("account kinds are known")
def account_kinds() -> list[str]:
    unknown = LedgerAccount.objects.exclude(kind__in=LedgerAccount.Kind.values)
    return [f"{a.code}: unknown kind {a.kind!r}" for a in unknown]


@register("matched never exceeds pledged")
def matched_within_pledged() -> list[str]:
    from .selectors import pool_figures

    problems = []
    for pool_id, f in pool_figures(MatchPool.objects.all()).items():
        if f.net_matched > f.pledged:
            problems.append(f"pool {pool_id}: matched ¥{f.net_matched:,} > pledged ¥{f.pledged:,}")
    return problems


@register("matches agree with the ledger")
def matches_agree_with_ledger() -> list[str]:
    """Each allocation and release row has its entry, for the same amount, and no more."""
    problems = []
    pairs = [
        (
            EntryKind.MATCH_ALLOCATED,
            {
                f"match:{pool_id}:{gift_key}": amount
                for pool_id, gift_key, amount in MatchAllocation.objects.values_list(
                    "pool_id", "gift_key", "amount"
                )
            },
        ),
        (EntryKind.MATCH_RELEASED, dict(MatchRelease.objects.values_list("key", "amount"))),
    ]
    for kind, rows in pairs:
        # The credit to the designated account (allocation) or the pool (release): the entry's
        # amount, whatever the sign convention.
        posted = dict(
            Posting.objects.filter(entry__kind=kind, amount__gt=0)
            .values_list("entry__key")
            .annotate(total=Sum("amount"))
            .values_list("entry__key", "total")
        )
        for key in rows.keys() | posted.keys():
            if rows.get(key) != posted.get(key):
                problems.append(f"{key}: recorded ¥{rows.get(key)} but posted ¥{posted.get(key)}")
    return problems


__all__ = ["register", "run_checks"]
