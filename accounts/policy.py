"""The one answer to "may this user do this to this object?" — asked by pages, API and services.

Roles come from the data in ``accounts.models``: a site admin (superuser), foundation staff
(programme officer, finance, approver), a government officer of one body, members and admins
of organisations, and everyone else (a citizen, or anonymous). ``RULES`` maps each action to who
may perform it. Objects are read by their ids (``body_id``, ``organization_id``), so later apps
can be judged here without this module importing them.

Refusals of objects a user may not know exist are 404s, not 403s; that is the views' job
(``accounts.access``), this module only says yes or no.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .models import FoundationRole, GovernmentStaff, Membership

FOUNDATION_ROLES = frozenset(FoundationRole.Role.values)


@dataclass(frozen=True)
class Roles:
    authenticated: bool = False
    site_admin: bool = False
    foundation: frozenset[str] = frozenset()
    body_id: int | None = None
    memberships: dict[int, str] = field(default_factory=dict)  # organization id → role

    @property
    def is_foundation_staff(self) -> bool:
        return bool(self.foundation)

    @property
    def is_government_staff(self) -> bool:
        return self.body_id is not None

    def member_of(self, organization_id: int | None) -> bool:
        return organization_id is not None and organization_id in self.memberships

    def admin_of(self, organization_id: int | None) -> bool:
        return self.memberships.get(organization_id) == Membership.Role.ADMIN


ANONYMOUS = Roles()


def roles_of(user: Any) -> Roles:
    """The user's roles, read once per user object (cached on it for the request)."""
    if user is None or not user.is_authenticated or not user.is_active:
        return ANONYMOUS
    cached = getattr(user, "_civic_roles", None)
    if cached is not None:
        return cached
    body_id = GovernmentStaff.objects.filter(user=user).values_list("body_id", flat=True).first()
    roles = Roles(
        authenticated=True,
        site_admin=user.is_superuser,
        foundation=frozenset(user.foundation_roles.values_list("role", flat=True)),
        body_id=body_id,
        memberships=dict(user.memberships.values_list("organization_id", "role")),
    )
    user._civic_roles = roles
    return roles


def forget_roles(user: Any) -> None:
    """Drop the cached roles after they change (tests, membership services)."""
    if hasattr(user, "_civic_roles"):
        del user._civic_roles


def _body_id(obj: Any) -> int | None:
    # A GovernmentBody is its own body; register objects carry body_id.
    if obj is None:
        return None
    if obj.__class__.__name__ == "GovernmentBody":
        return obj.pk
    return getattr(obj, "body_id", None)


def _organization_id(obj: Any) -> int | None:
    if obj is None:
        return None
    if obj.__class__.__name__ == "Organization":
        return obj.pk
    return getattr(obj, "organization_id", None)


def _officer_of_body(r: Roles, obj: Any) -> bool:
    return r.is_government_staff and r.body_id == _body_id(obj)


Rule = Callable[[Roles, Any], bool]

RULES: dict[str, Rule] = {
    # The register (proposals).
    "operation.create": lambda r, body: r.site_admin or _officer_of_body(r, body),
    "operation.change": lambda r, op: r.site_admin or _officer_of_body(r, op),
    "proposal.record": lambda r, body: r.site_admin or _officer_of_body(r, body),
    "proposal.advance": lambda r, p: r.site_admin or _officer_of_body(r, p),
    "proposal.submit": lambda r, org: r.member_of(_organization_id(org)),
    # The proposer may withdraw its own proposal; the government may record a withdrawal.
    "proposal.withdraw": lambda r, p: (
        r.site_admin or _officer_of_body(r, p) or r.member_of(_organization_id(p))
    ),
    "proposal.view_private": lambda r, p: (
        r.site_admin
        or r.is_foundation_staff
        or _officer_of_body(r, p)
        or r.member_of(_organization_id(p))
    ),
    # Organisations.
    "organization.view": lambda r, org: (
        r.site_admin or r.is_foundation_staff or r.member_of(_organization_id(org))
    ),
    "organization.manage_members": lambda r, org: r.site_admin or r.admin_of(_organization_id(org)),
    # The fund: programme officers list projects and move them through their states.
    "project.manage": lambda r, _: r.site_admin or "programme_officer" in r.foundation,
    # Gifts: finance staff refund; foundation staff see every donation; an organisation's
    # members see the money raised for their proposals' projects (and consenting donors).
    "gift.refund": lambda r, _: r.site_admin or "finance" in r.foundation,
    "donation.view_any": lambda r, _: r.site_admin or r.is_foundation_staff,
    "project.view_money": lambda r, project: (
        r.site_admin
        or r.is_foundation_staff
        or r.member_of(project.proposal.organization_id if project is not None else None)
    ),
    # Match pools: programme and finance staff run them; the sponsor's members and foundation
    # staff read a pool's statement (no donor's personal data is on it).
    "pool.manage": lambda r, _: (
        r.site_admin or bool({"programme_officer", "finance"} & r.foundation)
    ),
    "pool.view_statement": lambda r, pool: (
        r.site_admin
        or r.is_foundation_staff
        or r.member_of(pool.sponsor_id if pool is not None else None)
    ),
    # Grants: a programme officer proposes, an approver (never the same person) approves;
    # finance staff pay. The CSO's members see their grants and file the reports.
    "grant.propose": lambda r, _: r.site_admin or "programme_officer" in r.foundation,
    "grant.approve": lambda r, _: r.site_admin or "approver" in r.foundation,
    "grant.cancel": lambda r, _: (
        r.site_admin or bool({"programme_officer", "approver"} & r.foundation)
    ),
    "grant.view": lambda r, grant: (
        r.site_admin
        or r.is_foundation_staff
        or r.member_of(grant.organization_id if grant is not None else None)
    ),
    "grant.report": lambda r, grant: r.member_of(
        grant.organization_id if grant is not None else None
    ),
    "grant.review_report": lambda r, _: r.site_admin or "programme_officer" in r.foundation,
    # Written when a grant closes: by the officer accepting the final report, or by finance
    # recording the last payment.
    "proposal.record_fund_outcome": lambda r, _: (
        r.site_admin or bool({"programme_officer", "finance"} & r.foundation)
    ),
    "transfer.manage": lambda r, _: r.site_admin or "finance" in r.foundation,
    # A CSO's admin enters its bank account, or finance staff do; another staff member confirms.
    "bank_account.submit": lambda r, org: (
        r.site_admin or "finance" in r.foundation or r.admin_of(_organization_id(org))
    ),
    "bank_account.confirm": lambda r, _: r.site_admin or "finance" in r.foundation,
    "bank_account.view": lambda r, org: (
        r.site_admin or r.is_foundation_staff or r.member_of(_organization_id(org))
    ),
    # Areas of the site.
    "government.area": lambda r, _: r.is_government_staff,
    "foundation.area": lambda r, _: r.site_admin or r.is_foundation_staff,
    "cso.area": lambda r, _: bool(r.memberships),
}


def may(user: Any, action: str, obj: Any = None) -> bool:
    """True if the user may perform ``action`` (a key of ``RULES``) on ``obj``."""
    try:
        rule = RULES[action]
    except KeyError:
        raise ValueError(f"Unknown action {action!r}") from None
    return bool(rule(roles_of(user), obj))


def requires_mfa(user: Any) -> bool:
    """Foundation and government staff (and site admins) must use two-factor authentication."""
    r = roles_of(user)
    return r.site_admin or r.is_foundation_staff or r.is_government_staff or user.is_staff


def has_mfa(user: Any) -> bool:
    from allauth.mfa.models import Authenticator

    return Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists()
