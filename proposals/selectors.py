"""Reads of the register: the catalogue and the adoption statistics (DOMAIN.md §1)."""

from dataclasses import asdict, dataclass

from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from accounts.models import GovernmentBody, Organization

from .models import (
    Operation,
    Participation,
    Proposal,
)

LEVELS = (GovernmentBody.Kind.PREFECTURE, GovernmentBody.Kind.MUNICIPALITY)
ALL_KINDS = "all"


@dataclass(frozen=True)
class AdoptionRow:
    fiscal_year: int
    level: str
    participating_municipalities: int | None
    proposing_organizations: int
    proposals: int
    adopted: int
    adoption_rate_percent: int | None

    def as_dict(self) -> dict:
        return asdict(self)


def adoption_rate_percent(adopted: int, proposals: int) -> int | None:
    """adopted / proposals as a whole percent, rounded half up (integers only: no float)."""
    if proposals == 0:
        return None
    return (200 * adopted + proposals) // (2 * proposals)


def adoption_statistics(
    *, level: str | None = None, proposer_kind: str = Organization.Kind.CSO
) -> list[AdoptionRow]:
    """Adoption per fiscal year and level, in two aggregate queries whatever the span of years.

    - proposals: received that year, withdrawn ones excluded;
    - proposing organisations: distinct organisations among those proposals;
    - adopted: decision adopted or partially adopted;
    - participating municipalities (municipal level only): registered that year, whether or
      not they received a proposal.
    ``proposer_kind`` is an ``Organization.Kind`` value or ``"all"``.
    """
    if proposer_kind != ALL_KINDS and proposer_kind not in Organization.Kind.values:
        raise ValueError(f"Unknown proposer kind: {proposer_kind!r}")
    if level and level not in LEVELS:
        raise ValueError(f"Unknown level: {level!r}")
    proposals = Proposal.objects.exclude(decision=Proposal.Decision.WITHDRAWN)
    if proposer_kind != ALL_KINDS:
        proposals = proposals.filter(organization__kind=proposer_kind)
    if level:
        proposals = proposals.filter(body__kind=level)
    counted = (
        proposals.values("fiscal_year", "body__kind")
        .annotate(
            proposals=Count("id"),
            adopted=Count("id", filter=Q(decision__in=Proposal.ADOPTED_DECISIONS)),
            organizations=Count("organization", distinct=True),
        )
        .order_by()
    )
    by_key = {(row["fiscal_year"], row["body__kind"]): row for row in counted}

    participating: dict[int, int] = {}
    if level in (None, GovernmentBody.Kind.MUNICIPALITY):
        participating = dict(
            Participation.objects.filter(body__kind=GovernmentBody.Kind.MUNICIPALITY)
            .values("fiscal_year")
            .annotate(n=Count("id"))
            .order_by()
            .values_list("fiscal_year", "n")
        )
        for year in participating:
            by_key.setdefault((year, GovernmentBody.Kind.MUNICIPALITY), None)

    rows = []
    for (year, kind), counts in by_key.items():
        n_proposals = counts["proposals"] if counts else 0
        n_adopted = counts["adopted"] if counts else 0
        rows.append(
            AdoptionRow(
                fiscal_year=year,
                level=kind,
                participating_municipalities=(
                    participating.get(year, 0) if kind == GovernmentBody.Kind.MUNICIPALITY else None
                ),
                proposing_organizations=counts["organizations"] if counts else 0,
                proposals=n_proposals,
                adopted=n_adopted,
                adoption_rate_percent=adoption_rate_percent(n_adopted, n_proposals),
            )
        )
    rows.sort(key=lambda r: (LEVELS.index(r.level), r.fiscal_year))
    return rows


def operation_catalogue(
    *,
    fiscal_year: int | None = None,
    body: GovernmentBody | None = None,
    department_id: int | None = None,
    search: str = "",
) -> QuerySet[Operation]:
    """The public catalogue, filtered; one query per page whatever the catalogue's size."""
    operations = Operation.objects.select_related("body", "department")
    if fiscal_year:
        operations = operations.filter(fiscal_year=fiscal_year)
    if body:
        operations = operations.filter(body=body)
    if department_id:
        operations = operations.filter(department_id=department_id)
    for word in search.split():
        # icontains matches Japanese text as well: there are no word boundaries to rely on.
        operations = operations.filter(
            Q(title__icontains=word)
            | Q(summary__icontains=word)
            | Q(code__icontains=word)
            | Q(department__name__icontains=word)
        )
    # Matches operation_catalogue_idx, so a page is an index range scan at any size.
    return operations.order_by("-fiscal_year", "body_id", "code")


def proposal_register(
    *,
    fiscal_year: int | None = None,
    body: GovernmentBody | None = None,
    decision: str = "",
    state: str = "",
    budget_provision: str = "",
) -> QuerySet[Proposal]:
    """The public register of proposals, with everything a list or a detail shows in one query."""
    proposals = Proposal.objects.select_related(
        "body", "operation", "organization", "contract", "assessment"
    )
    if fiscal_year:
        proposals = proposals.filter(fiscal_year=fiscal_year)
    if body:
        proposals = proposals.filter(body=body)
    if decision:
        proposals = proposals.filter(decision=decision)
    if state:
        proposals = proposals.filter(state=state)
    if budget_provision:
        proposals = proposals.filter(budget_provision=budget_provision)
    # Matches proposal_register_idx.
    return proposals.order_by("-received_on", "reference")


# The steps a public timeline shows; edits and budget bookkeeping stay in the full history.
TIMELINE_ACTIONS = ("receive", "consult", "respond", "contract", "assess", "withdraw")


def proposal_public_timeline(proposal: Proposal) -> list[dict]:
    """Each step with the day it happened — never who recorded it, nor the history's notes."""
    events = proposal.events.filter(action__in=TIMELINE_ACTIONS).values(
        "action", "effective_on", "occurred_at"
    )
    return [
        {
            "action": event["action"],
            "date": event["effective_on"] or timezone.localdate(event["occurred_at"]),
        }
        for event in events
    ]
