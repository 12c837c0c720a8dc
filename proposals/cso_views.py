"""The CSO area: an organisation's members submit proposal letters (step 4) and follow them.

Every page asks ``accounts.policy``: the area is open to members of an organisation (others get
403 — anyone may know the area exists); a proposal that is not the visitor's to see answers 404.
The letter itself is served by ``proposal_letter`` after the same check, never from a media URL.
"""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import OuterRef, QuerySet, Subquery
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.cache import patch_cache_control
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from accounts.access import get_allowed_or_404, require_area
from accounts.models import Organization, User
from accounts.organization_forms import add_service_error
from accounts.policy import may

from . import services
from .cso_forms import ProposalSubmitForm, WithdrawForm, today_in_japan
from .models import Proposal, ProposalEvent
from .selectors import TIMELINE_ACTIONS, proposal_public_timeline
from .views import TIMELINE_LABELS

TEMPLATES = "proposals/cso"


def _proposals_of(organizations: QuerySet[Organization]) -> QuerySet[Proposal]:
    """The organisations' proposals, each with its latest step and that step's date, in one
    query."""
    latest = ProposalEvent.objects.filter(
        proposal=OuterRef("pk"), action__in=TIMELINE_ACTIONS
    ).order_by("-occurred_at", "-pk")
    return (
        Proposal.objects.filter(organization__in=organizations)
        .select_related("body", "operation", "organization")
        .annotate(
            last_action=Subquery(latest.values("action")[:1]),
            last_effective_on=Subquery(latest.values("effective_on")[:1]),
            last_occurred_at=Subquery(latest.values("occurred_at")[:1]),
        )
        .order_by("organization__name", "-received_on", "reference")
    )


def _latest_step(proposal: Proposal) -> dict | None:
    if not proposal.last_action:
        return None
    return {
        "label": TIMELINE_LABELS.get(proposal.last_action, proposal.last_action),
        "date": proposal.last_effective_on or timezone.localdate(proposal.last_occurred_at),
    }


@require_area("cso.area")
@require_safe
def home(request: HttpRequest) -> HttpResponse:
    """My organisations, each with its proposals and a button to submit one."""
    organizations = ProposalSubmitForm.organizations_of(request.user)
    by_organization: dict[int, list[Proposal]] = {}
    for proposal in _proposals_of(organizations):
        proposal.latest_step = _latest_step(proposal)
        by_organization.setdefault(proposal.organization_id, []).append(proposal)
    sections = [
        {
            "organization": organization,
            "proposals": by_organization.get(organization.pk, []),
            "may_submit": may(request.user, "proposal.submit", organization),
        }
        for organization in organizations
    ]
    return render(request, f"{TEMPLATES}/home.html", {"sections": sections})


@require_area("cso.area")
@require_http_methods(["GET", "HEAD", "POST"])
def proposal_submit(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        form = ProposalSubmitForm(request.POST, request.FILES, user=request.user)
        if form.is_valid():
            try:
                proposal = form.submit()
            except ValidationError as error:
                add_service_error(form, error)
            else:
                messages.success(
                    request,
                    _("Your proposal is received under the reference %(reference)s.")
                    % {"reference": proposal.reference},
                )
                return redirect("cso:proposal-detail", proposal.pk)
    else:
        # ?organization=<id> from an organisation's "submit a proposal" button.
        form = ProposalSubmitForm(
            user=request.user, initial={"organization": request.GET.get("organization")}
        )
    return render(request, f"{TEMPLATES}/proposal_submit.html", {"form": form})


def _private_proposal_or_404(user: User, pk: int) -> Proposal:
    proposal = (
        Proposal.objects.select_related(
            "body", "operation", "organization", "contract", "assessment"
        )
        .filter(pk=pk)
        .first()
    )
    return get_allowed_or_404(user, "proposal.view_private", proposal)


def _render_detail(
    request: HttpRequest,
    proposal: Proposal,
    *,
    withdraw_form: WithdrawForm | None = None,
) -> HttpResponse:
    may_withdraw = "withdraw" in services.allowed_actions(proposal) and may(
        request.user, "proposal.withdraw", proposal
    )
    return render(
        request,
        f"{TEMPLATES}/proposal_detail.html",
        {
            "proposal": proposal,
            # The proposer attended its consultations: it sees their notes too.
            "consultations": proposal.consultations.all(),
            "timeline": [
                {"label": TIMELINE_LABELS[step["action"]], "date": step["date"]}
                for step in proposal_public_timeline(proposal)
            ],
            "may_withdraw": may_withdraw,
            "withdraw_form": withdraw_form or WithdrawForm(),
        },
    )


@require_area("cso.area")
@require_safe
def proposal_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _render_detail(request, _private_proposal_or_404(request.user, pk))


@require_area("cso.area")
@require_POST
def proposal_withdraw(request: HttpRequest, pk: int) -> HttpResponse:
    proposal = _private_proposal_or_404(request.user, pk)
    form = WithdrawForm(request.POST)
    if form.is_valid():
        try:
            services.proposal_transition(
                proposal=proposal,
                action="withdraw",
                actor=request.user,
                note=form.cleaned_data["note"],
                withdrawn_on=today_in_japan(),
            )
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        else:
            messages.success(request, _("The proposal is withdrawn."))
        return redirect("cso:proposal-detail", proposal.pk)
    return _render_detail(request, proposal, withdraw_form=form)


@require_safe
def proposal_letter(request: HttpRequest, pk: int) -> FileResponse:
    """The proposal letter, as a download, to those who may see the private record; a 404 for
    everyone else (signed in or not), so the URL does not reveal that a letter exists."""
    proposal = get_allowed_or_404(
        request.user, "proposal.view_private", Proposal.objects.filter(pk=pk).first()
    )
    if not proposal.letter:
        raise Http404
    try:
        letter = proposal.letter.open("rb")
    except FileNotFoundError:
        raise Http404 from None
    response = FileResponse(
        letter,
        as_attachment=True,
        filename=f"{proposal.reference}.pdf",
        content_type="application/pdf",
    )
    response["X-Content-Type-Options"] = "nosniff"
    patch_cache_control(response, private=True, no_store=True)
    return response
