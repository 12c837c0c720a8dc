"""Match pools: sponsors' pledges that multiply citizens' gifts (DOMAIN.md §2). Every write.

Staff create a pool (the pledge is posted: pledge_receivable → match_pool), raise it, record the
sponsor's payments of it and end it (what is left goes back as the pool says). ``match_gift`` is
called by ``donations`` when a gift succeeds and ``release_matches`` when one is refunded.

Correctness under load rests on one rule: whoever reads a pool's balance to spend it holds the
pool's row lock (``_lock_pools``, always in primary-key order, so two gifts cannot deadlock), and
keeps it until the allocation is committed. The ledger's own lock on the ``match_pool`` account
refuses an overdraft as a second line: the balance is read under it (``lock_balances``) and the
ledger checks the allocation against that same figure. Allocations and releases are once per
(pool, gift) and per refund by unique keys, never by looking first.

Every gift to a pool waits for that lock, so the section it covers is kept short: what needs no
lock is read before it, the pools' balances are counted once (not again by the ledger), and
``donations`` matches a gift as the last step of recording it (``bench/matching.py``).

Rounding (the one place): a pool's entitlement is rounded down to the yen, so a pool never pays
more than its ratio; a partial refund releases the matching share rounded down, and the last
refund of a gift releases the rest, so a fully refunded gift gives back every yen of its match.
"""

import datetime as dt
import hashlib
from collections.abc import Iterable
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import BigIntegerField, F, OuterRef, Q, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import Organization, User
from accounts.policy import may

from .ledger import EntryKind, Line, balance, designated, lock_balances, post_entry
from .models import (
    MatchAllocation,
    MatchPool,
    MatchPoolEvent,
    MatchRelease,
    Project,
)

Scope = MatchPool.Scope
Action = MatchPoolEvent.Action
PERMISSION = "pool.manage"
# The fields staff may change on a running pool; the rules that decide a match stay as pledged.
CHANGEABLE = ("name", "priority", "ends_at")


def donor_email_hash(email: str) -> str:
    """How a donor's email is kept for the per-donor cap: not the address itself."""
    return hashlib.sha256(f"civicfund-match:{email.strip().lower()}".encode()).hexdigest()


def _is_whole_yen(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_actor(actor: User | None) -> None:
    if actor is None or not may(actor, PERMISSION):
        raise PermissionDenied(_("Only foundation programme or finance staff may manage pools."))


def _record(pool: MatchPool, action: str, *, actor: User | None, source: str = "", **kw: Any):
    return MatchPoolEvent.objects.create(
        pool=pool, action=action, actor=actor, source=source or ("staff" if actor else ""), **kw
    )


# --- Pools ---------------------------------------------------------------------------------------


def validate_rules(
    *,
    ratio_gift: Any,
    ratio_match: Any,
    cap_per_gift: Any,
    cap_per_donor: Any,
    starts_at: dt.datetime | None,
    ends_at: dt.datetime | None,
    scope: str,
    projects: Iterable[Project] = (),
    body: Any = None,
    fiscal_year: Any = None,
    leftover: str = MatchPool.Leftover.SPONSOR,
    sponsor_consents_to_general_fund: bool = False,
) -> None:
    """The pool's rules, checked once for the form, the API and the service alike."""
    errors: dict[str, str] = {}
    for name, value in (("ratio_gift", ratio_gift), ("ratio_match", ratio_match)):
        if not _is_whole_yen(value) or value < 1:
            errors[name] = _("Each side of the ratio is a whole number, at least 1.")
    for name, value in (("cap_per_gift", cap_per_gift), ("cap_per_donor", cap_per_donor)):
        if value is not None and (not _is_whole_yen(value) or value < 1):
            errors[name] = _("A cap is a whole number of yen, at least ¥1 (or empty: no cap).")
    if starts_at is None:
        errors["starts_at"] = _("Give the date matching starts.")
    if ends_at is None:
        errors["ends_at"] = _("Give the date matching ends.")
    elif starts_at is not None and ends_at <= starts_at:
        errors["ends_at"] = _("Matching must end after it starts.")
    if scope not in Scope.values:
        errors["scope"] = _("Choose which projects the pool matches.")
    elif scope == Scope.PROJECTS and not list(projects):
        errors["projects"] = _("Choose at least one project.")
    elif scope == Scope.BODY and body is None:
        errors["body"] = _("Choose the government body.")
    elif scope == Scope.FISCAL_YEAR and not (_is_whole_yen(fiscal_year) and fiscal_year >= 1989):
        errors["fiscal_year"] = _("Give the fiscal year (e.g. 2026).")
    if leftover not in MatchPool.Leftover.values:
        errors["leftover"] = _("Choose what happens to money left at the end.")
    elif leftover == MatchPool.Leftover.GENERAL_FUND and not sponsor_consents_to_general_fund:
        errors["sponsor_consents_to_general_fund"] = _(
            "Money left goes to the general fund only with the sponsor's consent."
        )
    if errors:
        raise ValidationError(errors)


def _validate_pledge(amount: Any, field: str = "pledged") -> None:
    if not _is_whole_yen(amount) or amount < 1:
        raise ValidationError({field: _("The pledge is a whole number of yen, at least ¥1.")})


@transaction.atomic
def pool_create(
    *,
    actor: User,
    sponsor: Organization,
    name: str,
    pledged: int,
    starts_at: dt.datetime,
    ends_at: dt.datetime,
    ratio_gift: int = 1,
    ratio_match: int = 1,
    cap_per_gift: int | None = None,
    cap_per_donor: int | None = None,
    scope: str = Scope.ALL,
    projects: Iterable[Project] = (),
    body: Any = None,
    fiscal_year: int | None = None,
    priority: int = 0,
    leftover: str = MatchPool.Leftover.SPONSOR,
    sponsor_consents_to_general_fund: bool = False,
) -> MatchPool:
    """A new pool with its pledge posted to the ledger (pledge_receivable → match_pool)."""
    _check_actor(actor)
    projects = list(projects)
    rules = dict(
        ratio_gift=ratio_gift,
        ratio_match=ratio_match,
        cap_per_gift=cap_per_gift,
        cap_per_donor=cap_per_donor,
        starts_at=starts_at,
        ends_at=ends_at,
        scope=scope,
        body=body if scope == Scope.BODY else None,
        fiscal_year=fiscal_year if scope == Scope.FISCAL_YEAR else None,
        leftover=leftover,
        sponsor_consents_to_general_fund=sponsor_consents_to_general_fund,
    )
    validate_rules(projects=projects, **rules)
    _validate_pledge(pledged)
    if not (name or "").strip():
        raise ValidationError({"name": _("Give the pool a public name.")})
    if not _is_whole_yen(priority) or priority < 0:
        raise ValidationError({"priority": _("The priority is a whole number, 0 or more.")})
    pool = MatchPool.objects.create(
        sponsor=sponsor, name=name.strip(), priority=priority, created_by=actor, **rules
    )
    if scope == Scope.PROJECTS:
        pool.projects.set(projects)
    event = _record(pool, Action.CREATED, actor=actor, amount=pledged)
    _post_pledge(pool, pledged, event, actor)
    return pool


def _post_pledge(pool: MatchPool, amount: int, event: MatchPoolEvent, actor: User | None) -> None:
    post_entry(
        kind=EntryKind.POOL_PLEDGED,
        key=f"pool:{pool.pk}:pledge:{event.pk}",
        lines=[
            Line(pool.receivable_account, debit=amount),
            Line(pool.account, credit=amount),
        ],
        memo=f"{pool.sponsor} pledge",
        actor=actor,
    )


def _locked(pool: MatchPool) -> MatchPool:
    return MatchPool.objects.select_for_update().get(pk=pool.pk)


@transaction.atomic
def pool_top_up(*, pool: MatchPool, amount: int, actor: User, note: str = "") -> MatchPoolEvent:
    """The sponsor pledges more to a running pool."""
    _check_actor(actor)
    _validate_pledge(amount, "amount")
    pool = _locked(pool)
    if pool.state != MatchPool.State.ACTIVE:
        raise ValidationError(_("This pool has ended; pledge a new pool instead."))
    event = _record(pool, Action.TOPPED_UP, actor=actor, amount=amount, note=note)
    _post_pledge(pool, amount, event, actor)
    return event


def unpaid(pool: MatchPool) -> int:
    """What the sponsor still owes on the pledge (the pledge receivable's balance)."""
    return balance(pool.receivable_account)


@transaction.atomic
def pool_record_payment(
    *, pool: MatchPool, amount: int, reference: str, actor: User, note: str = ""
) -> MatchPoolEvent:
    """The sponsor paid (part of) the pledge into the bank: bank → pledge_receivable.

    Recorded once per bank reference (a double-submitted form finds the first); never more
    than is still owed.
    """
    _check_actor(actor)
    if not _is_whole_yen(amount) or amount < 1:
        raise ValidationError({"amount": _("The payment is a whole number of yen, at least ¥1.")})
    reference = (reference or "").strip()
    if not reference:
        raise ValidationError({"reference": _("Give the bank transfer's reference.")})
    pool = _locked(pool)  # two payments at once must not both pass the check below
    owed = unpaid(pool)
    if amount > owed:
        raise ValidationError(
            {"amount": _("Only ¥%(owed)s of the pledge is still owed.") % {"owed": f"{owed:,}"}}
        )
    try:
        with transaction.atomic():
            event = _record(
                pool,
                Action.PAYMENT_RECEIVED,
                actor=actor,
                amount=amount,
                reference=reference,
                note=note,
            )
    except IntegrityError:
        raise ValidationError(
            {"reference": _("A payment with this reference is already recorded.")}
        ) from None
    post_entry(
        kind=EntryKind.PLEDGE_PAID,
        key=f"pool:{pool.pk}:payment:{event.pk}",
        lines=[Line("bank", debit=amount), Line(pool.receivable_account, credit=amount)],
        memo=f"{pool.sponsor} {reference}",
        actor=actor,
    )
    return event


@transaction.atomic
def pool_update(*, pool: MatchPool, actor: User, **fields: Any) -> MatchPool:
    """Change a running pool's name, priority or end; the history says what changed."""
    _check_actor(actor)
    unknown = set(fields) - set(CHANGEABLE)
    if unknown:
        raise ValueError(f"Not changeable on a pool: {sorted(unknown)}")
    pool = _locked(pool)
    if pool.state != MatchPool.State.ACTIVE:
        raise ValidationError(_("This pool has ended."))
    if "name" in fields and not (fields["name"] or "").strip():
        raise ValidationError({"name": _("Give the pool a public name.")})
    if "priority" in fields and (not _is_whole_yen(fields["priority"]) or fields["priority"] < 0):
        raise ValidationError({"priority": _("The priority is a whole number, 0 or more.")})
    if "ends_at" in fields and (fields["ends_at"] is None or fields["ends_at"] <= pool.starts_at):
        raise ValidationError({"ends_at": _("Matching must end after it starts.")})
    changes = []
    for name, value in fields.items():
        old = getattr(pool, name)
        if old != value:
            setattr(pool, name, value)
            changes.append(f"{name}: {old} → {value}")
    if changes:
        pool.save(update_fields=[*fields])
        _record(pool, Action.CHANGED, actor=actor, note="; ".join(changes))
    return pool


@transaction.atomic
def pool_end(*, pool: MatchPool, actor: User | None, source: str = "") -> MatchPool:
    """End matching; what is left goes back as the pool says (DOMAIN.md §2).

    ``actor`` None is the schedule ending a pool whose window has passed.
    """
    if actor is not None:
        _check_actor(actor)
    pool = _locked(pool)
    if pool.state != MatchPool.State.ACTIVE:
        raise ValidationError(_("This pool has already ended."))
    pool.state = MatchPool.State.ENDED
    pool.ended_at = timezone.now()
    pool.save(update_fields=["state", "ended_at"])
    left = _post_leftover(pool, key=f"pool:{pool.pk}:end", actor=actor)
    _record(pool, Action.ENDED, actor=actor, source=source, amount=left or None)
    return pool


def _post_leftover(pool: MatchPool, *, key: str, actor: User | None = None) -> int:
    """Empty the pool: the sponsor owes less by what was never paid, and what was paid goes back
    to the sponsor or, with consent, to the general fund. Caller holds the pool's lock."""
    left = balance(pool.account)
    if left <= 0:
        return 0
    forgiven = min(left, unpaid(pool))
    paid_back = left - forgiven
    lines = [Line(pool.account, debit=left)]
    if forgiven:
        lines.append(Line(pool.receivable_account, credit=forgiven))
    if paid_back:
        target = "general_fund" if pool.leftover == MatchPool.Leftover.GENERAL_FUND else "bank"
        lines.append(Line(target, credit=paid_back))
    post_entry(kind=EntryKind.POOL_ENDED, key=key, lines=lines, memo=str(pool), actor=actor)
    return left


def end_expired_pools(*, now: dt.datetime | None = None) -> int:
    """The schedule's job: end every active pool whose window has passed. Returns how many."""
    now = now or timezone.now()
    ended = 0
    for pool_id in MatchPool.objects.filter(
        state=MatchPool.State.ACTIVE, ends_at__lte=now
    ).values_list("pk", flat=True):
        try:
            pool_end(pool=MatchPool(pk=pool_id), actor=None, source="schedule")
        except ValidationError:
            continue  # ended by hand meanwhile
        ended += 1
    return ended


# --- Matching gifts ------------------------------------------------------------------------------


def eligible_pools(project: Project, *, at: dt.datetime) -> QuerySet[MatchPool]:
    """Active pools whose window holds ``at`` and whose rules include the project."""
    proposal = project.proposal
    chosen = MatchPool.projects.through.objects.filter(project_id=project.pk).values("matchpool_id")
    return MatchPool.objects.filter(
        Q(scope=Scope.ALL)
        | Q(scope=Scope.PROJECTS, pk__in=chosen)
        | Q(scope=Scope.BODY, body_id=proposal.body_id)
        | Q(scope=Scope.FISCAL_YEAR, fiscal_year=proposal.fiscal_year),
        state=MatchPool.State.ACTIVE,
        starts_at__lte=at,
        ends_at__gt=at,
    )


def _lock_pools(pools: QuerySet[MatchPool]) -> list[MatchPool]:
    """Row locks on the pools, taken in primary-key order and held to commit (a test turns this
    off to show the race it prevents)."""
    return list(pools.select_for_update(of=("self",)).order_by("pk"))


def entitlement(pool: MatchPool, gift_yen: int) -> int:
    """What the pool's ratio and per-gift cap give to ``gift_yen`` (rounded down)."""
    share = gift_yen * pool.ratio_match // pool.ratio_gift
    if pool.cap_per_gift is not None:
        share = min(share, pool.cap_per_gift)
    return share


def _gift_yen_covered(pool: MatchPool, matched: int) -> int:
    """The part of a gift that ``matched`` yen of this pool stands for (rounded up)."""
    return -(-matched * pool.ratio_gift // pool.ratio_match)


def _donor_matched(pool: MatchPool, *, user_id: int | None, email_hashes: list[str]) -> int:
    """What the pool has matched for this donor so far, net of releases (one query)."""
    same_donor = Q(donor_email_hash__in=email_hashes)
    if user_id is not None:
        same_donor |= Q(donor_user_id=user_id)
    released = (
        MatchRelease.objects.filter(allocation=OuterRef("pk"))
        .values("allocation")
        .annotate(total=Sum("amount"))
        .values("total")
    )
    yen = BigIntegerField()
    return (
        MatchAllocation.objects.filter(same_donor, pool=pool)
        .annotate(released=Coalesce(Subquery(released), 0, output_field=yen))
        .aggregate(net=Coalesce(Sum(F("amount") - F("released"), output_field=yen), 0))["net"]
    )


def match_gift(
    *,
    gift_key: str,
    project: Project,
    amount: int,
    received_at: dt.datetime,
    donor_user_id: int | None,
    donor_email: str,
) -> list[MatchAllocation]:
    """Match a gift that just succeeded: pools in priority order, each taking the part of the
    gift the pools before it left unmatched, within its ratio, caps and what it has left.

    Runs inside the caller's transaction (the one that records the gift), so a gift and its
    match commit together. Called once per gift; a repeat finds the matches already made.
    """
    existing = list(MatchAllocation.objects.filter(gift_key=gift_key))
    if existing:
        return existing
    candidates = eligible_pools(project, at=received_at)
    if not candidates.exists():
        return []
    # One donor, however they give: the account, the email given, and the account's own email.
    # (Read before the pools' lock: everything after it waits for the commit.)
    email_hash = donor_email_hash(donor_email)
    email_hashes = [email_hash]
    if donor_user_id is not None:
        account_email = User.objects.filter(pk=donor_user_id).values_list("email", flat=True)
        email_hashes += [donor_email_hash(e) for e in account_email]
    pools = sorted(
        _lock_pools(MatchPool.objects.filter(pk__in=candidates.values("pk"))),
        key=lambda p: (-p.priority, p.ends_at, p.pk),
    )
    # What each pool has left, counted once under the ledger's lock too; each allocation's
    # entry is checked against it and lowers it.
    left = lock_balances(pool.account for pool in pools)
    unmatched = amount
    made = []
    for pool in pools:
        if unmatched <= 0:
            break
        share = min(entitlement(pool, unmatched), left[pool.account])
        if pool.cap_per_donor is not None and share > 0:
            used = _donor_matched(pool, user_id=donor_user_id, email_hashes=email_hashes)
            share = min(share, pool.cap_per_donor - used)
        if share <= 0:
            continue
        allocation = MatchAllocation.objects.create(
            pool=pool,
            gift_key=gift_key,
            project=project,
            donor_user_id=donor_user_id,
            donor_email_hash=email_hash,
            gift_amount=amount,
            amount=share,
            gift_received_at=received_at,
        )
        post_entry(
            kind=EntryKind.MATCH_ALLOCATED,
            key=f"match:{pool.pk}:{gift_key}",
            lines=[Line(pool.account, debit=share), Line(designated(project), credit=share)],
            memo=f"{pool} × {gift_key}",
            balances=left,
        )
        made.append(allocation)
        unmatched -= min(unmatched, _gift_yen_covered(pool, share))
    return made


def _release_targets(
    allocations: Iterable[MatchAllocation], *, gift_amount: int, refunded_total: int
) -> list[tuple[MatchAllocation, int]]:
    """(allocation, yen to release now) so that each match keeps only the share of the gift
    that was not refunded."""
    due = []
    for allocation in allocations:
        target = allocation.amount * min(refunded_total, gift_amount) // gift_amount
        released = sum(r.amount for r in allocation.releases.all())
        if target > released:
            due.append((allocation, target - released))
    return due


def release_due(*, gift_key: str, gift_amount: int, refunded_total: int) -> int:
    """Yen of match a refund bringing the gift's refunded total to ``refunded_total`` releases
    (so a refund can check the project's fund covers both before money moves)."""
    allocations = MatchAllocation.objects.filter(gift_key=gift_key).prefetch_related("releases")
    due = _release_targets(allocations, gift_amount=gift_amount, refunded_total=refunded_total)
    return sum(amount for _allocation, amount in due)


def release_matches(
    *, gift_key: str, gift_amount: int, refunded_total: int, refund_key: str
) -> list[MatchRelease]:
    """Give back the match of a refunded (or partly refunded) gift, once per refund.

    Runs inside the caller's transaction (the one that records the refund). A pool that has
    ended passes what comes back straight on, as its leftover rule says.
    """
    pool_ids = MatchAllocation.objects.filter(gift_key=gift_key).values("pool_id")
    pools = {p.pk: p for p in _lock_pools(MatchPool.objects.filter(pk__in=pool_ids))}
    if not pools:
        return []
    allocations = (
        MatchAllocation.objects.filter(gift_key=gift_key)
        .select_related("project")
        .prefetch_related("releases")
        .order_by("pool_id")
    )
    made = []
    for allocation, amount in _release_targets(
        allocations, gift_amount=gift_amount, refunded_total=refunded_total
    ):
        pool = pools[allocation.pool_id]
        key = f"match-release:{pool.pk}:{refund_key}"
        try:
            with transaction.atomic():
                release = MatchRelease.objects.create(allocation=allocation, key=key, amount=amount)
        except IntegrityError:
            continue  # this refund's release is already recorded
        post_entry(
            kind=EntryKind.MATCH_RELEASED,
            key=key,
            lines=[
                Line(designated(allocation.project), debit=amount),
                Line(pool.account, credit=amount),
            ],
            memo=f"{pool} × {gift_key}",
        )
        if pool.state == MatchPool.State.ENDED:
            _post_leftover(pool, key=f"pool:{pool.pk}:end:{refund_key}")
        made.append(release)
    return made
