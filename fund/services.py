"""Every change to a designated-donation project goes through here, with a history row.

A project is listed from one proposal that the government adopted (or partially adopted) but did
not budget (DOMAIN.md §2). ``TRANSITIONS`` is the one statement of which state may follow which;
``project_transition`` applies one: it locks the project row, checks the table and the policy
and writes a ``ProjectEvent``. Nothing else writes ``Project.state``.

Who may: ``accounts.policy`` — ``project.manage`` (programme officers and the site admin).
Refusals raise ``PermissionDenied`` or ``ValidationError`` and write nothing.
"""

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.models import User
from accounts.policy import may
from proposals.models import Proposal

from .models import DEFAULT_FEE_RATE_BP, Project, ProjectEvent
from .selectors import raised_and_matched

State = Project.State
MAX_FEE_RATE_BP = 10_000
PERMISSION = "project.manage"


@dataclass(frozen=True)
class Transition:
    sources: frozenset[str]
    target: str
    label: Any
    # Offered as a button on the project's staff page. "grant" is not: a grant moves it.
    by_hand: bool = True
    # Who may: an action of accounts.policy.
    permission: str = PERMISSION


TRANSITIONS: dict[str, Transition] = {
    "open": Transition(
        sources=frozenset({State.DRAFT}),
        target=State.OPEN,
        label=gettext_lazy("Open for gifts"),
    ),
    # A project with close_at_goal set is also closed by the gift that reaches its goal
    # (``close_if_goal_reached``, no actor: the system).
    "close": Transition(
        sources=frozenset({State.OPEN}),
        target=State.CLOSED,
        label=gettext_lazy("Close fundraising"),
    ),
    # Moved by ``grants.services`` when the project's grant is approved (by an approver), and
    # back when that grant is cancelled before it was paid; not buttons on the staff page.
    "grant": Transition(
        sources=frozenset({State.CLOSED}),
        target=State.GRANTED,
        label=gettext_lazy("Mark as granted"),
        by_hand=False,
        permission="grant.approve",
    ),
    "ungrant": Transition(
        sources=frozenset({State.GRANTED}),
        target=State.CLOSED,
        label=gettext_lazy("Grant cancelled"),
        by_hand=False,
        permission="grant.cancel",
    ),
    # TODO(donations, grants): what happens to money already given to a cancelled project
    # (refunds, or the general fund with the donors' consent) is decided by those issues.
    "cancel": Transition(
        sources=frozenset({State.DRAFT, State.OPEN, State.CLOSED}),
        target=State.CANCELLED,
        label=gettext_lazy("Cancel the project"),
    ),
}


def allowed_actions(project: Project, *, by_hand_only: bool = False) -> list[str]:
    """The transitions the table allows from the project's current state."""
    return [
        name
        for name, t in TRANSITIONS.items()
        if project.state in t.sources and (t.by_hand or not by_hand_only)
    ]


def _check_actor(actor: User | None, permission: str = PERMISSION) -> None:
    if actor is None or not may(actor, permission):
        raise PermissionDenied(_("Only programme officers may list and manage projects."))


def _record(
    project: Project,
    *,
    action: str,
    from_state: str,
    actor: User | None,
    note: str = "",
    source: str = "",
) -> ProjectEvent:
    return ProjectEvent.objects.create(
        project=project,
        action=action,
        from_state=from_state,
        to_state=project.state,
        actor=actor,
        note=note,
        source=source,
    )


def already_listed_message() -> str:
    return _("This proposal is already listed as a project.")


def _check_fundable(proposal: Proposal) -> None:
    """Only an adopted proposal that the government did not budget can be a project."""
    if proposal.decision not in Proposal.ADOPTED_DECISIONS:
        raise ValidationError(
            _(
                "Only an adopted or partially adopted proposal can be listed; this one is "
                "“%(decision)s”."
            )
            % {"decision": proposal.get_decision_display() or _("not decided yet")}
        )
    if proposal.budget_provision != Proposal.BudgetProvision.NO:
        raise ValidationError(
            _(
                "Only a proposal the government did not budget can be listed; its budget "
                "provision is “%(budget)s”."
            )
            % {"budget": proposal.get_budget_provision_display()}
        )


def _is_whole_yen(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _validate_terms(
    *, goal_yen: Any, opens_at: dt.datetime, closes_at: dt.datetime, fee_rate_bp: Any
) -> None:
    errors: dict[str, str] = {}
    if not _is_whole_yen(goal_yen) or goal_yen < 1:
        errors["goal_yen"] = _("The goal is a whole number of yen, at least ¥1.")
    if opens_at is None or closes_at is None:
        errors["closes_at"] = _("Give the dates the fundraising opens and closes.")
    elif closes_at <= opens_at:
        errors["closes_at"] = _("The fundraising must close after it opens.")
    if not _is_whole_yen(fee_rate_bp) or not 0 <= fee_rate_bp <= MAX_FEE_RATE_BP:
        errors["fee_rate_bp"] = _("The fee rate is 0 to 10,000 basis points (0–100%).")
    if errors:
        raise ValidationError(errors)


@transaction.atomic
def project_create(
    *,
    proposal: Proposal,
    title: str,
    description: str,
    goal_yen: int,
    opens_at: dt.datetime,
    closes_at: dt.datetime,
    fee_rate_bp: int = DEFAULT_FEE_RATE_BP,
    close_at_goal: bool = False,
    actor: User,
) -> Project:
    """List a proposal as a draft project. One project per proposal, whoever lists it first."""
    _check_actor(actor)
    # Lock the proposal: its decision and budget provision cannot change while we list it.
    proposal = Proposal.objects.select_for_update().get(pk=proposal.pk)
    _check_fundable(proposal)
    if Project.objects.filter(proposal=proposal).exists():
        raise ValidationError(already_listed_message())
    _validate_terms(
        goal_yen=goal_yen, opens_at=opens_at, closes_at=closes_at, fee_rate_bp=fee_rate_bp
    )
    project = Project(
        proposal=proposal,
        title=title.strip(),
        description=description.strip(),
        goal_yen=goal_yen,
        opens_at=opens_at,
        closes_at=closes_at,
        fee_rate_bp=fee_rate_bp,
        close_at_goal=close_at_goal,
        created_by=actor,
    )
    # The unique proposal is left to the database: a concurrent listing is caught below.
    project.full_clean(validate_unique=False, validate_constraints=False)
    try:
        with transaction.atomic():
            project.save()
    except IntegrityError:
        if Project.objects.filter(proposal_id=proposal.pk).exists():
            raise ValidationError(already_listed_message()) from None
        raise
    _record(project, action="create", from_state="", actor=actor)
    return project


@transaction.atomic
def project_transition(*, project: Project, action: str, actor: User, note: str = "") -> Project:
    """Move a project along ``TRANSITIONS``; raises and writes nothing if the table refuses."""
    if action not in TRANSITIONS:
        raise ValidationError(_("Unknown action: %(action)s") % {"action": action})
    _check_actor(actor, TRANSITIONS[action].permission)
    # Lock the row so two officers cannot both move the same project from the same state.
    project = Project.objects.select_for_update().select_related("proposal").get(pk=project.pk)
    transition = TRANSITIONS[action]
    if project.state not in transition.sources:
        raise ValidationError(
            _("“%(action)s” is not possible while the project is “%(state)s”.")
            % {"action": transition.label, "state": project.get_state_display()}
        )
    if action == "open":
        # The government may have budgeted it since it was listed: then the fund steps back.
        _check_fundable(project.proposal)
    from_state = project.state
    project.state = transition.target
    project.save(update_fields=["state", "updated_at"])
    _record(project, action=action, from_state=from_state, actor=actor, note=note.strip())
    return project


@transaction.atomic
def close_if_goal_reached(project_id: int, *, source: str) -> bool:
    """Close an open project set to close at its goal once what it raised reaches the goal.

    Called by the system after a gift is recorded (no actor; ``source`` says what triggered it).
    Returns True if this call closed it; safe to call twice at once (the row is locked).
    """
    project = Project.objects.select_for_update().get(pk=project_id)
    if project.state != State.OPEN or not project.close_at_goal:
        return False
    raised, _matched = raised_and_matched([project.pk]).get(project.pk, (0, 0))
    if raised < project.goal_yen:
        return False
    project.state = TRANSITIONS["close"].target
    project.save(update_fields=["state", "updated_at"])
    _record(
        project,
        action="close",
        from_state=State.OPEN,
        actor=None,
        source=source,
        note=_("The goal was reached."),
    )
    return True


# The public texts, the goal and the window change while the project is a draft or open; the
# fee rate only while it is a draft (donors have given on its terms once it is open).
EDITABLE_FIELDS = (
    "title",
    "description",
    "goal_yen",
    "opens_at",
    "closes_at",
    "close_at_goal",
    "fee_rate_bp",
)
EDITABLE_STATES = frozenset({State.DRAFT, State.OPEN})


def _describe_change(name: str, old: Any, new: Any) -> str:
    if name in ("title", "description"):
        return name
    if isinstance(old, dt.datetime):
        old, new = old.isoformat(), new.isoformat()
    return f"{name}: {old} → {new}"


@transaction.atomic
def project_update(*, project: Project, actor: User, **fields: Any) -> Project:
    """Change a draft or open project's public texts, goal or window; records what changed."""
    _check_actor(actor)
    unknown = set(fields) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValueError(f"Not editable here: {sorted(unknown)}")
    project = Project.objects.select_for_update().get(pk=project.pk)
    if project.state not in EDITABLE_STATES:
        raise ValidationError(
            _("A project that is “%(state)s” can no longer be changed.")
            % {"state": project.get_state_display()}
        )
    for name in ("title", "description"):
        if isinstance(fields.get(name), str):
            fields[name] = fields[name].strip()
    if (
        "fee_rate_bp" in fields
        and fields["fee_rate_bp"] != project.fee_rate_bp
        and project.state != State.DRAFT
    ):
        raise ValidationError(
            {"fee_rate_bp": _("The fee rate can be changed only before the project opens.")}
        )
    values = {name: fields.get(name, getattr(project, name)) for name in EDITABLE_FIELDS}
    _validate_terms(
        goal_yen=values["goal_yen"],
        opens_at=values["opens_at"],
        closes_at=values["closes_at"],
        fee_rate_bp=values["fee_rate_bp"],
    )
    changes = []
    for name, value in fields.items():
        old = getattr(project, name)
        if old != value:
            changes.append(_describe_change(name, old, value))
            setattr(project, name, value)
    if not changes:
        return project
    project.full_clean(validate_unique=False, validate_constraints=False)
    project.save()
    _record(project, action="edit", from_state=project.state, actor=actor, note="\n".join(changes))
    return project
