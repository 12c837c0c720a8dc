"""Demo projects for ``make run``: adopted proposals of the demo register that the government did
not budget, listed by the demo programme officer through ``fund.services``.

Deterministic and idempotent: the candidates are the newest fundable proposals in reference
order, each demo slot takes the next one, and a proposal that already has a project is left as
it is — so a second run adds nothing. Windows are set around the day of the first run.
Gifts join when the donations work lands (issue 4): until then every project has raised ¥0.
"""

import datetime as dt
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from proposals.fiscal import JAPAN
from proposals.models import Proposal

from . import services
from .models import Project

PROGRAMME_OFFICER = "programme@civicfund.example.jp"

State = Project.State


@dataclass(frozen=True)
class DemoProject:
    state: str
    opens_in_days: int  # relative to today (Japan time); negative: in the past
    closes_in_days: int
    goal_yen: int
    close_at_goal: bool = False
    note: str = ""


# Open ones with windows around today, one draft, one closed, one cancelled.
PLAN: tuple[DemoProject, ...] = (
    DemoProject(State.OPEN, -20, 10, 1_200_000),
    DemoProject(State.OPEN, -5, 45, 800_000),
    DemoProject(State.OPEN, -40, 3, 500_000),
    DemoProject(State.OPEN, -2, 60, 2_000_000, close_at_goal=True),
    DemoProject(State.OPEN, -12, 25, 300_000),
    DemoProject(State.DRAFT, 7, 67, 1_500_000),
    DemoProject(State.CLOSED, -90, -5, 600_000),
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
