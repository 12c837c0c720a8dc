"""Changes to organisations' members and to staff roles. Each checks ``accounts.policy`` and
writes an ``AccountEvent``; emails go out after commit.
"""

import datetime as dt
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from .models import (
    AccountEvent,
    FoundationRole,
    GovernmentBody,
    GovernmentStaff,
    Invitation,
    Membership,
    Organization,
    User,
)
from .policy import forget_roles, may, roles_of

INVITATION_VALID_FOR = dt.timedelta(days=14)


def _event(
    action: str,
    *,
    actor: User | None,
    subject: User | None = None,
    organization: Organization | None = None,
    **details: Any,
) -> AccountEvent:
    return AccountEvent.objects.create(
        action=action, actor=actor, subject=subject, organization=organization, details=details
    )


def _require(actor: User, action: str, obj: Any) -> None:
    if not may(actor, action, obj):
        raise PermissionDenied(_("You may not manage this organisation's members."))


@transaction.atomic
def organization_register(*, name: str, kind: str, actor: User) -> Organization:
    """A signed-in person registers their organisation and becomes its first admin."""
    name = " ".join(name.split())
    if not name:
        raise ValidationError({"name": _("Enter the organisation's name.")})
    if Organization.objects.filter(name=name).exists():
        raise ValidationError(
            {
                "name": _("“%(name)s” is already registered: ask its admin to invite you.")
                % {"name": name}
            }
        )
    organization = Organization(name=name, kind=kind)
    organization.full_clean()
    try:
        with transaction.atomic():
            organization.save()
    except IntegrityError:  # registered by someone else a moment ago
        raise ValidationError(
            {
                "name": _("“%(name)s” is already registered: ask its admin to invite you.")
                % {"name": name}
            }
        ) from None
    Membership.objects.create(user=actor, organization=organization, role=Membership.Role.ADMIN)
    forget_roles(actor)
    _event("organization_register", actor=actor, subject=actor, organization=organization)
    return organization


@transaction.atomic
def invitation_create(
    *, organization: Organization, email: str, role: str, actor: User, accept_url_base: str = ""
) -> Invitation:
    """Invite someone by email. An open invitation to the same address is replaced."""
    _require(actor, "organization.manage_members", organization)
    email = User.objects.normalize_email(email.strip()).lower()
    if role not in Membership.Role.values:
        raise ValidationError({"role": _("Choose a role.")})
    if Membership.objects.filter(organization=organization, user__email__iexact=email).exists():
        raise ValidationError({"email": _("%(email)s is already a member.") % {"email": email}})
    now = timezone.now()
    Invitation.objects.filter(
        organization=organization,
        email__iexact=email,
        accepted_at__isnull=True,
        revoked_at__isnull=True,
    ).update(revoked_at=now)
    invitation = Invitation(
        organization=organization,
        email=email,
        role=role,
        invited_by=actor,
        expires_at=now + INVITATION_VALID_FOR,
    )
    invitation.full_clean(validate_constraints=False)
    try:
        with transaction.atomic():
            invitation.save()
    except IntegrityError:  # the same address invited at the same moment by another admin
        raise ValidationError(
            {"email": _("%(email)s was just invited.") % {"email": email}}
        ) from None
    _event("invite", actor=actor, organization=organization, email=email, role=role)
    transaction.on_commit(lambda: _send_invitation(invitation, accept_url_base))
    return invitation


def _send_invitation(invitation: Invitation, accept_url_base: str) -> None:
    path = reverse("organizations:invitation-accept", args=[invitation.token])
    context = {"invitation": invitation, "accept_url": f"{accept_url_base.rstrip('/')}{path}"}
    send_mail(
        subject=_("Invitation to join %(organization)s on Civic Fund")
        % {"organization": invitation.organization.name},
        message=render_to_string("accounts/email/invitation.txt", context),
        from_email=None,
        recipient_list=[invitation.email],
    )


@transaction.atomic
def invitation_accept(*, token: str, user: User) -> Membership:
    """Join the organisation. Safe to run twice at once: the claim is a conditional update."""
    invitation = Invitation.objects.filter(token=token).select_related("organization").first()
    if invitation is None:
        raise ValidationError(_("This invitation link is not valid."))
    if invitation.email.lower() != user.email.lower():
        raise ValidationError(
            _("This invitation was sent to another email address. Sign in as %(email)s.")
            % {"email": invitation.email}
        )
    claimed = Invitation.objects.filter(
        Q(pk=invitation.pk),
        accepted_at__isnull=True,
        revoked_at__isnull=True,
        expires_at__gt=timezone.now(),
    ).update(accepted_at=timezone.now(), accepted_by=user)
    if claimed != 1:
        raise ValidationError(_("This invitation has already been used, was withdrawn or expired."))
    membership, _created = Membership.objects.get_or_create(
        user=user, organization=invitation.organization, defaults={"role": invitation.role}
    )
    forget_roles(user)
    _event(
        "join",
        actor=user,
        subject=user,
        organization=invitation.organization,
        role=membership.role,
    )
    return membership


@transaction.atomic
def invitation_revoke(*, invitation: Invitation, actor: User) -> None:
    _require(actor, "organization.manage_members", invitation.organization)
    Invitation.objects.filter(
        pk=invitation.pk, accepted_at__isnull=True, revoked_at__isnull=True
    ).update(revoked_at=timezone.now())
    _event(
        "invitation_revoke",
        actor=actor,
        organization=invitation.organization,
        email=invitation.email,
    )


def _lock_members(organization: Organization) -> list[Membership]:
    # Lock every membership of the organisation so two admins cannot each remove the other.
    return list(Membership.objects.select_for_update().filter(organization=organization))


@transaction.atomic
def membership_remove(*, membership: Membership, actor: User) -> None:
    """An organisation admin removes a member (or a member leaves). The last admin stays."""
    leaving = membership.user_id == actor.pk
    if not leaving:
        _require(actor, "organization.manage_members", membership.organization)
    members = _lock_members(membership.organization)
    admins = [m for m in members if m.role == Membership.Role.ADMIN]
    if membership.role == Membership.Role.ADMIN and len(admins) <= 1:
        raise ValidationError(_("An organisation keeps at least one admin."))
    Membership.objects.filter(pk=membership.pk).delete()
    forget_roles(membership.user)
    _event(
        "leave" if leaving else "remove",
        actor=actor,
        subject=membership.user,
        organization=membership.organization,
    )


@transaction.atomic
def membership_set_role(*, membership: Membership, role: str, actor: User) -> Membership:
    _require(actor, "organization.manage_members", membership.organization)
    if role not in Membership.Role.values:
        raise ValidationError({"role": _("Choose a role.")})
    members = _lock_members(membership.organization)
    admins = [m for m in members if m.role == Membership.Role.ADMIN]
    if (
        membership.role == Membership.Role.ADMIN
        and role != Membership.Role.ADMIN
        and len(admins) <= 1
    ):
        raise ValidationError(_("An organisation keeps at least one admin."))
    old = membership.role
    Membership.objects.filter(pk=membership.pk).update(role=role)
    membership.role = role
    forget_roles(membership.user)
    _event(
        "role",
        actor=actor,
        subject=membership.user,
        organization=membership.organization,
        role=[old, role],
    )
    return membership


def _require_site_admin(actor: User) -> None:
    if not roles_of(actor).site_admin:
        raise PermissionDenied(_("Only a site administrator may change staff roles."))


@transaction.atomic
def government_staff_assign(
    *, user: User, body: GovernmentBody | None, actor: User
) -> GovernmentStaff | None:
    """Make a person an officer of one body (or, with ``body=None``, no longer an officer)."""
    _require_site_admin(actor)
    old = GovernmentStaff.objects.filter(user=user).values_list("body__code", flat=True).first()
    staff = None
    if body is None:
        GovernmentStaff.objects.filter(user=user).delete()
    else:
        staff, _created = GovernmentStaff.objects.update_or_create(
            user=user, defaults={"body": body}
        )
    forget_roles(user)
    _event(
        "government_staff",
        actor=actor,
        subject=user,
        body=[old, body.code if body else None],
    )
    return staff


@transaction.atomic
def foundation_role_set(
    *, user: User, role: str, granted: bool, actor: User
) -> FoundationRole | None:
    _require_site_admin(actor)
    if role not in FoundationRole.Role.values:
        raise ValidationError({"role": _("Choose a role.")})
    held = None
    if granted:
        held, changed = FoundationRole.objects.get_or_create(user=user, role=role)
    else:
        changed = bool(FoundationRole.objects.filter(user=user, role=role).delete()[0])
    if changed:
        forget_roles(user)
        _event("foundation_role", actor=actor, subject=user, role=role, granted=granted)
    return held
