"""Who may see and do what: every role × every page, endpoint and action, as data.

Each row of ``CASES`` is one page, endpoint or action with the outcome expected for every role:
``OK`` (a page shown, or an action that took effect), ``LOGIN`` (sent to sign in), an HTTP
status that refuses (403 where the user may know the thing exists, 404 where they may not), or
``UNCHANGED`` (a form shown again with an error). For actions, ``changed`` says whether the
action took effect; every refusal must leave it undone.
Each cell runs in a fresh world, so one cell's write cannot leak into another.
"""

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.test import Client
from django.urls import reverse
from rest_framework.authtoken.models import Token

from accounts.models import FoundationRole, Invitation, Membership
from donations.models import Donation, Refund
from donations.receipts import issue_receipt
from fund.models import MatchPool, MatchPoolEvent, Project
from grants import services as grant_services
from grants.models import BankAccount, Grant, Report
from proposals import services
from proposals.models import Operation, Proposal
from tests.factories import (
    FoundationRoleFactory,
    GovernmentStaffFactory,
    MembershipFactory,
    MunicipalityFactory,
    OperationFactory,
    OrganizationFactory,
    PrefectureFactory,
    ProjectFactory,
    SiteAdminFactory,
    UserFactory,
    approved_grant,
    give,
    grant_staff,
    pledge_pool,
)

OK, LOGIN = "ok", "login"
UNCHANGED = "accepted but refused by validation"

ROLES = [
    "anonymous",
    "citizen_a",
    "citizen_b",
    "cso_a_member",
    "cso_a_admin",
    "cso_b_member",
    "cso_b_admin",
    "prefecture_staff",
    "municipality_staff",
    "programme_officer",
    "finance",
    "approver",
    "site_admin",
]
SIGNED_IN = [r for r in ROLES if r != "anonymous"]
CSO_A = ["cso_a_member", "cso_a_admin"]
CSO_B = ["cso_b_member", "cso_b_admin"]
FOUNDATION = ["programme_officer", "finance", "approver"]

PDF = b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


def outcomes(default: Any, **by_role: Any) -> dict[str, Any]:
    """Every role's expected outcome: ``default``, except the roles named (lists allowed)."""
    table = dict.fromkeys(ROLES, default)
    for role, outcome in by_role.items():
        for name in outcome[1] if isinstance(outcome, tuple) else [role]:
            table[name] = outcome[0] if isinstance(outcome, tuple) else outcome
    assert set(table) == set(ROLES)
    return table


def roles(outcome: Any, names: list[str]) -> tuple[Any, list[str]]:
    return outcome, names


@dataclass
class World:
    users: dict[str, Any]
    prefecture: Any
    city: Any
    org_a: Any
    org_b: Any
    operation: Any  # the prefecture's
    proposal_a: Any  # CSO A → the prefecture, with a letter
    proposal_b: Any  # CSO B → the city
    open_project: Any
    draft_project: Any
    unlisted: Any  # adopted, not budgeted, not yet a project
    gift: Any  # citizen A's gift to the open project (CSO A's), with its receipt
    receipt: Any
    pool: Any  # organisation B sponsors a match pool (so B's members are its sponsor)
    grant: Any  # CSO A's approved grant (closed project), its final report due
    proposed_grant: Any  # CSO A's grant awaiting approval (proposed by an officer not in ROLES)
    pending_account: Any  # CSO A's bank account entered by an officer not in ROLES


@pytest.fixture
def world(db, settings, tmp_path) -> World:
    settings.MEDIA_ROOT = tmp_path
    cache.clear()  # the card-testing limits count gifts per IP across cells
    prefecture = PrefectureFactory()
    city = MunicipalityFactory(code="412015", name="佐賀市")
    org_a = OrganizationFactory(name="NPO法人 A")
    org_b = OrganizationFactory(name="NPO法人 B")
    users = {
        "anonymous": None,
        "citizen_a": UserFactory(email="citizen.a@example.jp"),
        "citizen_b": UserFactory(email="citizen.b@example.jp"),
        "cso_a_member": MembershipFactory(organization=org_a).user,
        "cso_a_admin": MembershipFactory(organization=org_a, role=Membership.Role.ADMIN).user,
        "cso_b_member": MembershipFactory(organization=org_b).user,
        "cso_b_admin": MembershipFactory(organization=org_b, role=Membership.Role.ADMIN).user,
        "prefecture_staff": GovernmentStaffFactory(body=prefecture).user,
        "municipality_staff": GovernmentStaffFactory(body=city).user,
        "programme_officer": FoundationRoleFactory(role=FoundationRole.Role.PROGRAMME_OFFICER).user,
        "finance": FoundationRoleFactory(role=FoundationRole.Role.FINANCE).user,
        "approver": FoundationRoleFactory(role=FoundationRole.Role.APPROVER).user,
        "site_admin": SiteAdminFactory(),
    }
    operation = OperationFactory(body=prefecture, code="KY-001")
    today = dt.date(2026, 6, 1)
    proposal_a = services.proposal_create(
        reference="A-1",
        received_on=today,
        body=prefecture,
        organization=org_a,
        operation=operation,
        title="Aの提案",
        actor=None,
        source="test",
    )
    proposal_a.letter.save("A-1.pdf", ContentFile(PDF), save=True)
    proposal_b = services.proposal_create(
        reference="B-1",
        received_on=today,
        body=city,
        organization=org_b,
        title="Bの提案",
        actor=None,
        source="test",
    )

    def adopted_unbudgeted(reference):
        proposal = services.proposal_create(
            reference=reference,
            received_on=today,
            body=prefecture,
            organization=org_a,
            title=f"{reference}の提案",
            actor=None,
            source="test",
        )
        return services.proposal_transition(
            proposal=proposal,
            action="respond",
            actor=None,
            source="test",
            decision="adopted",
            decided_on=today,
            budget_provision="no",
        )

    open_project = ProjectFactory(proposal=adopted_unbudgeted("C-1"))
    draft_project = ProjectFactory(proposal=adopted_unbudgeted("C-2"), state=Project.State.DRAFT)
    pool = pledge_pool(100_000, sponsor=org_b, actor=users["site_admin"])
    citizen_a = users["citizen_a"]
    gift = give(open_project, 3000, donor=citizen_a, email=citizen_a.email, wants_receipt=True)
    receipt, _created = issue_receipt(gift)

    def closed_project_with_money(reference):
        project = ProjectFactory(proposal=adopted_unbudgeted(reference))
        give(project, 10_000)
        Project.objects.filter(pk=project.pk).update(state=Project.State.CLOSED)
        project.refresh_from_db()
        return project

    grant_staff_outside = grant_staff()  # proposes, so that every role's approval is judged
    grant = approved_grant(closed_project_with_money("C-4"), grant_staff_outside)
    proposed_grant = grant_services.grant_propose(
        actor=grant_staff_outside.officer,
        project=closed_project_with_money("C-5"),
        ends_on=dt.date(2027, 3, 31),
        tranches=[grant_services.TrancheTerms(18_500, dt.date(2027, 1, 15))],
    )
    pending_account = grant_services.bank_account_submit(
        organization=org_a,
        actor=grant_staff_outside.finance,
        bank_code="0179",
        branch_code="500",
        account_type="1",
        account_number="7654321",
        holder_kana="ｴｰ",
    )
    return World(
        users,
        prefecture,
        city,
        org_a,
        org_b,
        operation,
        proposal_a,
        proposal_b,
        open_project,
        draft_project,
        adopted_unbudgeted("C-3"),
        gift,
        receipt,
        pool,
        grant,
        proposed_grant,
        pending_account,
    )


@dataclass
class Case:
    name: str
    url: Callable[[World], str]
    expected: dict[str, Any]
    method: str = "get"
    data: Callable[[World], dict] | None = None
    changed: Callable[[World], bool] | None = None
    json: bool = False


def page(name: str, url: Callable[[World], str], expected: dict[str, Any]) -> Case:
    return Case(name, url, expected)


PUBLIC = outcomes(OK)
SIGNED_IN_ONLY = outcomes(OK, anonymous=LOGIN)

CASES: list[Case] = [
    # The public register: everyone.
    page("home", lambda w: reverse("proposals:home"), PUBLIC),
    page("catalogue", lambda w: reverse("proposals:operation-list"), PUBLIC),
    page(
        "operation",
        lambda w: reverse("proposals:operation-detail", args=[w.operation.pk]),
        PUBLIC,
    ),
    page("proposals", lambda w: reverse("proposals:proposal-list"), PUBLIC),
    page(
        "proposal (public record)",
        lambda w: reverse("proposals:proposal-detail", args=[w.proposal_a.pk]),
        PUBLIC,
    ),
    page("adoption statistics", lambda w: reverse("proposals:adoption-stats"), PUBLIC),
    page("adoption CSV", lambda w: reverse("proposals:adoption-stats-csv"), PUBLIC),
    page("privacy", lambda w: reverse("accounts:privacy"), PUBLIC),
    page("api docs", lambda w: reverse("api-docs"), PUBLIC),
    page("api operations", lambda w: "/api/v1/operations/", PUBLIC),
    page("api proposals", lambda w: "/api/v1/proposals/", PUBLIC),
    page("api proposal", lambda w: f"/api/v1/proposals/{w.proposal_a.pk}/", PUBLIC),
    page("api statistics", lambda w: "/api/v1/stats/adoption/", PUBLIC),
    # A person's own pages.
    page("my page", lambda w: reverse("accounts:dashboard"), SIGNED_IN_ONLY),
    page("my data", lambda w: reverse("accounts:data-export"), SIGNED_IN_ONLY),
    page("my organisations", lambda w: reverse("organizations:list"), SIGNED_IN_ONLY),
    # An organisation's page: its members, the foundation, the site admin.
    page(
        "organisation A",
        lambda w: reverse("organizations:detail", args=[w.org_a.pk]),
        outcomes(
            404,
            anonymous=LOGIN,
            a=roles(OK, CSO_A),
            f=roles(OK, FOUNDATION),
            site_admin=OK,
        ),
    ),
    # The CSO area: members of organisations only; another organisation's proposal is a 404.
    page(
        "CSO area",
        lambda w: reverse("cso:home"),
        outcomes(403, anonymous=LOGIN, a=roles(OK, CSO_A), b=roles(OK, CSO_B)),
    ),
    page(
        "CSO submission form",
        lambda w: reverse("cso:proposal-submit"),
        outcomes(403, anonymous=LOGIN, a=roles(OK, CSO_A), b=roles(OK, CSO_B)),
    ),
    page(
        "CSO A's private proposal",
        lambda w: reverse("cso:proposal-detail", args=[w.proposal_a.pk]),
        outcomes(403, anonymous=LOGIN, a=roles(OK, CSO_A), b=roles(404, CSO_B)),
    ),
    # The letter: whoever may see the private record; a 404 for everyone else.
    page(
        "proposal letter",
        lambda w: reverse("proposals:proposal-letter", args=[w.proposal_a.pk]),
        outcomes(
            404,
            a=roles(OK, CSO_A),
            prefecture_staff=OK,
            f=roles(OK, FOUNDATION),
            site_admin=OK,
        ),
    ),
    # The government officer's area: officers only; another body's records are 404s.
    page(
        "officer area",
        lambda w: reverse("officer:home"),
        outcomes(403, anonymous=LOGIN, prefecture_staff=OK, municipality_staff=OK),
    ),
    page(
        "officer: prefecture's proposal",
        lambda w: reverse("officer:proposal-detail", args=[w.proposal_a.pk]),
        outcomes(403, anonymous=LOGIN, prefecture_staff=OK, municipality_staff=404),
    ),
    page(
        "officer: city's proposal",
        lambda w: reverse("officer:proposal-detail", args=[w.proposal_b.pk]),
        outcomes(403, anonymous=LOGIN, prefecture_staff=404, municipality_staff=OK),
    ),
    page(
        "officer: edit the prefecture's operation",
        lambda w: reverse("officer:operation-edit", args=[w.operation.pk]),
        outcomes(403, anonymous=LOGIN, prefecture_staff=OK, municipality_staff=404),
    ),
    # A proposal's private history through the API.
    Case(
        "api proposal history",
        lambda w: f"/api/v1/proposals/{w.proposal_a.pk}/history/",
        outcomes(
            404,
            anonymous=403,
            a=roles(OK, CSO_A),
            prefecture_staff=OK,
            f=roles(OK, FOUNDATION),
            site_admin=OK,
        ),
    ),
    # Projects: public once open; drafts and the staff pages for the foundation.
    page("projects", lambda w: reverse("donations:project-list"), PUBLIC),
    page(
        "open project",
        lambda w: reverse("donations:project-detail", args=[w.open_project.pk]),
        PUBLIC,
    ),
    page(
        "draft project",
        lambda w: reverse("donations:project-detail", args=[w.draft_project.pk]),
        outcomes(404, programme_officer=OK, site_admin=OK),
    ),
    # Giving needs no account; a draft takes no gifts, from anyone.
    page(
        "give to a project", lambda w: reverse("donations:give", args=[w.open_project.pk]), PUBLIC
    ),
    page(
        "give to a draft project",
        lambda w: reverse("donations:give", args=[w.draft_project.pk]),
        outcomes(404),
    ),
    page("give to the general fund", lambda w: reverse("donations:give-general"), PUBLIC),
    # A donor's pages: their own gifts; someone else's donation is a 404 (foundation staff see
    # every donation).
    page("my gifts", lambda w: reverse("donations:my-gifts"), SIGNED_IN_ONLY),
    page(
        "citizen A's donation",
        lambda w: reverse("donations:donation", args=[w.gift.donation_id]),
        outcomes(404, citizen_a=OK, f=roles(OK, FOUNDATION), site_admin=OK),
    ),
    page(
        "citizen A's thank-you page",
        lambda w: reverse("donations:thanks", args=[w.gift.donation_id]),
        outcomes(404, citizen_a=OK, f=roles(OK, FOUNDATION), site_admin=OK),
    ),
    page(
        "citizen A's receipt",
        lambda w: reverse("donations:receipt-pdf", args=[w.receipt.pk]),
        outcomes(404, citizen_a=OK, f=roles(OK, FOUNDATION), site_admin=OK),
    ),
    # Money raised: the proposing organisation's members (and the foundation) see a project's;
    # the summary is a page of the CSO area.
    page(
        "CSO money raised",
        lambda w: reverse("donations:cso-money"),
        outcomes(403, anonymous=LOGIN, a=roles(OK, CSO_A), b=roles(OK, CSO_B)),
    ),
    page(
        "CSO A's project money",
        lambda w: reverse("donations:cso-project-money", args=[w.open_project.pk]),
        outcomes(
            404,
            anonymous=LOGIN,
            a=roles(OK, CSO_A),
            f=roles(OK, FOUNDATION),
            site_admin=OK,
        ),
    ),
    page(
        "foundation: gifts",
        lambda w: reverse("donations:staff-gifts"),
        outcomes(403, anonymous=LOGIN, f=roles(OK, FOUNDATION), site_admin=OK),
    ),
    page(
        "foundation: a gift",
        lambda w: reverse("donations:staff-gift", args=[w.gift.pk]),
        outcomes(403, anonymous=LOGIN, f=roles(OK, FOUNDATION), site_admin=OK),
    ),
    page(
        "foundation: projects",
        lambda w: reverse("fund:staff-projects"),
        outcomes(403, anonymous=LOGIN, f=roles(OK, FOUNDATION), site_admin=OK),
    ),
    page(
        "unfunded proposals",
        lambda w: reverse("fund:unfunded"),
        outcomes(
            403,
            anonymous=LOGIN,
            prefecture_staff=OK,
            municipality_staff=OK,
            f=roles(OK, FOUNDATION),
            site_admin=OK,
        ),
    ),
    Case(
        "api unfunded proposals",
        lambda w: "/api/v1/unfunded-proposals/",
        outcomes(
            403,
            prefecture_staff=OK,
            municipality_staff=OK,
            f=roles(OK, FOUNDATION),
            site_admin=OK,
        ),
    ),
    page("api projects", lambda w: "/api/v1/projects/", PUBLIC),
    page("api open project", lambda w: f"/api/v1/projects/{w.open_project.pk}/", PUBLIC),
    Case(
        "api draft project",
        lambda w: f"/api/v1/projects/{w.draft_project.pk}/",
        outcomes(404, programme_officer=OK, site_admin=OK),
    ),
    Case(
        "api citizen A's donation",
        lambda w: f"/api/v1/donations/{w.gift.donation_id}/",
        outcomes(404, citizen_a=OK, f=roles(OK, FOUNDATION), site_admin=OK),
    ),
    # The Django admin: the site admin only.
    page("admin", lambda w: reverse("admin:index"), outcomes(LOGIN, site_admin=OK)),
    # --- Actions ---------------------------------------------------------------------------
    Case(
        "officer records a consultation (page)",
        lambda w: reverse("officer:proposal-action", args=[w.proposal_a.pk, "consult"]),
        outcomes(403, anonymous=LOGIN, prefecture_staff=OK, municipality_staff=404),
        method="post",
        data=lambda w: {"consult-held_on": "2026-06-10", "consult-notes": "初回協議"},
        changed=lambda w: w.proposal_a.consultations.exists(),
    ),
    Case(
        "officer records a consultation (API)",
        lambda w: f"/api/v1/proposals/{w.proposal_a.pk}/transitions/",
        outcomes(
            404,
            anonymous=403,
            a=roles(403, CSO_A),
            f=roles(403, FOUNDATION),
            site_admin=OK,
            prefecture_staff=OK,
        ),
        method="post",
        data=lambda w: {"action": "consult", "held_on": "2026-06-10", "notes": "初回協議"},
        changed=lambda w: w.proposal_a.consultations.exists(),
        json=True,
    ),
    Case(
        "officer adds an operation (API)",
        lambda w: "/api/v1/operations/",
        outcomes(403, prefecture_staff=OK, site_admin=OK),
        method="post",
        data=lambda w: {
            "fiscal_year": 2026,
            "body": "410004",
            "code": "NEW-1",
            "title": "新しい事業",
            "budget_yen": 100000,
        },
        changed=lambda w: Operation.objects.filter(code="NEW-1").exists(),
        json=True,
    ),
    Case(
        "officer edits the prefecture's operation (API)",
        lambda w: f"/api/v1/operations/{w.operation.pk}/",
        outcomes(404, anonymous=403, prefecture_staff=OK, site_admin=OK),
        method="patch",
        data=lambda w: {"title": "改題"},
        changed=lambda w: Operation.objects.filter(title="改題").exists(),
        json=True,
    ),
    Case(
        "CSO withdraws its proposal",
        lambda w: reverse("cso:proposal-withdraw", args=[w.proposal_a.pk]),
        outcomes(403, anonymous=LOGIN, a=roles(OK, CSO_A), b=roles(404, CSO_B)),
        method="post",
        data=lambda w: {"confirm": "on", "note": ""},
        changed=lambda w: Proposal.objects.get(pk=w.proposal_a.pk).state == "withdrawn",
    ),
    Case(
        "CSO submits a proposal for organisation A",
        lambda w: reverse("cso:proposal-submit"),
        # Organisation B's members are shown the form again: A is not one of their choices.
        outcomes(403, anonymous=LOGIN, a=roles(OK, CSO_A), b=roles(UNCHANGED, CSO_B)),
        method="post",
        data=lambda w: {
            "organization": w.org_a.pk,
            "body": w.prefecture.pk,
            "target": "new",
            "operation_code": "",
            "title": "新しい協働提案",
            "summary": "地域の見守りを協働で行う。",
        },
        changed=lambda w: Proposal.objects.filter(title="新しい協働提案").exists(),
    ),
    Case(
        "invite to organisation A",
        lambda w: reverse("organizations:invite", args=[w.org_a.pk]),
        outcomes(
            404,
            anonymous=LOGIN,
            cso_a_admin=OK,
            site_admin=OK,
            cso_a_member=403,
            f=roles(403, FOUNDATION),
        ),
        method="post",
        data=lambda w: {"email": "new.person@example.jp", "role": "member"},
        changed=lambda w: Invitation.objects.filter(email="new.person@example.jp").exists(),
    ),
    Case(
        "remove a member of organisation A",
        lambda w: reverse(
            "organizations:member-remove",
            args=[w.org_a.pk, w.users["cso_a_member"].memberships.get().pk],
        ),
        outcomes(
            404,
            anonymous=LOGIN,
            cso_a_admin=OK,
            site_admin=OK,
            # Removing oneself is leaving, which any member may do.
            cso_a_member=OK,
            f=roles(403, FOUNDATION),
        ),
        method="post",
        data=lambda w: {},
        changed=lambda w: (
            not Membership.objects.filter(
                user=w.users["cso_a_member"], organization=w.org_a
            ).exists()
        ),
    ),
    Case(
        "open a draft project",
        lambda w: reverse("fund:project-transition", args=[w.draft_project.pk, "open"]),
        outcomes(403, anonymous=LOGIN, programme_officer=OK, site_admin=OK),
        method="post",
        data=lambda w: {"note": ""},
        changed=lambda w: Project.objects.get(pk=w.draft_project.pk).state == "open",
    ),
    Case(
        "list an adopted, unbudgeted proposal as a project",
        lambda w: reverse("fund:project-create", args=[w.unlisted.pk]),
        outcomes(403, anonymous=LOGIN, programme_officer=OK, site_admin=OK),
        method="post",
        data=lambda w: {
            "title": "見守りプロジェクト",
            "description": "地域の見守り",
            "goal_yen": "300000",
            "opens_at": "2026-12-01",
            "closes_at": "2027-02-28",
            "fee_rate_bp": "1500",
        },
        changed=lambda w: Project.objects.filter(proposal=w.unlisted).exists(),
    ),
    # Giving through the API: anyone, without an account; never to a project that is not public.
    Case(
        "give to a project (API)",
        lambda w: f"/api/v1/projects/{w.open_project.pk}/donations/",
        PUBLIC,
        method="post",
        data=lambda w: {"amount": 3000, "email": "matrix.donor@example.jp"},
        changed=lambda w: Donation.objects.filter(email="matrix.donor@example.jp").exists(),
        json=True,
    ),
    Case(
        "give to a draft project (API)",
        lambda w: f"/api/v1/projects/{w.draft_project.pk}/donations/",
        outcomes(404),
        method="post",
        data=lambda w: {"amount": 3000, "email": "matrix.donor@example.jp"},
        changed=lambda w: Donation.objects.filter(email="matrix.donor@example.jp").exists(),
        json=True,
    ),
    Case(
        "give to the general fund (API)",
        lambda w: "/api/v1/donations/",
        PUBLIC,
        method="post",
        data=lambda w: {"amount": 3000, "email": "matrix.donor@example.jp"},
        changed=lambda w: Donation.objects.filter(
            email="matrix.donor@example.jp", project=None
        ).exists(),
        json=True,
    ),
    # Refunds: finance staff (and the site admin); other staff see the gift but may not.
    Case(
        "refund part of a gift",
        lambda w: reverse("donations:staff-gift", args=[w.gift.pk]),
        outcomes(403, anonymous=LOGIN, finance=OK, site_admin=OK),
        method="post",
        data=lambda w: {"refund-amount": "1000", "refund-reason": "requested"},
        changed=lambda w: Refund.objects.filter(gift=w.gift, amount=1000).exists(),
    ),
    # Match pools: foundation staff see them, programme and finance staff run them; the
    # sponsor's members (organisation B) and foundation staff read the statement.
    page(
        "foundation: match pools",
        lambda w: reverse("fund:staff-pools"),
        outcomes(403, anonymous=LOGIN, f=roles(OK, FOUNDATION), site_admin=OK),
    ),
    page(
        "foundation: a match pool",
        lambda w: reverse("fund:staff-pool", args=[w.pool.pk]),
        outcomes(403, anonymous=LOGIN, f=roles(OK, FOUNDATION), site_admin=OK),
    ),
    page(
        "sponsor: pools list",
        lambda w: reverse("pools:list"),
        SIGNED_IN_ONLY,
    ),
    page(
        "sponsor: a pool's statement",
        lambda w: reverse("pools:statement", args=[w.pool.pk]),
        outcomes(
            404,
            anonymous=LOGIN,
            b=roles(OK, CSO_B),
            f=roles(OK, FOUNDATION),
            site_admin=OK,
        ),
    ),
    page(
        "sponsor: a pool's statement (CSV)",
        lambda w: reverse("pools:statement-csv", args=[w.pool.pk]),
        outcomes(
            404,
            anonymous=LOGIN,
            b=roles(OK, CSO_B),
            f=roles(OK, FOUNDATION),
            site_admin=OK,
        ),
    ),
    page("match pools (API)", lambda w: "/api/v1/match-pools/", PUBLIC),
    page(
        "a pool's statement (API)",
        lambda w: f"/api/v1/match-pools/{w.pool.pk}/statement/",
        outcomes(
            404,
            anonymous=403,
            b=roles(OK, CSO_B),
            f=roles(OK, FOUNDATION),
            site_admin=OK,
        ),
    ),
    Case(
        "pledge a match pool",
        lambda w: reverse("fund:pool-create"),
        outcomes(403, anonymous=LOGIN, programme_officer=OK, finance=OK, site_admin=OK),
        method="post",
        data=lambda w: {
            "sponsor": w.org_b.pk,
            "name": "新しいマッチング",
            "pledged": "50000",
            "ratio_gift": "1",
            "ratio_match": "1",
            "scope": "all",
            "starts_at": "2026-12-01",
            "ends_at": "2027-03-31",
            "priority": "0",
            "leftover": "sponsor",
        },
        changed=lambda w: MatchPool.objects.filter(name="新しいマッチング").exists(),
    ),
    Case(
        "record a sponsor's payment of a pool",
        lambda w: reverse("fund:pool-action", args=[w.pool.pk, "payment"]),
        outcomes(403, anonymous=LOGIN, programme_officer=OK, finance=OK, site_admin=OK),
        method="post",
        data=lambda w: {"payment-amount": "10000", "payment-reference": "振込-1"},
        changed=lambda w: w.pool.events.filter(action="payment_received").exists(),
    ),
    Case(
        "raise a pool's pledge",
        lambda w: reverse("fund:pool-action", args=[w.pool.pk, "top-up"]),
        outcomes(403, anonymous=LOGIN, programme_officer=OK, finance=OK, site_admin=OK),
        method="post",
        data=lambda w: {"top_up-amount": "10000"},
        changed=lambda w: w.pool.events.filter(action=MatchPoolEvent.Action.TOPPED_UP).exists(),
    ),
    Case(
        "end a match pool",
        lambda w: reverse("fund:pool-end", args=[w.pool.pk]),
        outcomes(403, anonymous=LOGIN, programme_officer=OK, finance=OK, site_admin=OK),
        method="post",
        data=lambda w: {},
        changed=lambda w: MatchPool.objects.get(pk=w.pool.pk).state == "ended",
    ),
    # Grants: foundation staff see the pipeline; the CSO's members see their grant, file its
    # reports and (admins) enter its bank account; an approver approves, finance confirms.
    page(
        "foundation: grants",
        lambda w: reverse("grants:staff-pipeline"),
        outcomes(403, anonymous=LOGIN, f=roles(OK, FOUNDATION), site_admin=OK),
    ),
    page(
        "foundation: a grant",
        lambda w: reverse("grants:staff-grant", args=[w.grant.pk]),
        outcomes(403, anonymous=LOGIN, f=roles(OK, FOUNDATION), site_admin=OK),
    ),
    page(
        "foundation: transfers",
        lambda w: reverse("grants:staff-transfers"),
        outcomes(403, anonymous=LOGIN, f=roles(OK, FOUNDATION), site_admin=OK),
    ),
    page(
        "foundation: bank accounts",
        lambda w: reverse("grants:staff-bank-accounts"),
        outcomes(403, anonymous=LOGIN, f=roles(OK, FOUNDATION), site_admin=OK),
    ),
    page(
        "CSO: grants",
        lambda w: reverse("grants:cso-grants"),
        outcomes(403, anonymous=LOGIN, a=roles(OK, CSO_A), b=roles(OK, CSO_B)),
    ),
    page(
        "CSO: a grant",
        lambda w: reverse("grants:cso-grant", args=[w.grant.pk]),
        outcomes(404, anonymous=LOGIN, a=roles(OK, CSO_A), f=roles(OK, FOUNDATION), site_admin=OK),
    ),
    page(
        "CSO: the final report",
        lambda w: reverse(
            "grants:cso-report", args=[w.grant.reports.get(kind=Report.Kind.FINAL).pk]
        ),
        outcomes(404, anonymous=LOGIN, a=roles(OK, CSO_A)),
    ),
    page(
        "CSO: bank account",
        lambda w: reverse("grants:cso-bank-account", args=[w.org_a.pk]),
        outcomes(404, anonymous=LOGIN, a=roles(OK, CSO_A)),
    ),
    page(
        "a project's public timeline",
        lambda w: reverse("grants:project-timeline", args=[w.grant.project_id]),
        PUBLIC,
    ),
    page(
        "grants (API)",
        lambda w: "/api/v1/grants/",
        outcomes(OK, anonymous=403),
    ),
    page(
        "a grant (API)",
        lambda w: f"/api/v1/grants/{w.grant.pk}/",
        outcomes(404, anonymous=403, a=roles(OK, CSO_A), f=roles(OK, FOUNDATION), site_admin=OK),
    ),
    Case(
        "approve a grant",
        lambda w: reverse("grants:grant-action", args=[w.proposed_grant.pk, "approve"]),
        outcomes(403, anonymous=LOGIN, approver=OK, site_admin=OK),
        method="post",
        data=lambda w: {},
        changed=lambda w: Grant.objects.get(pk=w.proposed_grant.pk).state == "approved",
    ),
    Case(
        "file the final report",
        lambda w: reverse(
            "grants:cso-report", args=[w.grant.reports.get(kind=Report.Kind.FINAL).pk]
        ),
        outcomes(404, anonymous=LOGIN, a=roles(OK, CSO_A)),
        method="post",
        data=lambda w: {"narrative": "実施した", "outcomes": "成果", "spent_yen": "8500"},
        changed=lambda w: w.grant.reports.filter(kind="final", state="submitted").exists(),
    ),
    Case(
        "confirm a CSO's bank account",
        lambda w: reverse("grants:bank-account-action", args=[w.pending_account.pk, "confirm"]),
        outcomes(403, anonymous=LOGIN, finance=OK, site_admin=OK),
        method="post",
        data=lambda w: {},
        changed=lambda w: BankAccount.objects.get(pk=w.pending_account.pk).state == "confirmed",
    ),
    Case(
        "create an API token",
        lambda w: reverse("accounts:token-create"),
        outcomes(OK, anonymous=LOGIN),
        method="post",
        data=lambda w: {},
        changed=lambda w: Token.objects.exists(),
    ),
]

CELLS = [pytest.param(case, role, id=f"{case.name} × {role}") for case in CASES for role in ROLES]


def _outcome(case: Case, world: World, response) -> Any:
    status = response.status_code
    location = response.get("Location", "")
    if status == 302 and ("/accounts/login/" in location or "/admin/login/" in location):
        return LOGIN
    if status >= 400:
        return status
    if case.changed is None:
        return OK if status == 200 else status
    # An action that was let through: did it take effect, or was the form shown again?
    return OK if case.changed(world) else UNCHANGED


@pytest.mark.parametrize(("case", "role"), CELLS)
def test_authorization_matrix(world, case: Case, role: str):
    client = Client()
    user = world.users[role]
    if user is not None:
        client.force_login(user)
    url = case.url(world)
    kwargs: dict[str, Any] = {}
    if case.data is not None:
        kwargs["data"] = case.data(world)
        if case.json:
            kwargs["content_type"] = "application/json"
    response = getattr(client, case.method)(url, **kwargs)

    expected = case.expected[role]
    assert _outcome(case, world, response) == expected, (
        f"{case.name} as {role}: {response.status_code} {response.get('Location', '')}"
    )
    if case.changed is not None and expected != OK:
        assert not case.changed(world), f"{case.name} as {role}: refused, yet it changed"
