"""Every change to a proposal goes through here: checked against the table, written with history.

``TRANSITIONS`` is the one statement of which step may follow which. ``proposal_transition``
applies one: it locks the proposal row, checks the table and the actor, records the step's
details (a consultation, the decision, the contract, the assessment) and writes a
``ProposalEvent``. Nothing else writes ``Proposal.state``.
"""

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.models import GovernmentBody, Organization, User
from accounts.policy import may

from .models import (
    Assessment,
    Consultation,
    Contract,
    Operation,
    Proposal,
    ProposalEvent,
)

State = Proposal.State
Decision = Proposal.Decision


@dataclass(frozen=True)
class Transition:
    sources: frozenset[str]
    target: str
    label: Any
    # Contract and assessment only make sense for what the government took on.
    requires_adoption: bool = False
    # Who may: an action of accounts.policy, judged on the proposal.
    permission: str = "proposal.advance"


TRANSITIONS: dict[str, Transition] = {
    "consult": Transition(
        sources=frozenset({State.RECEIVED, State.CONSULTATION}),
        target=State.CONSULTATION,
        label=gettext_lazy("Record a consultation"),
    ),
    # A response may be amended until a contract is signed (e.g. partial → full adoption).
    "respond": Transition(
        sources=frozenset({State.RECEIVED, State.CONSULTATION, State.RESPONDED}),
        target=State.RESPONDED,
        label=gettext_lazy("Record the response"),
    ),
    "contract": Transition(
        sources=frozenset({State.RESPONDED}),
        target=State.CONTRACTED,
        label=gettext_lazy("Record the contract"),
        requires_adoption=True,
    ),
    "assess": Transition(
        sources=frozenset({State.RESPONDED, State.CONTRACTED}),
        target=State.ASSESSED,
        label=gettext_lazy("Record the assessment"),
        requires_adoption=True,
    ),
    "withdraw": Transition(
        sources=frozenset({State.RECEIVED, State.CONSULTATION, State.RESPONDED}),
        target=State.WITHDRAWN,
        label=gettext_lazy("Withdraw"),
        permission="proposal.withdraw",
    ),
}


def allowed_actions(proposal: Proposal) -> list[str]:
    """The transitions the table allows from the proposal's current state."""
    return [
        name
        for name, t in TRANSITIONS.items()
        if proposal.state in t.sources and (not t.requires_adoption or proposal.is_adopted)
    ]


def _check_actor(actor: User | None, source: str, permission: str, obj: Any) -> None:
    # Imports and demo data run as the system and name their source instead of a user.
    if actor is None:
        if not source:
            raise PermissionDenied(_("A change without a user must name its source."))
        return
    if not may(actor, permission, obj):
        raise PermissionDenied(_("You may not change this proposal."))


def _record(
    proposal: Proposal,
    *,
    action: str,
    from_state: str,
    actor: User | None,
    source: str,
    note: str = "",
    changes: dict[str, Any] | None = None,
    effective_on: dt.date | None = None,
) -> ProposalEvent:
    return ProposalEvent.objects.create(
        proposal=proposal,
        action=action,
        from_state=from_state,
        to_state=proposal.state,
        actor=actor,
        source=source,
        note=note,
        changes=changes or {},
        effective_on=effective_on,
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.date):
        return value.isoformat()
    if hasattr(value, "pk"):
        return value.pk
    return value


@transaction.atomic
def proposal_create(
    *,
    reference: str,
    received_on: dt.date,
    body: GovernmentBody,
    organization: Organization,
    title: str,
    operation: Operation | None = None,
    summary: str = "",
    actor: User | None,
    source: str = "",
) -> Proposal:
    """Step 4: receive a proposal letter — submitted by a member of the proposing organisation,
    or recorded by an officer of the body that received it on paper."""
    if actor is None or not may(actor, "proposal.submit", organization):
        _check_actor(actor, source, "proposal.record", body)
    if operation is not None and operation.body_id != body.pk:
        raise ValidationError({"operation": _("The operation belongs to another government body.")})
    proposal = Proposal(
        reference=reference,
        received_on=received_on,
        body=body,
        organization=organization,
        title=title,
        operation=operation,
        summary=summary,
    )
    proposal.full_clean(exclude=["fiscal_year"])
    proposal.save()
    _record(
        proposal,
        action="receive",
        from_state="",
        actor=actor,
        source=source,
        effective_on=received_on,
    )
    return proposal


EDITABLE_FIELDS = ("title", "summary", "operation", "organization", "body", "received_on")


@transaction.atomic
def proposal_update(
    *, proposal: Proposal, actor: User | None, source: str = "", **fields: Any
) -> Proposal:
    """Correct a proposal's particulars; records what changed. No-op if nothing changed."""
    _check_actor(actor, source, "proposal.advance", proposal)
    unknown = set(fields) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValueError(f"Not editable here: {sorted(unknown)}")
    proposal = Proposal.objects.select_for_update().get(pk=proposal.pk)
    changes = {}
    for name, value in fields.items():
        old = getattr(proposal, name)
        if old != value:
            changes[name] = [_jsonable(old), _jsonable(value)]
            setattr(proposal, name, value)
    if not changes:
        return proposal
    proposal.full_clean(exclude=["fiscal_year"])
    proposal.save()
    _record(
        proposal,
        action="edit",
        from_state=proposal.state,
        actor=actor,
        source=source,
        changes=changes,
    )
    return proposal


@transaction.atomic
def proposal_transition(
    *,
    proposal: Proposal,
    action: str,
    actor: User | None,
    source: str = "",
    note: str = "",
    **details: Any,
) -> Proposal:
    """Move a proposal one step along ``TRANSITIONS``.

    Details by action:
    - ``consult``: ``held_on`` (date), ``notes``
    - ``respond``: ``decision`` (not "withdrawn"), ``decided_on``, ``reason``,
      ``planned_implementation_year``, optional ``budget_provision``
    - ``contract``: ``kind``, ``signed_on``, ``amount_yen``
    - ``assess``: ``assessed_on``, ``summary``
    - ``withdraw``: optional ``withdrawn_on`` (kept as ``decided_on``), ``note``

    Raises ``ValidationError`` for a step the table does not allow or bad details, and
    ``PermissionDenied`` for an actor who may not act. Nothing is written in either case.
    """
    if action not in TRANSITIONS:
        raise ValidationError(_("Unknown action: %(action)s") % {"action": action})
    _check_actor(actor, source, TRANSITIONS[action].permission, proposal)
    # Lock the row so two officers cannot both move the same proposal from the same state.
    proposal = Proposal.objects.select_for_update().get(pk=proposal.pk)
    if action not in allowed_actions(proposal):
        raise ValidationError(
            _("“%(action)s” is not possible while the proposal is “%(state)s”.")
            % {"action": TRANSITIONS[action].label, "state": proposal.get_state_display()}
        )
    from_state = proposal.state
    changes = _apply_details(proposal, action, details)
    proposal.state = TRANSITIONS[action].target
    proposal.full_clean(exclude=["fiscal_year"])
    proposal.save()
    _record(
        proposal,
        action=action,
        from_state=from_state,
        actor=actor,
        source=source,
        note=note,
        changes=changes,
        effective_on=details.get(STEP_DATE_DETAIL[action]),
    )
    return proposal


# The detail that says when each step happened, for the history row's effective_on.
STEP_DATE_DETAIL = {
    "consult": "held_on",
    "respond": "decided_on",
    "contract": "signed_on",
    "assess": "assessed_on",
    "withdraw": "withdrawn_on",
}


def _apply_details(proposal: Proposal, action: str, details: dict[str, Any]) -> dict[str, Any]:
    """Validate and store what a step records; returns the change set for the history row."""

    def require(name: str) -> Any:
        if details.get(name) in (None, ""):
            raise ValidationError({name: _("This field is required.")})
        return details[name]

    if action == "consult":
        held_on = require("held_on")
        if held_on < proposal.received_on:
            raise ValidationError(
                {"held_on": _("A consultation cannot be before the proposal was received.")}
            )
        consultation = Consultation(
            proposal=proposal, held_on=held_on, notes=details.get("notes", "")
        )
        consultation.full_clean()
        consultation.save()
        return {"held_on": held_on.isoformat()}

    if action == "respond":
        decision = require("decision")
        if decision not in Decision.values or decision == Decision.WITHDRAWN:
            raise ValidationError(
                {"decision": _("Choose adopted, partially adopted, not adopted or noted.")}
            )
        decided_on = details.get("decided_on")
        if decided_on and decided_on < proposal.received_on:
            raise ValidationError(
                {"decided_on": _("A decision cannot be before the proposal was received.")}
            )
        new = {
            "decision": decision,
            "decided_on": decided_on,
            "decision_reason": details.get("reason", proposal.decision_reason),
            "planned_implementation_year": details.get(
                "planned_implementation_year", proposal.planned_implementation_year
            ),
        }
        if details.get("budget_provision"):
            new["budget_provision"] = details["budget_provision"]
        return _set_fields(proposal, new)

    if action == "contract":
        contract = Contract(
            proposal=proposal,
            kind=require("kind"),
            signed_on=require("signed_on"),
            amount_yen=details.get("amount_yen"),
        )
        contract.full_clean()
        contract.save()
        return {
            "kind": contract.kind,
            "signed_on": contract.signed_on.isoformat(),
            "amount_yen": contract.amount_yen,
        }

    if action == "assess":
        assessment = Assessment(
            proposal=proposal, assessed_on=require("assessed_on"), summary=require("summary")
        )
        assessment.full_clean()
        assessment.save()
        return {"assessed_on": assessment.assessed_on.isoformat()}

    if action == "withdraw":
        withdrawn_on = details.get("withdrawn_on")
        if withdrawn_on and withdrawn_on < proposal.received_on:
            raise ValidationError(
                {"withdrawn_on": _("A withdrawal cannot be before the proposal was received.")}
            )
        return _set_fields(proposal, {"decision": Decision.WITHDRAWN, "decided_on": withdrawn_on})

    raise AssertionError(action)  # every name in TRANSITIONS is handled above


def _set_fields(proposal: Proposal, values: dict[str, Any]) -> dict[str, Any]:
    changes = {}
    for name, value in values.items():
        old = getattr(proposal, name)
        if old != value:
            changes[name] = [_jsonable(old), _jsonable(value)]
            setattr(proposal, name, value)
    return changes


@transaction.atomic
def proposal_set_budget_provision(
    *, proposal: Proposal, budget_provision: str, actor: User | None, source: str = ""
) -> Proposal:
    """Record whether the government budgeted the proposal — separate from the decision."""
    _check_actor(actor, source, "proposal.advance", proposal)
    if budget_provision not in Proposal.BudgetProvision.values:
        raise ValidationError({"budget_provision": _("Choose yes, no or pending.")})
    proposal = Proposal.objects.select_for_update().get(pk=proposal.pk)
    if proposal.state == State.WITHDRAWN:
        raise ValidationError(_("A withdrawn proposal has no budget provision to record."))
    if proposal.budget_provision == budget_provision:
        return proposal
    changes = {"budget_provision": [proposal.budget_provision, budget_provision]}
    proposal.budget_provision = budget_provision
    proposal.save(update_fields=["budget_provision", "updated_at"])
    _record(
        proposal,
        action="budget_provision",
        from_state=proposal.state,
        actor=actor,
        source=source,
        changes=changes,
    )
    return proposal
