"""Demo people for ``make run``: one account per role, so every part of the site can be tried.

Every account's password is ``DEMO_PASSWORD`` and its email is verified. Staff accounts are
asked to set up two-factor authentication at their first sign-in, as in production.
Never run this against a production database: the password is public.

The match pools' sponsors (``load_sponsors_demo``) are organisations too: a bank, a foundation and
the prefecture's own division, with one account at the bank that reads its pools' statements.
"""

from allauth.account.models import EmailAddress

from .models import FoundationRole, GovernmentBody, GovernmentStaff, Membership, Organization, User

DEMO_PASSWORD = "civicfund-demo-2026"  # noqa: S105 - a published demo password, by design

# The match pools' sponsors (fund.demo pledges their pools). A pool belongs to an organisation,
# so the prefecture sponsors as one of its divisions, not as the government body.
SPONSOR_BANK = "株式会社佐賀未来銀行"
SPONSOR_FOUNDATION = "公益財団法人さが地域づくり基金"
SPONSOR_PREFECTURE = "佐賀県 県民協働課"
SPONSORS = (
    (SPONSOR_BANK, Organization.Kind.COMPANY),
    (SPONSOR_FOUNDATION, Organization.Kind.OTHER),
    (SPONSOR_PREFECTURE, Organization.Kind.OTHER),
)
# A member of the bank: signs in to read the bank's pool statements at /pools/.
SPONSOR_USER = "sponsor@sagamirai-bank.example.jp"


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


def load_sponsors_demo() -> dict:
    """Create the sponsor organisations and the bank's demo account (idempotent); returns how
    many were new."""
    sponsors = {}
    created = 0
    for name, kind in SPONSORS:
        sponsors[name], new = Organization.objects.get_or_create(name=name, defaults={"kind": kind})
        created += new
    user, new_user = _person(SPONSOR_USER)
    Membership.objects.get_or_create(
        user=user,
        organization=sponsors[SPONSOR_BANK],
        defaults={"role": Membership.Role.MEMBER},
    )
    return {"demo_sponsors": created, "demo_sponsor_accounts": int(new_user)}
