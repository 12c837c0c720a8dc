"""Money pages for organisations (CSO members) and the foundation's staff.

Organisations (``cso/money/``): the members of the organisation that proposed a project see what
it raised — gifts, matches (from the ledger), refunds, net — and the donors who consented to
share their contact details with them (``Donation.share_contact``): name and email, nothing
else. ``project.view_money`` decides; a project that is not theirs answers 404.

Foundation staff (``staff/gifts/``): every gift, filtered, with what sponsors matched; a gift's
page with its donation, history, sponsors' matches and their releases, refunds and receipts.
Finance staff (``gift.refund``) refund from it through ``services.refund_gift``; other staff see
the page without the form, and a refund they post anyway is a 403.

The reconciliation with Stripe (``staff/reconciliation/``): the last runs, the open differences
and the payouts; finance staff run it now and mark differences resolved, other staff read.
"""

import csv
from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count, Max, Q, QuerySet, Sum
from django.db.models.functions import Coalesce
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_safe

from accounts.access import get_allowed_or_404, require_area
from accounts.models import Organization, User
from accounts.policy import may
from fund.models import Project
from fund.selectors import raised_and_matched

from .models import (
    Donation,
    DonationEvent,
    Gift,
    Payout,
    Receipt,
    ReconciliationDifference,
    ReconciliationRun,
    Refund,
)
from .reconciliation import reconcile, resolve_difference
from .selectors import counted_gifts, match_history, with_matches
from .staff_forms import GiftFilterForm, RefundForm

STAFF_PAGE_SIZE = 50
FOUNDATION_AREA = "foundation.area"
VIEW_MONEY = "project.view_money"
REFUND = "gift.refund"


# --- Reads -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProjectMoney:
    """What came in for a project, in whole yen. Matches and ``raised`` come from the ledger."""

    gifts: int = 0
    gifts_total: int = 0
    refunds: int = 0
    refunds_total: int = 0
    matched: int = 0
    raised: int = 0  # the ledger's: gifts − refunds + matches (− released matches)

    @property
    def net(self) -> int:
        """Gifts less refunds: what donors gave and kept given."""
        return self.gifts_total - self.refunds_total

    def __add__(self, other: "ProjectMoney") -> "ProjectMoney":
        return ProjectMoney(
            gifts=self.gifts + other.gifts,
            gifts_total=self.gifts_total + other.gifts_total,
            refunds=self.refunds + other.refunds,
            refunds_total=self.refunds_total + other.refunds_total,
            matched=self.matched + other.matched,
            raised=self.raised + other.raised,
        )


def project_money(project_ids: list[int]) -> dict[int, ProjectMoney]:
    """Each project's money in three queries however many projects: gifts, refunds, ledger."""
    gifts = dict(
        (row[0], row[1:])
        for row in Gift.objects.filter(project_id__in=project_ids)
        .values("project_id")
        .annotate(count=Count("pk"), total=Sum("amount"))
        .order_by()
        .values_list("project_id", "count", "total")
    )
    refunds = dict(
        (row[0], row[1:])
        for row in Refund.objects.filter(gift__project_id__in=project_ids)
        .values("gift__project_id")
        .annotate(count=Count("pk"), total=Sum("amount"))
        .order_by()
        .values_list("gift__project_id", "count", "total")
    )
    ledger = raised_and_matched(project_ids)
    money = {}
    for pk in project_ids:
        gift_count, gift_total = gifts.get(pk, (0, 0))
        refund_count, refund_total = refunds.get(pk, (0, 0))
        raised, matched = ledger.get(pk, (0, 0))
        money[pk] = ProjectMoney(
            gifts=gift_count,
            gifts_total=gift_total,
            refunds=refund_count,
            refunds_total=refund_total,
            matched=matched,
            raised=raised,
        )
    return money


@dataclass(frozen=True)
class ConsentingDonor:
    """A donor who chose to share their name and email with the organisation — only these."""

    name: str
    email: str
    last_gift_at: Any


def consenting_donors(project: Project) -> list[ConsentingDonor]:
    """Donors of the project who ticked ``share_contact`` on a gift that still counts (received,
    not refunded in full); once per email, the latest gift first. One query."""
    rows = (
        Donation.objects.filter(project=project, share_contact=True)
        .filter(gifts__in=counted_gifts())
        .annotate(last_gift_at=Max("gifts__received_at"))
        .order_by("-last_gift_at", "-created_at")
        .values_list("name", "email", "last_gift_at")
    )
    donors, seen = [], set()
    for name, email, last_gift_at in rows:
        if email.lower() in seen:
            continue
        seen.add(email.lower())
        donors.append(ConsentingDonor(name=name, email=email, last_gift_at=last_gift_at))
    return donors


# --- Organisations -----------------------------------------------------------------------------


def _organizations_of(user: User) -> QuerySet[Organization]:
    return Organization.objects.filter(memberships__user=user).order_by("name")


@require_area("cso.area")
@require_safe
def cso_money(request: HttpRequest) -> HttpResponse:
    """The money raised for each of my organisations' projects, with totals."""
    organizations = list(_organizations_of(request.user))
    projects = list(
        Project.objects.filter(proposal__organization__in=organizations)
        .select_related("proposal__body", "proposal__organization")
        .order_by("-created_at", "-pk")
    )
    projects = [p for p in projects if may(request.user, VIEW_MONEY, p)]
    money = project_money([p.pk for p in projects])
    sections = []
    for organization in organizations:
        rows = [
            (project, money[project.pk])
            for project in projects
            if project.proposal.organization_id == organization.pk
        ]
        total = sum((row[1] for row in rows), ProjectMoney())
        sections.append({"organization": organization, "rows": rows, "total": total})
    return render(request, "donations/cso/money.html", {"sections": sections})


def _csv_response(project: Project, donors: list[ConsentingDonor]) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    stamp = timezone.localdate().isoformat()
    response["Content-Disposition"] = (
        f'attachment; filename="project-{project.pk}-donor-contacts-{stamp}.csv"'
    )
    response["Cache-Control"] = "private, no-store"
    response.write("\ufeff")  # a BOM, so spreadsheet programs read the Japanese names as UTF-8
    writer = csv.writer(response)
    writer.writerow([_("Name"), _("Email")])
    for donor in donors:
        writer.writerow([donor.name, donor.email])
    return response


@login_required
@require_safe
def cso_project_money(request: HttpRequest, project_pk: int) -> HttpResponse:
    """One project's money and its consenting donors; ``?format=csv`` downloads the donors."""
    project = (
        Project.objects.select_related("proposal__body", "proposal__organization")
        .filter(pk=project_pk)
        .first()
    )
    project = get_allowed_or_404(request.user, VIEW_MONEY, project)
    donors = consenting_donors(project)
    if request.GET.get("format") == "csv":
        return _csv_response(project, donors)
    response = render(
        request,
        "donations/cso/project_money.html",
        {
            "project": project,
            "organization": project.proposal.organization,
            "money": project_money([project.pk])[project.pk],
            "donors": donors,
        },
    )
    response["Cache-Control"] = "private, no-store"  # donors' contact details
    return response


# --- Foundation staff --------------------------------------------------------------------------


@require_area(FOUNDATION_AREA)
@require_safe
def staff_gifts(request: HttpRequest) -> HttpResponse:
    form = GiftFilterForm(request.GET)
    form.is_valid()  # invalid filters are reported and left out
    gifts = (
        Gift.objects.filter(form.gift_filters())
        .select_related("donation", "project")
        .order_by("-received_at", "-pk")
    )
    totals = gifts.aggregate(
        amount=Coalesce(Sum("amount"), 0), refunded=Coalesce(Sum("refunded_amount"), 0)
    )
    page = Paginator(gifts, STAFF_PAGE_SIZE).get_page(form.page_number)
    page.object_list = with_matches(page.object_list)  # one query for the page's matches
    return render(
        request,
        "donations/staff/gift_list.html",
        {
            "form": form,
            "page_obj": page,
            "page_range": page.paginator.get_elided_page_range(page.number),
            "query": form.clean_query(),
            "totals": totals,
        },
    )


HISTORY_LABELS = {
    "start": gettext_lazy("Checkout started"),
    "checkout_failed": gettext_lazy("Checkout could not be opened"),
    "expired": gettext_lazy("Checkout expired"),
    "voucher_issued": gettext_lazy("Store payment voucher issued"),
    "payment_failed": gettext_lazy("Payment failed"),
    "paid": gettext_lazy("Paid"),
    "gift_received": gettext_lazy("Gift received"),
    "subscribed": gettext_lazy("Monthly gift started"),
    "instalment_paid": gettext_lazy("Monthly payment received"),
    "instalment_failed": gettext_lazy("Monthly payment failed"),
    "refunded": gettext_lazy("Refunded"),
    "dispute_opened": gettext_lazy("Dispute opened"),
    "dispute_won": gettext_lazy("Dispute won"),
    "dispute_lost": gettext_lazy("Dispute lost"),
    "dispute_warning_closed": gettext_lazy("Dispute closed"),
    "cancelled": gettext_lazy("Monthly gift cancelled"),
}
STATUS_LABELS = dict(Donation.Status.choices)


def _history(donation: Donation) -> list[dict[str, Any]]:
    return [
        {
            "event": event,
            "label": HISTORY_LABELS.get(event.action, event.action),
            "before": STATUS_LABELS.get(event.from_status, event.from_status),
            "after": STATUS_LABELS.get(event.to_status, event.to_status),
            "actor": (event.actor.get_full_name() or event.actor.email) if event.actor else "",
        }
        for event in DonationEvent.objects.filter(donation=donation).select_related("actor")
    ]


def _render_staff_gift(
    request: HttpRequest, gift: Gift, *, refund_form: RefundForm | None = None
) -> HttpResponse:
    may_refund = may(request.user, REFUND, gift)
    if refund_form is None and may_refund and gift.net_amount > 0:
        refund_form = RefundForm(gift=gift)
    donation = gift.donation
    response = render(
        request,
        "donations/staff/gift_detail.html",
        {
            "gift": gift,
            "donation": donation,
            "history": _history(donation),
            "refunds": gift.refunds.select_related("created_by"),
            "matches": match_history(gift),
            "receipts": Receipt.objects.filter(Q(gift=gift) | Q(gifts=gift)).distinct(),
            "other_gifts": donation.gifts.exclude(pk=gift.pk).order_by("-received_at", "-pk"),
            "may_refund": may_refund,
            "refund_form": refund_form if may_refund and gift.net_amount > 0 else None,
        },
    )
    response["Cache-Control"] = "private, no-store"  # the donor's personal data
    return response


def _gift_or_404(pk: int) -> Gift:
    gift = Gift.objects.select_related("donation__donor", "project").filter(pk=pk).first()
    if gift is None:
        raise Http404
    return gift


@require_area(FOUNDATION_AREA)
@require_http_methods(["GET", "HEAD", "POST"])
def staff_gift(request: HttpRequest, pk: int) -> HttpResponse:
    gift = _gift_or_404(pk)
    if request.method != "POST":
        return _render_staff_gift(request, gift)
    if not may(request.user, REFUND, gift):
        raise PermissionDenied(_("Only finance staff may refund gifts."))
    form = RefundForm(request.POST, gift=gift)
    refund = form.submit(request.user)
    if refund is not None:
        messages.success(
            request,
            _("¥%(amount)s of the gift is refunded.") % {"amount": f"{refund.amount:,}"},
        )
        return redirect("donations:staff-gift", gift.pk)
    if form.provider_error:
        messages.error(request, form.provider_error)
    return _render_staff_gift(request, _gift_or_404(pk), refund_form=form)


# --- Reconciliation with Stripe ----------------------------------------------------------------

RECENT_RUNS = 10
RECENT_PAYOUTS = 30


def _posted_int(request: HttpRequest, name: str) -> int | None:
    try:
        return int(request.POST.get(name, ""))
    except ValueError:
        return None


@require_area(FOUNDATION_AREA)
@require_http_methods(["GET", "HEAD", "POST"])
def staff_reconciliation(request: HttpRequest) -> HttpResponse:
    may_run = may(request.user, REFUND)
    if request.method == "POST":
        if not may_run:
            raise PermissionDenied(_("Only finance staff may run the reconciliation."))
        if "resolve" in request.POST:
            difference = ReconciliationDifference.objects.filter(
                pk=_posted_int(request, "resolve")
            ).first()
            if difference is None:
                raise Http404
            resolve_difference(difference=difference, actor=request.user)
            messages.success(request, _("The difference is marked as resolved."))
        else:
            run = reconcile(actor=request.user)
            if run.outcome == ReconciliationRun.Outcome.FAILED:
                messages.error(request, run.note_text)
            elif run.outcome == ReconciliationRun.Outcome.NOTHING:
                messages.info(request, run.note_text)
            else:
                messages.success(
                    request,
                    _("Reconciled: %(payouts)s payout(s) checked, %(differences)s difference(s).")
                    % {"payouts": run.payouts_checked, "differences": run.differences},
                )
        return redirect("donations:staff-reconciliation")
    response = render(
        request,
        "donations/staff/reconciliation.html",
        {
            "runs": ReconciliationRun.objects.select_related("started_by")[:RECENT_RUNS],
            "differences": ReconciliationDifference.objects.filter(resolved=False).order_by(
                "-day", "kind", "reference"
            ),
            "payouts": Payout.objects.all()[:RECENT_PAYOUTS],
            "may_run": may_run,
        },
    )
    response["Cache-Control"] = "private, no-store"
    return response
