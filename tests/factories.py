import datetime as dt
from zoneinfo import ZoneInfo

import factory

from accounts.models import (
    FoundationRole,
    GovernmentBody,
    GovernmentStaff,
    Membership,
    Organization,
    User,
)
from donations.models import Donation, Gift
from fund.models import Project
from proposals.models import (
    Department,
    Operation,
    Participation,
    Proposal,
)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("email",)

    email = factory.Sequence(lambda n: f"user{n}@example.jp")
    password = factory.django.Password("correct horse battery staple")


def give_mfa(user: User) -> str:
    """Activate a TOTP authenticator for the user, as the set-up page would; returns the secret."""
    from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret

    secret = generate_totp_secret()
    TOTP.activate(user, secret)
    return secret


def _staff_mfa(user: User, create: bool, extracted) -> None:
    # Staff have two-factor authentication unless a test asks for one without (mfa=False).
    if create and extracted is not False:
        give_mfa(user)


class StaffFactory(UserFactory):
    class Meta:
        skip_postgeneration_save = True

    is_staff = True

    @factory.post_generation
    def mfa(obj, create, extracted, **kwargs):
        _staff_mfa(obj, create, extracted)


class SiteAdminFactory(StaffFactory):
    is_superuser = True


class OrganizationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organization

    name = factory.Sequence(lambda n: f"NPO法人 さが協働{n}")
    kind = Organization.Kind.CSO


class PrefectureFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = GovernmentBody
        django_get_or_create = ("code",)

    code = "410004"
    name = "佐賀県"
    kind = GovernmentBody.Kind.PREFECTURE


class MunicipalityFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = GovernmentBody
        django_get_or_create = ("code",)

    # Prefecture number 49 does not exist, so these never collide with a real code in a test.
    code = factory.Sequence(lambda n: f"49{n:04d}")
    name = factory.Sequence(lambda n: f"市町{n}")
    kind = GovernmentBody.Kind.MUNICIPALITY


class DepartmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Department

    body = factory.SubFactory(PrefectureFactory)
    name = factory.Sequence(lambda n: f"県民協働課{n}")


class OperationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Operation

    fiscal_year = 2026
    body = factory.SubFactory(PrefectureFactory)
    department = factory.SubFactory(DepartmentFactory, body=factory.SelfAttribute("..body"))
    code = factory.Sequence(lambda n: f"OP-{n:05d}")
    title = factory.Sequence(lambda n: f"子育て支援事業{n}")
    summary = "地域の子育て世帯を支援する。"
    budget_yen = 1_200_000


class ParticipationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Participation

    fiscal_year = 2026
    body = factory.SubFactory(MunicipalityFactory)


class ProposalFactory(factory.django.DjangoModelFactory):
    """A received proposal (step 4). Move it on with proposals.services, not by setting state."""

    class Meta:
        model = Proposal

    reference = factory.Sequence(lambda n: f"P-{n:06d}")
    received_on = dt.date(2026, 6, 1)
    body = factory.SubFactory(PrefectureFactory)
    organization = factory.SubFactory(OrganizationFactory)
    title = factory.Sequence(lambda n: f"協働提案{n}")


class GovernmentStaffFactory(factory.django.DjangoModelFactory):
    """A government officer; ``GovernmentStaffFactory(body=…).user`` is the person."""

    class Meta:
        model = GovernmentStaff
        skip_postgeneration_save = True

    user = factory.SubFactory(UserFactory)
    body = factory.SubFactory(PrefectureFactory)

    @factory.post_generation
    def mfa(obj, create, extracted, **kwargs):
        _staff_mfa(obj.user, create, extracted)


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    organization = factory.SubFactory(OrganizationFactory)
    role = Membership.Role.MEMBER


class FoundationRoleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = FoundationRole
        skip_postgeneration_save = True

    user = factory.SubFactory(UserFactory)
    role = FoundationRole.Role.PROGRAMME_OFFICER

    @factory.post_generation
    def mfa(obj, create, extracted, **kwargs):
        _staff_mfa(obj.user, create, extracted)


class ProjectFactory(factory.django.DjangoModelFactory):
    """A listed project (made directly: tests of the listing rules use fund.services)."""

    class Meta:
        model = Project

    proposal = factory.SubFactory(ProposalFactory)
    title = factory.Sequence(lambda n: f"子ども食堂プロジェクト{n}")
    description = "地域の子どもに温かい食事を。"
    goal_yen = 500_000
    opens_at = dt.datetime(2026, 10, 1, tzinfo=ZoneInfo("Asia/Tokyo"))
    closes_at = dt.datetime(2027, 3, 31, 23, 59, tzinfo=ZoneInfo("Asia/Tokyo"))
    state = Project.State.OPEN
    created_by = factory.SubFactory(UserFactory)


class DonationFactory(factory.django.DjangoModelFactory):
    """A donation as the checkout leaves it (pending, demo provider)."""

    class Meta:
        model = Donation

    project = factory.SubFactory(ProjectFactory)
    amount = 3000
    frequency = Donation.Frequency.ONCE
    provider = Donation.Provider.DEMO
    email = factory.Sequence(lambda n: f"donor{n}@example.jp")
    name = "佐賀 花子"
    postal_code = "840-0041"
    address = "佐賀県佐賀市城内1-1-59"


def give(
    project: Project | None,
    amount: int = 3000,
    *,
    payment_id: str | None = None,
    received_at: dt.datetime | None = None,
    **donation_fields,
) -> Gift:
    """A succeeded gift recorded by the pipeline's own step (``_record_gift``): gift, ledger entry,
    history and (after commit) the receipt task — as a paid checkout would."""
    from django.db import transaction
    from django.utils import timezone

    from donations import services
    from donations.providers import Payment

    donation = DonationFactory(project=project, amount=amount, **donation_fields)
    payment_id = payment_id or f"pi_test_{donation.pk.hex[:16]}"
    with transaction.atomic():
        gift, _created = services._record_gift(
            donation,
            Payment(
                payment_id=payment_id,
                payment_intent_id=payment_id,
                amount=amount,
                received_at=received_at or timezone.now(),
            ),
            source="test",
        )
        Donation.objects.filter(pk=donation.pk).update(status=Donation.Status.SUCCEEDED)
    return gift


def pledge_pool(
    pledged: int = 1_000_000,
    *,
    sponsor: Organization | None = None,
    actor: User | None = None,
    **rules,
):
    """A match pool pledged through the service (so its pledge is in the ledger), open now and
    for a year, matching every project 1:1 unless ``rules`` say otherwise."""
    from django.utils import timezone

    from fund.matching import pool_create

    now = timezone.now()
    rules.setdefault("starts_at", now - dt.timedelta(days=1))
    rules.setdefault("ends_at", now + dt.timedelta(days=365))
    return pool_create(
        actor=actor or SiteAdminFactory(),
        sponsor=sponsor or OrganizationFactory(kind=Organization.Kind.COMPANY),
        name=rules.pop("name", "佐賀未来銀行 1:1 マッチング"),
        pledged=pledged,
        **rules,
    )


# --- Grants ---------------------------------------------------------------------------------------


def grant_staff():
    """The foundation's three grant roles, each a different person with two-factor set up:
    ``.officer`` proposes and reviews reports, ``.approver`` approves, ``.finance`` pays."""
    from types import SimpleNamespace

    return SimpleNamespace(
        officer=FoundationRoleFactory(role=FoundationRole.Role.PROGRAMME_OFFICER).user,
        approver=FoundationRoleFactory(role=FoundationRole.Role.APPROVER).user,
        finance=FoundationRoleFactory(role=FoundationRole.Role.FINANCE).user,
    )


def adopted_proposal(**fields) -> Proposal:
    """A proposal the government adopted without budget (step 6), as the fund lists them."""
    fields.setdefault("state", Proposal.State.RESPONDED)
    fields.setdefault("decision", Proposal.Decision.ADOPTED)
    fields.setdefault("decided_on", dt.date(2026, 8, 1))
    fields.setdefault("budget_provision", Proposal.BudgetProvision.NO)
    return ProposalFactory(**fields)


def funded_project(gifts=(30_000, 20_000), *, matched: bool = True, **fields) -> Project:
    """A project of an adopted proposal that raised ``gifts`` (matched 1:1 by a pool when
    ``matched``) and whose fundraising is closed: ready for a grant."""
    fields.setdefault("proposal", adopted_proposal())
    project = ProjectFactory(**fields)
    if matched:
        pledge_pool(1_000_000)
    for amount in gifts:
        give(project, amount)
    Project.objects.filter(pk=project.pk).update(state=Project.State.CLOSED)
    project.refresh_from_db()
    return project


def confirmed_bank_account(organization: Organization, *, holder_kana: str = "ﾄｸﾋ)ｻｶﾞｷﾖｳﾄﾞｳ"):
    """The CSO's account, entered by its admin and confirmed by finance, through the services.
    Bank 0179 (佐賀銀行) branch 500 (本店営業部), from the published code list."""
    from grants import services

    admin = MembershipFactory(organization=organization, role=Membership.Role.ADMIN).user
    finance = FoundationRoleFactory(role=FoundationRole.Role.FINANCE).user
    account = services.bank_account_submit(
        organization=organization,
        actor=admin,
        bank_code="0179",
        branch_code="500",
        account_type="1",
        account_number="1234567",
        holder_kana=holder_kana,
    )
    return services.bank_account_confirm(account=account, actor=finance)


def approved_grant(project: Project, staff, *, tranches=None, **terms):
    """The project's grant, proposed by ``staff.officer`` and approved by ``staff.approver``;
    one tranche due today unless ``tranches`` (a list of TrancheTerms) says otherwise."""
    from django.utils import timezone

    from grants import services

    amount = services.grant_terms(project).amount_yen
    today = timezone.localdate()
    grant = services.grant_propose(
        actor=staff.officer,
        project=project,
        ends_on=terms.pop("ends_on", today + dt.timedelta(days=90)),
        tranches=tranches or [services.TrancheTerms(amount, today)],
        **terms,
    )
    return services.grant_approve(grant=grant, actor=staff.approver)
