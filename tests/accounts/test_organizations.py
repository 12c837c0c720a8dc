"""Organisation pages: registering, inviting by email, accepting, members and roles, refusals."""

import datetime as dt
import re

import pytest
from django.conf import settings
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import AccountEvent, Invitation, Membership, Organization
from tests.factories import (
    FoundationRoleFactory,
    MembershipFactory,
    OrganizationFactory,
    SiteAdminFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

ADMIN = Membership.Role.ADMIN
MEMBER = Membership.Role.MEMBER
INVITEE = "new.member@example.jp"


def signed_in(client: Client, user) -> Client:
    """The client, signed in as the user, reading the site in English (messages are checked)."""
    client.force_login(user)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    return client


def detail_url(organization: Organization) -> str:
    return reverse("organizations:detail", args=[organization.pk])


@pytest.fixture
def org():
    organization = OrganizationFactory(name="NPO法人 さが子育てネット")
    admin = MembershipFactory(organization=organization, role=ADMIN, user__email="admin@npo.jp")
    member = MembershipFactory(organization=organization, role=MEMBER, user__email="m@npo.jp")
    return {"organization": organization, "admin": admin, "member": member}


def invite(client: Client, organization: Organization, email: str = INVITEE, role: str = MEMBER):
    return client.post(
        reverse("organizations:invite", args=[organization.pk]), {"email": email, "role": role}
    )


def accept_url_from(message) -> str:
    match = re.search(r"http://testserver(/organizations/invitations/[\w-]+/)", message.body)
    assert match, message.body
    return match.group(1)


# Registering ------------------------------------------------------------------------------------


def test_my_organisations_needs_sign_in(client):
    response = client.get(reverse("organizations:list"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


def test_register_an_organisation_makes_me_its_admin(client):
    user = UserFactory()
    response = signed_in(client, user).post(
        reverse("organizations:list"), {"name": "  一般社団法人  佐賀みらい ", "kind": "company"}
    )
    organization = Organization.objects.get(name="一般社団法人 佐賀みらい")
    assert response.status_code == 302
    assert response["Location"] == detail_url(organization)
    assert organization.kind == Organization.Kind.COMPANY
    assert Membership.objects.get(organization=organization).user == user
    assert Membership.objects.get(organization=organization).role == ADMIN
    assert AccountEvent.objects.filter(
        action="organization_register", actor=user, organization=organization
    ).exists()

    page = client.get(reverse("organizations:list"))
    assert "一般社団法人 佐賀みらい" in page.content.decode()


def test_a_taken_name_is_a_form_error(client, org):
    response = signed_in(client, UserFactory()).post(
        reverse("organizations:list"), {"name": "NPO法人 さが子育てネット", "kind": "cso"}
    )
    assert response.status_code == 200
    assert "is already registered: ask its admin to invite you" in response.content.decode()
    assert Organization.objects.count() == 1


def test_a_bad_kind_is_a_form_error(client):
    response = signed_in(client, UserFactory()).post(
        reverse("organizations:list"), {"name": "団体", "kind": "cult"}
    )
    assert response.status_code == 200
    assert response.context["form"].errors["kind"]
    assert not Organization.objects.exists()


# Inviting and accepting -------------------------------------------------------------------------


def test_invite_mails_a_link_that_the_invitee_accepts(
    client, org, django_capture_on_commit_callbacks
):
    organization = org["organization"]
    signed_in(client, org["admin"].user)
    with django_capture_on_commit_callbacks(execute=True):
        response = invite(client, organization, email=" New.Member@Example.jp ", role=ADMIN)
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == [INVITEE]
    assert organization.name in message.subject
    url = accept_url_from(message)
    invitation = Invitation.objects.get(organization=organization)
    assert url == reverse("organizations:invitation-accept", args=[invitation.token])

    # The admin sees it pending.
    assert INVITEE in client.get(detail_url(organization)).content.decode()

    invitee = UserFactory(email=INVITEE)
    invitee_client = signed_in(Client(), invitee)
    page = invitee_client.get(url)
    assert page.status_code == 200
    assert organization.name in page.content.decode()
    assert not Membership.objects.filter(user=invitee).exists()  # GET changes nothing

    response = invitee_client.post(url)
    assert response.status_code == 302
    assert response["Location"] == detail_url(organization)
    membership = Membership.objects.get(user=invitee, organization=organization)
    assert membership.role == ADMIN
    invitation.refresh_from_db()
    assert invitation.accepted_by == invitee
    assert AccountEvent.objects.filter(action="join", actor=invitee).exists()
    assert "you are now a member" in invitee_client.get(detail_url(organization)).content.decode()


def test_an_anonymous_visitor_is_sent_to_sign_in_and_back(client, org):
    invitation = Invitation.objects.create(
        organization=org["organization"],
        email=INVITEE,
        invited_by=org["admin"].user,
        expires_at=timezone.now() + dt.timedelta(days=1),
    )
    url = reverse("organizations:invitation-accept", args=[invitation.token])
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))
    assert "next=" in response["Location"]
    assert invitation.token in response["Location"]


@pytest.fixture
def invitation(org):
    return Invitation.objects.create(
        organization=org["organization"],
        email=INVITEE,
        role=MEMBER,
        invited_by=org["admin"].user,
        expires_at=timezone.now() + dt.timedelta(days=14),
    )


def accept(client: Client, invitation: Invitation):
    return client.post(reverse("organizations:invitation-accept", args=[invitation.token]))


def test_another_email_cannot_accept(client, invitation):
    other = UserFactory(email="someone.else@example.jp")
    signed_in(client, other)
    page = client.get(reverse("organizations:invitation-accept", args=[invitation.token]))
    assert "sent to another email address" in page.content.decode()
    assert '<form method="post" class="form-actions">' not in page.content.decode()
    response = accept(client, invitation)
    assert response.status_code == 200
    assert "sent to another email address" in response.content.decode()
    assert not Membership.objects.filter(user=other).exists()
    invitation.refresh_from_db()
    assert invitation.accepted_at is None


def test_a_used_link_is_refused(client, invitation):
    invitee = UserFactory(email=INVITEE)
    assert accept(signed_in(client, invitee), invitation).status_code == 302
    # The same link a second time.
    response = accept(client, invitation)
    assert response.status_code == 200
    assert "already been used" in response.content.decode()
    assert Membership.objects.filter(user=invitee).count() == 1


def test_an_expired_link_is_refused(client, invitation):
    Invitation.objects.filter(pk=invitation.pk).update(
        expires_at=timezone.now() - dt.timedelta(minutes=1)
    )
    invitee = UserFactory(email=INVITEE)
    page = signed_in(client, invitee).get(
        reverse("organizations:invitation-accept", args=[invitation.token])
    )
    assert "has expired" in page.content.decode()
    response = accept(client, invitation)
    assert response.status_code == 200
    assert not Membership.objects.filter(user=invitee).exists()


def test_a_revoked_link_is_refused(client, org, invitation):
    admin_client = signed_in(Client(), org["admin"].user)
    response = admin_client.post(
        reverse("organizations:invitation-revoke", args=[org["organization"].pk, invitation.pk])
    )
    assert response.status_code == 302
    invitation.refresh_from_db()
    assert invitation.revoked_at is not None
    assert AccountEvent.objects.filter(action="invitation_revoke").exists()

    invitee = UserFactory(email=INVITEE)
    response = accept(signed_in(client, invitee), invitation)
    assert response.status_code == 200
    assert "was withdrawn" in response.content.decode()
    assert not Membership.objects.filter(user=invitee).exists()


def test_an_unknown_token_is_a_clear_404(client):
    signed_in(client, UserFactory())
    response = client.get(reverse("organizations:invitation-accept", args=["not-a-token"]))
    assert response.status_code == 404
    assert "This invitation link is not valid" in response.content.decode()
    assert (
        client.post(reverse("organizations:invitation-accept", args=["not-a-token"])).status_code
        == 404
    )


def test_inviting_a_member_again_is_a_form_error(client, org):
    response = invite(signed_in(client, org["admin"].user), org["organization"], email="m@npo.jp")
    assert response.status_code == 200
    assert "m@npo.jp is already a member" in response.content.decode()
    assert not Invitation.objects.exists()
    assert len(mail.outbox) == 0


def test_a_bad_email_is_a_form_error(client, org):
    response = invite(signed_in(client, org["admin"].user), org["organization"], email="nope")
    assert response.status_code == 200
    assert response.context["invite_form"].errors["email"]
    assert not Invitation.objects.exists()


# Members and roles ------------------------------------------------------------------------------


def test_admin_changes_a_role_and_removes_a_member(client, org):
    organization, member = org["organization"], org["member"]
    signed_in(client, org["admin"].user)
    response = client.post(
        reverse("organizations:member-role", args=[organization.pk, member.pk]), {"role": ADMIN}
    )
    assert response.status_code == 302
    member.refresh_from_db()
    assert member.role == ADMIN
    assert AccountEvent.objects.filter(action="role", subject=member.user).exists()

    response = client.post(
        reverse("organizations:member-remove", args=[organization.pk, member.pk])
    )
    assert response.status_code == 302
    assert not Membership.objects.filter(pk=member.pk).exists()
    assert AccountEvent.objects.filter(action="remove", subject=member.user).exists()
    page = client.get(detail_url(organization)).content.decode()
    assert "m@npo.jp is no longer a member" in page


def test_a_member_may_leave(client, org):
    member = org["member"]
    response = signed_in(client, member.user).post(
        reverse("organizations:leave", args=[org["organization"].pk])
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("organizations:list")
    assert not Membership.objects.filter(pk=member.pk).exists()
    assert AccountEvent.objects.filter(action="leave", actor=member.user).exists()
    # Gone from the organisation: its page is no longer there for them.
    assert client.get(detail_url(org["organization"])).status_code == 404


def test_the_last_admin_cannot_leave_or_be_demoted(client, org):
    organization, admin = org["organization"], org["admin"]
    signed_in(client, admin.user)
    response = client.post(reverse("organizations:leave", args=[organization.pk]), follow=True)
    assert "An organisation keeps at least one admin." in response.content.decode()
    response = client.post(
        reverse("organizations:member-role", args=[organization.pk, admin.pk]),
        {"role": MEMBER},
        follow=True,
    )
    assert "An organisation keeps at least one admin." in response.content.decode()
    response = client.post(
        reverse("organizations:member-remove", args=[organization.pk, admin.pk]), follow=True
    )
    assert response.status_code == 200
    admin.refresh_from_db()
    assert admin.role == ADMIN
    assert not AccountEvent.objects.filter(action__in=["leave", "role", "remove"]).exists()


def test_a_member_who_is_not_admin_cannot_manage(client, org, invitation):
    organization, member, admin = org["organization"], org["member"], org["admin"]
    signed_in(client, member.user)
    page = client.get(detail_url(organization))
    assert page.status_code == 200
    content = page.content.decode()
    assert "admin@npo.jp" in content  # members see each other
    assert INVITEE not in content  # but not the pending invitations
    assert reverse("organizations:invite", args=[organization.pk]) not in content

    assert invite(client, organization, email="friend@example.jp").status_code == 403
    remove = reverse("organizations:member-remove", args=[organization.pk, admin.pk])
    assert client.post(remove).status_code == 403
    role = reverse("organizations:member-role", args=[organization.pk, member.pk])
    assert client.post(role, {"role": ADMIN}).status_code == 403
    revoke = reverse("organizations:invitation-revoke", args=[organization.pk, invitation.pk])
    assert client.post(revoke).status_code == 403

    assert Invitation.objects.filter(email="friend@example.jp").count() == 0
    assert Membership.objects.filter(organization=organization).count() == 2
    member.refresh_from_db()
    invitation.refresh_from_db()
    assert member.role == MEMBER
    assert invitation.revoked_at is None
    assert len(mail.outbox) == 0


def test_a_non_member_gets_404(client, org, invitation):
    organization = org["organization"]
    signed_in(client, MembershipFactory(role=ADMIN).user)  # admin of another organisation
    assert client.get(detail_url(organization)).status_code == 404
    assert invite(client, organization).status_code == 404
    remove = reverse("organizations:member-remove", args=[organization.pk, org["member"].pk])
    assert client.post(remove).status_code == 404
    revoke = reverse("organizations:invitation-revoke", args=[organization.pk, invitation.pk])
    assert client.post(revoke).status_code == 404
    assert client.post(reverse("organizations:leave", args=[organization.pk])).status_code == 404
    assert client.get(detail_url(Organization(pk=999_999))).status_code == 404
    assert Membership.objects.filter(organization=organization).count() == 2


def test_a_membership_of_another_organisation_is_404(client, org):
    other = MembershipFactory()
    signed_in(client, org["admin"].user)
    url = reverse("organizations:member-remove", args=[org["organization"].pk, other.pk])
    assert client.post(url).status_code == 404
    assert Membership.objects.filter(pk=other.pk).exists()


def test_foundation_staff_view_but_do_not_see_members(client, org):
    staff = FoundationRoleFactory().user
    page = signed_in(client, staff).get(detail_url(org["organization"]))
    assert page.status_code == 200
    assert "admin@npo.jp" not in page.content.decode()
    assert invite(client, org["organization"]).status_code == 403


def test_a_site_admin_may_manage(client, org):
    signed_in(client, SiteAdminFactory())
    page = client.get(detail_url(org["organization"]))
    assert page.status_code == 200
    assert "admin@npo.jp" in page.content.decode()
    assert invite(client, org["organization"]).status_code == 302
    assert Invitation.objects.filter(email=INVITEE).exists()


def test_missing_csrf_token_is_refused(org):
    client = Client(enforce_csrf_checks=True)
    signed_in(client, org["admin"].user)
    organization = org["organization"]
    assert invite(client, organization).status_code == 403
    role = reverse("organizations:member-role", args=[organization.pk, org["member"].pk])
    assert client.post(role, {"role": ADMIN}).status_code == 403
    register = client.post(reverse("organizations:list"), {"name": "新団体", "kind": "cso"})
    assert register.status_code == 403
    assert not Invitation.objects.exists()
    assert Organization.objects.count() == 1
    org["member"].refresh_from_db()
    assert org["member"].role == MEMBER
