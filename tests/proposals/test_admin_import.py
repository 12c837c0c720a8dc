"""The register in the admin: the import page, and decisions recorded through the services."""

import datetime as dt

import pytest
from django.conf import settings
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from proposals.models import Operation, Proposal, ProposalEvent
from proposals.services import proposal_transition
from tests.factories import ProposalFactory, StaffFactory, UserFactory
from tests.proposals.test_import import (
    OPERATIONS,
    PARTICIPATION,
    PROPOSALS,
    csv_bytes,
    register_counts,
    replace,
    xlsx_bytes,
)

pytestmark = pytest.mark.django_db

IMPORT_URL = "admin:proposals_proposal_import"


def english_client(**kwargs) -> Client:
    # Asserted in English; the Japanese catalogue may translate the strings later.
    client = Client(**kwargs)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    return client


@pytest.fixture
def staff_client() -> Client:
    client = english_client()
    client.force_login(StaffFactory(is_superuser=True))
    return client


def upload(name: str, data: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data)


def message_texts(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_import_page_requires_staff():
    url = reverse(IMPORT_URL)
    anonymous = english_client()
    assert anonymous.get(url).status_code == 302
    citizen = english_client()
    citizen.force_login(UserFactory())

    response = citizen.post(url, {"proposals": upload("p.csv", csv_bytes(PROPOSALS))})

    assert response.status_code == 302
    assert "/login/" in response["Location"]
    assert Proposal.objects.count() == 0


def test_staff_without_model_permissions_may_open_the_import_page():
    client = english_client()
    client.force_login(StaffFactory())

    response = client.get(reverse(IMPORT_URL))

    assert response.status_code == 200
    assert b'enctype="multipart/form-data"' in response.content


def test_changelists_link_to_the_import_page(staff_client):
    url = reverse(IMPORT_URL)
    for changelist in (
        "admin:proposals_operation_changelist",
        "admin:proposals_proposal_changelist",
    ):
        response = staff_client.get(reverse(changelist))
        assert response.status_code == 200
        assert url.encode() in response.content


def test_staff_imports_files_and_sees_the_summary(staff_client):
    response = staff_client.post(
        reverse(IMPORT_URL),
        {
            "operations": upload("operations.xlsx", xlsx_bytes(OPERATIONS)),
            "participation": upload("participation.csv", csv_bytes(PARTICIPATION, "cp932")),
            "proposals": upload("proposals.csv", csv_bytes(PROPOSALS, "utf-8-sig")),
        },
        follow=True,
    )

    assert response.status_code == 200
    assert (Operation.objects.count(), Proposal.objects.count()) == (3, 3)
    [message] = message_texts(response)
    assert "Proposals: 3 created, 0 updated, 0 unchanged." in message
    event = ProposalEvent.objects.filter(action="receive").first()
    assert event.source == "admin-import"
    assert event.actor == response.wsgi_request.user


def test_a_bad_file_shows_every_problem_and_writes_nothing(staff_client):
    proposals = replace(PROPOSALS, 3, "decision", "maybe")
    proposals = replace(proposals, 4, "received_on", "2026-02-30")

    response = staff_client.post(
        reverse(IMPORT_URL),
        {
            "operations": upload("operations.csv", csv_bytes(OPERATIONS)),
            "proposals": upload("proposals.csv", csv_bytes(proposals)),
        },
    )

    assert response.status_code == 200
    content = response.content.decode()
    assert 'id="import-problems"' in content
    assert "proposals row 3: decision: “maybe” is not one of" in content
    assert "proposals row 4: received_on: “2026-02-30” is not a valid date" in content
    assert message_texts(response) == ["Nothing was imported: 2 problems, listed below."]
    assert set(register_counts().values()) == {0}


def test_the_import_form_needs_a_file(staff_client):
    response = staff_client.post(reverse(IMPORT_URL), {})

    assert response.status_code == 200
    assert "Choose at least one file to import." in response.content.decode()


def test_an_import_without_a_csrf_token_is_refused():
    client = english_client(enforce_csrf_checks=True)
    client.force_login(StaffFactory(is_superuser=True))

    response = client.post(
        reverse(IMPORT_URL), {"operations": upload("operations.csv", csv_bytes(OPERATIONS))}
    )

    assert response.status_code == 403
    assert Operation.objects.count() == 0


def test_an_import_with_the_csrf_token_goes_through():
    client = english_client(enforce_csrf_checks=True)
    client.force_login(StaffFactory(is_superuser=True))
    client.get(reverse(IMPORT_URL))  # sets the CSRF cookie

    response = client.post(
        reverse(IMPORT_URL),
        {
            "csrfmiddlewaretoken": client.cookies["csrftoken"].value,
            "operations": upload("operations.csv", csv_bytes(OPERATIONS)),
        },
    )

    assert response.status_code == 302
    assert Operation.objects.count() == 3


def test_proposal_change_page_shows_history_read_only(staff_client):
    proposal = ProposalFactory()

    response = staff_client.get(reverse("admin:proposals_proposal_change", args=[proposal.pk]))

    assert response.status_code == 200
    content = response.content.decode()
    assert reverse("admin:proposals_proposal_decision", args=[proposal.pk]) in content
    assert 'name="state"' not in content
    assert 'name="decision"' not in content
    assert 'name="budget_provision"' not in content


def test_editing_a_proposal_in_the_admin_goes_through_the_service(staff_client):
    proposal = ProposalFactory(received_on=dt.date(2026, 6, 1))
    url = reverse("admin:proposals_proposal_change", args=[proposal.pk])
    data = {
        "received_on": "2026-06-01",
        "body": proposal.body.pk,
        "operation": "",
        "organization": proposal.organization.pk,
        "title": "新しい題名",
        "summary": "",
        **{f"{prefix}-{key}": "0" for prefix in INLINE_PREFIXES for key in MANAGEMENT},
    }

    response = staff_client.post(url, data)

    assert response.status_code == 302, response.content.decode()[:2000]
    proposal.refresh_from_db()
    assert proposal.title == "新しい題名"
    event = proposal.events.get()
    assert (event.action, event.source, event.changes["title"][1]) == (
        "edit",
        "admin",
        "新しい題名",
    )


INLINE_PREFIXES = ["events", "consultations", "contract", "assessment"]
MANAGEMENT = ["TOTAL_FORMS", "INITIAL_FORMS", "MIN_NUM_FORMS", "MAX_NUM_FORMS"]


def test_recording_a_decision_and_budget_provision(staff_client):
    proposal = ProposalFactory(received_on=dt.date(2026, 6, 1))
    url = reverse("admin:proposals_proposal_decision", args=[proposal.pk])
    assert staff_client.get(url).status_code == 200

    response = staff_client.post(
        url,
        {
            "decision": "adopted",
            "decided_on": "2026-08-20",
            "reason": "地域に必要",
            "planned_implementation_year": "2027",
            "budget_provision": "no",
        },
    )

    assert response.status_code == 302
    proposal.refresh_from_db()
    assert (proposal.state, proposal.decision, proposal.budget_provision) == (
        "responded",
        "adopted",
        "no",
    )
    assert proposal.planned_implementation_year == 2027
    assert [e.action for e in proposal.events.all()] == ["respond", "budget_provision"]
    assert {e.source for e in proposal.events.all()} == {"admin"}


def test_a_refused_transition_is_an_error_message_not_a_500(staff_client):
    proposal = ProposalFactory(received_on=dt.date(2026, 6, 1))
    proposal_transition(
        proposal=proposal,
        action="respond",
        decision="adopted",
        decided_on=dt.date(2026, 7, 1),
        actor=None,
        source="test",
    )
    proposal_transition(
        proposal=proposal,
        action="contract",
        kind="subsidy",
        signed_on=dt.date(2026, 8, 1),
        actor=None,
        source="test",
    )
    events = ProposalEvent.objects.count()

    response = staff_client.post(
        reverse("admin:proposals_proposal_decision", args=[proposal.pk]),
        {"decision": "not_adopted", "decided_on": "2026-09-01", "budget_provision": "yes"},
    )

    assert response.status_code == 200
    [message] = message_texts(response)
    assert "is not possible while the proposal is" in message
    proposal.refresh_from_db()
    assert (proposal.decision, proposal.budget_provision) == ("adopted", "pending")
    assert ProposalEvent.objects.count() == events


def test_budget_provision_actions(staff_client):
    open_proposal = ProposalFactory()
    withdrawn = ProposalFactory()
    proposal_transition(proposal=withdrawn, action="withdraw", actor=None, source="test")

    response = staff_client.post(
        reverse("admin:proposals_proposal_changelist"),
        {"action": "budget_provision_no", "_selected_action": [open_proposal.pk, withdrawn.pk]},
        follow=True,
    )

    assert response.status_code == 200
    open_proposal.refresh_from_db()
    assert open_proposal.budget_provision == "no"
    texts = message_texts(response)
    assert any(t.startswith(f"{withdrawn.reference}: A withdrawn proposal") for t in texts)
    assert "Budget provision recorded for 1 proposal." in texts


def test_proposals_cannot_be_deleted_in_the_admin(staff_client):
    proposal = ProposalFactory()

    response = staff_client.get(reverse("admin:proposals_proposal_delete", args=[proposal.pk]))

    assert response.status_code == 403


def test_adding_a_proposal_in_the_admin_goes_through_the_service(staff_client):
    template = ProposalFactory.build()
    template.body.save()
    template.organization.save()
    data = {
        "reference": "P-ADMIN-1",
        "received_on": "2026-06-01",
        "body": template.body.pk,
        "operation": "",
        "organization": template.organization.pk,
        "title": "管理画面からの提案",
        "summary": "",
        **{f"{prefix}-{key}": "0" for prefix in INLINE_PREFIXES for key in MANAGEMENT},
    }

    response = staff_client.post(reverse("admin:proposals_proposal_add"), data)

    assert response.status_code == 302, response.content.decode()[:2000]
    proposal = Proposal.objects.get(reference="P-ADMIN-1")
    assert (proposal.state, proposal.fiscal_year) == ("received", 2026)
    event = proposal.events.get()
    assert (event.action, event.source) == ("receive", "admin")


@pytest.mark.parametrize(
    "model",
    [
        "accounts_governmentbody",
        "proposals_department",
        "proposals_participation",
        "proposals_operation",
        "proposals_orientationsession",
    ],
)
def test_register_admin_pages_render(staff_client, model):
    assert staff_client.get(reverse(f"admin:{model}_changelist")).status_code == 200
    assert staff_client.get(reverse(f"admin:{model}_add")).status_code == 200
