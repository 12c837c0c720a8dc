"""The grants API: who sees which grants, tranches, batches and reports; writes through the
services with their refusals as 400/403 (and 404 for what a user may not know), nothing written
on a refusal; the transfer batch from creation to the Zengin file and the paid grant."""

import datetime as dt

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import FoundationRole, User
from accounts.policy import forget_roles
from grants import services, zengin
from grants.models import Grant, Report, Tranche, TransferBatch, TransferLine
from tests.factories import (
    FoundationRoleFactory,
    MembershipFactory,
    UserFactory,
    approved_grant,
    confirmed_bank_account,
    funded_project,
    grant_staff,
)

pytestmark = pytest.mark.django_db

GRANTS = "/api/v1/grants/"
TRANCHES = "/api/v1/tranches/"
BATCHES = "/api/v1/transfer-batches/"
LINES = "/api/v1/transfer-lines/"
REPORTS = "/api/v1/reports/"


def api(user: User | None = None) -> APIClient:
    client = APIClient()
    client.cookies["django_language"] = "en"  # the messages in English
    if user is not None:
        client.force_authenticate(user)
    return client


def today() -> dt.date:
    return timezone.localdate()


def next_business_day() -> dt.date:
    return zengin.next_bank_business_day(today())


def messages(response) -> str:
    return str(response.json())


@pytest.fixture
def staff():
    return grant_staff()


@pytest.fixture
def project():
    return funded_project()


@pytest.fixture
def grant(project, staff):
    return approved_grant(project, staff)


@pytest.fixture
def member(grant):
    return MembershipFactory(organization=grant.organization).user


@pytest.fixture
def outsider():
    """A member of another CSO."""
    return MembershipFactory().user


def propose_body(for_project, **changes):
    amount = services.grant_terms(for_project).amount_yen
    body = {
        "project": for_project.pk,
        "ends_on": (today() + dt.timedelta(days=90)).isoformat(),
        "tranches": [{"amount_yen": amount, "due_on": today().isoformat()}],
    }
    body.update(changes)
    return body


# --- Who sees what -------------------------------------------------------------------------------


class TestGrantVisibility:
    @pytest.mark.parametrize("role", ["officer", "approver", "finance"])
    def test_foundation_staff_see_every_grant(self, grant, staff, role):
        response = api(getattr(staff, role)).get(GRANTS)
        assert response.status_code == 200
        assert [row["id"] for row in response.json()["results"]] == [grant.pk]

    def test_a_member_sees_its_cso_grant_with_terms_tranches_and_reports(self, grant, member):
        response = api(member).get(GRANTS)
        assert response.status_code == 200
        (row,) = response.json()["results"]
        assert row["reference"] == grant.reference
        assert row["organization"] == {"id": grant.organization_id, "name": grant.organization.name}
        assert row["project"] == grant.project_id
        assert row["state"] == "approved"
        assert row["amount_yen"] == grant.amount_yen
        assert isinstance(row["amount_yen"], int)
        assert row["amount_yen"] == row["gifts_yen"] - row["fee_yen"] + row["matched_yen"]
        assert row["tranches"] == [
            {
                "number": 1,
                "amount_yen": grant.amount_yen,
                "due_on": today().isoformat(),
                "requires_report": False,
                "state": "scheduled",
                "paid_on": None,
            }
        ]
        assert [r["kind"] for r in row["reports"]] == ["final"]
        assert api(member).get(f"{GRANTS}{grant.pk}/").json()["id"] == grant.pk

    def test_another_cso_member_sees_nothing_and_gets_404(self, grant, outsider):
        assert api(outsider).get(GRANTS).json()["results"] == []
        assert api(outsider).get(f"{GRANTS}{grant.pk}/").status_code == 404

    def test_a_citizen_sees_an_empty_list(self, grant):
        citizen = UserFactory()
        assert api(citizen).get(GRANTS).json()["results"] == []
        assert api(citizen).get(f"{GRANTS}{grant.pk}/").status_code == 404

    def test_anonymous_is_refused(self, grant):
        assert api().get(GRANTS).status_code in (401, 403)
        assert api().get(f"{GRANTS}{grant.pk}/").status_code in (401, 403)

    def test_a_proposed_grant_is_not_shown_to_the_cso(self, staff):
        project = funded_project()
        proposed = services.grant_propose(
            actor=staff.officer,
            project=project,
            ends_on=today() + dt.timedelta(days=90),
            tranches=[services.TrancheTerms(services.grant_terms(project).amount_yen, today())],
        )
        member = MembershipFactory(organization=proposed.organization).user
        assert api(member).get(GRANTS).json()["results"] == []
        assert api(member).get(f"{GRANTS}{proposed.pk}/").status_code == 404
        assert api(staff.officer).get(f"{GRANTS}{proposed.pk}/").json()["state"] == "proposed"

    def test_filters(self, grant, staff):
        client = api(staff.officer)
        assert len(client.get(GRANTS, {"state": "approved"}).json()["results"]) == 1
        assert client.get(GRANTS, {"state": "paid"}).json()["results"] == []
        assert len(client.get(GRANTS, {"project": grant.project_id}).json()["results"]) == 1

    @pytest.mark.parametrize(
        "params, field",
        [
            ({"state": "lost"}, "state"),
            ({"project": "x"}, "project"),
            ({"project": 999999}, "project"),
        ],
    )
    def test_bad_filters_are_400_naming_the_parameter(self, grant, staff, params, field):
        response = api(staff.officer).get(GRANTS, params)
        assert response.status_code == 400
        assert field in response.json()


# --- Proposing, approving, cancelling -------------------------------------------------------------


class TestProposeAndApprove:
    def test_an_officer_proposes_and_another_approves(self, project, staff):
        response = api(staff.officer).post(GRANTS, propose_body(project), format="json")
        assert response.status_code == 201, response.json()
        body = response.json()
        assert body["state"] == "proposed"
        assert body["amount_yen"] == services.grant_terms(project).amount_yen
        approved = api(staff.approver).post(f"{GRANTS}{body['id']}/approve/", format="json")
        assert approved.status_code == 200
        assert approved.json()["state"] == "approved"
        assert Grant.objects.get(pk=body["id"]).approved_by == staff.approver

    def test_the_proposer_may_not_approve_and_nothing_changes(self, project, staff):
        FoundationRoleFactory(user=staff.officer, role=FoundationRole.Role.APPROVER, mfa=False)
        forget_roles(staff.officer)
        grant_id = (
            api(staff.officer).post(GRANTS, propose_body(project), format="json").json()["id"]
        )
        response = api(staff.officer).post(f"{GRANTS}{grant_id}/approve/", format="json")
        assert response.status_code == 403
        assert "another approver" in response.json()["detail"]
        grant = Grant.objects.get(pk=grant_id)
        assert (grant.state, grant.approved_by) == (Grant.State.PROPOSED, None)

    @pytest.mark.parametrize("role", ["approver", "finance"])
    def test_only_programme_officers_propose(self, project, staff, role):
        response = api(getattr(staff, role)).post(GRANTS, propose_body(project), format="json")
        assert response.status_code == 403
        assert not Grant.objects.exists()

    def test_a_cso_member_may_not_propose(self, project):
        member = MembershipFactory(organization=project.proposal.organization).user
        assert api(member).post(GRANTS, propose_body(project), format="json").status_code == 403
        assert not Grant.objects.exists()

    @pytest.mark.parametrize(
        "changes, field, message",
        [
            ({"ends_on": None}, "ends_on", "null"),
            ({"tranches": [{"amount_yen": 1, "due_on": "2027-01-01"}]}, "tranches", "add up to"),
            (
                {"tranches": [{"amount_yen": "1000.5", "due_on": "2027-01-01"}]},
                "tranches",
                "whole yen",
            ),
            ({"project": 999999}, "project", "no project"),
            ({"tranches": []}, "tranches", "at least one tranche"),
        ],
    )
    def test_bad_bodies_are_400_with_a_message_and_save_nothing(
        self, project, staff, changes, field, message
    ):
        response = api(staff.officer).post(GRANTS, propose_body(project, **changes), format="json")
        assert response.status_code == 400
        assert field in response.json()
        assert message in messages(response)
        assert not Grant.objects.exists()

    def test_a_missing_ends_on_is_400(self, project, staff):
        body = propose_body(project)
        del body["ends_on"]
        response = api(staff.officer).post(GRANTS, body, format="json")
        assert response.status_code == 400
        assert "ends_on" in response.json()
        assert not Grant.objects.exists()

    def test_general_fund_amount_must_be_whole_yen_and_available(self, staff, outsider):
        organization = outsider.memberships.get().organization
        body = {
            "organization": organization.pk,
            "purpose": "災害支援",
            "amount_yen": "1000.5",
            "ends_on": "2027-03-31",
            "tranches": [{"amount_yen": 1000, "due_on": "2027-01-01"}],
        }
        response = api(staff.officer).post(GRANTS, body, format="json")
        assert response.status_code == 400
        assert "whole yen" in response.json()["amount_yen"][0]
        response = api(staff.officer).post(GRANTS, {**body, "amount_yen": 1000}, format="json")
        assert response.status_code == 400
        assert "general fund holds" in response.json()["amount_yen"][0]
        assert not Grant.objects.exists()

    def test_project_and_amount_together_are_refused(self, project, staff):
        body = propose_body(project, amount_yen=1000)
        response = api(staff.officer).post(GRANTS, body, format="json")
        assert response.status_code == 400
        assert "amount_yen" in response.json()

    def test_cancel_needs_a_reason(self, grant, staff):
        url = f"{GRANTS}{grant.pk}/cancel/"
        assert api(staff.officer).post(url, {"reason": ""}, format="json").status_code == 400
        grant.refresh_from_db()
        assert grant.state == Grant.State.APPROVED
        response = api(staff.officer).post(url, {"reason": "事業中止"}, format="json")
        assert response.status_code == 200
        assert response.json()["state"] == "cancelled"

    def test_a_member_may_not_cancel_and_outsiders_get_404(self, grant, member, outsider):
        url = f"{GRANTS}{grant.pk}/cancel/"
        assert api(member).post(url, {"reason": "x"}, format="json").status_code == 403
        assert api(outsider).post(url, {"reason": "x"}, format="json").status_code == 404
        grant.refresh_from_db()
        assert grant.state == Grant.State.APPROVED


# --- Tranches ------------------------------------------------------------------------------------


class TestTranches:
    def test_staff_see_tranches_with_their_blockers(self, grant, staff):
        (row,) = api(staff.finance).get(TRANCHES).json()["results"]
        assert row["grant_reference"] == grant.reference
        assert row["organization"] == grant.organization.name
        assert row["amount_yen"] == grant.amount_yen
        assert any("bank account" in reason for reason in row["blockers"])
        confirmed_bank_account(grant.organization)
        (row,) = api(staff.finance).get(TRANCHES).json()["results"]
        assert row["blockers"] == []

    def test_filters_and_bad_values(self, grant, staff):
        client = api(staff.officer)
        assert len(client.get(TRANCHES, {"state": "scheduled"}).json()["results"]) == 1
        assert client.get(TRANCHES, {"state": "paid"}).json()["results"] == []
        yesterday = (today() - dt.timedelta(days=1)).isoformat()
        assert client.get(TRANCHES, {"due_before": yesterday}).json()["results"] == []
        assert client.get(TRANCHES, {"due_before": "soon"}).status_code == 400
        assert client.get(TRANCHES, {"state": "late"}).status_code == 400

    def test_others_are_refused(self, grant, member):
        assert api(member).get(TRANCHES).status_code == 403
        assert api(UserFactory()).get(TRANCHES).status_code == 403


# --- Transfer batches ----------------------------------------------------------------------------


@pytest.fixture
def payable(grant):
    confirmed_bank_account(grant.organization)
    return grant


def make_batch(user, grant):
    body = {
        "transfer_date": next_business_day().isoformat(),
        "tranches": list(grant.tranches.values_list("pk", flat=True)),
    }
    return api(user).post(BATCHES, body, format="json")


class TestBatches:
    def test_create_download_mark_paid_and_the_grant_is_paid(self, payable, staff):
        created = make_batch(staff.finance, payable)
        assert created.status_code == 201, created.json()
        batch = created.json()
        assert batch["state"] == "draft"
        assert batch["total_yen"] == payable.amount_yen
        (line,) = batch["lines"]
        assert line["account_number"] == "***4567"
        assert line["organization"] == payable.organization.name
        assert "1234567" not in str(batch)

        file = api(staff.finance).get(f"{BATCHES}{batch['id']}/file/")
        assert file.status_code == 200
        assert file["Content-Type"] == "text/plain; charset=Shift_JIS"
        assert len(file.content) % 122 == 0
        again = api(staff.finance).get(f"{BATCHES}{batch['id']}/file/")
        assert again.content == file.content

        paid = api(staff.finance).post(f"{BATCHES}{batch['id']}/mark-paid/")
        assert paid.status_code == 200
        assert paid.json()["state"] == "settled"
        assert paid.json()["lines"][0]["state"] == "paid"
        payable.refresh_from_db()
        assert payable.state == Grant.State.PAID

    def test_staff_read_batches_but_only_finance_writes(self, payable, staff):
        assert make_batch(staff.officer, payable).status_code == 403
        assert not TransferBatch.objects.exists()
        batch_id = make_batch(staff.finance, payable).json()["id"]
        officer = api(staff.officer)
        assert officer.get(BATCHES).json()["results"][0]["id"] == batch_id
        assert officer.get(f"{BATCHES}{batch_id}/").status_code == 200
        assert officer.get(f"{BATCHES}{batch_id}/file/").status_code == 403
        assert officer.post(f"{BATCHES}{batch_id}/mark-paid/").status_code == 403
        line = TransferLine.objects.get()
        assert officer.post(f"{LINES}{line.pk}/paid/").status_code == 403
        batch = TransferBatch.objects.get()
        assert (batch.state, batch.file) == (TransferBatch.State.DRAFT, None)

    def test_non_staff_are_refused(self, payable, member):
        assert api(member).get(BATCHES).status_code == 403
        assert make_batch(member, payable).status_code == 403

    def test_an_unknown_batch_is_404(self, staff):
        assert api(staff.finance).get(f"{BATCHES}999999/").status_code == 404

    def test_bad_bodies_are_400(self, payable, staff):
        client = api(staff.finance)
        missing = client.post(BATCHES, {"tranches": [1]}, format="json")
        assert missing.status_code == 400 and "transfer_date" in missing.json()
        unknown = client.post(
            BATCHES,
            {"transfer_date": next_business_day().isoformat(), "tranches": [999999]},
            format="json",
        )
        assert unknown.status_code == 400 and "999999" in unknown.json()["tranches"][0]
        day = next_business_day()
        while zengin.is_bank_business_day(day):
            day += dt.timedelta(days=1)
        holiday = client.post(
            BATCHES,
            {"transfer_date": day.isoformat(), "tranches": [payable.tranches.get().pk]},
            format="json",
        )
        assert holiday.status_code == 400
        assert "not a bank business day" in holiday.json()["transfer_date"][0]
        assert not TransferBatch.objects.exists()

    def test_blocked_tranche_is_refused_with_the_reason(self, grant, staff):
        response = make_batch(staff.finance, grant)  # no confirmed bank account
        assert response.status_code == 400
        assert "bank account" in messages(response)
        assert not TransferBatch.objects.exists()

    def test_a_failed_line_needs_a_reason_and_reschedules_the_tranche(self, payable, staff):
        batch_id = make_batch(staff.finance, payable).json()["id"]
        line = TransferLine.objects.get()
        client = api(staff.finance)
        early = client.post(f"{LINES}{line.pk}/failed/", {"reason": "口座なし"}, format="json")
        assert early.status_code == 400
        assert "Download the transfer file" in messages(early)
        client.get(f"{BATCHES}{batch_id}/file/")
        assert client.post(f"{LINES}{line.pk}/failed/", {}, format="json").status_code == 400
        failed = client.post(f"{LINES}{line.pk}/failed/", {"reason": "口座なし"}, format="json")
        assert failed.status_code == 200
        assert failed.json()["state"] == "failed"
        assert Tranche.objects.get().state == Tranche.State.SCHEDULED
        # Recording it paid afterwards is refused with a message.
        late = client.post(f"{LINES}{line.pk}/paid/")
        assert late.status_code == 400
        assert "already recorded" in messages(late)

    def test_a_line_paid_twice_changes_nothing(self, payable, staff):
        batch_id = make_batch(staff.finance, payable).json()["id"]
        client = api(staff.finance)
        client.get(f"{BATCHES}{batch_id}/file/")
        line = TransferLine.objects.get()
        assert client.post(f"{LINES}{line.pk}/paid/").json()["state"] == "paid"
        assert client.post(f"{LINES}{line.pk}/paid/").status_code == 200
        assert Tranche.objects.get().state == Tranche.State.PAID


# --- Reports -------------------------------------------------------------------------------------


REPORT = {"narrative": "食堂を12回開いた。", "outcomes": "延べ300人が利用。", "spent_yen": 80_000}


@pytest.fixture
def report(grant):
    return grant.reports.get(kind=Report.Kind.FINAL)


class TestReports:
    def test_who_sees_which_reports(self, report, member, outsider, staff):
        assert [r["id"] for r in api(member).get(REPORTS).json()["results"]] == [report.pk]
        assert [r["id"] for r in api(staff.finance).get(REPORTS).json()["results"]] == [report.pk]
        assert api(outsider).get(REPORTS).json()["results"] == []
        assert api(outsider).get(f"{REPORTS}{report.pk}/").status_code == 404
        assert api(UserFactory()).get(REPORTS).json()["results"] == []
        assert api().get(REPORTS).status_code in (401, 403)

    def test_a_member_submits_and_an_officer_accepts(self, report, member, staff):
        submitted = api(member).post(f"{REPORTS}{report.pk}/submit/", REPORT, format="json")
        assert submitted.status_code == 200, submitted.json()
        assert submitted.json()["state"] == "submitted"
        assert submitted.json()["spent_yen"] == 80_000
        accepted = api(staff.officer).post(
            f"{REPORTS}{report.pk}/accept/", {"note": "ありがとうございました"}, format="json"
        )
        assert accepted.status_code == 200
        assert accepted.json()["state"] == "accepted"
        assert accepted.json()["review_note"] == "ありがとうございました"

    def test_an_outsider_gets_404_and_staff_a_403(self, report, outsider, staff):
        url = f"{REPORTS}{report.pk}/submit/"
        assert api(outsider).post(url, REPORT, format="json").status_code == 404
        assert api(staff.officer).post(url, REPORT, format="json").status_code == 403
        report.refresh_from_db()
        assert report.state == Report.State.DUE

    @pytest.mark.parametrize(
        "changes, field",
        [({"spent_yen": "1000.5"}, "spent_yen"), ({"narrative": " "}, "narrative")],
    )
    def test_bad_reports_are_400_and_nothing_is_saved(self, report, member, changes, field):
        url = f"{REPORTS}{report.pk}/submit/"
        response = api(member).post(url, {**REPORT, **changes}, format="json")
        assert response.status_code == 400
        assert field in response.json()
        report.refresh_from_db()
        assert (report.state, report.narrative) == (Report.State.DUE, "")

    def test_review_is_for_programme_officers(self, report, member, staff):
        api(member).post(f"{REPORTS}{report.pk}/submit/", REPORT, format="json")
        assert api(member).post(f"{REPORTS}{report.pk}/accept/").status_code == 403
        assert api(staff.finance).post(f"{REPORTS}{report.pk}/accept/").status_code == 403
        url = f"{REPORTS}{report.pk}/request-changes/"
        assert api(staff.officer).post(url, {"note": ""}, format="json").status_code == 400
        changed = api(staff.officer).post(url, {"note": "支出の内訳を"}, format="json")
        assert changed.status_code == 200
        assert changed.json()["state"] == "changes_requested"

    def test_only_a_submitted_report_is_reviewed(self, report, staff):
        response = api(staff.officer).post(f"{REPORTS}{report.pk}/accept/")
        assert response.status_code == 400
        assert "submitted report" in messages(response)
