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


# --- People: tokens, data export, closing an account ---
# The models of allauth, DRF and later apps are imported inside the functions below, so that this
# section stays self-contained and accounts never imports a later app (proposals) at load time.

# Keys of AccountEvent.details that describe the person's own roles; anything else (an invitee's
# address, for one) may be someone else's personal data and stays out of a data export.
_EXPORTED_EVENT_DETAILS = frozenset({"role", "granted", "body"})


def _require_two_factor_for_staff(user: User) -> None:
    from .access import mfa_message
    from .policy import has_mfa, requires_mfa

    if requires_mfa(user) and not has_mfa(user):
        raise PermissionDenied(mfa_message())


@transaction.atomic
def api_token_create(*, user: User) -> str:
    """Give the person a new API token for their scripts and return its key; an old one stops
    working.

    A token skips the sign-in page and its second factor, so staff get one only once two-factor
    authentication protects the account that issues it. The caller shows the key once.
    """
    from rest_framework.authtoken.models import Token

    _require_two_factor_for_staff(user)
    # Lock the person's row: two clicks at once would otherwise race on the one-token-per-user key.
    User.objects.select_for_update().get(pk=user.pk)
    replaced = Token.objects.filter(user=user).delete()[0] > 0
    token = Token.objects.create(user=user)
    _event("api_token_create", actor=user, subject=user, replaced=replaced)
    return token.key


@transaction.atomic
def api_token_revoke(*, user: User) -> bool:
    """Delete the person's API token at once; True if there was one."""
    from rest_framework.authtoken.models import Token

    revoked = Token.objects.filter(user=user).delete()[0] > 0
    if revoked:
        _event("api_token_revoke", actor=user, subject=user)
    return revoked


def _when(value: dt.datetime | dt.date | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        value = timezone.localtime(value)
    return value.isoformat()


def personal_data_export(*, user: User) -> dict[str, Any]:
    """Everything the platform holds about the person, for their right of access (APPI art. 33).

    Other people appear only as far as the person's own records need them: organisations and
    government bodies by name, never another person's email address or name.
    """
    from allauth.account.models import EmailAddress
    from allauth.mfa.models import Authenticator
    from django.apps import apps
    from rest_framework.authtoken.models import Token

    ProposalEvent = apps.get_model("proposals", "ProposalEvent")
    # Gifts live in a later app; looked up by name so accounts does not import it.
    Donation = apps.get_model("donations", "Donation")
    staff = GovernmentStaff.objects.filter(user=user).select_related("body").first()
    token = Token.objects.filter(user=user).first()
    events = AccountEvent.objects.filter(Q(subject=user) | Q(actor=user)).select_related(
        "organization"
    )
    return {
        "format": "civic-fund-personal-data/1",
        "exported_at": _when(timezone.now()),
        "account": {
            "id": user.pk,
            "email": user.email,
            "first_name": user.first_name,
            "last_name": user.last_name,
            "date_joined": _when(user.date_joined),
            "last_login": _when(user.last_login),
            "is_active": user.is_active,
            "closed_at": _when(user.closed_at),
        },
        "email_addresses": [
            {"email": a.email, "verified": a.verified, "primary": a.primary}
            for a in EmailAddress.objects.filter(user=user).order_by("pk")
        ],
        # Which kinds of second factor are set up, never their secrets.
        "two_factor_authentication": [
            {
                "type": a.type,
                "created_at": _when(a.created_at),
                "last_used_at": _when(a.last_used_at),
            }
            for a in Authenticator.objects.filter(user=user).order_by("pk")
        ],
        "api_token": {"created_at": _when(token.created)} if token else None,
        "government_body": (
            {"code": staff.body.code, "name": staff.body.name, "since": _when(staff.created_at)}
            if staff
            else None
        ),
        "foundation_roles": [
            {"role": r.role, "since": _when(r.created_at)}
            for r in FoundationRole.objects.filter(user=user).order_by("role")
        ],
        "memberships": [
            {
                "organization": m.organization.name,
                "kind": m.organization.kind,
                "role": m.role,
                "joined_at": _when(m.created_at),
            }
            for m in Membership.objects.filter(user=user).select_related("organization")
        ],
        # The invitee's address is theirs, not the sender's: left out.
        "invitations_sent": [
            {
                "organization": i.organization.name,
                "role": i.role,
                "sent_at": _when(i.created_at),
                "accepted_at": _when(i.accepted_at),
                "revoked_at": _when(i.revoked_at),
            }
            for i in Invitation.objects.filter(invited_by=user).select_related("organization")
        ],
        "invitations_accepted": [
            {
                "organization": i.organization.name,
                "role": i.role,
                "sent_at": _when(i.created_at),
                "accepted_at": _when(i.accepted_at),
            }
            for i in Invitation.objects.filter(accepted_by=user).select_related("organization")
        ],
        "proposal_history": [
            {
                "proposal": e.proposal.reference,
                "action": e.action,
                "from_state": e.from_state,
                "to_state": e.to_state,
                "recorded_at": _when(e.occurred_at),
                "date_of_the_step": _when(e.effective_on),
            }
            for e in ProposalEvent.objects.filter(actor=user).select_related("proposal")
        ],
        "donations": [
            {
                "id": str(d.pk),
                "project": d.project.title if d.project else None,
                "amount": d.amount,
                "frequency": d.frequency,
                "status": d.status,
                "created_at": _when(d.created_at),
                "email": d.email,
                "name": d.name,
                "postal_code": d.postal_code,
                "address": d.address,
                "display_name": d.display_name,
                "publish_name": d.publish_name,
                "message": d.message,
                "share_contact": d.share_contact,
                "wants_receipt": d.wants_receipt,
                "gifts": [
                    {
                        "amount": g.amount,
                        "refunded_amount": g.refunded_amount,
                        "received_at": _when(g.received_at),
                    }
                    for g in d.gifts.all()
                ],
            }
            for d in Donation.objects.filter(Q(donor=user) | Q(email__iexact=user.email))
            .select_related("project")
            .prefetch_related("gifts")
        ],
        "account_history": [
            {
                "action": e.action,
                "when": _when(e.occurred_at),
                "organization": e.organization.name if e.organization else None,
                "by_you": e.actor_id == user.pk,
                "details": {k: v for k, v in e.details.items() if k in _EXPORTED_EVENT_DETAILS},
            }
            for e in events
        ],
    }


def closed_email(user: User) -> str:
    """The address a closed account keeps: unique, and undeliverable by definition (RFC 2606)."""
    return f"closed-{user.pk}@invalid"


def _is_last_admin(membership: Membership) -> bool:
    if membership.role != Membership.Role.ADMIN:
        return False
    members = _lock_members(membership.organization)
    return not any(
        m.role == Membership.Role.ADMIN and m.user_id != membership.user_id for m in members
    )


@transaction.atomic
def account_close(*, user: User) -> User:
    """Close the person's account: anonymise what identifies them, keep what records point to.

    The User row stays, so gifts, receipts, grants and the proposal and account histories that
    name it keep their integrity (accounting and tax law require those records to be kept); it
    loses its email, names, password, second factors, API token, memberships and staff roles.
    Refused while the person is the last admin of an organisation: someone must take over first.
    """
    from allauth.account.models import EmailAddress
    from allauth.mfa.models import Authenticator
    from django.apps import apps
    from django.utils.text import get_text_list
    from rest_framework.authtoken.models import Token

    user = User.objects.select_for_update().get(pk=user.pk)
    if user.closed_at is not None:
        raise ValidationError(_("This account is already closed."))
    memberships = list(Membership.objects.filter(user=user).select_related("organization"))
    last_admin_of = [m.organization.name for m in memberships if _is_last_admin(m)]
    if last_admin_of:
        raise ValidationError(
            _(
                "You are the last admin of %(organizations)s. Make another member an admin "
                "first, or ask us to close the organisation if nobody can take over."
            )
            % {"organizations": get_text_list(last_admin_of, _("and"))}
        )

    old_email, new_email = user.email, closed_email(user)
    # Records others keep (an organisation's invitations and history) hold the old address too.
    Invitation.objects.filter(Q(accepted_by=user) | Q(email__iexact=old_email)).update(
        email=new_email
    )
    for event in AccountEvent.objects.filter(details__email__iexact=old_email):
        event.details["email"] = new_email
        event.save(update_fields=["details"])

    EmailAddress.objects.filter(user=user).delete()
    Authenticator.objects.filter(user=user).delete()
    Token.objects.filter(user=user).delete()
    Membership.objects.filter(user=user).delete()
    GovernmentStaff.objects.filter(user=user).delete()
    FoundationRole.objects.filter(user=user).delete()
    # Their gifts stay (accounting records) and so do the receipts issued, which carry their own
    # copy of name and address as tax law requires; the donations lose what identifies the
    # person: the public name and message, the consents, the contact details.
    apps.get_model("donations", "Donation").objects.filter(
        Q(donor=user) | Q(email__iexact=old_email)
    ).update(
        donor=None,
        email=new_email,
        name="",
        postal_code="",
        address="",
        display_name="",
        publish_name=False,
        message="",
        share_contact=False,
    )
    user.groups.clear()
    user.user_permissions.clear()

    user.email = new_email
    user.first_name = user.last_name = ""
    user.set_unusable_password()  # also ends the person's other sessions
    user.is_active = user.is_staff = user.is_superuser = False
    user.closed_at = timezone.now()
    user.save()
    forget_roles(user)
    _event(
        "account_close",
        actor=user,
        subject=user,
        memberships_removed=[m.organization.name for m in memberships],
    )
    return user
