"""The register's read-only API: operations, proposals and adoption statistics under /api/v1/."""

import datetime as dt

import pytest
from django.core.management import call_command
from django.urls import reverse

from accounts.models import GovernmentBody, Organization, body_code_validator
from proposals.models import Proposal
from proposals.selectors import adoption_statistics, operation_catalogue
from proposals.services import proposal_transition
from tests.factories import (
    DepartmentFactory,
    MunicipalityFactory,
    OperationFactory,
    OrganizationFactory,
    ParticipationFactory,
    PrefectureFactory,
    ProposalFactory,
    SiteAdminFactory,
)

pytestmark = pytest.mark.django_db

OPERATIONS = reverse("proposals_api:operation-list")
PROPOSALS = reverse("proposals_api:proposal-list")
STATS = reverse("proposals_api:adoption-statistics")


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


def step(proposal: Proposal, action: str, **details) -> Proposal:
    return proposal_transition(
        proposal=proposal, action=action, actor=None, source="test", **details
    )


@pytest.fixture
def saga():
    return PrefectureFactory()


@pytest.fixture
def karatsu():
    return MunicipalityFactory(code="412023", name="唐津市")


# --- /api/v1/operations/ -------------------------------------------------------------------------


def test_operation_list_gives_every_public_field(client, saga):
    department = DepartmentFactory(body=saga, name="県民協働課")
    operation = OperationFactory(
        fiscal_year=2025,
        body=saga,
        department=department,
        code="K-001",
        title="子育て支援事業",
        summary="地域の子育て世帯を支援する。",
        budget_yen=1_200_000,
        current_provider="県直営",
        collaboration_potential="相談窓口の運営",
        published_on=dt.date(2025, 5, 1),
    )

    response = client.get(OPERATIONS)

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 1
    assert body["results"] == [
        {
            "id": operation.pk,
            "fiscal_year": 2025,
            "era_label": "令和7年度",
            "body": {"code": "410004", "name": "佐賀県", "kind": "prefecture"},
            "department": {"id": department.pk, "name": "県民協働課"},
            "code": "K-001",
            "title": "子育て支援事業",
            "summary": "地域の子育て世帯を支援する。",
            "budget_yen": 1_200_000,
            "current_provider": "県直営",
            "collaboration_potential": "相談窓口の運営",
            "published_on": "2025-05-01",
        }
    ]


def test_operation_without_department_and_in_the_first_year_of_reiwa(client, saga):
    operation = OperationFactory(fiscal_year=2019, body=saga, department=None, budget_yen=None)

    row = client.get(reverse("proposals_api:operation-detail", args=[operation.pk])).json()

    assert row["department"] is None
    assert row["era_label"] == "令和元年度"
    assert row["budget_yen"] is None


def test_operation_detail_and_unknown_id(client):
    operation = OperationFactory()
    detail = reverse("proposals_api:operation-detail", args=[operation.pk])

    assert client.get(detail).json()["id"] == operation.pk
    assert client.get(reverse("proposals_api:operation-detail", args=[999_999])).status_code == 404
    assert client.get("/api/v1/operations/abc/").status_code == 404


def test_operation_filters(client, saga, karatsu):
    department = DepartmentFactory(body=saga)
    in_2025 = OperationFactory(fiscal_year=2025, body=saga, department=department)
    in_2026 = OperationFactory(fiscal_year=2026, body=saga)
    in_karatsu = OperationFactory(fiscal_year=2026, body=karatsu)

    assert ids(client.get(OPERATIONS, {"fiscal_year": 2025})) == [in_2025.pk]
    assert ids(client.get(OPERATIONS, {"body": "412023"})) == [in_karatsu.pk]
    assert ids(client.get(OPERATIONS, {"department": department.pk})) == [in_2025.pk]
    assert ids(client.get(OPERATIONS, {"fiscal_year": 2026, "body": "410004"})) == [in_2026.pk]


def test_operation_search_in_japanese(client, saga):
    childcare = OperationFactory(body=saga, title="子育て支援事業", summary="親子の交流の場")
    elderly = OperationFactory(
        body=saga,
        title="高齢者見守り事業",
        summary="一人暮らしの高齢者を訪問する。",
        department=DepartmentFactory(body=saga, name="長寿社会課"),
    )
    OperationFactory(body=saga, title="道路維持管理", summary="県道の補修")

    assert ids(client.get(OPERATIONS, {"search": "子育て"})) == [childcare.pk]
    # Every keyword must match; an ideographic space (U+3000) separates keywords too.
    assert ids(client.get(OPERATIONS, {"search": "高齢者\u3000訪問"})) == [elderly.pk]
    assert ids(client.get(OPERATIONS, {"search": "高齢者 子育て"})) == []
    assert ids(client.get(OPERATIONS, {"search": "長寿社会"})) == [elderly.pk]


def test_operation_search_is_the_catalogue_selectors(client, saga):
    for title in ["子育て支援", "子育てひろば運営", "環境学習", "ＮＰＯ協働推進"]:
        OperationFactory(body=saga, title=title)

    for search in ["子育て", "ＮＰＯ", "op-", "学習 環境", "該当なし"]:
        expected = list(operation_catalogue(search=search).values_list("pk", flat=True))
        assert ids(client.get(OPERATIONS, {"search": search})) == expected


def test_operations_are_paginated_by_fifty(client, saga):
    OperationFactory.create_batch(51, body=saga)

    first = client.get(OPERATIONS).json()
    second = client.get(OPERATIONS, {"page": 2}).json()

    assert first["count"] == 51
    assert len(first["results"]) == 50
    assert first["next"]
    assert len(second["results"]) == 1


# --- /api/v1/proposals/ --------------------------------------------------------------------------


PUBLIC_PROPOSAL_FIELDS = {
    "id",
    "reference",
    "received_on",
    "fiscal_year",
    "era_label",
    "body",
    "operation",
    "organization",
    "title",
    "summary",
    "state",
    "decision",
    "decided_on",
    "decision_reason",
    "planned_implementation_year",
    "budget_provision",
    "contract",
    "assessment",
}


def test_proposal_gives_public_fields_only(client, saga):
    operation = OperationFactory(body=saga, fiscal_year=2025, code="K-9", title="環境学習事業")
    proposal = ProposalFactory(
        reference="R7-001",
        received_on=dt.date(2025, 6, 2),
        body=saga,
        operation=operation,
        organization=OrganizationFactory(name="NPO法人 みどりの会"),
        title="環境学習の協働実施",
        summary="小学校での出前講座",
    )
    officer = SiteAdminFactory(email="officer.secret@pref.saga.example.jp")
    proposal_transition(
        proposal=proposal,
        action="consult",
        actor=officer,
        held_on=dt.date(2025, 6, 20),
        notes="内部メモ：予算担当と調整中",
    )
    step(
        proposal,
        "respond",
        decision="adopted",
        decided_on=dt.date(2025, 7, 1),
        reason="県の方針に合致する。",
        planned_implementation_year=2026,
        budget_provision="no",
    )
    step(proposal, "contract", kind="commission", signed_on=dt.date(2026, 4, 1), amount_yen=500_000)
    step(proposal, "assess", assessed_on=dt.date(2027, 3, 15), summary="受講者 320 人")

    response = client.get(reverse("proposals_api:proposal-detail", args=[proposal.pk]))

    assert response.status_code == 200
    row = response.json()
    assert set(row) == PUBLIC_PROPOSAL_FIELDS
    assert row == {
        "id": proposal.pk,
        "reference": "R7-001",
        "received_on": "2025-06-02",
        "fiscal_year": 2025,
        "era_label": "令和7年度",
        "body": {"code": "410004", "name": "佐賀県", "kind": "prefecture"},
        "operation": {"id": operation.pk, "code": "K-9", "title": "環境学習事業"},
        "organization": {"name": "NPO法人 みどりの会", "kind": "cso"},
        "title": "環境学習の協働実施",
        "summary": "小学校での出前講座",
        "state": "assessed",
        "decision": "adopted",
        "decided_on": "2025-07-01",
        "decision_reason": "県の方針に合致する。",
        "planned_implementation_year": 2026,
        "budget_provision": "no",
        "contract": {"kind": "commission", "signed_on": "2026-04-01", "amount_yen": 500_000},
        "assessment": {"assessed_on": "2027-03-15", "summary": "受講者 320 人"},
    }
    for page in (response, client.get(PROPOSALS)):
        text = page.content.decode()
        assert "内部メモ" not in text
        assert "officer.secret" not in text


def test_new_project_proposal_has_no_operation_contract_or_assessment(client, saga):
    proposal = ProposalFactory(body=saga, received_on=dt.date(2026, 3, 31))

    row = client.get(PROPOSALS).json()["results"][0]

    assert row["id"] == proposal.pk
    assert row["fiscal_year"] == 2025  # received on March 31: still FY2025
    assert row["operation"] is None
    assert row["contract"] is None
    assert row["assessment"] is None


def test_proposal_filters(client, saga, karatsu):
    adopted = ProposalFactory(body=saga, received_on=dt.date(2025, 5, 1))
    step(adopted, "respond", decision="adopted", budget_provision="yes")
    declined = ProposalFactory(body=saga, received_on=dt.date(2026, 5, 1))
    step(declined, "respond", decision="not_adopted")
    from_company = ProposalFactory(
        body=karatsu,
        received_on=dt.date(2026, 5, 2),
        organization=OrganizationFactory(kind=Organization.Kind.COMPANY),
    )

    assert ids(client.get(PROPOSALS, {"fiscal_year": 2025})) == [adopted.pk]
    assert ids(client.get(PROPOSALS, {"body": "412023"})) == [from_company.pk]
    assert ids(client.get(PROPOSALS, {"decision": "not_adopted"})) == [declined.pk]
    assert ids(client.get(PROPOSALS, {"state": "received"})) == [from_company.pk]
    assert ids(client.get(PROPOSALS, {"budget_provision": "yes"})) == [adopted.pk]
    assert ids(client.get(PROPOSALS, {"organization_kind": "company"})) == [from_company.pk]
    assert ids(client.get(PROPOSALS, {"fiscal_year": 2026, "body": "410004"})) == [declined.pk]


# --- /api/v1/stats/adoption/ ---------------------------------------------------------------------


@pytest.fixture
def register_with_proposals(saga, karatsu):
    ParticipationFactory(fiscal_year=2025, body=karatsu)
    ParticipationFactory(fiscal_year=2026, body=karatsu)
    ParticipationFactory(fiscal_year=2026, body=MunicipalityFactory())
    company = OrganizationFactory(kind=Organization.Kind.COMPANY)
    for body, received_on, decision, organization in [
        (saga, dt.date(2025, 6, 1), "adopted", None),
        (saga, dt.date(2025, 7, 1), "not_adopted", None),
        (saga, dt.date(2026, 6, 1), "partially_adopted", company),
        (karatsu, dt.date(2025, 8, 1), "noted", None),
        (karatsu, dt.date(2026, 8, 1), "adopted", None),
    ]:
        proposal = ProposalFactory(
            body=body, received_on=received_on, organization=organization or OrganizationFactory()
        )
        step(proposal, "respond", decision=decision)
    step(ProposalFactory(body=saga, received_on=dt.date(2025, 9, 1)), "withdraw")


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"level": "prefecture"},
        {"level": "municipality"},
        {"proposer_kind": "all"},
        {"level": "prefecture", "proposer_kind": "company"},
    ],
)
def test_adoption_statistics_are_the_selectors(client, register_with_proposals, params):
    response = client.get(STATS, params)

    assert response.status_code == 200
    assert response.json() == [row.as_dict() for row in adoption_statistics(**params)]
    assert response.json()


def test_adoption_statistics_row_shape(client, register_with_proposals):
    rows = client.get(STATS, {"level": "prefecture"}).json()

    assert rows[0] == {
        "fiscal_year": 2025,
        "level": "prefecture",
        "participating_municipalities": None,
        "proposing_organizations": 2,
        "proposals": 2,
        "adopted": 1,
        "adoption_rate_percent": 50,
    }


# --- Bad parameters ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "params", "key"),
    [
        (OPERATIONS, {"fiscal_year": "abc"}, "fiscal_year"),
        (OPERATIONS, {"fiscal_year": "2025.5"}, "fiscal_year"),
        (OPERATIONS, {"fiscal_year": "99999"}, "fiscal_year"),
        (OPERATIONS, {"body": "12"}, "body"),
        (OPERATIONS, {"body": "999999"}, "body"),
        (OPERATIONS, {"department": "abc"}, "department"),
        (OPERATIONS, {"department": "999999"}, "department"),
        (OPERATIONS, {"search": "子育て " * 40}, "search"),
        (OPERATIONS, {"search": "子育て\x00"}, "search"),
        (OPERATIONS, {"page": "x"}, "page"),
        (OPERATIONS, {"page": "0"}, "page"),
        (PROPOSALS, {"fiscal_year": "abc"}, "fiscal_year"),
        (PROPOSALS, {"body": "12"}, "body"),
        (PROPOSALS, {"body": "999999"}, "body"),
        (PROPOSALS, {"decision": "maybe"}, "decision"),
        (PROPOSALS, {"state": "x"}, "state"),
        (PROPOSALS, {"budget_provision": "x"}, "budget_provision"),
        (PROPOSALS, {"organization_kind": "x"}, "organization_kind"),
        (PROPOSALS, {"page": "x"}, "page"),
        (STATS, {"level": "city"}, "level"),
        (STATS, {"proposer_kind": "x"}, "proposer_kind"),
    ],
)
def test_bad_parameter_is_a_400_with_a_message(client, saga, url, params, key):
    OperationFactory(body=saga)

    response = client.get(url, params)

    assert response.status_code == 400
    messages = response.json()[key]
    assert messages
    assert all(isinstance(message, str) and message for message in messages)


def test_body_code_messages_say_what_is_wrong(client, saga):
    assert client.get(OPERATIONS, {"body": "12"}).json()["body"] == [
        str(body_code_validator.message)
    ]
    assert "999999" in client.get(OPERATIONS, {"body": "999999"}).json()["body"][0]


@pytest.mark.parametrize("url", [OPERATIONS, PROPOSALS])
def test_page_past_the_end_is_drfs_404_with_a_message(client, saga, url):
    OperationFactory(body=saga)
    ProposalFactory(body=saga)

    response = client.get(url, {"page": 9999})

    assert response.status_code == 404
    assert response.json()["detail"]


def test_last_page_still_works(client, saga):
    OperationFactory.create_batch(51, body=saga)

    assert len(client.get(OPERATIONS, {"page": "last"}).json()["results"]) == 1


# --- Query counts --------------------------------------------------------------------------------


def make_operations(n: int, saga: GovernmentBody) -> None:
    departments = DepartmentFactory.create_batch(3, body=saga)
    for i in range(n):
        OperationFactory(body=saga, department=departments[i % 3] if i % 4 else None)


def make_proposals(n: int, saga: GovernmentBody) -> None:
    operation = OperationFactory(body=saga)
    for i in range(n):
        proposal = ProposalFactory(body=saga, operation=operation if i % 2 else None)
        if i % 3 == 0:
            step(proposal, "respond", decision="adopted")
            step(proposal, "contract", kind="subsidy", signed_on=dt.date(2026, 7, 1))
            step(proposal, "assess", assessed_on=dt.date(2027, 3, 1), summary="成果あり")


@pytest.mark.parametrize("size", [3, 60])
def test_operation_list_queries_do_not_grow_with_the_data(
    client, saga, django_assert_num_queries, size
):
    make_operations(size, saga)

    # One COUNT for the paginator and one SELECT with the body and department joined.
    with django_assert_num_queries(2):
        assert client.get(OPERATIONS).status_code == 200
    # Filtering by body code adds the look-up of the body.
    with django_assert_num_queries(3):
        assert client.get(OPERATIONS, {"body": "410004", "search": "子育て"}).status_code == 200


@pytest.mark.parametrize("size", [3, 60])
def test_proposal_list_queries_do_not_grow_with_the_data(
    client, saga, django_assert_num_queries, size
):
    make_proposals(size, saga)

    # One COUNT and one SELECT joining body, operation, organisation, contract and assessment.
    with django_assert_num_queries(2):
        assert client.get(PROPOSALS).status_code == 200


def test_adoption_statistics_view_queries(
    client, register_with_proposals, django_assert_num_queries
):
    with django_assert_num_queries(2):
        assert client.get(STATS).status_code == 200


# --- Schema --------------------------------------------------------------------------------------


def test_schema_endpoint(client):
    response = client.get(reverse("api-schema"))

    assert response.status_code == 200
    for path in ["/api/v1/operations/", "/api/v1/proposals/{id}/", "/api/v1/stats/adoption/"]:
        assert path in response.content.decode()


def test_schema_validates_without_warnings(tmp_path):
    # --fail-on-warn turns any warning (an unknown filter type, an enum collision) into an error.
    call_command(
        "spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yml")
    )

    assert (tmp_path / "schema.yml").read_text().startswith("openapi:")
