"""The CSO's grant pages and the public project timeline.

A CSO's members (``cso.area``) see their organisations' grants — terms, tranches, reports due —
file the reports (``grant.report``) and read their bank account; the organisation's admins
enter it (``bank_account.submit``), and finance staff confirm it on their own pages. Foundation
staff may read a grant page too. A grant, report, attachment or organisation that is not the
visitor's answers 404, so its URL reveals nothing.

The timeline (``/grants/projects/<pk>/timeline/``) is public: what happened to a project's
money, step by step (``selectors.project_timeline``), with no donor and no bank detail.

Views stay thin: forms check shape (``grants.cso_forms``), the services decide and write
(``grants.services``), selectors read (``grants.selectors``).
"""

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.cache import patch_cache_control
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_safe

from accounts.access import get_allowed_or_404, require_area
from accounts.models import Organization, User
from accounts.organization_forms import add_service_error
from accounts.policy import may, roles_of
from fund import selectors as fund_selectors
from fund.models import Project

from . import selectors, services
from .cso_forms import BankAccountForm, ReportForm
from .models import BankAccount, BankAccountEvent, Grant, Report, ReportAttachment

TEMPLATES = "grants/cso"
AREA = "cso.area"
STAFF_AREA = "foundation.area"
OPEN_REPORT_STATES = (Report.State.DUE, Report.State.CHANGES_REQUESTED)
REPORTING_GRANT_STATES = (Grant.State.APPROVED, Grant.State.PAID)


# --- Reading helpers ---------------------------------------------------------------------------


def _member_organization_ids(user: User) -> list[int]:
    return sorted(roles_of(user).memberships)


def _report_row(report: Report, today: Any) -> dict[str, Any]:
    open_ = report.state in OPEN_REPORT_STATES
    return {
        "report": report,
        "open": open_ and report.grant.state in REPORTING_GRANT_STATES,
        "overdue": open_ and report.due_on < today,
    }


def _grant_rows(grants: list[Grant]) -> list[dict[str, Any]]:
    today = timezone.localdate()
    return [
        {
            "grant": grant,
            "tranches": list(grant.tranches.all()),
            "reports": [_report_row(report, today) for report in grant.reports.all()],
        }
        for grant in grants
    ]


def _accounts_of(organization: Organization) -> dict[str, Any]:
    """The confirmed account, the changes awaiting confirmation, and the latest rejection if
    nothing was entered after it."""
    accounts = list(
        BankAccount.objects.filter(organization=organization).exclude(
            state=BankAccount.State.REPLACED
        )
    )  # newest first (the model's ordering)
    confirmed = next((a for a in accounts if a.state == BankAccount.State.CONFIRMED), None)
    pending = [a for a in accounts if a.state == BankAccount.State.PENDING]
    rejected = None
    if accounts and accounts[0].state == BankAccount.State.REJECTED:
        rejected = accounts[0]
        event = (
            BankAccountEvent.objects.filter(account=rejected, action="reject")
            .order_by("-occurred_at")
            .first()
        )
        rejected.reject_note = event.note if event else ""
    return {"confirmed": confirmed, "pending": pending, "rejected": rejected}


def _visible_grant_or_404(user: User, pk: int) -> Grant:
    """A grant its CSO's members may see (once approved), or any grant for foundation staff."""
    grant = Grant.objects.select_related("project", "organization").filter(pk=pk).first()
    get_allowed_or_404(user, "grant.view", grant)
    # Members see a grant once it is approved (``grants_of``); staff see every grant.
    visible = selectors.grants_of([grant.organization_id]).filter(pk=grant.pk)
    if not may(user, STAFF_AREA) and not visible.exists():
        raise Http404
    return grant


def _member_report_or_404(user: User, pk: int) -> Report:
    report = (
        Report.objects.select_related("grant", "grant__organization", "grant__project")
        .filter(pk=pk)
        .first()
    )
    grant = report.grant if report is not None else None
    get_allowed_or_404(user, "grant.report", grant)
    if not selectors.grants_of([grant.organization_id]).filter(pk=grant.pk).exists():
        raise Http404
    return report


def _member_organization_or_404(user: User, org_pk: int) -> Organization:
    organization = Organization.objects.filter(pk=org_pk).first()
    if organization is None or not roles_of(user).member_of(organization.pk):
        raise Http404
    return organization


# --- The CSO's pages ---------------------------------------------------------------------------


@require_area(AREA)
@require_safe
def my_grants(request: HttpRequest) -> HttpResponse:
    """Each of my organisations: its grants with their tranches and reports, and its bank
    account."""
    organizations = list(
        Organization.objects.filter(pk__in=_member_organization_ids(request.user)).order_by("name")
    )
    by_organization: dict[int, list[Grant]] = {}
    grants = selectors.grants_of([o.pk for o in organizations]).prefetch_related(
        "tranches", "reports"
    )
    for grant in grants:
        by_organization.setdefault(grant.organization_id, []).append(grant)
    sections = [
        {
            "organization": organization,
            "grants": _grant_rows(by_organization.get(organization.pk, [])),
            "accounts": _accounts_of(organization),
            "may_enter_account": may(request.user, "bank_account.submit", organization),
        }
        for organization in organizations
    ]
    return render(request, f"{TEMPLATES}/my_grants.html", {"sections": sections})


@login_required
@require_safe
def grant_page(request: HttpRequest, pk: int) -> HttpResponse:
    grant = _visible_grant_or_404(request.user, pk)
    rows = _grant_rows([grant])[0]
    return render(
        request,
        f"{TEMPLATES}/grant_detail.html",
        {
            "grant": grant,
            "tranches": rows["tranches"],
            "reports": rows["reports"],
            "paid_yen": services.paid_yen(grant),
            "is_member": roles_of(request.user).member_of(grant.organization_id),
            "is_staff": may(request.user, STAFF_AREA),
        },
    )


def _render_report(
    request: HttpRequest, report: Report, form: ReportForm | None, status: int = 200
) -> HttpResponse:
    editable = report.state in OPEN_REPORT_STATES and report.grant.state in REPORTING_GRANT_STATES
    if editable and form is None:
        form = ReportForm.for_report(report)
    return render(
        request,
        f"{TEMPLATES}/report_form.html",
        {
            "report": report,
            "grant": report.grant,
            "form": form if editable else None,
            "attachments": list(report.attachments.all()),
            "overdue": _report_row(report, timezone.localdate())["overdue"],
        },
        status=status,
    )


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def report_form(request: HttpRequest, pk: int) -> HttpResponse:
    """File a report (again, after the officer asked for changes); once filed, read-only."""
    report = _member_report_or_404(request.user, pk)
    if request.method != "POST":
        return _render_report(request, report, None)
    editable = report.state in OPEN_REPORT_STATES and report.grant.state in REPORTING_GRANT_STATES
    if not editable:
        messages.error(request, _("This report cannot be changed now."))
        return redirect("grants:cso-report", report.pk)
    form = ReportForm(request.POST, request.FILES)
    if form.is_valid():
        try:
            services.report_submit(
                report=report,
                actor=request.user,
                narrative=form.cleaned_data["narrative"],
                outcomes=form.cleaned_data["outcomes"],
                spent_yen=form.cleaned_data["spent_yen"],
                attachments=request.FILES.getlist("attachments"),
            )
        except ValidationError as error:
            add_service_error(form, error)
        else:
            messages.success(
                request, _("Your report is submitted. The programme officer will review it.")
            )
            return redirect("grants:cso-report", report.pk)
    report.refresh_from_db()
    return _render_report(request, report, form)


@require_safe
def attachment(request: HttpRequest, pk: int) -> FileResponse:
    """A report's file, as a download, to the grant's CSO members and foundation staff; a 404
    for everyone else (signed in or not), so the URL does not reveal that it exists."""
    item = (
        ReportAttachment.objects.select_related("report__grant").filter(pk=pk).first()
        if request.user.is_authenticated
        else None
    )
    if item is None or not (
        may(request.user, "grant.report", item.report.grant) or may(request.user, STAFF_AREA)
    ):
        raise Http404
    try:
        handle = item.file.open("rb")
    except (FileNotFoundError, ValueError):
        raise Http404 from None
    response = FileResponse(handle, as_attachment=True, filename=item.name)
    response["X-Content-Type-Options"] = "nosniff"
    patch_cache_control(response, private=True, no_store=True)
    return response


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def bank_account(request: HttpRequest, org_pk: int) -> HttpResponse:
    """The organisation's bank account: its admins enter a new one, which the foundation
    confirms before paying to it; other members read it."""
    organization = _member_organization_or_404(request.user, org_pk)
    may_submit = may(request.user, "bank_account.submit", organization)
    form = None
    if request.method == "POST":
        if not may_submit:
            raise PermissionDenied(_("Only the organisation's admins enter its bank account."))
        form = BankAccountForm(request.POST)
        if form.is_valid():
            try:
                services.bank_account_submit(
                    organization=organization, actor=request.user, **form.cleaned_data
                )
            except ValidationError as error:
                add_service_error(form, error)
            else:
                messages.success(
                    request, _("Saved; the foundation confirms it before paying to it.")
                )
                return redirect("grants:cso-bank-account", organization.pk)
    elif may_submit:
        form = BankAccountForm()
    return render(
        request,
        f"{TEMPLATES}/bank_account.html",
        {
            "organization": organization,
            "accounts": _accounts_of(organization),
            "form": form,
            "may_submit": may_submit,
        },
    )


# --- Public ------------------------------------------------------------------------------------


@require_safe
def project_timeline(request: HttpRequest, pk: int) -> HttpResponse:
    """What happened to a project's money, from adoption to the outcome in the register."""
    project = fund_selectors.public_project(pk)
    # As the project page: drafts and cancelled projects are not public.
    if project is None or project.state in (Project.State.DRAFT, Project.State.CANCELLED):
        raise Http404
    return render(
        request,
        "grants/timeline.html",
        {
            "project": project,
            "steps": selectors.project_timeline(project),
            "project_is_public": project.state in fund_selectors.PUBLIC_STATES,
        },
    )
