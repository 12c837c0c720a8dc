"""The register's write API and a proposal's private history, for government officers.

Operations: POST /api/v1/operations/ and PATCH /api/v1/operations/{id}/. Proposals: POST
…/transitions/, POST …/budget-provision/, GET …/history/. The policy decides; another body's
object answers 404 and stays as it was; bad input is a 400 naming the field; the session needs
its CSRF token, a token does not.
"""

import datetime as dt
from typing import Any

import pytest
from django.conf import settings
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from proposals import services
from proposals.models import Contract, Department, Operation, Proposal
from tests.factories import (
    DepartmentFactory,
    FoundationRoleFactory,
    GovernmentStaffFactory,
    MembershipFactory,
    MunicipalityFactory,
    OperationFactory,
    OrganizationFactory,
    PrefectureFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

RECEIVED = dt.date(2026, 6, 1)
OPERATIONS = reverse("proposals_api:operation-list")


@pytest.fixture
def saga():
    return PrefectureFactory()


@pytest.fixture
def karatsu():
    return MunicipalityFactory(code="412023", name="唐津市")


@pytest.fixture
def officer(saga):
    return GovernmentStaffFactory(body=saga).user


@pytest.fixture
def town_officer(karatsu):
    return GovernmentStaffFactory(body=karatsu).user


@pytest.fixture
def proposal(saga):
    return services.proposal_create(
        reference="P-0001",
        received_on=RECEIVED,
        body=saga,
        organization=OrganizationFactory(),
        title="子育てサロンの協働運営",
        actor=None,
        source="test",
    )


def api(user=None, *, csrf: bool = False) -> APIClient:
    """A client of the API, in English so the tests can read the messages."""
    client = APIClient(enforce_csrf_checks=csrf)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    if user is not None:
        client.force_login(user)
    return client


def operation_url(operation: Operation) -> str:
    return reverse("proposals_api:operation-detail", args=[operation.pk])


def transitions_url(proposal: Proposal) -> str:
    return reverse("proposals_api:proposal-transitions", args=[proposal.pk])


def budget_url(proposal: Proposal) -> str:
    return reverse("proposals_api:proposal-budget-provision", args=[proposal.pk])


def history_url(proposal: Proposal) -> str:
    return reverse("proposals_api:proposal-history", args=[proposal.pk])


def step(client: APIClient, proposal: Proposal, action: str, **details: Any):
    return client.post(transitions_url(proposal), {"action": action, **details}, format="json")


def snapshot(proposal: Proposal) -> tuple:
    fresh = Proposal.objects.get(pk=proposal.pk)
    return (
        fresh.state,
        fresh.decision,
        fresh.budget_provision,
        fresh.events.count(),
        fresh.consultations.count(),
        Contract.objects.filter(proposal=fresh).exists(),
    )


def respond(proposal: Proposal, **details: Any) -> Proposal:
    return services.proposal_transition(
        proposal=proposal,
        action="respond",
        actor=None,
        source="test",
        decision=details.pop("decision", "adopted"),
        decided_on=details.pop("decided_on", dt.date(2026, 7, 1)),
        **details,
    )


# --- Operations ----------------------------------------------------------------------------------

NEW_OPERATION = {
    "body": "410004",
    "fiscal_year": 2026,
    "code": "KY-100",
    "title": "子育てサロン運営事業",
    "department_name": "県民協働課",
    "summary": "地域の子育てサロンを運営する。",
    "budget_yen": 1_500_000,
    "current_provider": "県直営",
    "collaboration_potential": "NPOと共同で運営できる。",
    "published_on": "2026-04-15",
}


def test_officer_creates_an_operation_of_their_body(officer, saga):
    response = api(officer).post(OPERATIONS, NEW_OPERATION, format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    operation = Operation.objects.get(pk=body["id"])
    assert operation.body == saga
    assert operation.department == Department.objects.get(body=saga, name="県民協働課")
    assert body["department"] == {"id": operation.department_id, "name": "県民協働課"}
    assert body["body"]["code"] == "410004"
    assert body["budget_yen"] == 1_500_000
    assert body["published_on"] == "2026-04-15"
    assert body["current_provider"] == "県直営"


def test_an_operation_of_another_body_cannot_be_created(officer, karatsu):
    response = api(officer).post(OPERATIONS, {**NEW_OPERATION, "body": "412023"}, format="json")

    assert response.status_code == 403
    assert not Operation.objects.exists()
    assert not Department.objects.exists()


@pytest.mark.parametrize("who", ["anonymous", "citizen", "cso_member", "foundation_staff"])
def test_only_officers_create_operations(who, saga):
    user = {
        "anonymous": lambda: None,
        "citizen": UserFactory,
        "cso_member": lambda: MembershipFactory().user,
        "foundation_staff": lambda: FoundationRoleFactory().user,
    }[who]()

    response = api(user).post(OPERATIONS, NEW_OPERATION, format="json")

    assert response.status_code in (401, 403)
    assert not Operation.objects.exists()


def test_officer_patches_their_operation(officer, saga):
    operation = OperationFactory(body=saga, code="KY-1", title="旧名称", budget_yen=100)
    department = DepartmentFactory(body=saga)

    response = api(officer).patch(
        operation_url(operation),
        {
            "title": "新名称",
            "department": department.pk,
            "collaboration_potential": "企画段階から協働できる。",
        },
        format="json",
    )

    assert response.status_code == 200, response.content
    operation.refresh_from_db()
    assert operation.title == "新名称"
    assert operation.department == department
    assert operation.collaboration_potential == "企画段階から協働できる。"
    assert operation.budget_yen == 100  # not sent, not changed
    assert response.json()["title"] == "新名称"


def test_patching_another_bodys_operation_is_404(officer, karatsu):
    operation = OperationFactory(body=karatsu, title="唐津の事業")

    response = api(officer).patch(operation_url(operation), {"title": "書き換え"}, format="json")

    assert response.status_code == 404
    operation.refresh_from_db()
    assert operation.title == "唐津の事業"


def test_put_and_delete_are_not_offered(officer, saga):
    operation = OperationFactory(body=saga)
    client = api(officer)
    assert client.put(operation_url(operation), {}, format="json").status_code == 405
    assert client.delete(operation_url(operation)).status_code == 405


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"budget_yen": 1500.5}, "budget_yen"),
        ({"budget_yen": -1}, "budget_yen"),
        ({"budget_yen": "1,500"}, "budget_yen"),
        ({"fiscal_year": 1900}, "fiscal_year"),
        ({"code": "DUP-1"}, "code"),
        ({"title": ""}, "title"),
        ({"department_name": "新しい課", "department": "OWN"}, "department_name"),
        ({"department": "OTHER"}, "department"),
    ],
)
def test_bad_operation_input_is_a_400_naming_the_field(officer, saga, karatsu, changes, field):
    OperationFactory(body=saga, fiscal_year=2026, code="DUP-1")
    operation = OperationFactory(body=saga, fiscal_year=2026, code="KY-1", title="元の名前")
    if changes.get("department") == "OWN":
        changes["department"] = DepartmentFactory(body=saga).pk
    elif changes.get("department") == "OTHER":
        changes["department"] = DepartmentFactory(body=karatsu).pk

    response = api(officer).patch(operation_url(operation), changes, format="json")

    assert response.status_code == 400, response.content
    assert field in response.json()
    assert all(isinstance(m, str) and m for m in response.json()[field])
    operation.refresh_from_db()
    assert (operation.code, operation.title, operation.budget_yen) == (
        "KY-1",
        "元の名前",
        1_200_000,
    )
    assert not Department.objects.filter(name="新しい課").exists()


def test_the_public_catalogue_is_still_read_without_signing_in(saga):
    OperationFactory(body=saga)
    assert APIClient().get(OPERATIONS).status_code == 200


# --- Proposals: every step through the API -------------------------------------------------------


def test_officer_records_every_step_and_the_history_names_them(officer, proposal):
    client = api(officer)
    steps = [
        ("consult", {"held_on": "2026-06-10", "notes": "初回協議"}, "consultation"),
        (
            "respond",
            {
                "decision": "adopted",
                "decided_on": "2026-07-01",
                "reason": "協働の効果が見込める。",
                "planned_implementation_year": 2027,
                "budget_provision": "no",
            },
            "responded",
        ),
        ("contract", {"kind": "subsidy", "signed_on": "2026-08-01", "amount_yen": 800000}, None),
        ("assess", {"assessed_on": "2027-04-30", "summary": "利用者が倍増した。"}, "assessed"),
    ]
    for action, details, state in steps:
        response = step(client, proposal, action, **details)
        assert response.status_code == 200, (action, response.content)
        if state:
            assert response.json()["state"] == state

    body = response.json()
    assert body["decision"] == "adopted"
    assert body["budget_provision"] == "no"
    assert body["contract"] == {"kind": "subsidy", "signed_on": "2026-08-01", "amount_yen": 800000}
    assert body["assessment"]["summary"] == "利用者が倍増した。"

    history = client.get(history_url(proposal))
    assert history.status_code == 200
    rows = history.json()
    assert [row["action"] for row in rows] == [
        "receive",
        "consult",
        "respond",
        "contract",
        "assess",
    ]
    assert rows[0]["actor"] is None and rows[0]["source"] == "test"
    for row in rows[1:]:
        assert row["actor"] == {"id": officer.pk, "name": officer.email}
        assert row["occurred_at"].endswith("+09:00")
    assert rows[1]["effective_on"] == "2026-06-10"
    assert rows[2]["changes"]["budget_provision"] == ["pending", "no"]
    assert (rows[2]["from_state"], rows[2]["to_state"]) == ("consultation", "responded")


def test_officer_sets_the_budget_provision(officer, proposal):
    respond(proposal)

    response = api(officer).post(budget_url(proposal), {"budget_provision": "no"}, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["budget_provision"] == "no"
    event = proposal.events.get(action="budget_provision")
    assert event.actor == officer
    assert event.changes == {"budget_provision": ["pending", "no"]}


def test_officer_records_a_withdrawal(officer, proposal):
    response = step(api(officer), proposal, "withdraw", withdrawn_on="2026-06-05", note="電話")

    assert response.status_code == 200
    assert response.json()["state"] == "withdrawn"
    event = proposal.events.get(action="withdraw")
    assert (event.actor, event.note) == (officer, "電話")


def test_the_proposer_may_withdraw_but_not_advance(proposal):
    member = MembershipFactory(organization=proposal.organization).user
    client = api(member)

    refused = step(client, proposal, "consult", held_on="2026-06-10")
    assert refused.status_code == 403  # they know the proposal: told why, not 404
    assert proposal.events.count() == 1

    assert step(client, proposal, "withdraw").status_code == 200
    assert proposal.events.get(action="withdraw").actor == member


# --- Another body's proposal ---------------------------------------------------------------------


def test_a_municipality_officer_cannot_move_the_prefectures_proposal(town_officer, proposal):
    client = api(town_officer)
    before = snapshot(proposal)

    for action, details in [
        ("consult", {"held_on": "2026-06-10"}),
        ("respond", {"decision": "adopted", "decided_on": "2026-07-01"}),
        ("withdraw", {}),
        ("nonsense", {}),
    ]:
        assert step(client, proposal, action, **details).status_code == 404, action
    assert client.post(budget_url(proposal), {"budget_provision": "no"}).status_code == 404
    assert client.get(history_url(proposal)).status_code == 404
    assert snapshot(proposal) == before
    # The public record stays public.
    detail = reverse("proposals_api:proposal-detail", args=[proposal.pk])
    assert client.get(detail).status_code == 200


def test_the_history_is_private(proposal, officer):
    url = history_url(proposal)
    assert APIClient().get(url).status_code in (401, 403)
    assert api(UserFactory()).get(url).status_code == 404
    assert api(MembershipFactory().user).get(url).status_code == 404
    for reader in (
        officer,
        MembershipFactory(organization=proposal.organization).user,
        FoundationRoleFactory().user,
    ):
        response = api(reader).get(url)
        assert response.status_code == 200
        assert response.json()[0]["action"] == "receive"


def test_an_unknown_proposal_is_404(officer):
    assert step(api(officer), Proposal(pk=999_999), "consult").status_code == 404
    assert api(officer).get("/api/v1/proposals/abc/history/").status_code == 404


# --- Bad input: a 400 naming the field, nothing written ------------------------------------------


@pytest.mark.parametrize(
    ("action", "details", "field", "message"),
    [
        (
            "contract",
            {"kind": "commission", "signed_on": "2026-08-01", "amount_yen": 1500.5},
            "amount_yen",
            "whole yen",
        ),
        (
            "contract",
            {"kind": "commission", "signed_on": "2026-08-01", "amount_yen": -100},
            "amount_yen",
            "greater than or equal to 1",
        ),
        (
            "contract",
            {"kind": "commission", "signed_on": "2026-08-01", "amount_yen": "1,000"},
            "amount_yen",
            "whole yen",
        ),
        ("contract", {"kind": "lease", "signed_on": "2026-08-01"}, "kind", "not a valid choice"),
        ("contract", {"signed_on": "2026-08-01"}, "kind", "required"),
        (
            "respond",
            {"decision": "adopted", "decided_on": "2026-05-31"},
            "decided_on",
            "before the proposal was received",
        ),
        (
            "respond",
            {"decision": "withdrawn", "decided_on": "2026-07-01"},
            "decision",
            "Choose adopted",
        ),
        ("consult", {"held_on": "2026-05-01"}, "held_on", "before the proposal was received"),
        ("consult", {"notes": "日付なし"}, "held_on", "required"),
        ("consult", {"held_on": "2026-06-10", "amount_yen": 5}, "amount_yen", "does not take"),
        ("approve", {}, "action", "not a valid choice"),
    ],
)
def test_bad_step_input_is_a_400(officer, proposal, action, details, field, message):
    if action == "contract":
        respond(proposal)
    before = snapshot(proposal)

    response = step(api(officer), proposal, action, **details)

    assert response.status_code == 400, response.content
    assert message in " ".join(response.json()[field])
    assert snapshot(proposal) == before


def test_a_step_the_table_does_not_allow_is_a_400(officer, proposal):
    before = snapshot(proposal)

    response = step(api(officer), proposal, "contract", kind="commission", signed_on="2026-08-01")

    assert response.status_code == 400
    assert "is not possible while the proposal is" in response.json()["action"][0]
    assert snapshot(proposal) == before


def test_a_bad_budget_provision_is_a_400(officer, proposal):
    client = api(officer)
    response = client.post(budget_url(proposal), {"budget_provision": "maybe"}, format="json")
    assert response.status_code == 400
    assert "budget_provision" in response.json()

    step(client, proposal, "withdraw")
    response = client.post(budget_url(proposal), {"budget_provision": "no"}, format="json")
    assert response.status_code == 400
    assert "withdrawn" in response.json()["non_field_errors"][0]


# --- Authentication: session with CSRF, tokens for scripts ---------------------------------------


def test_the_session_needs_its_csrf_token(officer, proposal, saga):
    client = api(officer, csrf=True)
    before = snapshot(proposal)

    response = step(client, proposal, "consult", held_on="2026-06-10")
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]
    assert snapshot(proposal) == before

    assert client.post(OPERATIONS, NEW_OPERATION, format="json").status_code == 403
    assert not Operation.objects.exists()


def test_the_session_with_its_csrf_token_works(officer, proposal):
    client = api(officer, csrf=True)
    client.get(reverse("officer:home"))  # a page sets the CSRF cookie
    token = client.cookies["csrftoken"].value

    response = client.post(
        transitions_url(proposal),
        {"action": "consult", "held_on": "2026-06-10"},
        format="json",
        HTTP_X_CSRFTOKEN=token,
    )

    assert response.status_code == 200, response.content


def test_a_script_uses_a_token(officer, proposal):
    token = Token.objects.create(user=officer)
    client = api(csrf=True)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")

    response = step(client, proposal, "consult", held_on="2026-06-10")
    assert response.status_code == 200, response.content
    assert proposal.events.get(action="consult").actor == officer

    created = client.post(OPERATIONS, NEW_OPERATION, format="json")
    assert created.status_code == 201
    assert client.get(history_url(proposal)).status_code == 200


def test_a_wrong_token_is_refused(proposal):
    client = api()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    assert step(client, proposal, "consult", held_on="2026-06-10").status_code in (401, 403)
    assert proposal.events.count() == 1


def test_an_officer_without_two_factor_is_refused_even_with_a_token(saga, proposal):
    officer = GovernmentStaffFactory(body=saga, mfa=False).user
    token = Token.objects.create(user=officer)
    client = api()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")

    response = step(client, proposal, "consult", held_on="2026-06-10")

    assert response.status_code == 403
    assert "two-factor" in response.json()["detail"]
    assert proposal.events.count() == 1
