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
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.models import GovernmentBody, Organization, User
from accounts.policy import may

from .fiscal import JAPAN, fiscal_year_of
from .models import (
    Assessment,
    Consultation,
    Contract,
    Department,
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


@dataclass(frozen=True)
class FundOutcome:
    """What the civic fund writes back to step 8 when a grant's final report is accepted."""

    grant: str
    raised_yen: int
    matched_yen: int
    granted_yen: int
    fee_yen: int
    paid_yen: int
    report: str


@transaction.atomic
def record_fund_outcome(
    *, proposal: Proposal, outcome: FundOutcome, assessed_on: dt.date, actor: User
) -> Proposal:
    """Step 8 for a proposal the civic fund paid for: the grant's figures and the CSO's final
    report. A proposal not yet assessed is moved to "assessed" with the report as its outcome; an
    assessment the government already wrote keeps its own text and gains the fund's figures."""
    if not may(actor, "proposal.record_fund_outcome", proposal):
        raise PermissionDenied(_("Only the foundation's programme officers write fund outcomes."))
    proposal = Proposal.objects.select_for_update().get(pk=proposal.pk)
    if not proposal.is_adopted:
        raise ValidationError(_("Only an adopted proposal can be assessed."))
    from_state = proposal.state
    assessment = Assessment.objects.filter(proposal=proposal).first()
    if assessment is None:
        assessment = Assessment(proposal=proposal, assessed_on=assessed_on, summary=outcome.report)
    assessment.fund_grant = outcome.grant
    assessment.fund_raised_yen = outcome.raised_yen
    assessment.fund_matched_yen = outcome.matched_yen
    assessment.fund_granted_yen = outcome.granted_yen
    assessment.fund_fee_yen = outcome.fee_yen
    assessment.fund_paid_yen = outcome.paid_yen
    assessment.fund_report = outcome.report
    assessment.fund_recorded_at = timezone.now()
    assessment.full_clean()
    assessment.save()
    if proposal.state in (State.RESPONDED, State.CONTRACTED):
        proposal.state = State.ASSESSED
        proposal.save(update_fields=["state"])
    _record(
        proposal,
        action="fund_outcome",
        from_state=from_state,
        actor=actor,
        source="civic_fund",
        note=_("Grant %(grant)s: the final report was accepted.") % {"grant": outcome.grant},
        # Named as the assessment's fields, so the history shows them in their own words.
        changes={
            "fund_grant": outcome.grant,
            "fund_raised_yen": outcome.raised_yen,
            "fund_matched_yen": outcome.matched_yen,
            "fund_granted_yen": outcome.granted_yen,
            "fund_fee_yen": outcome.fee_yen,
            "fund_paid_yen": outcome.paid_yen,
        },
        effective_on=assessed_on,
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


# --- The catalogue and paper letters (officers, from pages and the API) --------------------


def normalize_name(name: str) -> str:
    """One space between words, none at the ends: "  県民  協働課 " → "県民 協働課"."""
    return " ".join(name.split())


OPERATION_FIELDS = (
    "fiscal_year",
    "code",
    "title",
    "summary",
    "budget_yen",
    "department",
    "current_provider",
    "collaboration_potential",
    "published_on",
)


@transaction.atomic
def operation_save(
    *,
    actor: User,
    body: GovernmentBody,
    operation: Operation | None = None,
    department_name: str = "",
    **fields: Any,
) -> Operation:
    """Create an operation of ``body`` (``operation`` None) or change one; checks the policy.

    ``department_name`` names a department of the body, created if it is new; it replaces
    ``department``. Raises ``PermissionDenied`` or ``ValidationError``; writes nothing then.
    """
    unknown = set(fields) - set(OPERATION_FIELDS)
    if unknown:
        raise ValueError(f"Not an operation field: {sorted(unknown)}")
    if operation is None:
        if not may(actor, "operation.create", body):
            raise PermissionDenied(_("You may add operations only to your own body's catalogue."))
        operation = Operation(body=body)
    else:
        if not may(actor, "operation.change", operation):
            raise PermissionDenied(_("You may change only your own body's operations."))
        operation = Operation.objects.select_for_update().get(pk=operation.pk)
    department_name = normalize_name(department_name)
    if department_name:
        if fields.get("department") is not None:
            raise ValidationError(
                {"department_name": _("Choose a department or type a new one, not both.")}
            )
        fields["department"], _created = Department.objects.get_or_create(
            body=operation.body, name=department_name
        )
    department = fields.get("department")
    if department is not None and department.body_id != operation.body_id:
        raise ValidationError({"department": _("Choose one of your body's departments.")})
    for name, value in fields.items():
        setattr(operation, name, value)
    operation.full_clean()
    operation.save()
    return operation


def organization_for_paper_proposal(*, name: str, kind: str) -> Organization:
    """A proposer that is not registered yet, named on a paper letter; no members."""
    organization = Organization(name=normalize_name(name), kind=kind)
    organization.full_clean()
    organization.save()
    return organization


# --- Online submission (step 4 from the CSO area) ---------------------------------------

REFERENCE_PREFIX = "WEB"
REFERENCE_ATTEMPTS = 5


def next_reference(fiscal_year: int) -> str:
    """``WEB-<FY>-<NNNNN>``: the next number of the year's online submissions."""
    prefix = f"{REFERENCE_PREFIX}-{fiscal_year}-"
    last = (
        Proposal.objects.filter(reference__startswith=prefix)
        .order_by("-reference")
        .values_list("reference", flat=True)
        .first()
    )
    number = int(last.removeprefix(prefix)) + 1 if last else 1
    return f"{prefix}{number:05d}"


def _reference_taken(error: ValidationError) -> bool:
    return hasattr(error, "error_dict") and "reference" in error.error_dict


def proposal_submit_online(
    *,
    actor: User,
    organization: Organization,
    body: GovernmentBody,
    operation: Operation | None,
    title: str,
    summary: str,
    letter: UploadedFile | None,
) -> Proposal:
    """Create the proposal with a fresh reference, received today (Japan time), and store its
    letter — all in one transaction: on any failure nothing is left, not even the file.

    Two submissions at the same moment may compute the same next reference; the unique
    constraint refuses the second, which takes the following number (a savepoint per attempt).
    """
    received_on = timezone.localdate(timezone=JAPAN)
    fiscal_year = fiscal_year_of(received_on)
    stored_name = ""
    try:
        with transaction.atomic():
            for attempt in range(REFERENCE_ATTEMPTS):
                try:
                    with transaction.atomic():
                        proposal = proposal_create(
                            reference=next_reference(fiscal_year),
                            received_on=received_on,
                            body=body,
                            organization=organization,
                            operation=operation,
                            title=title,
                            summary=summary,
                            actor=actor,
                            source="web",
                        )
                    break
                except IntegrityError:
                    if attempt == REFERENCE_ATTEMPTS - 1:
                        raise
                except ValidationError as error:
                    if not _reference_taken(error) or attempt == REFERENCE_ATTEMPTS - 1:
                        raise
            if letter is not None:
                # The stored name is ours, not the sender's: the reference, in a year folder.
                proposal.letter.save(f"{proposal.reference}.pdf", letter, save=False)
                stored_name = proposal.letter.name
                proposal.save(update_fields=["letter", "updated_at"])
    except BaseException:
        if stored_name:
            proposal.letter.storage.delete(stored_name)
        raise
    return proposal
