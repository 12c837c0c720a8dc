"""The government officer's area under ``/gov/``: their body's catalogue and proposals.

Every page is behind ``require_area("government.area")``: someone who is not a government
officer gets a 403. Inside, an officer sees only their own body's records: another body's
operation or proposal answers 404, as if it did not exist, and nothing changes.

Views stay thin: forms validate (``officer_forms``), the services decide and write the history
(``proposals.services``), selectors read (``proposals.selectors``).
"""

from typing import Any

from django.contrib import messages
from django.core.exceptions import FieldDoesNotExist
from django.core.paginator import Paginator
from django.db.models import Count, Field, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from accounts.access import get_allowed_or_404, require_area
from accounts.formatting import format_yen
from accounts.models import GovernmentBody
from accounts.policy import roles_of

from .fiscal import current_fiscal_year
from .models import Assessment, Consultation, Contract, Operation, Proposal, ProposalEvent
from .officer_forms import (
    ACTION_FORMS,
    OfficerCatalogueFilterForm,
    OfficerProposalFilterForm,
    OperationForm,
    PaperProposalForm,
    ProposalActionForm,
    action_forms,
)
from .selectors import operation_catalogue, proposal_register

PAGE_SIZE = 50
AREA = "government.area"

State = Proposal.State


def officer_body(request: HttpRequest) -> GovernmentBody:
    """The body the signed-in officer belongs to (require_area made sure there is one)."""
    return GovernmentBody.objects.get(pk=roles_of(request.user).body_id)


# --- Home ----------------------------------------------------------------------------------------

# What waits for the officer, as (label, the proposal list's filters).
ATTENTION = (
    (gettext_lazy("Received, not yet discussed"), {"state": State.RECEIVED}),
    (gettext_lazy("In consultation, no response yet"), {"state": State.CONSULTATION}),
    (
        gettext_lazy("Responded, budget provision not decided"),
        {"state": State.RESPONDED, "budget_provision": Proposal.BudgetProvision.PENDING},
    ),
    (gettext_lazy("Contracted, assessment due"), {"state": State.CONTRACTED}),
)


@require_area(AREA)
@require_safe
def home(request: HttpRequest) -> HttpResponse:
    body = officer_body(request)
    fiscal_year = current_fiscal_year()
    counts = Proposal.objects.filter(body=body).aggregate(
        **{f"n{i}": Count("id", filter=Q(**filters)) for i, (_l, filters) in enumerate(ATTENTION)}
    )
    list_url = reverse("officer:proposal-list")
    attention = [
        {"label": label, "count": counts[f"n{i}"], "url": f"{list_url}?{urlencode(filters)}"}
        for i, (label, filters) in enumerate(ATTENTION)
    ]
    return render(
        request,
        "proposals/officer/home.html",
        {
            "body": body,
            "fiscal_year": fiscal_year,
            "attention": attention,
            "operations_this_year": Operation.objects.filter(
                body=body, fiscal_year=fiscal_year
            ).count(),
        },
    )


# --- Operations ----------------------------------------------------------------------------------


@require_area(AREA)
@require_safe
def operation_list(request: HttpRequest) -> HttpResponse:
    body = officer_body(request)
    form = OfficerCatalogueFilterForm(request.GET, body=body)
    form.is_valid()  # invalid filters are reported and left out
    operations = operation_catalogue(body=body, **form.catalogue_filters())
    page = Paginator(operations, PAGE_SIZE).get_page(form.page_number)
    return render(
        request,
        "proposals/officer/operation_list.html",
        {
            "body": body,
            "form": form,
            "page_obj": page,
            "page_range": page.paginator.get_elided_page_range(page.number),
            "query": form.clean_query(),
        },
    )


@require_area(AREA)
@require_http_methods(["GET", "POST"])
def operation_create(request: HttpRequest) -> HttpResponse:
    body = officer_body(request)
    form = OperationForm(
        request.POST if request.method == "POST" else None,
        body=body,
        initial={"fiscal_year": current_fiscal_year()},
    )
    if request.method == "POST" and (operation := form.submit(request.user)):
        messages.success(
            request, _("Operation %(code)s added to the catalogue.") % {"code": operation.code}
        )
        return redirect("officer:operation-list")
    return render(request, "proposals/officer/operation_form.html", {"body": body, "form": form})


@require_area(AREA)
@require_http_methods(["GET", "POST"])
def operation_edit(request: HttpRequest, pk: int) -> HttpResponse:
    operation = get_allowed_or_404(
        request.user,
        "operation.change",
        Operation.objects.select_related("body", "department").filter(pk=pk).first(),
    )
    form = OperationForm(
        request.POST if request.method == "POST" else None,
        instance=operation,
        body=operation.body,
    )
    if request.method == "POST" and (saved := form.submit(request.user)):
        messages.success(request, _("Operation %(code)s saved.") % {"code": saved.code})
        return redirect("officer:operation-list")
    return render(
        request,
        "proposals/officer/operation_form.html",
        {"body": operation.body, "form": form, "operation": operation},
    )


# --- Proposals -----------------------------------------------------------------------------------


@require_area(AREA)
@require_safe
def proposal_list(request: HttpRequest) -> HttpResponse:
    body = officer_body(request)
    form = OfficerProposalFilterForm(request.GET, body=body)
    form.is_valid()
    proposals = proposal_register(body=body, **form.register_filters())
    page = Paginator(proposals, PAGE_SIZE).get_page(form.page_number)
    return render(
        request,
        "proposals/officer/proposal_list.html",
        {
            "body": body,
            "form": form,
            "page_obj": page,
            "page_range": page.paginator.get_elided_page_range(page.number),
            "query": form.clean_query(),
        },
    )


@require_area(AREA)
@require_http_methods(["GET", "POST"])
def proposal_create(request: HttpRequest) -> HttpResponse:
    """Step 4 by the officer: record a proposal letter the body received on paper."""
    body = officer_body(request)
    form = PaperProposalForm(request.POST if request.method == "POST" else None, body=body)
    if request.method == "POST" and (proposal := form.submit(request.user)):
        messages.success(
            request, _("Proposal %(reference)s recorded.") % {"reference": proposal.reference}
        )
        return redirect("officer:proposal-detail", proposal.pk)
    return render(request, "proposals/officer/proposal_form.html", {"body": body, "form": form})


def _own_proposal(request: HttpRequest, pk: int) -> Proposal:
    """The proposal if it is to the officer's body; otherwise a 404."""
    return get_allowed_or_404(
        request.user, "proposal.advance", proposal_register().filter(pk=pk).first()
    )


@require_area(AREA)
@require_safe
def proposal_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _render_detail(request, _own_proposal(request, pk))


SUCCESS_MESSAGES = {
    "consult": gettext_lazy("Consultation recorded."),
    "respond": gettext_lazy("Response recorded."),
    "contract": gettext_lazy("Contract recorded."),
    "assess": gettext_lazy("Assessment recorded."),
    "withdraw": gettext_lazy("Withdrawal recorded."),
    "budget-provision": gettext_lazy("Budget provision recorded."),
}


@require_area(AREA)
@require_POST
def proposal_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    """One step (or the budget provision) from the detail page's forms."""
    proposal = _own_proposal(request, pk)
    if action not in ACTION_FORMS:
        raise Http404
    form = ACTION_FORMS[action](request.POST, proposal=proposal)
    if form.submit(request.user):
        messages.success(request, SUCCESS_MESSAGES[action])
        return redirect("officer:proposal-detail", pk)
    # Shown again with the errors, beside the proposal as it is now.
    return _render_detail(request, _own_proposal(request, pk), bound=form)


HISTORY_LABELS = {
    "receive": gettext_lazy("Proposal received"),
    "consult": gettext_lazy("Consultation held"),
    "respond": gettext_lazy("Response given"),
    "contract": gettext_lazy("Contract signed"),
    "assess": gettext_lazy("Assessment made"),
    "withdraw": gettext_lazy("Withdrawn"),
    "budget_provision": gettext_lazy("Budget provision changed"),
    "edit": gettext_lazy("Particulars corrected"),
    "fund_outcome": gettext_lazy("Civic fund outcome recorded"),
}
STATE_LABELS = dict(State.choices)


def _history(proposal: Proposal) -> list[dict[str, Any]]:
    rows = []
    for event in ProposalEvent.objects.filter(proposal=proposal).select_related("actor"):
        rows.append(
            {
                "event": event,
                "label": HISTORY_LABELS.get(event.action, event.action),
                "from_state": STATE_LABELS.get(event.from_state, event.from_state),
                "to_state": STATE_LABELS.get(event.to_state, event.to_state),
                "actor": (event.actor.get_full_name() or event.actor.email) if event.actor else "",
                "changes": _describe_changes(event.changes),
            }
        )
    return rows


# Where the names in a history row's changes come from: the proposal, or the step's record.
CHANGE_MODELS = (Proposal, Consultation, Contract, Assessment)


def _change_field(name: str) -> Field | None:
    for model in CHANGE_MODELS:
        try:
            return model._meta.get_field(name)
        except FieldDoesNotExist:
            continue
    return None


def _change_value(field: Field | None, value: Any) -> str:
    if value in (None, ""):
        return "—"
    if field is not None and field.choices:
        return str(dict(field.flatchoices).get(value, value))
    if field is not None and field.name.endswith("_yen") and isinstance(value, int):
        return format_yen(value)
    return str(value)


def _describe_changes(changes: dict[str, Any]) -> list[str]:
    """“Decision: — → Adopted”, in the models' own words for the fields and choices."""
    lines = []
    for name, value in changes.items():
        field = _change_field(name)
        label = str(field.verbose_name) if field is not None else name
        if isinstance(value, list) and len(value) == 2:
            old, new = (_change_value(field, v) for v in value)
            lines.append(f"{label}: {old} → {new}")
        else:
            lines.append(f"{label}: {_change_value(field, value)}")
    return lines


def _render_detail(
    request: HttpRequest, proposal: Proposal, bound: ProposalActionForm | None = None
) -> HttpResponse:
    forms = action_forms(proposal)
    if bound is not None:
        # The submitted form keeps its values and errors, even for a step no longer allowed.
        forms[bound.action] = bound
    return render(
        request,
        "proposals/officer/proposal_detail.html",
        {
            "body": proposal.body,
            "proposal": proposal,
            "consultations": proposal.consultations.all(),
            "history": _history(proposal),
            "action_forms": list(forms.items()),
        },
    )
