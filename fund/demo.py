"""Demo projects for ``make run``: adopted proposals of the demo register that the government did
not budget, listed by the demo programme officer through ``fund.services``.

Deterministic and idempotent: the candidates are the newest fundable proposals in reference
order, each demo slot takes the next one, and a proposal that already has a project is left as
it is — so a second run adds nothing. Windows are set around the day of the first run.

The match pools (``load_pools_demo``) are pledged through ``fund.matching`` by the demo
programme officer before the demo gifts are given (``donations.demo``), so the real matching
service matches those gifts; ``finish_pools_demo`` then records the sponsors' payments and ends
one pool. ``manage.py load_demo`` (grants) runs them in that order.
"""

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from accounts.demo import SPONSOR_BANK, SPONSOR_FOUNDATION, SPONSOR_PREFECTURE
from accounts.models import Organization, User
from proposals.fiscal import JAPAN
from proposals.models import Proposal

from . import matching, services
from .models import MatchPool, MatchPoolEvent, Project

PROGRAMME_OFFICER = "programme@civicfund.example.jp"
FINANCE = "finance@civicfund.example.jp"

State = Project.State


@dataclass(frozen=True)
class DemoProject:
    state: str
    opens_in_days: int  # relative to today (Japan time); negative: in the past
    closes_in_days: int
    goal_yen: int
    close_at_goal: bool = False
    note: str = ""


# Open ones with windows around today, one draft, one closed, one cancelled. The goals are set
# for what the demo gifts raise with their matches (donations.demo, the pools below).
PLAN: tuple[DemoProject, ...] = (
    DemoProject(State.OPEN, -20, 10, 1_600_000),
    DemoProject(State.OPEN, -5, 45, 800_000),
    DemoProject(State.OPEN, -40, 3, 750_000),
    DemoProject(State.OPEN, -2, 60, 2_000_000, close_at_goal=True),
    DemoProject(State.OPEN, -12, 25, 500_000),
    DemoProject(State.DRAFT, 7, 67, 1_500_000),
    DemoProject(State.CLOSED, -90, -5, 800_000),
    DemoProject(State.CANCELLED, -30, 30, 900_000, note="提案団体の事情により実施を見送り(デモ)"),
)

# The steps that lead to each state from a draft.
STEPS = {
    State.DRAFT: (),
    State.OPEN: ("open",),
    State.CLOSED: ("open", "close"),
    State.CANCELLED: ("cancel",),
}


def fundable_candidates() -> list[Proposal]:
    """The newest adopted, unbudgeted proposals, in a fixed order: one per demo slot."""
    return list(
        Proposal.objects.filter(
            decision__in=Proposal.ADOPTED_DECISIONS,
            budget_provision=Proposal.BudgetProvision.NO,
        )
        .select_related("body")
        .order_by("-fiscal_year", "reference")[: len(PLAN)]
    )


def demo_projects() -> dict[int, Project]:
    """The demo's projects by slot (an index into ``PLAN``), as ``load_fund_demo`` matched its
    plan to proposals; a slot without a project (a smaller register) is missing."""
    candidates = fundable_candidates()
    by_proposal = {
        project.proposal_id: project for project in Project.objects.filter(proposal__in=candidates)
    }
    return {
        slot: by_proposal[proposal.pk]
        for slot, (_spec, proposal) in enumerate(zip(PLAN, candidates, strict=False))
        if proposal.pk in by_proposal
    }


def _description(proposal: Proposal) -> str:
    summary = proposal.summary.strip() or proposal.title
    return (
        f"{summary}\n\n"
        f"この事業は{proposal.body.name}が協働化テストで採択しましたが、予算化されていません。"
        "皆さまのご寄附で実施を後押しします。"
    )


@transaction.atomic
def load_fund_demo() -> dict[str, int]:
    """List the demo projects that are not there yet; returns how many were new."""
    actor = User.objects.get(email=PROGRAMME_OFFICER)
    today = timezone.localdate(timezone=JAPAN)
    created = 0
    for spec, proposal in zip(PLAN, fundable_candidates(), strict=False):
        if Project.objects.filter(proposal=proposal).exists():
            continue
        opens = today + dt.timedelta(days=spec.opens_in_days)
        closes = today + dt.timedelta(days=spec.closes_in_days)
        project = services.project_create(
            proposal=proposal,
            title=proposal.title[:200],
            description=_description(proposal),
            goal_yen=spec.goal_yen,
            opens_at=dt.datetime.combine(opens, dt.time.min, tzinfo=JAPAN),
            closes_at=dt.datetime.combine(closes, dt.time(23, 59, 59), tzinfo=JAPAN),
            close_at_goal=spec.close_at_goal,
            actor=actor,
        )
        for action in STEPS[spec.state]:
            project = services.project_transition(
                project=project, action=action, actor=actor, note=spec.note
            )
        created += 1
    return {"demo_projects": created}


# --- Match pools ---------------------------------------------------------------------------------

# What the nearly spent pool has left once the demo gifts are matched (and one refunded in part).
NEARLY_SPENT_LEFT = 3_000


@dataclass(frozen=True)
class DemoPool:
    sponsor: str  # the sponsor organisation's name (accounts.demo)
    name: str
    pledged: int | None  # None: the nearly spent pool, pledged from the gifts to come
    starts_in_days: int  # the window, relative to today (Japan time); it holds the demo gifts
    ends_in_days: int
    priority: int
    ratio_match: int = 1  # yen matched per yen given
    cap_per_gift: int | None = None
    cap_per_donor: int | None = None
    slots: tuple[int, ...] = ()  # scope "projects": these PLAN slots
    fiscal_year: bool = False  # scope "fiscal_year": the demo projects' (newest) fiscal year
    to_general_fund: bool = False  # leftover to the general fund, with the sponsor's consent
    payments: tuple[tuple[str, int], ...] = ()  # (bank reference, yen), after the gifts
    ended: bool = False  # ended by the programme officer after the gifts are matched


# In matching order: the nearly spent pool comes first, so it takes its whole entitlement from
# every gift to its projects and its pledge can be worked out before the gifts are given.
POOLS: tuple[DemoPool, ...] = (
    DemoPool(
        SPONSOR_BANK,
        "佐賀未来銀行 ラストスパート2倍マッチング",
        None,
        -10,
        14,
        priority=10,
        ratio_match=2,
        cap_per_gift=5_000,
        slots=(2, 4),
    ),
    DemoPool(
        SPONSOR_PREFECTURE,
        "佐賀県 協働化提案 応援マッチング",
        400_000,
        -20,
        40,
        priority=5,
        cap_per_gift=10_000,
        cap_per_donor=10_000,
        fiscal_year=True,
    ),
    DemoPool(
        SPONSOR_BANK,
        "佐賀未来銀行 創立記念マッチング",
        100_000,
        -60,
        1,
        priority=3,
        cap_per_gift=20_000,
        slots=(6,),
        to_general_fund=True,
        payments=(("DEMO-SMB-0001", 100_000),),
        ended=True,
    ),
    DemoPool(
        SPONSOR_FOUNDATION,
        "さが地域づくり基金 市民ファンド応援マッチング",
        1_000_000,
        -30,
        60,
        priority=1,
        cap_per_gift=30_000,
        payments=(("DEMO-SGF-0001", 500_000),),
    ),
)

# (yen given, yen of it refunded) for each payment the demo gifts will make, by PLAN slot.
PlannedGifts = Mapping[int, Sequence[tuple[int, int]]]


def _existing(spec: DemoPool) -> MatchPool | None:
    return MatchPool.objects.filter(sponsor__name=spec.sponsor, name=spec.name).first()


def _nearly_spent_pledge(spec: DemoPool, planned: PlannedGifts) -> int:
    """What the demo gifts to the pool's projects will take from it, net of the match a refund
    gives back, plus ``NEARLY_SPENT_LEFT`` — never less than they take before the refund, so every
    match is whole. The pool is first in matching order: it matches each gift from the start."""
    rules = MatchPool(ratio_gift=1, ratio_match=spec.ratio_match, cap_per_gift=spec.cap_per_gift)
    matched = released = 0
    for slot in spec.slots:
        for amount, refunded in planned.get(slot, ()):
            share = matching.entitlement(rules, amount)
            matched += share
            released += share * min(refunded, amount) // amount  # as release_matches rounds
    return max(matched - released + NEARLY_SPENT_LEFT, matched)


@transaction.atomic
def load_pools_demo(planned: PlannedGifts | None = None) -> dict[str, int]:
    """Pledge the demo pools that are not there yet, before the demo gifts; returns how many
    were new. ``planned``: the gifts ``donations.demo`` is about to give (``planned_gifts``)."""
    actor = User.objects.get(email=PROGRAMME_OFFICER)
    planned = planned or {}
    projects = demo_projects()
    candidates = fundable_candidates()
    today = timezone.localdate(timezone=JAPAN)
    created = 0
    for spec in POOLS:
        if _existing(spec) is not None:
            continue
        sponsor = Organization.objects.filter(name=spec.sponsor).first()
        chosen = [projects[slot] for slot in spec.slots if slot in projects]
        if sponsor is None or (spec.slots and not chosen) or (spec.fiscal_year and not candidates):
            continue  # no sponsors loaded, or a smaller register without these projects
        if spec.slots:
            scope = MatchPool.Scope.PROJECTS
        elif spec.fiscal_year:
            scope = MatchPool.Scope.FISCAL_YEAR
        else:
            scope = MatchPool.Scope.ALL
        starts = today + dt.timedelta(days=spec.starts_in_days)
        ends = today + dt.timedelta(days=spec.ends_in_days)
        matching.pool_create(
            actor=actor,
            sponsor=sponsor,
            name=spec.name,
            pledged=spec.pledged or _nearly_spent_pledge(spec, planned),
            starts_at=dt.datetime.combine(starts, dt.time.min, tzinfo=JAPAN),
            ends_at=dt.datetime.combine(ends, dt.time(23, 59, 59), tzinfo=JAPAN),
            ratio_match=spec.ratio_match,
            cap_per_gift=spec.cap_per_gift,
            cap_per_donor=spec.cap_per_donor,
            scope=scope,
            projects=chosen,
            fiscal_year=candidates[0].fiscal_year if spec.fiscal_year else None,
            priority=spec.priority,
            leftover=MatchPool.Leftover.GENERAL_FUND
            if spec.to_general_fund
            else MatchPool.Leftover.SPONSOR,
            sponsor_consents_to_general_fund=spec.to_general_fund,
        )
        created += 1
    return {"demo_pools": created}


@transaction.atomic
def finish_pools_demo() -> dict[str, int]:
    """After the demo gifts: the sponsors' payments (finance officer), then the pool that ends
    (programme officer; what it has left goes as it says). Each once; returns how many were new."""
    finance = User.objects.get(email=FINANCE)
    officer = User.objects.get(email=PROGRAMME_OFFICER)
    payments = ended = 0
    for spec in POOLS:
        pool = _existing(spec)
        if pool is None:
            continue
        for reference, amount in spec.payments:
            if pool.events.filter(
                action=MatchPoolEvent.Action.PAYMENT_RECEIVED, reference=reference
            ).exists():
                continue
            amount = min(amount, matching.unpaid(pool))
            if amount < 1:
                continue
            matching.pool_record_payment(
                pool=pool, amount=amount, reference=reference, actor=finance
            )
            payments += 1
        if spec.ended and pool.state == MatchPool.State.ACTIVE:
            matching.pool_end(pool=pool, actor=officer)
            ended += 1
    return {"demo_pool_payments": payments, "demo_pools_ended": ended}
