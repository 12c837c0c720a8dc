"""The one way money moves: ``post_entry`` writes a balanced journal entry, exactly once.

Conventions (DOMAIN.md §2): integer yen; a posting's amount is positive for a debit and negative
for a credit, so an entry balances when its postings sum to zero. Fund accounts (designated,
general fund, match pools) hold money for a purpose on the credit side and may never go below
zero; ``post_entry`` locks them and refuses an entry that would overdraw one.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Sum

from .models import JournalEntry, LedgerAccount, Posting, Project

Kind = LedgerAccount.Kind

# Accounts whose natural balance is on the credit side (money held or owed, income).
CREDIT_NORMAL = frozenset(
    {Kind.DESIGNATED, Kind.GENERAL_FUND, Kind.MATCH_POOL, Kind.GRANT_PAYABLE, Kind.FEE_INCOME}
)


class EntryKind:
    """The kinds of journal entry: one per event of DOMAIN.md §2's table."""

    POOL_PLEDGED = "pool_pledged"
    PLEDGE_PAID = "pledge_paid"
    GIFT_SUCCEEDED = "gift_succeeded"
    MATCH_ALLOCATED = "match_allocated"
    GIFT_REFUNDED = "gift_refunded"  # a refund, or a dispute the foundation lost
    MATCH_RELEASED = "match_released"
    POOL_ENDED = "pool_ended"
    PAYOUT = "payout"
    GRANT_APPROVED = "grant_approved"
    TRANCHE_PAID = "tranche_paid"
    GRANT_CANCELLED = "grant_cancelled"

    # What a project has raised: gifts and matches less refunds and released matches. Grants
    # draw on the same account later without lowering what was raised.
    RAISING = (GIFT_SUCCEEDED, GIFT_REFUNDED, MATCH_ALLOCATED, MATCH_RELEASED)
    MATCHING = (MATCH_ALLOCATED, MATCH_RELEASED)


class LedgerError(Exception):
    """An entry the ledger refuses: unbalanced, not whole yen, or overdrawing a fund."""


@dataclass(frozen=True)
class Line:
    """One side of an entry: ``debit`` or ``credit`` (whole yen ≥ 1) to the account ``code``."""

    account: str
    debit: int = 0
    credit: int = 0

    @property
    def amount(self) -> int:
        return self.debit - self.credit


def account_code(kind: str, object_id: int | None = None) -> str:
    """``designated:12``, ``match_pool:3``, or a plain kind such as ``bank``."""
    if kind in LedgerAccount.PER_OBJECT:
        if object_id is None:
            raise ValueError(f"{kind} accounts belong to an object: give its id")
        return f"{kind}:{object_id}"
    if object_id is not None:
        raise ValueError(f"{kind} is a single account")
    return str(kind)


def designated(project: Project) -> str:
    return account_code(Kind.DESIGNATED, project.pk)


def _is_whole_yen(value: Any) -> bool:
    # bool is an int in Python; True yen is a bug, not an amount.
    return isinstance(value, int) and not isinstance(value, bool)


def _validate(lines: Sequence[Line]) -> None:
    if len(lines) < 2:
        raise LedgerError("An entry needs at least two postings.")
    for line in lines:
        if not (_is_whole_yen(line.debit) and _is_whole_yen(line.credit)):
            raise LedgerError(f"{line.account}: amounts are whole yen (int), not {line!r}")
        if line.debit < 0 or line.credit < 0 or (line.debit > 0) == (line.credit > 0):
            raise LedgerError(f"{line.account}: exactly one of debit or credit, at least ¥1")
    debits = sum(line.debit for line in lines)
    credits = sum(line.credit for line in lines)
    if debits != credits:
        raise LedgerError(f"Unbalanced entry: debits ¥{debits:,} ≠ credits ¥{credits:,}")


def _accounts(codes: Iterable[str]) -> dict[str, LedgerAccount]:
    """The accounts, created on first use; project accounts are linked to their project."""
    codes = sorted(set(codes))
    accounts = {a.code: a for a in LedgerAccount.objects.filter(code__in=codes)}
    for code in codes:
        if code in accounts:
            continue
        kind, _, object_id = code.partition(":")
        if kind not in Kind.values:
            raise LedgerError(f"Unknown ledger account {code!r}")
        if (kind in LedgerAccount.PER_OBJECT) != bool(object_id):
            raise LedgerError(f"Malformed ledger account {code!r}")
        defaults = {"kind": kind}
        if kind == Kind.DESIGNATED:
            defaults["project_id"] = int(object_id)
        accounts[code], _created = LedgerAccount.objects.get_or_create(code=code, defaults=defaults)
    return accounts


@transaction.atomic
def post_entry(
    *,
    kind: str,
    key: str,
    lines: Sequence[Line],
    memo: str = "",
    actor: Any = None,
    balances: dict[str, int] | None = None,
) -> tuple[JournalEntry, bool]:
    """Write the entry unless one with this ``key`` exists; returns (entry, created).

    Safe to call twice at once with the same key: the unique key lets one insert through and
    the other finds that entry. Raises ``LedgerError`` (and writes nothing) for an unbalanced
    entry, amounts that are not whole yen, or one that would take a fund below zero.

    ``balances``: what ``lock_balances`` returned earlier in the same transaction. A fund the
    entry draws on is then checked against that figure (less what the entry takes) instead of
    counting its postings again; once the entry is written, the figures are lowered by what it
    took, for the next entry of the transaction.
    """
    _validate(lines)
    try:
        with transaction.atomic():
            entry = JournalEntry.objects.create(kind=kind, key=key, memo=memo, created_by=actor)
    except IntegrityError:
        return JournalEntry.objects.get(key=key), False

    accounts = _accounts(line.account for line in lines)
    # Lock the fund accounts that lose money, in code order (the same order everywhere, so two
    # entries touching the same funds cannot deadlock), then check they stay at or above zero.
    # Those in ``balances`` are locked already (``lock_balances``).
    drawn = sorted(
        {line.account for line in lines if line.debit and accounts[line.account].is_fund}
    )
    _lock([code for code in drawn if balances is None or code not in balances])
    Posting.objects.bulk_create(
        Posting(entry=entry, account=accounts[line.account], amount=line.amount) for line in lines
    )
    # What the entry leaves on the accounts whose balance the caller counted under their lock.
    after = {}
    if balances is not None:
        for line in lines:
            if line.account in balances:
                was = after.get(line.account, balances[line.account])
                after[line.account] = was + _natural(accounts[line.account].kind, line.amount)
    for code in drawn:
        left = after[code] if code in after else balance(accounts[code])
        if left < 0:
            raise LedgerError(f"{code} would go below zero")
    for code, left in after.items():
        # Lowered, a figure follows; raised, it stays as it was: a savepoint rolled back
        # around this entry would take that money away again. Never above the truth.
        balances[code] = min(balances[code], left)
    return entry, True


def _lock(codes: list[str]) -> None:
    """Row locks on the accounts, held to the end of the transaction (a test turns this off to
    show the race it prevents)."""
    list(LedgerAccount.objects.select_for_update().filter(code__in=codes).order_by("code"))


def _natural(kind: str, total: int) -> int:
    """A sum of postings as a balance on the account's natural side."""
    return -total if kind in CREDIT_NORMAL else total


def balance(account: LedgerAccount | str) -> int:
    """The account's balance on its natural side (credit side for funds, liabilities, income)."""
    if isinstance(account, str):
        account = LedgerAccount.objects.filter(code=account).first()
        if account is None:
            return 0
    total = Posting.objects.filter(account=account).aggregate(total=Sum("amount"))["total"] or 0
    return _natural(account.kind, total)


def lock_balances(codes: Iterable[str]) -> dict[str, int]:
    """Lock the accounts as ``post_entry`` does (code order, to the end of the transaction),
    then count their balances in one query; an account not used yet holds 0.

    For a caller that reads a fund to decide how much to take from it: hand the figures to
    ``post_entry(balances=…)`` in the same transaction and it does not count them again. While
    the locks are held they never overstate a balance: whatever takes money from a fund locks
    it first, and money coming in meanwhile can only raise it.
    """
    codes = sorted(set(codes))
    _lock(codes)
    balances = dict.fromkeys(codes, 0)
    rows = (
        Posting.objects.filter(account__code__in=codes)
        .values("account__code", "account__kind")
        .annotate(total=Sum("amount"))
        .order_by()
        .values_list("account__code", "account__kind", "total")
    )
    for code, kind, total in rows:
        balances[code] = _natural(kind, total)
    return balances
