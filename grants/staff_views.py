"""The foundation staff's grant pages (``/grants/staff/``).

Every page is in the foundation's area (``foundation.area``; the middleware asks staff for
two-factor authentication): any staff member may read. Writes are POSTs that check the specific
rule first (a 403 when the role is missing) and call ``grants.services``, which checks again;
the service's refusals (maker-checker, a grant in the wrong state) come back as a message or a
form error, with nothing written.

- the pipeline: counts, the grants (filter by state), closed projects still to be granted, the
  reports to review and the late ones;
- a grant: propose (programme officers), its page, approve (approvers, never the proposer),
  cancel, claw back a paid tranche; review a report (programme officers);
- bank accounts: finance confirm or reject what someone else entered, and enter accounts;
- transfers (finance): due tranches into a batch for a bank business day, the Zengin file,
  what the bank paid or returned.
"""

from decimal import Decimal
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Prefetch, Sum
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from accounts.access import require_area
from accounts.policy import may
from fund.models import Project

from . import selectors, services, zengin
from .forms import (
    BankAccountRejectForm,
    BatchCreateForm,
    ClawbackForm,
    GrantApproveForm,
    GrantCancelForm,
    GrantFilterForm,
    GrantForm,
    LineFailedForm,
    ReportReviewForm,
    StaffBankAccountForm,
)
from .models import (
    BankAccount,
    Clawback,
    Grant,
    Report,
    Tranche,
    TransferBatch,
    TransferLine,
)

AREA = "foundation.area"
PROPOSE = "grant.propose"
APPROVE = "grant.approve"
CANCEL = "grant.cancel"
REVIEW = "grant.review_report"
TRANSFER = "transfer.manage"
CONFIRM_ACCOUNT = "bank_account.confirm"
SUBMIT_ACCOUNT = "bank_account.submit"
PAGE_SIZE = 50
LIST_LIMIT = 50


def _require(request: HttpRequest, action: str, message: str) -> None:
    if not may(request.user, action):
        raise PermissionDenied(message)


def _who(user: Any) -> str:
    return (user.get_full_name() or user.email) if user is not None else ""


def _refused(request: HttpRequest, error: Exception) -> None:
    """A service's refusal (not a form error) as a message on the next page."""
    if isinstance(error, ValidationError):
        text = " ".join(error.messages)
    else:
        text = str(error) or _("You may not do this.")
    messages.error(request, text)


def _percent(basis_points: int) -> str:
    """1,500 → "15", 1,550 → "15.5" (basis points as a percentage, no float)."""
    text = f"{Decimal(basis_points) / 100:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


# --- The pipeline ------------------------------------------------------------------------------


@require_area(AREA)
@require_safe
def pipeline(request: HttpRequest) -> HttpResponse:
    form = GrantFilterForm(request.GET)
    form.is_valid()  # a bad state is reported and left out
    state = form.cleaned_data.get("state") or ""
    grants = selectors.grants_for_staff()
    if state:
        grants = grants.filter(state=state)
    page = Paginator(grants, PAGE_SIZE).get_page(form.page_number)
    today = timezone.localdate()
    return render(
        request,
        "grants/staff/pipeline.html",
        {
            "counts": selectors.pipeline(today),
            "form": form,
            "page_obj": page,
            "page_range": page.paginator.get_elided_page_range(page.number),
            "query": form.clean_query(),
            "projects": list(selectors.projects_to_grant()[:LIST_LIMIT]),
            "to_review": list(
                selectors.open_reports().filter(state=Report.State.SUBMITTED)[:LIST_LIMIT]
            ),
            "late": list(
                selectors.reports_late(today).exclude(state=Report.State.SUBMITTED)[:LIST_LIMIT]
            ),
            "may_propose": may(request.user, PROPOSE),
        },
    )


# --- Grants --------------------------------------------------------------------------------------


def _project_for_grant(request: HttpRequest) -> Project | None:
    raw = request.GET.get("project") or request.POST.get("project")
    if not raw:
        return None
    try:
        pk = int(raw)
    except (TypeError, ValueError):
        raise Http404 from None
    project = (
        Project.objects.select_related("proposal__organization")
        .filter(pk=pk, state=Project.State.CLOSED)
        .first()
    )
    if project is None:
        raise Http404  # not a closed project: nothing to grant from
    return project


@require_area(AREA)
@require_http_methods(["GET", "POST"])
def grant_create(request: HttpRequest) -> HttpResponse:
    _require(request, PROPOSE, _("Only programme officers propose grants."))
    project = _project_for_grant(request)
    form = GrantForm(request.POST if request.method == "POST" else None, project=project)
    if request.method == "POST" and (grant := form.submit(request.user)):
        messages.success(
            request,
            _("Grant %(ref)s is proposed; an approver (not you) approves it.")
            % {"ref": grant.reference},
        )
        return redirect("grants:staff-grant", grant.pk)
    return render(
        request,
        "grants/staff/grant_form.html",
        {
            "form": form,
            "project": project,
            "terms": form.terms,
            "fee_percent": _percent(form.terms.fee_rate_bp) if form.terms else "",
        },
    )


def _grant(pk: int) -> Grant:
    grant = selectors.grants_for_staff().filter(pk=pk).first()
    if grant is None:
        raise Http404
    return grant


GRANT_ACTIONS = {
    "propose": gettext_lazy("Proposed"),
    "approve": gettext_lazy("Approved"),
    "cancel": gettext_lazy("Cancelled"),
    "clawback": gettext_lazy("Clawback recorded"),
    "batch": gettext_lazy("Tranche put in a transfer batch"),
    "pay": gettext_lazy("Tranche paid"),
    "transfer_failed": gettext_lazy("Transfer failed"),
    "paid": gettext_lazy("Fully paid"),
    "close": gettext_lazy("Closed"),
    "report_submit": gettext_lazy("Report filed"),
    "report_accept": gettext_lazy("Report accepted"),
    "report_changes": gettext_lazy("Changes requested to a report"),
}
BATCH_ACTIONS = {
    "create": gettext_lazy("Batch made"),
    "export": gettext_lazy("Zengin file downloaded"),
    "settle": gettext_lazy("Settled"),
}
STATE_LABELS = {
    **dict(Grant.State.choices),
    **dict(Tranche.State.choices),
    **dict(Report.State.choices),
}


def _grant_history(grant: Grant) -> list[dict[str, Any]]:
    rows = []
    for event in grant.events.select_related("actor", "tranche", "report"):
        label = str(GRANT_ACTIONS.get(event.action, event.action))
        if event.tranche is not None:
            label = f"{label} (#{event.tranche.number})"
        elif event.report is not None:
            label = f"{label} ({event.report.get_kind_display()})"
        rows.append(
            {
                "event": event,
                "label": label,
                "before": STATE_LABELS.get(event.from_state, event.from_state),
                "after": STATE_LABELS.get(event.to_state, event.to_state),
                "actor": _who(event.actor),
            }
        )
    return rows


def _cancel_effect(grant: Grant, tranches: list[Tranche]) -> dict[str, Any]:
    """What cancelling would do with the money, as ``services.grant_cancel`` does it."""
    unpaid = sum(t.amount_yen for t in tranches if t.state == Tranche.State.SCHEDULED)
    nothing_paid = all(t.state != Tranche.State.PAID for t in tranches)
    return {
        "posted": grant.state == Grant.State.APPROVED,
        "unpaid": unpaid,
        "fee_back": grant.fee_yen if nothing_paid else 0,
        "nothing_paid": nothing_paid,
        "in_batch": any(t.state == Tranche.State.IN_BATCH for t in tranches),
        "to_general_fund": grant.project_id is None,
    }


def _render_grant(
    request: HttpRequest,
    grant: Grant,
    *,
    cancel_form: GrantCancelForm | None = None,
    clawback_form: ClawbackForm | None = None,
    status: int = 200,
) -> HttpResponse:
    user = request.user
    lines = TransferLine.objects.select_related("batch").order_by("-pk")
    tranches = list(
        grant.tranches.prefetch_related(
            Prefetch("transfer_lines", queryset=lines), "clawbacks"
        ).order_by("number")
    )
    for tranche in tranches:
        tranche.lines = list(tranche.transfer_lines.all())
        tranche.live_line = next(
            (line for line in tranche.lines if line.state != TransferLine.State.FAILED), None
        )
    may_cancel = may(user, CANCEL, grant)
    cancellable = grant.state in (Grant.State.PROPOSED, Grant.State.APPROVED)
    clawback_forms = {}
    if may_cancel:
        for tranche in tranches:
            if tranche.state == Tranche.State.PAID:
                clawback_forms[tranche.pk] = ClawbackForm(tranche=tranche)
        if clawback_form is not None:
            clawback_forms[clawback_form.tranche.pk] = clawback_form
    for tranche in tranches:
        tranche.clawback_form = clawback_forms.get(tranche.pk)
    return render(
        request,
        "grants/staff/grant_detail.html",
        {
            "grant": grant,
            "tranches": tranches,
            "reports": list(grant.reports.select_related("submitted_by", "reviewed_by")),
            "clawbacks": list(
                Clawback.objects.filter(tranche__grant=grant).select_related(
                    "tranche", "recorded_by"
                )
            ),
            "fee_percent": _percent(grant.fee_rate_bp),
            "paid_yen": sum(t.amount_yen for t in tranches if t.state == Tranche.State.PAID),
            "history": _grant_history(grant),
            "may_approve": may(user, APPROVE, grant) and grant.state == Grant.State.PROPOSED,
            "is_proposer": grant.proposed_by_id == user.pk,
            "approve_form": GrantApproveForm(grant=grant),
            "cancel_form": (cancel_form or GrantCancelForm(grant=grant))
            if may_cancel and cancellable
            else None,
            "cancel_effect": _cancel_effect(grant, tranches),
            "may_review": may(user, REVIEW),
        },
        status=status,
    )


@require_area(AREA)
@require_safe
def grant_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _render_grant(request, _grant(pk))


@require_area(AREA)
@require_POST
def grant_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    """Approve or cancel (POST). A refusal by the service is a message; nothing changes."""
    grant = _grant(pk)
    if action == "approve":
        _require(request, APPROVE, _("Only approvers approve grants."))
        form = GrantApproveForm(request.POST, grant=grant)
        if form.submit(request.user):
            messages.success(
                request,
                _("Grant %(ref)s is approved; its money is set aside for the CSO.")
                % {"ref": grant.reference},
            )
        else:
            messages.error(request, " ".join(str(e) for e in form.errors.get("__all__", [])))
        return redirect("grants:staff-grant", pk)
    if action == "cancel":
        _require(request, CANCEL, _("You may not cancel grants."))
        form = GrantCancelForm(request.POST, grant=grant)
        if form.submit(request.user):
            messages.success(request, _("Grant %(ref)s is cancelled.") % {"ref": grant.reference})
            return redirect("grants:staff-grant", pk)
        return _render_grant(request, _grant(pk), cancel_form=form)
    raise Http404


@require_area(AREA)
@require_http_methods(["GET", "POST"])
def tranche_clawback(request: HttpRequest, pk: int) -> HttpResponse:
    """Record that the CSO must give back (part of) a paid tranche."""
    tranche = (
        Tranche.objects.select_related("grant", "grant__organization", "grant__project")
        .filter(pk=pk)
        .first()
    )
    if tranche is None:
        raise Http404
    _require(request, CANCEL, _("You may not record clawbacks."))
    form = ClawbackForm(request.POST if request.method == "POST" else None, tranche=tranche)
    if request.method == "POST" and form.submit(request.user):
        messages.success(
            request,
            _("The clawback of %(ref)s is recorded.") % {"ref": str(tranche)},
        )
        return redirect("grants:staff-grant", tranche.grant_id)
    already = tranche.clawbacks.aggregate(total=Sum("amount_yen"))["total"] or 0
    return render(
        request,
        "grants/staff/clawback_form.html",
        {
            "tranche": tranche,
            "grant": tranche.grant,
            "form": form,
            "left": tranche.amount_yen - already,
        },
    )


# --- Reports -------------------------------------------------------------------------------------


@require_area(AREA)
@require_http_methods(["GET", "POST"])
def report_review(request: HttpRequest, pk: int) -> HttpResponse:
    report = (
        Report.objects.select_related(
            "grant", "grant__organization", "grant__project", "submitted_by", "reviewed_by"
        )
        .filter(pk=pk)
        .first()
    )
    if report is None:
        raise Http404
    may_review = may(request.user, REVIEW)
    form = None
    if request.method == "POST":
        _require(request, REVIEW, _("Only programme officers review reports."))
        form = ReportReviewForm(request.POST, report=report)
        if form.submit(request.user):
            if form.cleaned_data["decision"] == "accept":
                messages.success(request, _("The report is accepted."))
            else:
                messages.success(request, _("The CSO is asked for changes."))
            return redirect("grants:staff-grant", report.grant_id)
    elif may_review and report.state == Report.State.SUBMITTED:
        form = ReportReviewForm(report=report)
    if report.state != Report.State.SUBMITTED and form is not None and not form.errors:
        form = None
    return render(
        request,
        "grants/staff/report_review.html",
        {
            "report": report,
            "grant": report.grant,
            "attachments": list(report.attachments.select_related("uploaded_by")),
            "form": form,
            "may_review": may_review,
        },
    )


# --- Bank accounts -------------------------------------------------------------------------------


def _render_bank_accounts(
    request: HttpRequest, *, bound: BankAccountRejectForm | None = None
) -> HttpResponse:
    pending = list(
        BankAccount.objects.filter(state=BankAccount.State.PENDING)
        .select_related("organization", "submitted_by")
        .order_by("submitted_at", "pk")
    )
    may_confirm = may(request.user, CONFIRM_ACCOUNT)
    for account in pending:
        account.entered_by_viewer = account.submitted_by_id == request.user.pk
        account.reject_form = (
            bound
            if bound is not None and bound.account.pk == account.pk
            else BankAccountRejectForm(account=account)
        )
    confirmed = (
        BankAccount.objects.filter(state=BankAccount.State.CONFIRMED)
        .select_related("organization", "submitted_by", "confirmed_by")
        .order_by("organization__name")
    )
    return render(
        request,
        "grants/staff/bank_accounts.html",
        {
            "pending": pending,
            "confirmed": confirmed,
            "may_confirm": may_confirm,
            "show_numbers": may_confirm,  # finance see the whole number; others the last four
            "may_enter": may(request.user, SUBMIT_ACCOUNT),
        },
    )


@require_area(AREA)
@require_safe
def bank_accounts(request: HttpRequest) -> HttpResponse:
    return _render_bank_accounts(request)


@require_area(AREA)
@require_http_methods(["GET", "POST"])
def bank_account_create(request: HttpRequest) -> HttpResponse:
    # With no organisation the rule says yes only to finance staff (and the site admin).
    _require(request, SUBMIT_ACCOUNT, _("Only finance staff enter bank accounts here."))
    form = StaffBankAccountForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and (account := form.submit(request.user)):
        messages.success(
            request,
            _("The account of %(org)s is entered; another staff member confirms it.")
            % {"org": account.organization.name},
        )
        return redirect("grants:staff-bank-accounts")
    return render(request, "grants/staff/bank_account_form.html", {"form": form})


@require_area(AREA)
@require_POST
def bank_account_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    if action not in ("confirm", "reject"):
        raise Http404
    _require(request, CONFIRM_ACCOUNT, _("Only finance staff confirm accounts."))
    account = BankAccount.objects.select_related("organization").filter(pk=pk).first()
    if account is None:
        raise Http404
    if action == "confirm":
        try:
            services.bank_account_confirm(account=account, actor=request.user)
        except (PermissionDenied, ValidationError) as error:
            _refused(request, error)
        else:
            messages.success(
                request,
                _("The account of %(org)s is confirmed; transfers go to it.")
                % {"org": account.organization.name},
            )
        return redirect("grants:staff-bank-accounts")
    form = BankAccountRejectForm(request.POST, account=account)
    if form.submit(request.user):
        messages.success(
            request,
            _("The account of %(org)s is rejected.") % {"org": account.organization.name},
        )
        return redirect("grants:staff-bank-accounts")
    if "note" not in form.errors:  # the account is no longer pending, or similar
        messages.error(request, " ".join(str(e) for e in form.non_field_errors()))
        return redirect("grants:staff-bank-accounts")
    return _render_bank_accounts(request, bound=form)


# --- Transfers -----------------------------------------------------------------------------------


def _render_transfers(request: HttpRequest, form: BatchCreateForm) -> HttpResponse:
    if form.is_bound:
        on = getattr(form, "cleaned_data", {}).get("transfer_date")
    else:
        on = form.initial.get("transfer_date")
    on = on or zengin.next_bank_business_day(services.today())
    due = list(selectors.tranches_due(on))
    blockers = services.blockers_by_tranche(due, on=on)
    for tranche in due:
        tranche.blockers = blockers[tranche.pk]
    return render(
        request,
        "grants/staff/transfers.html",
        {
            "form": form,
            "due": due,
            "on": on,
            "chosen": form.chosen_ids,
            "batches": selectors.batches()[:LIST_LIMIT],
            "may_manage": may(request.user, TRANSFER),
        },
    )


@require_area(AREA)
@require_http_methods(["GET", "POST"])
def transfers(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        _require(request, TRANSFER, _("Only finance staff make transfer batches."))
        form = BatchCreateForm(request.POST)
        if batch := form.submit(request.user):
            messages.success(
                request,
                _("Batch %(ref)s is made; download its Zengin file for the bank.")
                % {"ref": str(batch)},
            )
            return redirect("grants:staff-batch", batch.pk)
        return _render_transfers(request, form)
    return _render_transfers(request, BatchCreateForm())


def _batch(pk: int) -> TransferBatch:
    batch = TransferBatch.objects.select_related("created_by").filter(pk=pk).first()
    if batch is None:
        raise Http404
    return batch


def _render_batch(
    request: HttpRequest, batch: TransferBatch, *, bound: LineFailedForm | None = None
) -> HttpResponse:
    may_manage = may(request.user, TRANSFER)
    lines = list(
        batch.lines.select_related(
            "tranche", "tranche__grant", "tranche__grant__organization", "bank_account"
        ).order_by("pk")
    )
    for line in lines:
        line.failed_form = None
        if may_manage and line.state == TransferLine.State.PENDING:
            own = bound is not None and bound.line.pk == line.pk
            line.failed_form = bound if own else LineFailedForm(line=line)
    history = [
        {
            "event": event,
            "label": BATCH_ACTIONS.get(event.action, event.action),
            "before": "",
            "after": "",
            "actor": _who(event.actor),
        }
        for event in batch.events.select_related("actor")
    ]
    return render(
        request,
        "grants/staff/batch_detail.html",
        {
            "batch": batch,
            "lines": lines,
            "total": sum(line.amount_yen for line in lines),
            "paid_total": sum(
                line.amount_yen for line in lines if line.state == TransferLine.State.PAID
            ),
            "pending": any(line.state == TransferLine.State.PENDING for line in lines),
            "history": history,
            "may_manage": may_manage,
        },
    )


@require_area(AREA)
@require_safe
def batch_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _render_batch(request, _batch(pk))


@require_area(AREA)
@require_POST
def batch_file(request: HttpRequest, pk: int) -> HttpResponse:
    """The batch's Zengin file (made at the first download and kept). POST: the first download
    changes the batch (it is then exported), so it is a button, not a link."""
    _require(request, TRANSFER, _("Only finance staff export transfers."))
    batch = _batch(pk)
    try:
        data = services.batch_export(batch=batch, actor=request.user)
    except (PermissionDenied, ValidationError) as error:
        _refused(request, error)
        return redirect("grants:staff-batch", pk)
    response = HttpResponse(data, content_type="text/plain; charset=Shift_JIS")
    response["Content-Disposition"] = f'attachment; filename="{batch.filename}"'
    response["Cache-Control"] = "private, no-store"
    return response


@require_area(AREA)
@require_POST
def batch_paid(request: HttpRequest, pk: int) -> HttpResponse:
    _require(request, TRANSFER, _("Only finance staff record transfers."))
    batch = _batch(pk)
    try:
        done = services.batch_mark_paid(batch=batch, actor=request.user)
    except (PermissionDenied, ValidationError) as error:
        _refused(request, error)
    else:
        messages.success(request, _("%(n)s transfers are recorded as paid.") % {"n": done})
    return redirect("grants:staff-batch", pk)


@require_area(AREA)
@require_POST
def line_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    if action not in ("paid", "failed"):
        raise Http404
    _require(request, TRANSFER, _("Only finance staff record transfers."))
    line = TransferLine.objects.select_related("batch", "tranche").filter(pk=pk).first()
    if line is None:
        raise Http404
    if action == "paid":
        try:
            done = services.line_mark_paid(line=line, actor=request.user)
        except (PermissionDenied, ValidationError) as error:
            _refused(request, error)
        else:
            if done:
                messages.success(request, _("%(ref)s is paid.") % {"ref": str(line.tranche)})
            else:
                messages.info(request, _("This transfer was already recorded."))
        return redirect("grants:staff-batch", line.batch_id)
    form = LineFailedForm(request.POST, line=line)
    if (done := form.submit(request.user)) is not None:
        if done:
            messages.success(
                request,
                _("%(ref)s is recorded as failed; it is scheduled again.")
                % {"ref": str(line.tranche)},
            )
        else:
            messages.info(request, _("This transfer was already recorded."))
        return redirect("grants:staff-batch", line.batch_id)
    if "reason" not in form.errors:
        messages.error(request, " ".join(str(e) for e in form.non_field_errors()))
        return redirect("grants:staff-batch", line.batch_id)
    return _render_batch(request, _batch(line.batch_id), bound=form)
