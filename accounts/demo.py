"""Demo people for ``make run``: one account per role, so every part of the site can be tried.

Every account's password is ``DEMO_PASSWORD`` and its email is verified. Staff accounts are
asked to set up two-factor authentication at their first sign-in, as in production.
Never run this against a production database: the password is public.
"""

from allauth.account.models import EmailAddress

from .models import FoundationRole, GovernmentBody, GovernmentStaff, Membership, Organization, User

DEMO_PASSWORD = "civicfund-demo-2026"  # noqa: S105 - a published demo password, by design


def _person(email: str, **extra) -> tuple[User, bool]:
    user, created = User.objects.get_or_create(email=email, defaults=extra)
    if created:
        user.set_password(DEMO_PASSWORD)
        user.save(update_fields=["password"])
    EmailAddress.objects.get_or_create(
        user=user, email=email, defaults={"verified": True, "primary": True}
    )
    return user, created


def load_people_demo(*, cso: Organization, prefecture_code: str, city_code: str) -> dict:
    """Create the demo accounts (idempotent); returns how many were new."""
    created = 0
    _admin, new = _person("admin@civicfund.example.jp", is_staff=True, is_superuser=True)
    created += new
    for email, code in (
        ("officer@pref.saga.example.jp", prefecture_code),
        ("officer@city.saga.example.jp", city_code),
    ):
        user, new = _person(email)
        created += new
        GovernmentStaff.objects.get_or_create(
            user=user, defaults={"body": GovernmentBody.objects.get(code=code)}
        )
    for email, role in (
        ("programme@civicfund.example.jp", FoundationRole.Role.PROGRAMME_OFFICER),
        ("finance@civicfund.example.jp", FoundationRole.Role.FINANCE),
        ("approver@civicfund.example.jp", FoundationRole.Role.APPROVER),
    ):
        user, new = _person(email)
        created += new
        FoundationRole.objects.get_or_create(user=user, role=role)
    for email, role in (
        ("cso-admin@npo.example.jp", Membership.Role.ADMIN),
        ("cso-member@npo.example.jp", Membership.Role.MEMBER),
    ):
        user, new = _person(email)
        created += new
        Membership.objects.get_or_create(user=user, organization=cso, defaults={"role": role})
    _user, new = _person("citizen@example.jp")
    created += new
    return {"demo_accounts": created}
