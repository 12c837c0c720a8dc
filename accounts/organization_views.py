"""Organisation pages: my organisations, registering one, members, invitations.

Views stay thin: a form validates what was typed, ``accounts.services`` decides and records,
a template shows. An organisation the visitor may not view answers 404 (it does not reveal that
it exists); a member who may view it but not manage it gets 403 for an admin's action. Refusals
of the services (the last admin, already a member …) come back as form errors or messages.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from . import services
from .access import get_allowed_or_404
from .models import Invitation, Membership, Organization, User
from .organization_forms import (
    InvitationForm,
    MembershipRoleForm,
    OrganizationRegisterForm,
    add_service_error,
)
from .policy import may, roles_of

TEMPLATES = "accounts/organizations"


def _organization_or_404(user: User, pk: int) -> Organization:
    return get_allowed_or_404(user, "organization.view", Organization.objects.filter(pk=pk).first())


def _require_manager(user: User, organization: Organization) -> None:
    # The services check this too; asking first keeps a refused request from being validated.
    if not may(user, "organization.manage_members", organization):
        raise PermissionDenied(_("Only the organisation's admins may manage its members."))


def _error_text(error: ValidationError) -> str:
    return " ".join(error.messages)


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def organization_list(request: HttpRequest) -> HttpResponse:
    """My organisations, and the form to register a new one (I become its admin)."""
    form = OrganizationRegisterForm(request.POST if request.method == "POST" else None)
    if form.is_bound and form.is_valid():
        try:
            organization = services.organization_register(
                name=form.cleaned_data["name"], kind=form.cleaned_data["kind"], actor=request.user
            )
        except ValidationError as error:
            add_service_error(form, error)
        else:
            messages.success(
                request,
                _("%(organization)s is registered and you are its admin.")
                % {"organization": organization.name},
            )
            return redirect("organizations:detail", organization.pk)
    memberships = request.user.memberships.select_related("organization").order_by(
        "organization__name"
    )
    return render(
        request,
        f"{TEMPLATES}/organization_list.html",
        {"memberships": memberships, "form": form},
    )


def _render_detail(
    request: HttpRequest,
    organization: Organization,
    *,
    invite_form: InvitationForm | None = None,
) -> HttpResponse:
    user = request.user
    roles = roles_of(user)
    can_manage = may(user, "organization.manage_members", organization)
    # Members' addresses are for the organisation itself (and a site admin, who may manage it);
    # foundation staff see that the organisation exists, not who is in it.
    can_see_members = roles.member_of(organization.pk) or can_manage
    memberships = (
        organization.memberships.select_related("user").order_by("user__email")
        if can_see_members
        else Membership.objects.none()
    )
    invitations = (
        organization.invitations.filter(
            accepted_at__isnull=True, revoked_at__isnull=True, expires_at__gt=timezone.now()
        ).select_related("invited_by")
        if can_manage
        else Invitation.objects.none()
    )
    return render(
        request,
        f"{TEMPLATES}/organization_detail.html",
        {
            "organization": organization,
            "can_manage": can_manage,
            "can_see_members": can_see_members,
            "member_count": organization.memberships.count(),
            "memberships": memberships,
            "my_membership": organization.memberships.filter(user=user).first(),
            "invitations": invitations,
            "invite_form": invite_form or InvitationForm(),
            "role_choices": Membership.Role.choices,
        },
    )


@login_required
@require_safe
def organization_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _render_detail(request, _organization_or_404(request.user, pk))


@login_required
@require_POST
def invitation_create(request: HttpRequest, pk: int) -> HttpResponse:
    organization = _organization_or_404(request.user, pk)
    _require_manager(request.user, organization)
    form = InvitationForm(request.POST)
    if form.is_valid():
        try:
            invitation = services.invitation_create(
                organization=organization,
                email=form.cleaned_data["email"],
                role=form.cleaned_data["role"],
                actor=request.user,
                accept_url_base=request.build_absolute_uri("/"),
            )
        except ValidationError as error:
            add_service_error(form, error)
        else:
            messages.success(
                request, _("Invitation sent to %(email)s.") % {"email": invitation.email}
            )
            return redirect("organizations:detail", organization.pk)
    return _render_detail(request, organization, invite_form=form)


@login_required
@require_POST
def invitation_revoke(request: HttpRequest, pk: int, invitation_pk: int) -> HttpResponse:
    organization = _organization_or_404(request.user, pk)
    _require_manager(request.user, organization)
    invitation = get_object_or_404(Invitation, pk=invitation_pk, organization=organization)
    services.invitation_revoke(invitation=invitation, actor=request.user)
    messages.success(
        request, _("The invitation to %(email)s is withdrawn.") % {"email": invitation.email}
    )
    return redirect("organizations:detail", organization.pk)


@login_required
@require_POST
def membership_set_role(request: HttpRequest, pk: int, membership_pk: int) -> HttpResponse:
    organization = _organization_or_404(request.user, pk)
    _require_manager(request.user, organization)
    membership = get_object_or_404(
        Membership.objects.select_related("user"), pk=membership_pk, organization=organization
    )
    form = MembershipRoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose a role."))
        return redirect("organizations:detail", organization.pk)
    try:
        services.membership_set_role(
            membership=membership, role=form.cleaned_data["role"], actor=request.user
        )
    except ValidationError as error:
        messages.error(request, _error_text(error))
    else:
        messages.success(
            request,
            _("%(email)s is now: %(role)s.")
            % {"email": membership.user.email, "role": membership.get_role_display()},
        )
    return redirect("organizations:detail", organization.pk)


@login_required
@require_POST
def membership_remove(request: HttpRequest, pk: int, membership_pk: int) -> HttpResponse:
    organization = _organization_or_404(request.user, pk)
    membership = get_object_or_404(
        Membership.objects.select_related("user"), pk=membership_pk, organization=organization
    )
    if membership.user_id != request.user.pk:
        _require_manager(request.user, organization)
    return _remove(request, membership)


@login_required
@require_POST
def organization_leave(request: HttpRequest, pk: int) -> HttpResponse:
    organization = _organization_or_404(request.user, pk)
    membership = get_object_or_404(
        Membership.objects.select_related("user"), organization=organization, user=request.user
    )
    return _remove(request, membership)


def _remove(request: HttpRequest, membership: Membership) -> HttpResponse:
    organization = membership.organization
    try:
        services.membership_remove(membership=membership, actor=request.user)
    except ValidationError as error:
        messages.error(request, _error_text(error))
        return redirect("organizations:detail", organization.pk)
    if membership.user_id == request.user.pk:
        messages.success(
            request, _("You have left %(organization)s.") % {"organization": organization.name}
        )
        return redirect("organizations:list")
    messages.success(
        request,
        _("%(email)s is no longer a member of %(organization)s.")
        % {"email": membership.user.email, "organization": organization.name},
    )
    return redirect("organizations:detail", organization.pk)


def _invitation_problem(invitation: Invitation | None, user: User) -> str | None:
    """Why this person cannot accept the invitation now, in words; None if they can.

    ``services.invitation_accept`` decides again when the button is pressed; this only lets the
    page say which of the reasons applies before anyone presses anything.
    """
    if invitation is None:
        return _("This invitation link is not valid. Check that you copied the whole link.")
    if invitation.accepted_at is not None:
        return _("This invitation has already been used.")
    if invitation.revoked_at is not None:
        return _("This invitation was withdrawn. Ask the organisation's admin for a new one.")
    if invitation.expires_at <= timezone.now():
        return _("This invitation has expired. Ask the organisation's admin for a new one.")
    if invitation.email.lower() != user.email.lower():
        return _(
            "This invitation was sent to another email address. Sign in as %(email)s to accept it."
        ) % {"email": invitation.email}
    return None


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def invitation_accept(request: HttpRequest, token: str) -> HttpResponse:
    invitation = (
        Invitation.objects.select_related("organization", "invited_by").filter(token=token).first()
    )
    problem = _invitation_problem(invitation, request.user)
    if request.method == "POST" and problem is None:
        try:
            membership = services.invitation_accept(token=token, user=request.user)
        except ValidationError as error:
            problem = _error_text(error)
        else:
            messages.success(
                request,
                _("Welcome: you are now a member of %(organization)s.")
                % {"organization": membership.organization.name},
            )
            return redirect("organizations:detail", membership.organization_id)
    return render(
        request,
        f"{TEMPLATES}/invitation_accept.html",
        {"invitation": invitation, "problem": problem},
        status=404 if invitation is None else 200,
    )
