import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError

from accounts import services
from accounts.models import AccountEvent, Invitation, Membership
from accounts.policy import may
from tests.factories import (
    MembershipFactory,
    MunicipalityFactory,
    OrganizationFactory,
    PrefectureFactory,
    SiteAdminFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def org_admin():
    return MembershipFactory(role=Membership.Role.ADMIN).user


def _org(user):
    return user.memberships.get().organization


def test_registering_an_organisation_makes_me_its_admin():
    user = UserFactory()
    organization = services.organization_register(name=" NPO法人  さが ", kind="cso", actor=user)
    assert organization.name == "NPO法人 さが"
    assert may(user, "organization.manage_members", organization)
    with pytest.raises(ValidationError):
        services.organization_register(name="NPO法人 さが", kind="cso", actor=UserFactory())


def test_invitation_round_trip(org_admin, django_capture_on_commit_callbacks):
    organization = _org(org_admin)
    with django_capture_on_commit_callbacks(execute=True):
        invitation = services.invitation_create(
            organization=organization,
            email="New.Member@Example.jp",
            role="member",
            actor=org_admin,
            accept_url_base="https://fund.example.jp/",
        )
    assert invitation.email == "new.member@example.jp"
    assert len(mail.outbox) == 1
    link = f"https://fund.example.jp/organizations/invitations/{invitation.token}/"
    assert link in mail.outbox[0].body

    stranger = UserFactory(email="someone.else@example.jp")
    with pytest.raises(ValidationError):
        services.invitation_accept(token=invitation.token, user=stranger)

    invitee = UserFactory(email="new.member@example.jp")
    membership = services.invitation_accept(token=invitation.token, user=invitee)
    assert membership.role == Membership.Role.MEMBER
    with pytest.raises(ValidationError):  # used once
        services.invitation_accept(token=invitation.token, user=invitee)
    assert list(
        AccountEvent.objects.filter(organization=organization).values_list("action", flat=True)
    ) == ["invite", "join"]


def test_a_second_invitation_replaces_the_open_one(org_admin):
    organization = _org(org_admin)
    first = services.invitation_create(
        organization=organization, email="a@example.jp", role="member", actor=org_admin
    )
    services.invitation_create(
        organization=organization, email="a@example.jp", role="admin", actor=org_admin
    )
    first.refresh_from_db()
    assert first.revoked_at is not None
    assert Invitation.objects.filter(revoked_at__isnull=True).count() == 1


def test_a_plain_member_may_not_invite_or_remove():
    member = MembershipFactory().user
    organization = _org(member)
    other = MembershipFactory(organization=organization)
    with pytest.raises(PermissionDenied):
        services.invitation_create(
            organization=organization, email="x@example.jp", role="member", actor=member
        )
    with pytest.raises(PermissionDenied):
        services.membership_remove(membership=other, actor=member)
    assert Membership.objects.filter(organization=organization).count() == 2


def test_the_last_admin_stays(org_admin):
    organization = _org(org_admin)
    membership = org_admin.memberships.get()
    with pytest.raises(ValidationError):
        services.membership_remove(membership=membership, actor=org_admin)
    with pytest.raises(ValidationError):
        services.membership_set_role(membership=membership, role="member", actor=org_admin)
    second = MembershipFactory(organization=organization)
    services.membership_set_role(membership=second, role="admin", actor=org_admin)
    services.membership_remove(membership=membership, actor=org_admin)  # now they may leave
    assert not Membership.objects.filter(user=org_admin).exists()


def test_only_a_site_admin_assigns_staff_roles():
    officer_to_be = UserFactory()
    with pytest.raises(PermissionDenied):
        services.government_staff_assign(
            user=officer_to_be, body=PrefectureFactory(), actor=UserFactory()
        )
    admin = SiteAdminFactory()
    services.government_staff_assign(user=officer_to_be, body=MunicipalityFactory(), actor=admin)
    services.foundation_role_set(user=officer_to_be, role="finance", granted=True, actor=admin)
    assert AccountEvent.objects.filter(subject=officer_to_be).count() == 2


def test_an_organisation_admin_of_one_organisation_cannot_manage_another(org_admin):
    other = OrganizationFactory()
    assert not may(org_admin, "organization.manage_members", other)
    assert not may(org_admin, "organization.view", other)
