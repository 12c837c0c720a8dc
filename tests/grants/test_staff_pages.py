"""The foundation staff's grant pages (/grants/staff/): each page for its roles, the whole flow
propose → approve → batch → Zengin file → paid through the pages, maker-checker, refusals that
change nothing, form errors instead of 500s, and who may not come in."""

import datetime as dt

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import FoundationRole, Membership, User
from fund.ledger import balance
from fund.models import JournalEntry, Project
from grants import services, zengin
from grants.models import BankAccount, Clawback, Grant, Report, Tranche, TransferBatch
from tests.factories import (
    FoundationRoleFactory,
    MembershipFactory,
    OrganizationFactory,
    UserFactory,
    approved_grant,
    confirmed_bank_account,
    funded_project,
    give,
    grant_staff,
)

pytestmark = pytest.mark.django_db
T = services.TrancheTerms
AMOUNT = "¥92,502"  # gifts ¥50,001 − fee ¥7,500 (15%, rounded down) + matches ¥50,001


@pytest.fixture
def staff():
    return grant_staff()


@pytest.fixture
def project():
    return funded_project(gifts=(30_000, 20_001))


def signed_in(user: User | None, *, enforce_csrf: bool = False) -> Client:
    client = Client(enforce_csrf_checks=enforce_csrf)
    if user is not None:
        client.force_login(user)
    return client


def flash(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def text(response) -> str:
    return response.content.decode()


def today() -> dt.date:
    return timezone.localdate()


def transfer_day() -> dt.date:
    return zengin.next_bank_business_day(today())


def propose_data(**overrides) -> dict:
    data = {
        "ends_on": (today() + dt.timedelta(days=90)).isoformat(),
        "final_report_due": "",
        "interim_report_due": "",
        "tranche_1_amount": "60,000",
        "tranche_1_due_on": today().isoformat(),
        "tranche_2_amount": "32502",
        "tranche_2_due_on": (today() + dt.timedelta(days=30)).isoformat(),
        "tranche_3_amount": "",
        "tranche_3_due_on": "",
        "tranche_4_amount": "",
        "tranche_4_due_on": "",
    }
    data.update(overrides)
    return data


def proposed_grant(project, staff) -> Grant:
    return services.grant_propose(
        actor=staff.officer,
        project=project,
        ends_on=today() + dt.timedelta(days=90),
        tranches=[T(92_502, today())],
    )


def submitted_final(grant: Grant) -> Report:
    member = MembershipFactory(organization=grant.organization).user
    final = grant.reports.get(kind=Report.Kind.FINAL)
    return services.report_submit(
        report=final,
        actor=member,
        narrative="子ども食堂を週2回開いた。",
        outcomes="延べ480人が利用。",
        spent_yen=92_502,
    )


def exported_batch(grant: Grant, finance: User) -> TransferBatch:
    batch = services.batch_create(
        transfer_date=transfer_day(), tranches=list(grant.tranches.all()), actor=finance
    )
    services.batch_export(batch=batch, actor=finance)
    return batch


# --- The pipeline --------------------------------------------------------------------------------


class TestPipeline:
    def test_counts_grants_and_closed_projects_for_an_officer(self, staff, project):
        other = funded_project(gifts=(10_000,), matched=False)
        grant = approved_grant(project, staff)
        response = signed_in(staff.officer).get(reverse("grants:staff-pipeline"))
        assert response.status_code == 200
        assert response.context["counts"].approved == 1
        assert response.context["counts"].tranches_due == 1
        body = text(response)
        assert grant.reference in body and AMOUNT in body and "¥7,500" in body
        # The project still to grant, with its link to propose; the granted one is not listed.
        assert f"{reverse('grants:grant-create')}?project={other.pk}" in body
        assert f"?project={project.pk}" not in body
        assert 'lang="ja"' in body

    def test_filter_by_state_and_a_bad_state_is_a_form_error(self, staff, project):
        grant = proposed_grant(project, staff)
        client = signed_in(staff.finance)
        url = reverse("grants:staff-pipeline")
        assert grant.reference in text(client.get(url, {"state": "proposed"}))
        assert grant.reference not in text(client.get(url, {"state": "approved"}))
        response = client.get(url, {"state": "nonsense", "page": "x"})
        assert response.status_code == 200
        assert response.context["form"].errors["state"]
        assert grant.reference in text(response)  # the bad filter is dropped

    def test_no_propose_link_for_finance(self, staff, project):
        body = text(signed_in(staff.finance).get(reverse("grants:staff-pipeline")))
        assert f"?project={project.pk}" not in body
        assert project.title in body

    def test_reports_awaiting_review_and_late(self, staff, project):
        grant = approved_grant(
            project,
            staff,
            interim_report_due=today() - dt.timedelta(days=3),
            ends_on=today() + dt.timedelta(days=30),
        )
        response = signed_in(staff.officer).get(reverse("grants:staff-pipeline"))
        assert response.context["counts"].reports_late == 1
        assert [r.kind for r in response.context["late"]] == [Report.Kind.INTERIM]
        submitted_final(grant)
        response = signed_in(staff.officer).get(reverse("grants:staff-pipeline"))
        final = grant.reports.get(kind=Report.Kind.FINAL)
        assert reverse("grants:staff-report", args=[final.pk]) in text(response)


# --- Proposing -----------------------------------------------------------------------------------


class TestPropose:
    def test_project_terms_are_shown(self, staff, project):
        url = reverse("grants:grant-create") + f"?project={project.pk}"
        response = signed_in(staff.officer).get(url)
        assert response.status_code == 200
        body = text(response)
        for figure in ("¥50,001", "¥7,500", AMOUNT, "15%"):
            assert figure in body

    def test_a_project_that_is_not_closed_is_404(self, staff, project):
        Project.objects.filter(pk=project.pk).update(state=Project.State.OPEN)
        client = signed_in(staff.officer)
        url = reverse("grants:grant-create")
        assert client.get(url, {"project": project.pk}).status_code == 404
        assert client.get(url, {"project": "abc"}).status_code == 404

    def test_only_programme_officers_propose(self, staff, project):
        url = reverse("grants:grant-create") + f"?project={project.pk}"
        assert signed_in(staff.approver).get(url).status_code == 403
        assert signed_in(staff.finance).post(url, propose_data()).status_code == 403
        assert not Grant.objects.exists()

    def test_propose_a_project_grant(self, staff, project):
        url = reverse("grants:grant-create") + f"?project={project.pk}"
        data = propose_data(tranche_2_requires_report="on", interim_report_due="")
        response = signed_in(staff.officer).post(url, data)
        grant = Grant.objects.get()
        assert response.status_code == 302
        assert response["Location"] == reverse("grants:staff-grant", args=[grant.pk])
        assert grant.state == Grant.State.PROPOSED and grant.amount_yen == 92_502
        assert grant.purpose == project.title
        tranches = list(grant.tranches.values_list("amount_yen", "requires_report"))
        assert tranches == [(60_000, False), (32_502, True)]
        assert flash(response)

    @pytest.mark.parametrize(
        "overrides",
        [
            {"tranche_2_amount": "1"},  # does not add up to the grant
            {"tranche_2_due_on": (dt.date(2020, 1, 1)).isoformat()},  # before the first
            {"tranche_1_requires_report": "on"},  # the first cannot wait for a report
            {"tranche_2_due_on": ""},  # an amount without a date
        ],
    )
    def test_a_bad_schedule_is_a_form_error_and_creates_nothing(self, staff, project, overrides):
        url = reverse("grants:grant-create") + f"?project={project.pk}"
        response = signed_in(staff.officer).post(url, propose_data(**overrides))
        assert response.status_code == 200
        assert response.context["form"].errors
        assert not Grant.objects.exists() and not Tranche.objects.exists()

    def test_final_report_too_late_is_a_field_error(self, staff, project):
        url = reverse("grants:grant-create") + f"?project={project.pk}"
        late = (today() + dt.timedelta(days=200)).isoformat()
        response = signed_in(staff.officer).post(url, propose_data(final_report_due=late))
        assert response.status_code == 200
        assert response.context["form"].errors["final_report_due"]
        assert not Grant.objects.exists()

    def test_general_fund_grant(self, staff):
        give(None, 80_000)
        cso = OrganizationFactory()
        url = reverse("grants:grant-create")
        client = signed_in(staff.officer)
        assert client.get(url).status_code == 200
        data = propose_data(
            organization=cso.pk,
            purpose="災害時の炊き出し訓練",
            amount_yen="50,000",
            tranche_1_amount="50000",
            tranche_2_amount="",
            tranche_2_due_on="",
        )
        response = client.post(url, data)
        assert response.status_code == 302
        grant = Grant.objects.get()
        assert (grant.source, grant.organization, grant.amount_yen) == ("general_fund", cso, 50_000)

    def test_general_fund_grant_beyond_the_fund_is_a_field_error(self, staff):
        data = propose_data(
            organization=OrganizationFactory().pk,
            purpose="x",
            amount_yen="92502",
        )
        response = signed_in(staff.officer).post(reverse("grants:grant-create"), data)
        assert response.status_code == 200
        assert response.context["form"].errors["amount_yen"]
        assert not Grant.objects.exists()


# --- The grant page: approve, cancel, clawback ------------------------------------------------


class TestGrantPage:
    def test_renders_terms_tranches_reports_history_and_links(self, staff, project):
        grant = proposed_grant(project, staff)
        response = signed_in(staff.approver).get(reverse("grants:staff-grant", args=[grant.pk]))
        assert response.status_code == 200
        body = text(response)
        assert grant.reference in body and AMOUNT in body
        assert reverse("fund:staff-project", args=[project.pk]) in body
        assert reverse("grants:project-timeline", args=[project.pk]) in body
        assert reverse("grants:grant-action", args=[grant.pk, "approve"]) in body
        assert response.context["history"][0]["event"].action == "propose"

    def test_officer_sees_no_approve_button(self, staff, project):
        grant = proposed_grant(project, staff)
        body = text(signed_in(staff.officer).get(reverse("grants:staff-grant", args=[grant.pk])))
        assert reverse("grants:grant-action", args=[grant.pk, "approve"]) not in body

    def test_unknown_grant_is_404(self, staff):
        assert (
            signed_in(staff.officer).get(reverse("grants:staff-grant", args=[999])).status_code
            == 404
        )

    def test_approve(self, staff, project):
        grant = proposed_grant(project, staff)
        url = reverse("grants:grant-action", args=[grant.pk, "approve"])
        response = signed_in(staff.approver).post(url, {"note": "OK"})
        assert response.status_code == 302
        grant.refresh_from_db()
        assert grant.state == Grant.State.APPROVED and grant.approved_by == staff.approver
        assert balance(grant.payable_account) == 92_502

    def test_maker_checker_through_the_page(self, project):
        both = FoundationRoleFactory(role=FoundationRole.Role.PROGRAMME_OFFICER).user
        FoundationRole.objects.create(user=both, role=FoundationRole.Role.APPROVER)
        client = signed_in(both)
        url = reverse("grants:grant-create") + f"?project={project.pk}"
        assert client.post(url, propose_data()).status_code == 302
        grant = Grant.objects.get()
        page = client.get(reverse("grants:staff-grant", args=[grant.pk]))
        assert page.context["is_proposer"] and 'id="approve-refused"' in text(page)
        assert reverse("grants:grant-action", args=[grant.pk, "approve"]) not in text(page)
        response = client.post(reverse("grants:grant-action", args=[grant.pk, "approve"]))
        assert response.status_code == 302
        assert flash(response)  # the service's reason
        grant.refresh_from_db()
        assert grant.state == Grant.State.PROPOSED and grant.approved_by is None
        assert not JournalEntry.objects.filter(key__startswith=f"grant:{grant.pk}").exists()

    def test_approve_needs_the_approver_role(self, staff, project):
        grant = proposed_grant(project, staff)
        url = reverse("grants:grant-action", args=[grant.pk, "approve"])
        assert signed_in(staff.finance).post(url).status_code == 403
        grant.refresh_from_db()
        assert grant.state == Grant.State.PROPOSED

    def test_actions_are_post_only_and_known(self, staff, project):
        grant = proposed_grant(project, staff)
        client = signed_in(staff.approver)
        assert (
            client.get(reverse("grants:grant-action", args=[grant.pk, "approve"])).status_code
            == 405
        )
        assert (
            client.post(reverse("grants:grant-action", args=[grant.pk, "explode"])).status_code
            == 404
        )

    def test_cancel_needs_a_reason_then_gives_the_money_back(self, staff, project):
        grant = approved_grant(project, staff)
        client = signed_in(staff.approver)
        page = client.get(reverse("grants:staff-grant", args=[grant.pk]))
        assert page.context["cancel_effect"]["fee_back"] == 7_500
        assert "¥7,500" in text(page)
        url = reverse("grants:grant-action", args=[grant.pk, "cancel"])
        response = client.post(url, {"reason": "  "})
        assert response.status_code == 200
        assert response.context["cancel_form"].errors["reason"]
        grant.refresh_from_db()
        assert grant.state == Grant.State.APPROVED
        response = client.post(url, {"reason": "団体の解散"})
        assert response.status_code == 302
        grant.refresh_from_db()
        assert grant.state == Grant.State.CANCELLED
        assert balance(grant.payable_account) == 0
        project.refresh_from_db()
        assert project.state == Project.State.CLOSED  # it can be granted again

    def test_finance_may_not_cancel(self, staff, project):
        grant = proposed_grant(project, staff)
        url = reverse("grants:grant-action", args=[grant.pk, "cancel"])
        assert signed_in(staff.finance).post(url, {"reason": "x"}).status_code == 403
        grant.refresh_from_db()
        assert grant.state == Grant.State.PROPOSED

    def test_clawback_of_a_paid_tranche(self, staff, project):
        grant = approved_grant(project, staff)
        confirmed_bank_account(grant.organization)
        batch = exported_batch(grant, staff.finance)
        services.batch_mark_paid(batch=batch, actor=staff.finance)
        tranche = grant.tranches.get()
        client = signed_in(staff.officer)
        page = client.get(reverse("grants:staff-grant", args=[grant.pk]))
        assert reverse("grants:tranche-clawback", args=[tranche.pk]) in text(page)
        url = reverse("grants:tranche-clawback", args=[tranche.pk])
        assert client.get(url).status_code == 200
        prefix = f"clawback-{tranche.pk}"
        too_much = client.post(url, {f"{prefix}-amount_yen": "100000", f"{prefix}-reason": "x"})
        assert too_much.status_code == 200 and too_much.context["form"].errors["amount_yen"]
        assert not Clawback.objects.exists()
        response = client.post(
            url, {f"{prefix}-amount_yen": "10,000", f"{prefix}-reason": "目的外"}
        )
        assert response.status_code == 302
        assert Clawback.objects.get().amount_yen == 10_000
        assert signed_in(staff.finance).post(url, {}).status_code == 403


# --- Report review -------------------------------------------------------------------------------


class TestReportReview:
    @pytest.fixture
    def final(self, staff, project):
        return submitted_final(approved_grant(project, staff))

    def test_shows_the_report(self, staff, final):
        response = signed_in(staff.finance).get(reverse("grants:staff-report", args=[final.pk]))
        assert response.status_code == 200
        body = text(response)
        assert "延べ480人が利用。" in body and AMOUNT in body
        assert response.context["form"] is None  # finance read only

    def test_accept(self, staff, final):
        url = reverse("grants:staff-report", args=[final.pk])
        client = signed_in(staff.officer)
        assert client.get(url).context["form"] is not None
        response = client.post(url, {"decision": "accept", "note": ""})
        assert response.status_code == 302
        final.refresh_from_db()
        assert final.state == Report.State.ACCEPTED and final.reviewed_by == staff.officer

    def test_changes_need_a_note(self, staff, final):
        url = reverse("grants:staff-report", args=[final.pk])
        client = signed_in(staff.officer)
        response = client.post(url, {"decision": "changes", "note": ""})
        assert response.status_code == 200
        assert response.context["form"].errors["note"]
        final.refresh_from_db()
        assert final.state == Report.State.SUBMITTED
        assert client.post(url, {"decision": "changes", "note": "領収書を"}).status_code == 302
        final.refresh_from_db()
        assert final.state == Report.State.CHANGES_REQUESTED

    def test_only_officers_review(self, staff, final):
        url = reverse("grants:staff-report", args=[final.pk])
        assert signed_in(staff.approver).post(url, {"decision": "accept"}).status_code == 403
        final.refresh_from_db()
        assert final.state == Report.State.SUBMITTED


# --- Bank accounts -------------------------------------------------------------------------------


def entered_account(organization, actor: User) -> BankAccount:
    return services.bank_account_submit(
        organization=organization,
        actor=actor,
        bank_code="0179",
        branch_code="500",
        account_type="1",
        account_number="7654321",
        holder_kana="トクヒ）サガキョウドウ",
    )


class TestBankAccounts:
    def test_masked_except_to_finance(self, staff):
        entered_account(OrganizationFactory(), staff.finance)
        url = reverse("grants:staff-bank-accounts")
        officer_page = text(signed_in(staff.officer).get(url))
        assert "***4321" in officer_page and "7654321" not in officer_page
        other_finance = FoundationRoleFactory(role=FoundationRole.Role.FINANCE).user
        response = signed_in(other_finance).get(url)
        assert response.status_code == 200 and "7654321" in text(response)

    def test_enter_then_another_finance_member_confirms(self, staff):
        cso = OrganizationFactory()
        client = signed_in(staff.finance)
        create = reverse("grants:staff-bank-account-create")
        assert client.get(create).status_code == 200
        data = {
            "organization": cso.pk,
            "bank_code": "0179",
            "branch_code": "500",
            "account_type": "1",
            "account_number": "1234",
            "holder_kana": "トクヒ）サガキョウドウ",
        }
        assert client.post(create, data).status_code == 302
        account = BankAccount.objects.get()
        assert account.account_number == "0001234" and account.state == "pending"
        # Whoever entered it is told someone else confirms, and is refused if they try.
        page = client.get(reverse("grants:staff-bank-accounts"))
        assert reverse("grants:bank-account-action", args=[account.pk, "confirm"]) not in text(page)
        confirm = reverse("grants:bank-account-action", args=[account.pk, "confirm"])
        refused = client.post(confirm)
        assert refused.status_code == 302 and flash(refused)
        account.refresh_from_db()
        assert account.state == BankAccount.State.PENDING
        other = FoundationRoleFactory(role=FoundationRole.Role.FINANCE).user
        assert signed_in(other).post(confirm).status_code == 302
        account.refresh_from_db()
        assert account.state == BankAccount.State.CONFIRMED and account.confirmed_by == other

    def test_bad_bank_code_is_a_form_error(self, staff):
        data = {
            "organization": OrganizationFactory().pk,
            "bank_code": "9998",
            "branch_code": "500",
            "account_type": "1",
            "account_number": "1234567",
            "holder_kana": "サガ",
        }
        response = signed_in(staff.finance).post(reverse("grants:staff-bank-account-create"), data)
        assert response.status_code == 200 and response.context["form"].errors
        assert not BankAccount.objects.exists()

    def test_reject_needs_a_note(self, staff):
        cso = OrganizationFactory()
        account = entered_account(cso, cso_admin(cso))
        url = reverse("grants:bank-account-action", args=[account.pk, "reject"])
        client = signed_in(staff.finance)
        response = client.post(url, {f"reject-{account.pk}-note": ""})
        assert response.status_code == 200
        account.refresh_from_db()
        assert account.state == BankAccount.State.PENDING
        assert client.post(url, {f"reject-{account.pk}-note": "名義が違う"}).status_code == 302
        account.refresh_from_db()
        assert account.state == BankAccount.State.REJECTED

    def test_only_finance_confirm_or_enter(self, staff):
        account = entered_account(OrganizationFactory(), staff.finance)
        url = reverse("grants:bank-account-action", args=[account.pk, "confirm"])
        assert signed_in(staff.officer).post(url).status_code == 403
        create = reverse("grants:staff-bank-account-create")
        assert signed_in(staff.approver).get(create).status_code == 403
        account.refresh_from_db()
        assert account.state == BankAccount.State.PENDING


def cso_admin(organization) -> User:
    return MembershipFactory(organization=organization, role=Membership.Role.ADMIN).user


# --- Transfers -----------------------------------------------------------------------------------


class TestTransfers:
    def test_the_whole_flow_through_the_pages(self, staff, project):
        # Propose (officer) → approve (approver) → batch, file, paid (finance).
        officer, approver, finance = (
            signed_in(staff.officer),
            signed_in(staff.approver),
            signed_in(staff.finance),
        )
        url = reverse("grants:grant-create") + f"?project={project.pk}"
        data = propose_data(tranche_1_amount="92502", tranche_2_amount="", tranche_2_due_on="")
        assert officer.post(url, data).status_code == 302
        grant = Grant.objects.get()
        assert (
            approver.post(reverse("grants:grant-action", args=[grant.pk, "approve"])).status_code
            == 302
        )
        confirmed_bank_account(grant.organization)
        page = finance.get(reverse("grants:staff-transfers"))
        assert page.status_code == 200 and AMOUNT in text(page)
        tranche = grant.tranches.get()
        assert [t.blockers for t in page.context["due"]] == [[]]
        response = finance.post(
            reverse("grants:staff-transfers"),
            {"transfer_date": transfer_day().isoformat(), "tranches": [tranche.pk]},
        )
        assert response.status_code == 302
        batch = TransferBatch.objects.get()
        assert response["Location"] == reverse("grants:staff-batch", args=[batch.pk])
        page = finance.get(reverse("grants:staff-batch", args=[batch.pk]))
        assert page.status_code == 200 and AMOUNT in text(page) and "***4567" in text(page)
        # Recording before the file went to the bank is refused.
        early = finance.post(reverse("grants:batch-paid", args=[batch.pk]))
        assert early.status_code == 302 and flash(early)
        assert grant.tranches.get().state == Tranche.State.IN_BATCH
        download = finance.post(reverse("grants:batch-file", args=[batch.pk]))
        assert download.status_code == 200
        assert download["Content-Type"] == "text/plain; charset=Shift_JIS"
        assert download["Content-Disposition"] == f'attachment; filename="{batch.filename}"'
        assert len(download.content) % 122 == 0  # 120-byte records, each ending CRLF
        again = finance.post(reverse("grants:batch-file", args=[batch.pk]))
        assert again.content == download.content
        assert finance.post(reverse("grants:batch-paid", args=[batch.pk])).status_code == 302
        grant.refresh_from_db()
        batch.refresh_from_db()
        assert grant.state == Grant.State.PAID and batch.state == TransferBatch.State.SETTLED
        assert grant.tranches.get().paid_on == transfer_day()
        page = finance.get(reverse("grants:staff-grant", args=[grant.pk]))
        assert str(batch) in text(page)

    def test_officer_sees_the_transfers_read_only_with_blockers(self, staff, project):
        approved_grant(project, staff)  # the CSO has no confirmed account
        response = signed_in(staff.officer).get(reverse("grants:staff-transfers"))
        assert response.status_code == 200
        assert not response.context["may_manage"]
        assert response.context["due"][0].blockers
        assert 'name="tranches"' not in text(response)
        post = signed_in(staff.officer).post(reverse("grants:staff-transfers"), {})
        assert post.status_code == 403

    def test_a_weekend_or_a_blocked_tranche_is_a_form_error(self, staff, project):
        grant = approved_grant(project, staff)
        tranche = grant.tranches.get()
        client = signed_in(staff.finance)
        saturday = today() + dt.timedelta(days=(5 - today().weekday()) % 7 or 7)
        response = client.post(
            reverse("grants:staff-transfers"),
            {"transfer_date": saturday.isoformat(), "tranches": [tranche.pk]},
        )
        assert response.status_code == 200 and response.context["form"].errors
        response = client.post(
            reverse("grants:staff-transfers"),
            {"transfer_date": transfer_day().isoformat(), "tranches": [tranche.pk]},
        )
        assert response.status_code == 200  # no confirmed bank account
        assert not TransferBatch.objects.exists()

    def test_a_failed_line_needs_a_reason_and_schedules_the_tranche_again(self, staff, project):
        grant = approved_grant(project, staff)
        confirmed_bank_account(grant.organization)
        batch = exported_batch(grant, staff.finance)
        line = batch.lines.get()
        client = signed_in(staff.finance)
        url = reverse("grants:line-action", args=[line.pk, "failed"])
        response = client.post(url, {f"failed-{line.pk}-reason": ""})
        assert response.status_code == 200
        assert grant.tranches.get().state == Tranche.State.IN_BATCH
        assert client.post(url, {f"failed-{line.pk}-reason": "口座なし"}).status_code == 302
        assert grant.tranches.get().state == Tranche.State.SCHEDULED
        assert balance(grant.payable_account) == 92_502

    def test_a_line_paid_by_itself(self, staff, project):
        grant = approved_grant(project, staff)
        confirmed_bank_account(grant.organization)
        batch = exported_batch(grant, staff.finance)
        line = batch.lines.get()
        url = reverse("grants:line-action", args=[line.pk, "paid"])
        assert signed_in(staff.officer).post(url).status_code == 403
        assert signed_in(staff.finance).post(url).status_code == 302
        assert grant.tranches.get().state == Tranche.State.PAID
        again = signed_in(staff.finance).post(url)
        assert again.status_code == 302 and flash(again)  # already recorded, nothing posted twice

    def test_only_finance_download(self, staff, project):
        grant = approved_grant(project, staff)
        confirmed_bank_account(grant.organization)
        batch = services.batch_create(
            transfer_date=transfer_day(), tranches=list(grant.tranches.all()), actor=staff.finance
        )
        url = reverse("grants:batch-file", args=[batch.pk])
        assert signed_in(staff.officer).post(url).status_code == 403
        assert signed_in(staff.finance).get(url).status_code == 405
        batch.refresh_from_db()
        assert batch.state == TransferBatch.State.DRAFT
        page = signed_in(staff.officer).get(reverse("grants:staff-batch", args=[batch.pk]))
        assert page.status_code == 200 and url not in text(page)


# --- Who may come in -----------------------------------------------------------------------------

STAFF_PAGES = (
    "grants:staff-pipeline",
    "grants:grant-create",
    "grants:staff-bank-accounts",
    "grants:staff-transfers",
)


class TestAccess:
    def test_non_staff_get_403(self):
        client = signed_in(UserFactory())
        for name in STAFF_PAGES:
            assert client.get(reverse(name)).status_code == 403, name

    def test_cso_members_cannot_reach_staff_pages(self, staff, project):
        grant = approved_grant(project, staff)
        member = MembershipFactory(organization=grant.organization, role=Membership.Role.ADMIN).user
        client = signed_in(member)
        for url in (
            reverse("grants:staff-grant", args=[grant.pk]),
            reverse("grants:staff-pipeline"),
            reverse("grants:staff-bank-accounts"),
        ):
            assert client.get(url).status_code == 403
        cancel = reverse("grants:grant-action", args=[grant.pk, "cancel"])
        assert client.post(cancel, {"reason": "x"}).status_code == 403
        grant.refresh_from_db()
        assert grant.state == Grant.State.APPROVED

    def test_anonymous_is_sent_to_sign_in(self):
        response = Client().get(reverse("grants:staff-pipeline"))
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]

    def test_staff_without_two_factor_are_sent_to_set_it_up(self):
        user = FoundationRoleFactory(role=FoundationRole.Role.FINANCE, mfa=False).user
        response = signed_in(user).get(reverse("grants:staff-pipeline"))
        assert response.status_code == 302 and "next=" in response["Location"]

    def test_a_post_without_the_csrf_token_is_refused(self, staff, project):
        grant = proposed_grant(project, staff)
        client = signed_in(staff.approver, enforce_csrf=True)
        response = client.post(reverse("grants:grant-action", args=[grant.pk, "approve"]))
        assert response.status_code == 403
        grant.refresh_from_db()
        assert grant.state == Grant.State.PROPOSED
