"""The register's public pages: the catalogue, the proposals and the adoption statistics.

Views stay thin: a form validates the query string, a selector reads, a template shows. Every
page makes a fixed number of queries whatever the register's size (tests pin the counts).
Only public fields reach a template: consultation notes, history notes and who recorded a
change are internal and never leave the database here.
"""

import csv

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext
from django.views.decorators.http import require_safe

from accounts.models import GovernmentBody, Organization

from .fiscal import current_fiscal_year
from .forms import AdoptionCsvForm, AdoptionStatsForm, CatalogueFilterForm, ProposalFilterForm
from .models import Operation
from .selectors import (
    AdoptionRow,
    adoption_statistics,
    operation_catalogue,
    proposal_public_timeline,
    proposal_register,
)

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


@require_safe
def proposal_list(request: HttpRequest) -> HttpResponse:
    form = ProposalFilterForm(request.GET)
    form.is_valid()
    page = Paginator(proposal_register(**form.proposal_filters()), PAGE_SIZE).get_page(
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


# The public timeline names the steps.
TIMELINE_LABELS = {
    "receive": gettext_lazy("Proposal received"),
    "consult": gettext_lazy("Consultation held"),
    "respond": gettext_lazy("Response given"),
    "contract": gettext_lazy("Contract signed"),
    "assess": gettext_lazy("Assessment made"),
    "withdraw": gettext_lazy("Withdrawn"),
}


@require_safe
def proposal_detail(request: HttpRequest, pk: int) -> HttpResponse:
    proposal = get_object_or_404(proposal_register(), pk=pk)
    return render(
        request,
        "proposals/proposal_detail.html",
        {
            "proposal": proposal,
            # Only the dates: what was said in a consultation is internal.
            "consultation_dates": proposal.consultations.values_list("held_on", flat=True),
            "timeline": [
                {"label": TIMELINE_LABELS[step["action"]], "date": step["date"]}
                for step in proposal_public_timeline(proposal)
            ],
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
            "proposals": pgettext("number of", "Proposals"),
            "adopted": pgettext("number of", "Adopted"),
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
