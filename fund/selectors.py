"""Reads of the fund: the public list of open projects and each project's progress.

Money figures come from the ledger's postings only (``fund.ledger``), never from a stored total.
A page of projects costs a fixed number of queries: the projects, then one aggregate over the
postings of all their designated accounts (``progress_for``).
"""

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import F, OuterRef, Q, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts.models import GovernmentBody
from proposals.fiscal import JAPAN
from proposals.models import Proposal

from .ledger import EntryKind
from .matching import eligible_pools
from .models import (
    LedgerAccount,
    MatchAllocation,
    MatchPool,
    MatchPoolEvent,
    MatchRelease,
    Posting,
    Project,
)

Kind = LedgerAccount.Kind

SORTS = ("ending", "needed")
PUBLIC_STATES = (Project.State.OPEN, Project.State.CLOSED, Project.State.GRANTED)


@dataclass(frozen=True)
class Progress:
    """What a project's page and card show. Yen figures are whole yen."""

    raised: int
    matched: int
    goal: int
    donors: int
    days_left: int | None  # None once the window has closed; 0 on its last day

    @property
    def percent(self) -> int:
        """Raised as a whole percent of the goal (floor); above 100 when the goal is passed."""
        return self.raised * 100 // self.goal if self.goal else 0

    @property
    def bar_percent(self) -> int:
        """The progress bar's width: 0–100."""
        return max(0, min(self.percent, 100))

    @property
    def needed(self) -> int:
        return max(self.goal - self.raised, 0)


def days_left(project: Project, *, now: dt.datetime | None = None) -> int | None:
    """Whole days until the window closes, counted in Japan time; None once it has closed."""
    now = now or timezone.now()
    if project.closes_at <= now:
        return None
    today = now.astimezone(JAPAN).date()
    return (project.closes_at.astimezone(JAPAN).date() - today).days


def _progress(
    project: Project, money: tuple[int, int], donors: int, now: dt.datetime | None = None
) -> Progress:
    raised, matched = money
    return Progress(
        raised=raised,
        matched=matched,
        goal=project.goal_yen,
        donors=donors,
        days_left=days_left(project, now=now),
    )


def raised_and_matched(project_ids: Iterable[int]) -> dict[int, tuple[int, int]]:
    """Each project's (raised, matched) in yen, in ONE aggregate query whatever the number.

    Raised: gifts and matches credited to its designated account, less refunds and released
    matches — what came in, not what is left once grants draw on it. Matched: the matches alone.
    """
    raising = Q(entry__kind__in=EntryKind.RAISING)
    matching = Q(entry__kind__in=EntryKind.MATCHING)
    rows = (
        Posting.objects.filter(
            account__kind=LedgerAccount.Kind.DESIGNATED, account__project_id__in=list(project_ids)
        )
        .values("account__project_id")
        .annotate(
            raised=Coalesce(Sum("amount", filter=raising), 0),
            matched=Coalesce(Sum("amount", filter=matching), 0),
        )
        .order_by()
        .values_list("account__project_id", "raised", "matched")
    )
    # Designated accounts are credit-normal: credits are negative postings.
    return {project_id: (-raised, -matched) for project_id, raised, matched in rows}


def project_progress(project: Project, *, donors: int = 0) -> Progress:
    """One project's progress, read from the ledger. ``donors`` comes from the gifts (donations
    counts them; the fund does not know donors)."""
    return _progress(project, raised_and_matched([project.pk]).get(project.pk, (0, 0)), donors)


def progress_for(
    projects: Iterable[Project], *, donors: dict[int, int] | None = None
) -> dict[int, Progress]:
    """The progress of many projects (a page of the list), by project id: one query."""
    projects = list(projects)
    money = raised_and_matched(p.pk for p in projects)
    donors = donors or {}
    now = timezone.now()
    return {p.pk: _progress(p, money.get(p.pk, (0, 0)), donors.get(p.pk, 0), now) for p in projects}


def _with_proposal(projects: QuerySet[Project]) -> QuerySet[Project]:
    return projects.select_related(
        "proposal__body", "proposal__operation", "proposal__organization"
    )


def open_projects(
    *,
    body: GovernmentBody | None = None,
    fiscal_year: int | None = None,
    sort: str = "ending",
) -> QuerySet[Project]:
    """Projects open for gifts now, for the public list.

    ``body``: the government body the proposal went to. ``fiscal_year``: the proposal's fiscal
    year. ``sort``: "ending" (the window closing soonest first) or "needed" (the largest
    goal − raised first; the ledger sum is a subquery of the same query).
    """
    if sort not in SORTS:
        raise ValueError(f"Unknown sort: {sort!r}")
    projects = _with_proposal(
        Project.objects.filter(state=Project.State.OPEN, closes_at__gt=timezone.now())
    )
    if body is not None:
        projects = projects.filter(proposal__body=body)
    if fiscal_year:
        projects = projects.filter(proposal__fiscal_year=fiscal_year)
    if sort == "ending":
        return projects.order_by("closes_at", "pk")
    posted = (
        Posting.objects.filter(
            account__kind=LedgerAccount.Kind.DESIGNATED,
            account__project_id=OuterRef("pk"),
            entry__kind__in=EntryKind.RAISING,
        )
        .values("account__project_id")
        .annotate(total=Sum("amount"))
        .values("total")
    )
    # goal − raised = goal + (sum of postings), the postings of a credit account being negative.
    return projects.annotate(
        needed_yen=F("goal_yen") + Coalesce(Subquery(posted), Value(0))
    ).order_by("-needed_yen", "closes_at", "pk")


def public_project(pk: int) -> Project | None:
    """A project with its proposal's particulars, whatever its state (the view decides)."""
    return _with_proposal(Project.objects.all()).filter(pk=pk).first()


def all_projects(*, state: str = "") -> QuerySet[Project]:
    """Every project, for the foundation's staff page; newest first."""
    projects = _with_proposal(Project.objects.all())
    if state:
        projects = projects.filter(state=state)
    return projects.order_by("-created_at", "-pk")


def unlisted_fundable_proposals() -> QuerySet[Proposal]:
    """Adopted (or partially) proposals with no budget provision that no project lists yet."""
    return (
        Proposal.objects.filter(
            decision__in=Proposal.ADOPTED_DECISIONS,
            budget_provision=Proposal.BudgetProvision.NO,
            project__isnull=True,
        )
        .select_related("body", "organization", "operation")
        .order_by("-fiscal_year", "-decided_on", "reference")
    )


def fiscal_years_of_open_projects() -> list[int]:
    """The proposals' fiscal years among open projects, newest first (the filter's choices)."""
    return list(
        Project.objects.filter(state=Project.State.OPEN)
        .values_list("proposal__fiscal_year", flat=True)
        .distinct()
        .order_by("-proposal__fiscal_year")
    )


# --- Unfunded proposals (the government's and the foundation's view) ---------------------------

# A project in one of these states still stands for its proposal; a cancelled one does not, so
# its proposal is unfunded again (and could be listed anew).
STANDING_STATES = (Project.State.DRAFT, Project.State.OPEN, Project.State.CLOSED)


@dataclass(frozen=True)
class UnfundedProposal:
    """An adopted proposal without budget that no project has funded (yet).

    ``project`` is the project listing it (draft, open or closed, under its goal), or None when it
    is not listed — or its project was cancelled. Yen figures are None for an unlisted proposal.
    """

    proposal: Proposal
    project: Project | None
    raised: int | None

    @property
    def goal(self) -> int | None:
        return self.project.goal_yen if self.project else None

    @property
    def gap(self) -> int | None:
        """goal − raised; None when no project lists the proposal."""
        return self.project.goal_yen - self.raised if self.project else None

    @property
    def deadline(self) -> dt.datetime | None:
        """The project's fundraising close; None when no project lists the proposal."""
        return self.project.closes_at if self.project else None

    @property
    def deadline_date(self) -> dt.date | None:
        """The deadline's date in Japan time."""
        return self.deadline.astimezone(JAPAN).date() if self.deadline else None


def unfunded_proposals(
    *, body: GovernmentBody | int | None = None, fiscal_year: int | None = None
) -> list[UnfundedProposal]:
    """Adopted (or partially adopted) proposals with budget provision "no" that are not listed as
    a project (or whose project was cancelled), or listed (draft, open or closed) and under goal.

    Two queries, however many: the proposals with their project, then one aggregate of the
    designated balances. Newest fiscal year first, then by body and reference.
    """
    proposals = (
        Proposal.objects.filter(
            decision__in=Proposal.ADOPTED_DECISIONS,
            budget_provision=Proposal.BudgetProvision.NO,
        )
        .filter(
            Q(project__isnull=True)
            | Q(project__state__in=(*STANDING_STATES, Project.State.CANCELLED))
        )
        .select_related("body", "organization", "project")
        .order_by("-fiscal_year", "body__code", "reference", "pk")
    )
    if body is not None:
        proposals = proposals.filter(body=body)
    if fiscal_year:
        proposals = proposals.filter(fiscal_year=fiscal_year)
    proposals = list(proposals)

    def standing(proposal: Proposal) -> Project | None:
        project = getattr(proposal, "project", None)  # RelatedObjectDoesNotExist → None
        return project if project and project.state in STANDING_STATES else None

    money = raised_and_matched(
        project.pk for proposal in proposals if (project := standing(proposal))
    )
    rows = []
    for proposal in proposals:
        project = standing(proposal)
        if project is None:
            rows.append(UnfundedProposal(proposal=proposal, project=None, raised=None))
            continue
        raised = money.get(project.pk, (0, 0))[0]
        if raised < project.goal_yen:
            rows.append(UnfundedProposal(proposal=proposal, project=project, raised=raised))
    return rows


# --- Match pools ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PoolFigures:
    """A pool's money, read from its two ledger accounts. Whole yen."""

    pledged: int  # every pledge and top-up
    paid: int  # what the sponsor has paid of it
    unpaid: int  # still owed by the sponsor
    matched: int  # matches allocated, before releases
    released: int  # matches given back after refunds
    returned: int  # what was left when the pool ended (and came back after)
    left: int  # still available to match

    @property
    def net_matched(self) -> int:
        return self.matched - self.released


def pool_figures(pools: Iterable[MatchPool]) -> dict[int, PoolFigures]:
    """Each pool's figures by pool id, in one aggregate query whatever the number of pools."""
    pools = list(pools)
    codes = {p.account: p.pk for p in pools} | {p.receivable_account: p.pk for p in pools}
    sums: dict[tuple[int, str, str], int] = {}
    rows = (
        Posting.objects.filter(account__code__in=list(codes))
        .values("account__code", "account__kind", "entry__kind")
        .annotate(total=Sum("amount"))
        .order_by()
        .values_list("account__code", "account__kind", "entry__kind", "total")
    )
    for code, account_kind, entry_kind, total in rows:
        sums[(codes[code], account_kind, entry_kind)] = total

    def total(pool_id: int, account_kind: str, *entry_kinds: str) -> int:
        return sum(sums.get((pool_id, account_kind, k), 0) for k in entry_kinds)

    pool_kind, receivable_kind, kinds = Kind.MATCH_POOL, Kind.PLEDGE_RECEIVABLE, EntryKind
    figures = {}
    for pool in pools:
        pledged = -total(pool.pk, pool_kind, kinds.POOL_PLEDGED)
        matched = total(pool.pk, pool_kind, kinds.MATCH_ALLOCATED)
        released = -total(pool.pk, pool_kind, kinds.MATCH_RELEASED)
        returned = total(pool.pk, pool_kind, kinds.POOL_ENDED)
        receivable = total(
            pool.pk, receivable_kind, kinds.POOL_PLEDGED, kinds.PLEDGE_PAID, kinds.POOL_ENDED
        )
        figures[pool.pk] = PoolFigures(
            pledged=pledged,
            paid=-total(pool.pk, receivable_kind, kinds.PLEDGE_PAID),
            unpaid=receivable,
            matched=matched,
            released=released,
            returned=returned,
            left=pledged - matched + released - returned,
        )
    return figures


@dataclass(frozen=True)
class MatchOffer:
    pool: MatchPool
    left: int


def all_pools(*, state: str = "") -> QuerySet[MatchPool]:
    pools = MatchPool.objects.select_related("sponsor", "body")
    return pools.filter(state=state) if state else pools


def matching_offers(project: Project, *, now: dt.datetime | None = None) -> list[MatchOffer]:
    """The pools that would match a gift to this project now, in the order they match, with
    what each has left (the project page's "gifts matched 1:1 by …")."""
    pools = list(eligible_pools(project, at=now or timezone.now()).select_related("sponsor"))
    figures = pool_figures(pools)
    return [
        MatchOffer(pool=pool, left=figures[pool.pk].left)
        for pool in pools
        if figures[pool.pk].left > 0
    ]


@dataclass(frozen=True)
class GiftMatch:
    """What one pool added to one gift, net of releases."""

    sponsor: str
    pool: str
    matched: int
    released: int

    @property
    def net(self) -> int:
        return self.matched - self.released


def matches_by_gift(gift_keys: Iterable[str]) -> dict[str, list[GiftMatch]]:
    """The matches of many gifts (by payment id), in two queries: for the thank-you page and the
    donor's history."""
    allocations = (
        MatchAllocation.objects.filter(gift_key__in=list(gift_keys))
        .select_related("pool__sponsor")
        .annotate(released=Coalesce(Sum("releases__amount"), 0))
        .order_by("pk")
    )
    found: dict[str, list[GiftMatch]] = {}
    for a in allocations:
        found.setdefault(a.gift_key, []).append(
            GiftMatch(
                sponsor=a.pool.sponsor.name, pool=a.pool.name, matched=a.amount, released=a.released
            )
        )
    return found


@dataclass(frozen=True)
class StatementLine:
    """One line of a sponsor's statement: a pledge, payment, match, release or the end."""

    at: dt.datetime
    kind: str  # an entry kind of fund.ledger.EntryKind
    amount: int  # yen, positive
    project: Project | None = None
    gift_amount: int | None = None
    reference: str = ""


def pool_statement(pool: MatchPool) -> list[StatementLine]:
    """Everything that moved the pool's money, oldest first. No donor appears on it: a gift is
    shown by its date, project and amount only."""
    lines = [
        StatementLine(
            at=a.created_at,
            kind=EntryKind.MATCH_ALLOCATED,
            amount=a.amount,
            project=a.project,
            gift_amount=a.gift_amount,
        )
        for a in pool.allocations.select_related("project")
    ]
    lines += [
        StatementLine(
            at=r.created_at,
            kind=EntryKind.MATCH_RELEASED,
            amount=r.amount,
            project=r.allocation.project,
            gift_amount=r.allocation.gift_amount,
        )
        for r in MatchRelease.objects.filter(allocation__pool=pool).select_related(
            "allocation__project"
        )
    ]
    event_kinds = {
        MatchPoolEvent.Action.CREATED: EntryKind.POOL_PLEDGED,
        MatchPoolEvent.Action.TOPPED_UP: EntryKind.POOL_PLEDGED,
        MatchPoolEvent.Action.PAYMENT_RECEIVED: EntryKind.PLEDGE_PAID,
        MatchPoolEvent.Action.ENDED: EntryKind.POOL_ENDED,
    }
    lines += [
        StatementLine(
            at=e.occurred_at,
            kind=event_kinds[e.action],
            amount=e.amount,
            reference=e.reference,
        )
        for e in pool.events.filter(action__in=list(event_kinds), amount__isnull=False)
    ]
    return sorted(lines, key=lambda line: line.at)
