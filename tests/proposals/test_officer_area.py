"""The government officer's pages under /gov/: their body's catalogue and proposals.

An officer adds and edits their body's operations and records each step of a proposal; every
history row names them. Another body's records answer 404 and stay as they were; people who
are not government officers get 403 on the whole area; bad input is a form error with nothing
written; a POST without its CSRF token is refused.
"""

import datetime as dt
from typing import Any

import pytest
from django.conf import settings
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from accounts.models import Organization
from proposals import services
from proposals.models import Contract, Department, Operation, Proposal, ProposalEvent
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
def proposer():
    return OrganizationFactory(name="NPO法人 さが子育てネット")


def receive(body, organization=None, reference: str = "P-0001", **kwargs: Any) -> Proposal:
    """A proposal received on 2026-06-01, as an import would record it (with its history)."""
    return services.proposal_create(
        reference=reference,
        received_on=kwargs.pop("received_on", RECEIVED),
        body=body,
        organization=organization or OrganizationFactory(),
        title=kwargs.pop("title", "子育てサロンの協働運営"),
        actor=None,
        source="test",
        **kwargs,
    )


@pytest.fixture
def proposal(saga, proposer):
    return receive(saga, proposer)


@pytest.fixture
def as_officer(client, officer):
    client.force_login(officer)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    return client


def action_url(proposal: Proposal, action: str) -> str:
    return reverse("officer:proposal-action", args=[proposal.pk, action])


def detail_url(proposal: Proposal) -> str:
    return reverse("officer:proposal-detail", args=[proposal.pk])


def post_step(client: Client, proposal: Proposal, action: str, **fields: Any):
    """Submit one of the detail page's step forms (its fields carry the action as prefix)."""
    data = {f"{action}-{name}": value for name, value in fields.items()}
    return client.post(action_url(proposal, action), data)


def snapshot(proposal: Proposal) -> tuple:
    fresh = Proposal.objects.get(pk=proposal.pk)
    return (
        fresh.state,
        fresh.decision,
        fresh.decided_on,
        fresh.budget_provision,
        fresh.events.count(),
        fresh.consultations.count(),
        Contract.objects.filter(proposal=fresh).exists(),
    )


def field_errors(response, form_key: str = "form") -> dict[str, list[str]]:
    return {name: list(errors) for name, errors in response.context[form_key].errors.items()}


def bound_form_errors(response, action: str) -> dict[str, list[str]]:
    forms = dict(response.context["action_forms"])
    return {name: list(errors) for name, errors in forms[action].errors.items()}


OFFICER_PAGES = [
    ("officer:home", []),
    ("officer:operation-list", []),
    ("officer:operation-create", []),
    ("officer:proposal-list", []),
    ("officer:proposal-create", []),
]


# --- Who may enter -------------------------------------------------------------------------------


def test_anonymous_visitors_are_sent_to_sign_in(client):
    response = client.get(reverse("officer:home"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


@pytest.mark.parametrize("who", ["citizen", "cso_member", "foundation_staff"])
def test_people_who_are_not_government_officers_get_403(client, who, proposal, saga):
    if who == "citizen":
        user = UserFactory()
    elif who == "cso_member":
        user = MembershipFactory(organization=proposal.organization).user
    else:
        user = FoundationRoleFactory().user
    client.force_login(user)
    operation = OperationFactory(body=saga)
    urls = [reverse(name, args=args) for name, args in OFFICER_PAGES] + [
        detail_url(proposal),
        reverse("officer:operation-edit", args=[operation.pk]),
    ]
    for url in urls:
        assert client.get(url).status_code == 403, url
    before = snapshot(proposal)
    assert post_step(client, proposal, "consult", held_on="2026-06-10").status_code == 403
    assert snapshot(proposal) == before


def test_every_page_opens_for_an_officer(as_officer, proposal, saga):
    operation = OperationFactory(body=saga)
    urls = [reverse(name, args=args) for name, args in OFFICER_PAGES] + [
        detail_url(proposal),
        reverse("officer:operation-edit", args=[operation.pk]),
    ]
    for url in urls:
        response = as_officer.get(url)
        assert response.status_code == 200, url
        assert "佐賀県" in response.content.decode(), url


# --- Home ----------------------------------------------------------------------------------------


def test_home_counts_what_waits_for_the_officer(as_officer, saga, karatsu):
    receive(saga, reference="A1")
    receive(saga, reference="A2")
    consulting = receive(saga, reference="B1")
    services.proposal_transition(
        proposal=consulting, action="consult", actor=None, source="t", held_on=RECEIVED
    )
    responded = receive(saga, reference="C1")
    services.proposal_transition(
        proposal=responded,
        action="respond",
        actor=None,
        source="t",
        decision="adopted",
        decided_on=RECEIVED,
    )
    receive(karatsu, reference="Z1")  # another body's: not counted

    response = as_officer.get(reverse("officer:home"))

    counts = [item["count"] for item in response.context["attention"]]
    assert counts == [2, 1, 1, 0]
    html = response.content.decode()
    assert "state=received" in html
    assert "state=responded&amp;budget_provision=pending" in html


# --- Operations ----------------------------------------------------------------------------------


def operation_data(**overrides: Any) -> dict[str, Any]:
    data = {
        "fiscal_year": "2026",
        "code": "KY-100",
        "title": "子育てサロン運営事業",
        "department": "",
        "department_name": "",
        "summary": "地域の子育てサロンを運営する。",
        "budget_yen": "1,500,000",
        "current_provider": "県直営",
        "collaboration_potential": "NPOと共同で運営できる。",
        "published_on": "2026-04-15",
    }
    data.update(overrides)
    return data


def test_officer_adds_an_operation_with_a_new_department(as_officer, saga):
    response = as_officer.post(
        reverse("officer:operation-create"), operation_data(department_name=" 県民協働課 ")
    )

    assert response.status_code == 302
    assert response["Location"] == reverse("officer:operation-list")
    operation = Operation.objects.get(code="KY-100")
    assert operation.body == saga
    assert operation.department.name == "県民協働課"
    assert operation.department.body == saga
    assert operation.budget_yen == 1_500_000
    assert operation.current_provider == "県直営"
    assert operation.collaboration_potential == "NPOと共同で運営できる。"
    assert operation.published_on == dt.date(2026, 4, 15)

    listing = as_officer.get(reverse("officer:operation-list"))
    assert "KY-100" in listing.content.decode()
    assert "added to the catalogue" in listing.content.decode()


def test_officer_edits_every_field_of_their_operation(as_officer, saga):
    operation = OperationFactory(body=saga, code="KY-1", title="旧名称")
    department = DepartmentFactory(body=saga, name="こども未来課")

    response = as_officer.post(
        reverse("officer:operation-edit", args=[operation.pk]),
        operation_data(
            code="KY-2",
            title="新名称",
            department=str(department.pk),
            budget_yen="¥2,000,000",
            current_provider="委託",
            collaboration_potential="企画段階から協働できる。",
            published_on="2026-05-01",
        ),
    )

    assert response.status_code == 302
    operation.refresh_from_db()
    assert (operation.code, operation.title, operation.department) == ("KY-2", "新名称", department)
    assert operation.budget_yen == 2_000_000
    assert operation.current_provider == "委託"
    assert operation.published_on == dt.date(2026, 5, 1)


def test_the_edit_form_shows_the_operation_and_only_own_departments(as_officer, saga, karatsu):
    operation = OperationFactory(body=saga, code="KY-7", title="既存事業")
    DepartmentFactory(body=karatsu, name="唐津の課")

    response = as_officer.get(reverse("officer:operation-edit", args=[operation.pk]))

    html = response.content.decode()
    assert 'value="KY-7"' in html
    assert "既存事業" in html
    assert "唐津の課" not in html


def test_another_bodys_operation_is_404_and_unchanged(as_officer, karatsu):
    operation = OperationFactory(body=karatsu, title="唐津の事業")
    url = reverse("officer:operation-edit", args=[operation.pk])

    assert as_officer.get(url).status_code == 404
    assert as_officer.post(url, operation_data(title="書き換え")).status_code == 404
    operation.refresh_from_db()
    assert operation.title == "唐津の事業"


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"budget_yen": "1500000.5"}, "budget_yen", "whole yen"),
        ({"budget_yen": "-100"}, "budget_yen", "greater than or equal to 0"),
        ({"fiscal_year": "1900"}, "fiscal_year", "greater than or equal to 1989"),
        ({"title": ""}, "title", "required"),
        ({"code": "DUP-1"}, "code", "already has an operation DUP-1"),
    ],
)
def test_bad_operation_input_is_a_form_error(as_officer, saga, overrides, field, message):
    OperationFactory(body=saga, fiscal_year=2026, code="DUP-1")
    count = Operation.objects.count()

    response = as_officer.post(reverse("officer:operation-create"), operation_data(**overrides))

    assert response.status_code == 200
    errors = field_errors(response)
    assert message in " ".join(errors[field])
    assert Operation.objects.count() == count
    assert 'aria-invalid="true"' in response.content.decode()


def test_a_department_and_a_new_name_together_are_refused(as_officer, saga):
    department = DepartmentFactory(body=saga)

    response = as_officer.post(
        reverse("officer:operation-create"),
        operation_data(department=str(department.pk), department_name="新しい課"),
    )

    assert "not both" in " ".join(field_errors(response)["department_name"])
    assert not Operation.objects.exists()
    assert not Department.objects.filter(name="新しい課").exists()


def test_another_bodys_department_cannot_be_chosen(as_officer, karatsu):
    department = DepartmentFactory(body=karatsu)

    response = as_officer.post(
        reverse("officer:operation-create"), operation_data(department=str(department.pk))
    )

    assert "department" in field_errors(response)
    assert not Operation.objects.exists()


def test_operation_list_shows_only_own_operations_and_searches(as_officer, saga, karatsu):
    OperationFactory(body=saga, code="S-1", title="子育て支援", summary="")
    OperationFactory(body=saga, code="S-2", title="防災訓練", summary="")
    OperationFactory(body=karatsu, code="K-1", title="子育て広場", summary="")

    response = as_officer.get(reverse("officer:operation-list"), {"q": "子育て"})

    codes = [op.code for op in response.context["page_obj"]]
    assert codes == ["S-1"]


# --- Proposals: list and detail ------------------------------------------------------------------


def test_proposal_list_shows_own_body_and_filters(as_officer, saga, karatsu):
    first = receive(saga, reference="S-1")
    second = receive(saga, reference="S-2")
    services.proposal_transition(
        proposal=second,
        action="respond",
        actor=None,
        source="t",
        decision="adopted",
        decided_on=RECEIVED,
        budget_provision="no",
    )
    receive(karatsu, reference="K-1")
    url = reverse("officer:proposal-list")

    def refs(**params: str) -> list[str]:
        return [p.reference for p in as_officer.get(url, params).context["page_obj"]]

    assert sorted(refs()) == ["S-1", "S-2"]
    assert refs(state="received") == [first.reference]
    assert refs(decision="adopted") == ["S-2"]
    assert refs(budget_provision="no") == ["S-2"]
    assert refs(budget_provision="pending") == ["S-1"]
    assert sorted(refs(fiscal_year="2026")) == ["S-1", "S-2"]
    # Not a year on record: reported and left out, like the public lists do.
    response = as_officer.get(url, {"fiscal_year": "2025"})
    assert len(response.context["page_obj"]) == 2
    assert response.context["form"].filter_errors()


def test_detail_shows_the_private_record(as_officer, proposal, officer):
    services.proposal_transition(
        proposal=proposal,
        action="consult",
        actor=officer,
        held_on=dt.date(2026, 6, 10),
        notes="事業の範囲を確認した。",
    )

    response = as_officer.get(detail_url(proposal))

    html = response.content.decode()
    assert "事業の範囲を確認した。" in html
    assert officer.email in html
    assert [row["event"].action for row in response.context["history"]] == ["receive", "consult"]
    assert "proposal-letter" not in html and "/letter/" not in html  # no letter on file
    assert set(dict(response.context["action_forms"])) == {
        "consult",
        "respond",
        "withdraw",
        "budget-provision",
    }


def test_a_municipality_officer_gets_404_for_the_prefectures_proposal(
    client, town_officer, proposal
):
    client.force_login(town_officer)
    before = snapshot(proposal)

    assert client.get(detail_url(proposal)).status_code == 404
    for action, fields in [
        ("consult", {"held_on": "2026-06-10"}),
        ("respond", {"decision": "adopted", "decided_on": "2026-07-01", "budget_provision": "no"}),
        ("withdraw", {"confirm": "on"}),
        ("budget-provision", {"budget_provision": "yes"}),
    ]:
        assert post_step(client, proposal, action, **fields).status_code == 404, action
    assert snapshot(proposal) == before


# --- Proposals: every step through the pages -----------------------------------------------------


def test_officer_records_every_step_and_the_history_names_them(as_officer, proposal, officer):
    steps = [
        ("consult", {"held_on": "2026-06-10", "notes": "初回協議"}, "Consultation recorded."),
        ("consult", {"held_on": "2026-06-20", "notes": "二回目"}, "Consultation recorded."),
        (
            "respond",
            {
                "decision": "adopted",
                "decided_on": "2026-07-01",
                "reason": "協働の効果が見込める。",
                "planned_implementation_year": "2027",
                "budget_provision": "no",
            },
            "Response recorded.",
        ),
        ("budget-provision", {"budget_provision": "yes"}, "Budget provision recorded."),
        (
            "contract",
            {"kind": "commission", "signed_on": "2026-08-01", "amount_yen": "1,500,000"},
            "Contract recorded.",
        ),
        (
            "assess",
            {"assessed_on": "2027-04-30", "summary": "利用者が倍増した。"},
            "Assessment recorded.",
        ),
    ]
    for action, fields, message in steps:
        response = post_step(as_officer, proposal, action, **fields)
        assert response.status_code == 302, action
        assert response["Location"] == detail_url(proposal)
        assert message in as_officer.get(response["Location"]).content.decode()

    proposal.refresh_from_db()
    assert proposal.state == Proposal.State.ASSESSED
    assert proposal.decision == Proposal.Decision.ADOPTED
    assert proposal.decided_on == dt.date(2026, 7, 1)
    assert proposal.decision_reason == "協働の効果が見込める。"
    assert proposal.planned_implementation_year == 2027
    assert proposal.budget_provision == Proposal.BudgetProvision.YES
    assert proposal.contract.amount_yen == 1_500_000
    assert proposal.assessment.summary == "利用者が倍増した。"
    assert [c.notes for c in proposal.consultations.all()] == ["初回協議", "二回目"]

    events = list(proposal.events.order_by("occurred_at", "pk"))
    assert [e.action for e in events] == [
        "receive",
        "consult",
        "consult",
        "respond",
        "budget_provision",
        "contract",
        "assess",
    ]
    assert all(e.actor == officer for e in events[1:])
    assert events[3].changes["budget_provision"] == ["pending", "no"]
    assert events[3].effective_on == dt.date(2026, 7, 1)

    html = as_officer.get(detail_url(proposal)).content.decode()
    assert html.count(officer.email) >= 6
    assert "¥1,500,000" in html


def test_officer_records_a_withdrawal(as_officer, proposal, officer):
    refused = post_step(as_officer, proposal, "withdraw", withdrawn_on="2026-06-05")
    assert "confirm" in bound_form_errors(refused, "withdraw")
    assert Proposal.objects.get(pk=proposal.pk).state == Proposal.State.RECEIVED

    response = post_step(
        as_officer, proposal, "withdraw", withdrawn_on="2026-06-05", note="電話で連絡", confirm="on"
    )

    assert response.status_code == 302
    proposal.refresh_from_db()
    assert (proposal.state, proposal.decision) == ("withdrawn", "withdrawn")
    event = proposal.events.get(action="withdraw")
    assert (event.actor, event.note) == (officer, "電話で連絡")
    # Nothing further to record but the history.
    page = as_officer.get(detail_url(proposal))
    assert page.context["action_forms"] == []


# --- Bad input: a form error, nothing written ----------------------------------------------------


@pytest.mark.parametrize(
    ("action", "fields", "field", "message"),
    [
        (
            "respond",
            {"decision": "adopted", "decided_on": "2026-05-01", "budget_provision": "no"},
            "decided_on",
            "before the proposal was received",
        ),
        ("respond", {"decision": "withdrawn", "decided_on": "2026-07-01"}, "decision", "valid"),
        ("respond", {"decision": "adopted", "budget_provision": "no"}, "decided_on", "required"),
        ("consult", {"held_on": "2026-05-31"}, "held_on", "before the proposal was received"),
        ("consult", {"held_on": "2026-13-01"}, "held_on", "valid date"),
    ],
)
def test_bad_step_input_is_a_form_error(as_officer, proposal, action, fields, field, message):
    before = snapshot(proposal)

    response = post_step(as_officer, proposal, action, **fields)

    assert response.status_code == 200
    errors = bound_form_errors(response, action)
    assert message in " ".join(errors[field])
    assert snapshot(proposal) == before
    assert 'aria-invalid="true"' in response.content.decode()


@pytest.mark.parametrize(
    ("amount", "message"),
    [("1500000.5", "whole yen"), ("-100", "greater than or equal to 1"), ("abc", "whole yen")],
)
def test_a_fractional_or_negative_contract_amount_is_refused(
    as_officer, proposal, officer, amount, message
):
    services.proposal_transition(
        proposal=proposal,
        action="respond",
        actor=officer,
        decision="adopted",
        decided_on=dt.date(2026, 7, 1),
    )
    before = snapshot(proposal)

    response = post_step(
        as_officer,
        proposal,
        "contract",
        kind="commission",
        signed_on="2026-08-01",
        amount_yen=amount,
    )

    assert response.status_code == 200
    assert message in " ".join(bound_form_errors(response, "contract")["amount_yen"])
    assert snapshot(proposal) == before


def test_a_step_the_table_does_not_allow_is_a_form_error(as_officer, proposal):
    before = snapshot(proposal)

    response = post_step(
        as_officer, proposal, "contract", kind="commission", signed_on="2026-08-01", amount_yen="1"
    )

    assert response.status_code == 200
    errors = bound_form_errors(response, "contract")
    assert "is not possible while the proposal is" in " ".join(errors["__all__"])
    assert "is not possible while the proposal is" in response.content.decode()
    assert snapshot(proposal) == before


def test_an_unknown_step_is_404_and_a_get_is_405(as_officer, proposal):
    assert post_step(as_officer, proposal, "approve").status_code == 404
    assert as_officer.get(action_url(proposal, "consult")).status_code == 405


def test_a_post_without_the_csrf_token_is_refused(officer, proposal, saga):
    client = Client(enforce_csrf_checks=True)
    client.force_login(officer)
    before = snapshot(proposal)

    response = client.post(action_url(proposal, "consult"), {"consult-held_on": "2026-06-10"})
    assert response.status_code == 403
    assert snapshot(proposal) == before

    response = client.post(reverse("officer:operation-create"), operation_data())
    assert response.status_code == 403
    assert not Operation.objects.exists()


def test_a_post_with_the_csrf_token_is_accepted(officer, proposal):
    client = Client(enforce_csrf_checks=True)
    client.force_login(officer)
    page = client.get(detail_url(proposal))
    token = page.context["csrf_token"]

    response = client.post(
        action_url(proposal, "consult"),
        {"consult-held_on": "2026-06-10", "csrfmiddlewaretoken": str(token)},
    )

    assert response.status_code == 302
    assert proposal.events.filter(action="consult", actor=officer).exists()


# --- Proposals received on paper -----------------------------------------------------------------


def paper_data(**overrides: Any) -> dict[str, Any]:
    data = {
        "reference": "R8-0012",
        "received_on": "2026-06-03",
        "title": "里山保全の協働提案",
        "summary": "郵送で受け付けた提案書。",
        "operation_code": "",
        "organization": "",
        "organization_name": "里山を守る会",
        "organization_kind": "cso",
    }
    data.update(overrides)
    return data


def test_officer_records_a_paper_proposal_from_a_new_organisation(as_officer, officer, saga):
    operation = OperationFactory(body=saga, fiscal_year=2026, code="KY-300")

    response = as_officer.post(
        reverse("officer:proposal-create"), paper_data(operation_code="KY-300")
    )

    proposal = Proposal.objects.get(reference="R8-0012")
    assert response.status_code == 302
    assert response["Location"] == detail_url(proposal)
    assert proposal.body == saga
    assert proposal.operation == operation
    assert proposal.fiscal_year == 2026
    assert proposal.organization.name == "里山を守る会"
    assert proposal.organization.kind == Organization.Kind.CSO
    assert not proposal.organization.memberships.exists()
    event = proposal.events.get()
    assert (event.action, event.actor, event.effective_on) == (
        "receive",
        officer,
        dt.date(2026, 6, 3),
    )


def test_officer_records_a_paper_proposal_from_a_registered_organisation(as_officer, proposer):
    response = as_officer.post(
        reverse("officer:proposal-create"),
        paper_data(organization=str(proposer.pk), organization_name=""),
    )

    assert response.status_code == 302
    assert Proposal.objects.get(reference="R8-0012").organization == proposer


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"reference": "P-0001"}, "reference", "already recorded"),
        (
            {"organization_name": "NPO法人 さが子育てネット"},
            "organization_name",
            "already registered",
        ),
        ({"organization_name": ""}, "organization", "Choose the proposing organisation"),
        ({"operation_code": "NOPE"}, "operation_code", "no operation with the code NOPE"),
        ({"received_on": ""}, "received_on", "required"),
    ],
)
def test_bad_paper_proposal_input_is_a_form_error(as_officer, proposal, overrides, field, message):
    organizations = Organization.objects.count()

    response = as_officer.post(reverse("officer:proposal-create"), paper_data(**overrides))

    assert response.status_code == 200
    assert message in " ".join(field_errors(response)[field])
    assert Proposal.objects.count() == 1
    assert Organization.objects.count() == organizations


def test_a_refused_paper_proposal_leaves_no_new_organisation(as_officer, monkeypatch):
    def refuse(**kwargs: Any) -> Proposal:
        raise ValidationError({"title": "refused by the service"})

    monkeypatch.setattr(services, "proposal_create", refuse)

    response = as_officer.post(reverse("officer:proposal-create"), paper_data())

    assert response.status_code == 200
    assert field_errors(response)["title"] == ["refused by the service"]
    assert not Organization.objects.filter(name="里山を守る会").exists()
    assert not ProposalEvent.objects.exists()
