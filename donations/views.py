"""Public gift pages: open projects and each project's page, the give form, the demo checkout,
the return (thank-you) page, a donor's donation page, their gifts and receipts.

Sponsors' match pools show where a donor decides (the project page and the give form: which pools
match a gift now, and how much matching is left) and where they look back (the thank-you page,
the donation page and their gifts: what each gift was matched, net of any refund's release).

Views stay thin: ``forms`` validates, ``services`` writes (and checks the rules again),
``selectors`` read. Who may see a donation is ``donations.access``: its donor (signed in, in the
browser that gave, or holding the signed link) and foundation staff; anyone else gets a 404, so
a donation's id reveals nothing.
"""

import logging
import uuid

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Q, QuerySet
from django.db.models.functions import Lower
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import content_disposition_header
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from accounts.models import User
from accounts.policy import may
from fund import selectors as fund_selectors
from fund.forms import ProjectFilterForm
from fund.models import Project
from proposals.fiscal import JAPAN

from . import access, selectors, services
from .forms import GiveForm, QuickGiveForm
from .models import DemoCheckout, Donation, Gift, Receipt
from .providers import DEMO_ACTIONS, ProviderError, configured_provider_name, demo_act
from .receipt_pdf import render_receipt_pdf
from .receipts import ReceiptError, issue_annual_receipt

log = logging.getLogger(__name__)

PAGE_SIZE = 24
MANAGE_PROJECTS = "project.manage"
Status = Donation.Status

# Where a project stands for giving (the project page and the give page say which).
GIVING_OPEN, GIVING_NOT_YET, GIVING_ENDED = "open", "not_yet", "ended"

# Statuses in which the provider may still have news the webhook has not brought yet.
WAITING_STATUSES = (Status.PENDING, Status.AWAITING_PAYMENT)

PROVIDER_DOWN = gettext_lazy(
    "The payment service is unavailable. Please try again in a few minutes."
)

# reverse() needs a real UUID; the provider's success address carries "{donation_id}" instead.
_PLACEHOLDER_ID = uuid.UUID(int=0)


def _giving_state(project: Project) -> str:
    try:
        services.check_project_accepts_gifts(project)
    except ValidationError:
        before_window = project.state == Project.State.OPEN and timezone.now() < project.opens_at
        if before_window or project.state == Project.State.DRAFT:
            return GIVING_NOT_YET
        return GIVING_ENDED
    return GIVING_OPEN


def _match_offers(project: Project | None) -> list[fund_selectors.MatchOffer]:
    """The sponsors' pools that would match a gift to the project now (two queries, however many
    pools); none for the general fund, which pools do not match."""
    return fund_selectors.matching_offers(project) if project is not None else []


# --- Projects ----------------------------------------------------------------------------------


@require_safe
def project_list(request: HttpRequest) -> HttpResponse:
    form = ProjectFilterForm(request.GET)
    form.is_valid()  # invalid filters are reported and left out
    page = Paginator(fund_selectors.open_projects(**form.project_filters()), PAGE_SIZE).get_page(
        form.page_number
    )
    progress = selectors.progress_with_donors(page.object_list)
    return render(
        request,
        "donations/project_list.html",
        {
            "form": form,
            "page_obj": page,
            "page_range": page.paginator.get_elided_page_range(page.number),
            "query": form.clean_query(),
            "cards": [(project, progress[project.pk]) for project in page.object_list],
        },
    )


@require_safe
def project_detail(request: HttpRequest, pk: int) -> HttpResponse:
    project = fund_selectors.public_project(pk)
    if project is None:
        raise Http404
    is_public = project.state in fund_selectors.PUBLIC_STATES
    may_manage = may(request.user, MANAGE_PROJECTS)
    if not is_public and not may_manage:
        raise Http404
    giving = _giving_state(project)
    return render(
        request,
        "donations/project_detail.html",
        {
            "project": project,
            "proposal": project.proposal,
            "progress": selectors.progress_of(project),
            "wall": selectors.donor_wall(project),
            "giving": giving,
            "offers": _match_offers(project) if giving == GIVING_OPEN else [],
            "quick_form": QuickGiveForm(),
            "is_public": is_public,
            "may_manage": may_manage,
        },
    )


# --- Giving ------------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def give(request: HttpRequest, pk: int) -> HttpResponse:
    project = fund_selectors.public_project(pk)
    if project is None or project.state not in fund_selectors.PUBLIC_STATES:
        raise Http404
    return _give(request, project)


@require_http_methods(["GET", "POST"])
def give_general(request: HttpRequest) -> HttpResponse:
    return _give(request, None)


def _give(request: HttpRequest, project: Project | None) -> HttpResponse:
    giving = _giving_state(project) if project is not None else GIVING_OPEN
    if giving != GIVING_OPEN:
        return render(request, "donations/give_closed.html", {"project": project, "giving": giving})
    status = 200
    if request.method == "POST":
        form = GiveForm(request.POST, project=project)
        if form.is_valid():
            try:
                donation = _start_donation(request, form, project)
            except ValidationError as error:
                form.add_error(None, error)
            except services.TooManyAttempts as error:
                form.add_error(None, str(error))
                status = 429
            except ProviderError:
                log.exception("checkout could not be opened")
                form.add_error(None, PROVIDER_DOWN)
            else:
                # Before leaving for the checkout: this browser may then see the thank-you page.
                access.remember(request, donation)
                return redirect(donation.checkout_url)
    else:
        form = GiveForm(project=project, initial=_give_initial(request))
    return render(
        request,
        "donations/give.html",
        {
            "form": form,
            "project": project,
            "offers": _match_offers(project),
            "demo_mode": configured_provider_name() == Donation.Provider.DEMO,
        },
        status=status,
    )


def _give_initial(request: HttpRequest) -> dict[str, str]:
    """The project page's choices (?amount=…&frequency=…) and a signed-in donor's particulars."""
    initial = {key: request.GET[key] for key in ("amount", "frequency") if key in request.GET}
    user = request.user
    if user.is_authenticated:
        initial["email"] = user.email
        # Family name first, as a Japanese tax receipt is addressed.
        initial["name"] = f"{user.last_name} {user.first_name}".strip()
    return initial


def _give_url(project: Project | None) -> str:
    if project is None:
        return reverse("donations:give-general")
    return reverse("donations:give", args=[project.pk])


def _start_donation(request: HttpRequest, form: GiveForm, project: Project | None) -> Donation:
    if request.session.session_key is None:
        request.session.save()  # the card-testing limits count per browser session too
    thanks = request.build_absolute_uri(reverse("donations:thanks", args=[_PLACEHOLDER_ID]))
    return services.donation_start(
        project=project,
        amount=form.cleaned_data["amount_yen"],
        frequency=form.cleaned_data["frequency"],
        donor=form.donor_details(),
        user=request.user if request.user.is_authenticated else None,
        success_url=thanks.replace(str(_PLACEHOLDER_ID), "{donation_id}"),
        cancel_url=request.build_absolute_uri(_give_url(project)),
        ip=request.META.get("REMOTE_ADDR", ""),
        session_key=request.session.session_key,
    )


# --- The demo checkout (no real money) ---------------------------------------------------------


@require_http_methods(["GET", "POST"])
def demo_checkout(request: HttpRequest, session_id: str) -> HttpResponse:
    checkout = (
        DemoCheckout.objects.select_related("donation__project").filter(pk=session_id).first()
    )
    if checkout is None or not access.may_view_donation(request, checkout.donation):
        raise Http404
    donation = checkout.donation
    if request.method == "GET":
        return render(
            request,
            "donations/demo_checkout.html",
            {
                "checkout": checkout,
                "donation": donation,
                "is_open": checkout.status == DemoCheckout.OPEN,
                "monthly": donation.frequency == Donation.Frequency.MONTHLY,
            },
        )
    action = request.POST.get("action", "")
    if action not in DEMO_ACTIONS:
        return HttpResponseBadRequest()
    demo_act(checkout.pk, action)  # a repeated click changes nothing and lands the same
    if action in ("pay", "pay_later"):
        return redirect(checkout.success_url)
    if action == "decline":
        messages.warning(
            request, _("The card was declined (demo). No money moved; you may try again.")
        )
        return redirect(checkout.cancel_url)
    if action == "next_month":
        return redirect("donations:donation", donation.pk)
    return redirect("donations:thanks", donation.pk)


# --- The donor's pages -------------------------------------------------------------------------


def _donation_for(request: HttpRequest, pk: uuid.UUID) -> Donation:
    """The donation if this visitor may see it; a 404 otherwise (its id reveals nothing)."""
    donation = Donation.objects.select_related("project").filter(pk=pk).first()
    if donation is None or not access.may_view_donation(request, donation):
        raise Http404
    if request.GET.get("t"):
        # Came by the signed link: the page's buttons (POSTs, without the link's token) and
        # the receipt links work in this browser from now on.
        access.remember(request, donation)
    return donation


def _live_demo_checkout(donation: Donation) -> DemoCheckout | None:
    if donation.provider != Donation.Provider.DEMO:
        return None
    return DemoCheckout.objects.filter(donation=donation).first()


def _gifts_with_receipts(donation: Donation) -> QuerySet[Gift]:
    return donation.gifts.order_by("-received_at", "-pk").prefetch_related("refunds", "receipts")


@never_cache
@require_safe
def thanks(request: HttpRequest, pk: uuid.UUID) -> HttpResponse:
    donation = _donation_for(request, pk)
    confirming = False
    if donation.checkout_session_id and donation.status in WAITING_STATUSES:
        # The one confirm step, shared with the webhook: whichever comes first records the gift.
        # Once settled, the webhook keeps the donation current; no need to ask on every visit.
        try:
            services.confirm_checkout(donation.checkout_session_id, source="return-page")
        except ProviderError:
            log.warning("return page: could not confirm %s", donation.pk, exc_info=True)
            confirming = True
        donation.refresh_from_db()
    # No gift yet (a konbini payment still to be made): nothing is matched, nothing is said.
    gifts = selectors.with_matches(_gifts_with_receipts(donation))
    demo = _live_demo_checkout(donation)
    return render(
        request,
        "donations/thanks.html",
        {
            "donation": donation,
            "gifts": gifts,
            "receipts": [r for gift in gifts for r in gift.receipts.all() if r.voided_at is None],
            "matches": [match for gift in gifts for match in gift.matches],
            "progress": selectors.progress_of(donation.project) if donation.project else None,
            "confirming": confirming or donation.status == Status.PENDING,
            "demo_store": demo if donation.status == Status.AWAITING_PAYMENT else None,
        },
    )


@never_cache
@require_safe
def donation_detail(request: HttpRequest, pk: uuid.UUID) -> HttpResponse:
    donation = _donation_for(request, pk)
    monthly = donation.frequency == Donation.Frequency.MONTHLY
    demo = _live_demo_checkout(donation)
    private_link = None
    if donation.donor_id is None:
        # Given without an account: this link is the donor's only way back once the browser
        # forgets (it also comes with the receipt email).
        private_link = request.build_absolute_uri(
            f"{reverse('donations:donation', args=[donation.pk])}?t={access.token_for(donation)}"
        )
    return render(
        request,
        "donations/donation_detail.html",
        {
            "donation": donation,
            "gifts": selectors.with_matches(_gifts_with_receipts(donation)),
            "monthly": monthly,
            "may_cancel": monthly
            and bool(donation.subscription_id)
            and donation.status in (Status.ACTIVE, Status.PAST_DUE),
            "demo_next_month": demo
            if monthly and demo and demo.subscription_status == "active"
            else None,
            "demo_store": demo if donation.status == Status.AWAITING_PAYMENT else None,
            "private_link": private_link,
        },
    )


@require_POST
def cancel_monthly(request: HttpRequest, pk: uuid.UUID) -> HttpResponse:
    donation = _donation_for(request, pk)
    try:
        services.cancel_monthly(
            donation=donation,
            actor=request.user,
            holds_donor_link=access.may_view_donation(request, donation),
        )
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    except ProviderError:
        log.exception("cancelling monthly donation %s", donation.pk)
        messages.error(
            request,
            _(
                "The payment service could not be reached, so your monthly gift is not cancelled "
                "yet. Please try again in a few minutes."
            ),
        )
    else:
        messages.success(
            request, _("Your monthly gift is cancelled. No further payments will be taken.")
        )
    return redirect("donations:donation", donation.pk)


# --- A signed-in donor's gifts and receipts ----------------------------------------------------


def _donations_of(user: User, emails: set[str]) -> QuerySet[Donation]:
    return Donation.objects.annotate(email_lower=Lower("email")).filter(
        Q(donor=user) | Q(email_lower__in=emails)
    )


@login_required
@require_safe
def my_gifts(request: HttpRequest) -> HttpResponse:
    user = request.user
    emails = access.verified_emails(user)
    donations = list(_donations_of(user, emails).select_related("project").order_by("-created_at"))
    # Given with the account or a verified address: either way the page lets the donor in
    # (donations.access), so every link is the plain page.
    links = {d.pk: reverse("donations:donation", args=[d.pk]) for d in donations}
    gifts = selectors.with_matches(
        Gift.objects.filter(donation__in=[d.pk for d in donations])
        .select_related("donation", "project")
        .prefetch_related("receipts")
        .order_by("-received_at", "-pk")
    )
    receipts = (
        Receipt.objects.annotate(email_lower=Lower("email"))
        .filter(
            Q(gift__donation__in=[d.pk for d in donations])
            | Q(kind=Receipt.Kind.ANNUAL, email_lower__in=emails)
        )
        .select_related("gift__project")
        .order_by("-year", "-number")
    )
    # One annual summary per verified address and calendar year (Japan time) with gifts.
    summaries = sorted(
        {
            (gift.received_at.astimezone(JAPAN).year, gift.donation.email.lower())
            for gift in gifts
            if gift.state != Gift.State.REFUNDED and gift.donation.email.lower() in emails
        },
        reverse=True,
    )
    return render(
        request,
        "donations/my_gifts.html",
        {
            "monthly": [
                (d, links[d.pk]) for d in donations if d.frequency == Donation.Frequency.MONTHLY
            ],
            "awaiting": [
                (d, links[d.pk]) for d in donations if d.status == Status.AWAITING_PAYMENT
            ],
            "gifts": [(gift, links[gift.donation_id]) for gift in gifts],
            "receipts": receipts,
            "summaries": summaries,
            "several_emails": len(emails) > 1,
            "has_unverified": any(d.email.lower() not in emails for d in donations),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def annual_receipt(request: HttpRequest, year: int) -> HttpResponse:
    if request.method == "GET":
        return redirect("donations:my-gifts")
    email = request.POST.get("email", "").strip().lower()
    if email not in access.verified_emails(request.user):
        raise Http404
    try:
        receipt = issue_annual_receipt(email=email, year=year)
    except ReceiptError as error:
        messages.error(request, str(error))
        return redirect("donations:my-gifts")
    return redirect("donations:receipt-pdf", receipt.pk)


def _may_download(request: HttpRequest, receipt: Receipt) -> bool:
    user = request.user
    if may(user, "donation.view_any"):
        return True
    if user.is_authenticated and receipt.email.lower() in access.verified_emails(user):
        return True
    if receipt.kind == Receipt.Kind.SINGLE and receipt.gift is not None:
        return access.may_view_donation(request, receipt.gift.donation)
    return False


@never_cache
@require_safe
def receipt_pdf(request: HttpRequest, pk: int) -> HttpResponse:
    receipt = Receipt.objects.select_related("gift__donation").filter(pk=pk).first()
    if receipt is None or not _may_download(request, receipt):
        raise Http404
    response = HttpResponse(render_receipt_pdf(receipt), content_type="application/pdf")
    response["Content-Disposition"] = content_disposition_header(
        True, f"receipt-{receipt.display_number}.pdf"
    )
    return response
