"""The register's public pages: the catalogue, the proposals and the adoption statistics.

Views stay thin: a form validates the query string, a selector reads, a template shows. Every
page makes a fixed number of queries whatever the register's size (tests pin the counts).
Only public fields reach a template: consultation notes, history notes and who recorded a
change are internal and never leave the database here.
"""

import csv
import datetime as dt

from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_safe

from accounts.models import Organization

from .fiscal import current_fiscal_year
from .forms import AdoptionCsvForm, AdoptionStatsForm, CatalogueFilterForm, ProposalFilterForm
from .models import GovernmentBody, Operation, Proposal
from .selectors import AdoptionRow, adoption_statistics, operation_catalogue

PAGE_SIZE = 50

# The CSV's columns, as in the seed's adoption_stats_seed.csv: a public format, keep it stable.
ADOPTION_CSV_COLUMNS = (
    "fiscal_year",
    "level",
    "participating_municipalities",
    "proposing_organizations",
    "proposals",
    "adopted",
    "adoption_rate_percent",
)


@require_safe
def home(request: HttpRequest) -> HttpResponse:
    fiscal_year = current_fiscal_year()
    # Totals over every year and proposer kind, through the statistics' two aggregate queries.
    rows = adoption_statistics(proposer_kind="all")
    return render(
        request,
        "home.html",
        {
            "fiscal_year": fiscal_year,
            "operations_this_year": operation_catalogue(fiscal_year=fiscal_year).count(),
            "proposals_total": sum(row.proposals for row in rows),
            "adopted_total": sum(row.adopted for row in rows),
        },
    )


@require_safe
def operation_list(request: HttpRequest) -> HttpResponse:
    form = CatalogueFilterForm(request.GET)
    form.is_valid()  # Invalid values are shown as messages and left out of the filters.
    operations = operation_catalogue(**form.catalogue_filters())
    page = Paginator(operations, PAGE_SIZE).get_page(form.page_number)
    return render(
        request,
        "proposals/operation_list.html",
        {
            "form": form,
            "page_obj": page,
            "page_range": page.paginator.get_elided_page_range(page.number),
            "query": form.clean_query(),
        },
    )


@require_safe
def operation_detail(request: HttpRequest, pk: int) -> HttpResponse:
    operation = get_object_or_404(Operation.objects.select_related("body", "department"), pk=pk)
    proposals = operation.proposals.select_related("organization").order_by(
        "-received_on", "reference"
    )
    return render(
        request,
        "proposals/operation_detail.html",
        {"operation": operation, "proposals": proposals},
    )


def _public_proposals(
    *, fiscal_year: int | None, body: GovernmentBody | None, decision: str, state: str
) -> QuerySet[Proposal]:
    # A read that belongs in selectors.py (as ``proposal_register``); private here until it moves.
    proposals = Proposal.objects.select_related("body", "organization")
    if fiscal_year:
        proposals = proposals.filter(fiscal_year=fiscal_year)
    if body:
        proposals = proposals.filter(body=body)
    if decision:
        proposals = proposals.filter(decision=decision)
    if state:
        proposals = proposals.filter(state=state)
    return proposals.order_by("-received_on", "reference")


@require_safe
def proposal_list(request: HttpRequest) -> HttpResponse:
    form = ProposalFilterForm(request.GET)
    form.is_valid()
    page = Paginator(_public_proposals(**form.proposal_filters()), PAGE_SIZE).get_page(
        form.page_number
    )
    return render(
        request,
        "proposals/proposal_list.html",
        {
            "form": form,
            "page_obj": page,
            "page_range": page.paginator.get_elided_page_range(page.number),
            "query": form.clean_query(),
        },
    )


# The public timeline names the steps; edits and other bookkeeping rows are left out.
TIMELINE_LABELS = {
    "receive": gettext_lazy("Proposal received"),
    "consult": gettext_lazy("Consultation held"),
    "respond": gettext_lazy("Response given"),
    "contract": gettext_lazy("Contract signed"),
    "assess": gettext_lazy("Assessment made"),
    "withdraw": gettext_lazy("Withdrawn"),
}
# Where a step records its own date. The event's timestamp is only when it was entered, which
# for records imported years later is the import day, not the day of the step.
TIMELINE_DATE_KEYS = {
    "consult": "held_on",
    "respond": "decided_on",
    "contract": "signed_on",
    "assess": "assessed_on",
}


def _step_date(proposal: Proposal, event: dict) -> dt.date:
    if event["action"] == "receive":
        return proposal.received_on
    value = (event["changes"] or {}).get(TIMELINE_DATE_KEYS.get(event["action"], ""))
    if isinstance(value, list):  # recorded as [old, new]
        value = value[-1]
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    return timezone.localdate(event["occurred_at"])


def _public_timeline(proposal: Proposal) -> list[dict]:
    """Each step with its date — never who recorded it, nor the history's notes."""
    events = proposal.events.filter(action__in=TIMELINE_LABELS).values(
        "action", "occurred_at", "changes"
    )
    return [
        {"label": TIMELINE_LABELS[event["action"]], "date": _step_date(proposal, event)}
        for event in events
    ]


@require_safe
def proposal_detail(request: HttpRequest, pk: int) -> HttpResponse:
    proposal = get_object_or_404(
        Proposal.objects.select_related(
            "body", "operation", "organization", "contract", "assessment"
        ),
        pk=pk,
    )
    return render(
        request,
        "proposals/proposal_detail.html",
        {
            "proposal": proposal,
            # Only the dates: what was said in a consultation is internal.
            "consultation_dates": proposal.consultations.values_list("held_on", flat=True),
            "timeline": _public_timeline(proposal),
        },
    )


def _chart_series(rows: list[AdoptionRow]) -> dict:
    return {
        "labels": [_("FY%(year)s") % {"year": row.fiscal_year} for row in rows],
        "proposals": [row.proposals for row in rows],
        "adopted": [row.adopted for row in rows],
        "rate": [row.adoption_rate_percent for row in rows],
    }


@require_safe
def adoption_stats(request: HttpRequest) -> HttpResponse:
    form = AdoptionStatsForm(request.GET)
    form.is_valid()
    proposer_kind = form.cleaned_data.get("proposer_kind", Organization.Kind.CSO)
    rows = adoption_statistics(proposer_kind=proposer_kind)
    prefecture = [row for row in rows if row.level == GovernmentBody.Kind.PREFECTURE]
    municipal = [row for row in rows if row.level == GovernmentBody.Kind.MUNICIPALITY]
    chart = {
        "text": {
            "proposals": _("Proposals"),
            "adopted": _("Adopted"),
            "rate": _("Adoption rate (%)"),
            "count_axis": _("Number of proposals"),
            "rate_axis": _("Adoption rate"),
        },
        "levels": {
            "prefecture": _chart_series(prefecture),
            "municipality": _chart_series(municipal),
        },
    }
    return render(
        request,
        "proposals/adoption_stats.html",
        {
            "form": form,
            "proposer_kind": proposer_kind,
            "prefecture_rows": prefecture,
            "municipal_rows": municipal,
            "chart": chart,
        },
    )


@require_safe
def adoption_stats_csv(request: HttpRequest) -> HttpResponse:
    form = AdoptionCsvForm(request.GET)
    if not form.is_valid():
        return HttpResponseBadRequest(form.error_text(), content_type="text/plain; charset=utf-8")
    rows = adoption_statistics(
        level=form.cleaned_data["level"], proposer_kind=form.cleaned_data["proposer_kind"]
    )
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="adoption-statistics.csv"'
    # LF line ends, like the seed file, so matching data gives a byte-identical download.
    writer = csv.writer(response, lineterminator="\n")
    writer.writerow(ADOPTION_CSV_COLUMNS)
    for row in rows:
        writer.writerow(
            [
                "" if value is None else value
                for value in (getattr(row, c) for c in ADOPTION_CSV_COLUMNS)
            ]
        )
    return response
