"""Reads of the grants app: the foundation's pipeline, a CSO's grants, a project's timeline."""

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count, Q, QuerySet, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.formatting import format_yen
from fund.models import Project
from fund.selectors import raised_and_matched

from .models import BankAccount, Grant, Report, Tranche, TransferBatch


def grants_for_staff() -> QuerySet[Grant]:
    return Grant.objects.select_related("project", "organization", "proposed_by", "approved_by")


def grants_of(organization_ids: list[int]) -> QuerySet[Grant]:
    """A CSO's grants (its members see them), newest first."""
    return (
        Grant.objects.filter(organization_id__in=organization_ids)
        .exclude(state=Grant.State.PROPOSED)
        .exclude(state=Grant.State.CANCELLED, approved_at__isnull=True)
        .select_related("project", "organization")
    )


def projects_to_grant() -> QuerySet[Project]:
    """Closed projects with no live grant (a cancelled one does not count)."""
    live = Grant.objects.exclude(state=Grant.State.CANCELLED).filter(project_id__isnull=False)
    return (
        Project.objects.filter(state=Project.State.CLOSED)
        .exclude(pk__in=live.values("project_id"))
        .select_related("proposal__organization")
        .order_by("closes_at", "pk")
    )


def reports_late(today: dt.date | None = None) -> QuerySet[Report]:
    today = today or timezone.localdate()
    return open_reports().filter(due_on__lt=today)


def open_reports() -> QuerySet[Report]:
    return Report.objects.filter(
        state__in=(Report.State.DUE, Report.State.CHANGES_REQUESTED, Report.State.SUBMITTED),
        grant__state__in=(Grant.State.APPROVED, Grant.State.PAID),
    ).select_related("grant", "grant__organization")


def tranches_due(on: dt.date | None = None) -> QuerySet[Tranche]:
    """Scheduled tranches of approved grants due on or before ``on`` (blocked or not)."""
    on = on or timezone.localdate()
    return Tranche.objects.filter(
        state=Tranche.State.SCHEDULED, grant__state=Grant.State.APPROVED, due_on__lte=on
    ).select_related("grant", "grant__organization", "grant__project")


@dataclass(frozen=True)
class Pipeline:
    proposed: int
    approved: int
    tranches_due: int
    tranches_due_yen: int
    reports_waiting_review: int
    reports_due: int
    reports_late: int
    accounts_to_confirm: int


def pipeline(today: dt.date | None = None) -> Pipeline:
    """The foundation's counts, one small query each."""
    today = today or timezone.localdate()
    states = dict(
        Grant.objects.values_list("state")
        .annotate(n=Count("pk"))
        .order_by()
        .values_list("state", "n")
    )
    due = tranches_due(today).aggregate(n=Count("pk"), total=Sum("amount_yen"))
    reports = open_reports().aggregate(
        review=Count("pk", filter=Q(state=Report.State.SUBMITTED)),
        due=Count("pk", filter=~Q(state=Report.State.SUBMITTED) & Q(due_on__gte=today)),
        late=Count("pk", filter=~Q(state=Report.State.SUBMITTED) & Q(due_on__lt=today)),
    )
    return Pipeline(
        proposed=states.get(Grant.State.PROPOSED, 0),
        approved=states.get(Grant.State.APPROVED, 0),
        tranches_due=due["n"],
        tranches_due_yen=due["total"] or 0,
        reports_waiting_review=reports["review"],
        reports_due=reports["due"],
        reports_late=reports["late"],
        accounts_to_confirm=BankAccount.objects.filter(state=BankAccount.State.PENDING).count(),
    )


def batches() -> QuerySet[TransferBatch]:
    return TransferBatch.objects.annotate(
        line_count=Count("lines"), total_yen=Sum("lines__amount_yen")
    ).select_related("created_by")


@dataclass
class TimelineStep:
    """One step of a project's public story. ``done`` False: not reached yet."""

    title: str
    on: dt.date | None = None
    detail: str = ""
    done: bool = True
    items: list[str] = field(default_factory=list)


def _date(value: Any) -> dt.date | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return timezone.localtime(value).date()
    return value


def project_timeline(project: Project) -> list[TimelineStep]:
    """Adopted → listed → gifts and matches → grant → tranches → reports → outcome. Public: no
    donor, no bank detail, no report text beyond what the register publishes."""
    proposal = project.proposal
    steps = [
        TimelineStep(
            _("Adopted by %(body)s") % {"body": proposal.body.name},
            on=proposal.decided_on,
            detail=proposal.get_decision_display() if proposal.decision else "",
        ),
        TimelineStep(_("Listed for designated gifts"), on=_date(project.created_at)),
    ]
    opened = project.events.filter(action="open").order_by("occurred_at").first()
    closed = project.events.filter(action="close").order_by("occurred_at").first()
    raised, matched = raised_and_matched([project.pk]).get(project.pk, (0, 0))
    steps.append(
        TimelineStep(
            _("Gifts and matches"),
            on=_date(opened.occurred_at) if opened else _date(project.opens_at),
            detail=_("%(raised)s raised, of which %(matched)s matched by sponsors")
            % {"raised": format_yen(raised), "matched": format_yen(matched)},
            done=project.state != Project.State.DRAFT,
        )
    )
    steps.append(
        TimelineStep(
            _("Fundraising closed"),
            on=_date(closed.occurred_at) if closed else _date(project.closes_at),
            done=project.state in (Project.State.CLOSED, Project.State.GRANTED),
        )
    )
    grant = (
        project.grants.exclude(state__in=(Grant.State.PROPOSED, Grant.State.CANCELLED))
        .order_by("-approved_at")
        .first()
    )
    if grant is None:
        steps.append(TimelineStep(_("Grant to the CSO"), done=False))
        return steps
    steps.append(
        TimelineStep(
            _("Grant to %(cso)s") % {"cso": grant.organization.name},
            on=_date(grant.approved_at),
            detail=_("%(amount)s (fee %(fee)s)")
            % {"amount": format_yen(grant.amount_yen), "fee": format_yen(grant.fee_yen)},
        )
    )
    for tranche in grant.tranches.exclude(state=Tranche.State.CANCELLED):
        paid = tranche.state == Tranche.State.PAID
        steps.append(
            TimelineStep(
                _("Tranche %(n)s paid") % {"n": tranche.number}
                if paid
                else _("Tranche %(n)s scheduled") % {"n": tranche.number},
                on=tranche.paid_on if paid else tranche.due_on,
                detail=format_yen(tranche.amount_yen),
                done=paid,
            )
        )
    for report in grant.reports.all():
        accepted = report.state == Report.State.ACCEPTED
        steps.append(
            TimelineStep(
                report.get_kind_display(),
                on=_date(report.reviewed_at) if accepted else report.due_on,
                detail=_("Accepted") if accepted else _("Due"),
                done=accepted,
            )
        )
    assessment = getattr(proposal, "assessment", None)
    if assessment is not None and assessment.has_fund_outcome:
        steps.append(
            TimelineStep(
                _("Outcome recorded in the register"),
                on=assessment.assessed_on,
                detail=assessment.fund_report[:300],
            )
        )
    else:
        steps.append(TimelineStep(_("Outcome recorded in the register"), done=False))
    return steps
