"""The grants' services: terms, maker-checker, the ledger at every step, transfers, reports and
the write-back to the register. Refusals change nothing."""

import datetime as dt

import pytest
from dateutil.relativedelta import relativedelta
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone, translation

from fund.checks import run_checks
from fund.ledger import balance, designated
from fund.models import JournalEntry, Project
from grants import services, zengin
from grants.models import BankAccount, Grant, GrantEvent, Report, Tranche, TransferLine
from proposals.models import Proposal
from tests.factories import (
    MembershipFactory,
    OrganizationFactory,
    approved_grant,
    confirmed_bank_account,
    funded_project,
    grant_staff,
)

pytestmark = pytest.mark.django_db
T = services.TrancheTerms


@pytest.fixture(autouse=True)
def _in_english():
    """The refusals are matched by their English text (the pages' tests read them in Japanese)."""
    with translation.override("en"):
        yield


@pytest.fixture
def staff():
    return grant_staff()


@pytest.fixture
def project():
    # Gifts ¥30,000 + ¥20,001, matched 1:1: fee 15% of ¥50,001 = ¥7,500.15 → ¥7,500.
    return funded_project(gifts=(30_000, 20_001))


def next_business_day(after_days: int = 0) -> dt.date:
    return zengin.next_bank_business_day(timezone.localdate() + dt.timedelta(days=after_days))


class TestTerms:
    def test_fee_is_rounded_down_and_matches_carry_no_fee(self, project):
        terms = services.grant_terms(project)
        assert (terms.gifts_yen, terms.fee_yen, terms.matched_yen) == (50_001, 7_500, 50_001)
        assert terms.amount_yen == 50_001 - 7_500 + 50_001

    def test_proposal_records_terms_tranches_and_reports(self, project, staff):
        ends = timezone.localdate() + dt.timedelta(days=60)
        grant = services.grant_propose(
            actor=staff.officer,
            project=project,
            ends_on=ends,
            tranches=[T(60_000, timezone.localdate()), T(32_502, ends, requires_report=True)],
            interim_report_due=ends - dt.timedelta(days=10),
        )
        assert grant.state == Grant.State.PROPOSED
        assert grant.amount_yen == 92_502
        assert grant.organization_id == project.proposal.organization_id
        assert [t.amount_yen for t in grant.tranches.all()] == [60_000, 32_502]
        final = grant.reports.get(kind=Report.Kind.FINAL)
        assert final.due_on == ends + relativedelta(months=2)
        assert grant.events.get().action == "propose"
        # Nothing is posted until approval.
        assert not JournalEntry.objects.filter(key__startswith=f"grant:{grant.pk}").exists()

    @pytest.mark.parametrize(
        "tranches, message",
        [
            ([], "at least one tranche"),
            ([T(1, dt.date(2027, 1, 1))], "add up to"),
            ([T(50_000, dt.date(2027, 2, 1)), T(42_502, dt.date(2027, 1, 1))], "before the one"),
            ([T(92_502, dt.date(2027, 1, 1), requires_report=True)], "first tranche"),
            ([T(0, dt.date(2027, 1, 1)), T(92_502, dt.date(2027, 1, 1))], "whole yen"),
        ],
    )
    def test_bad_schedule_is_refused_and_nothing_saved(self, project, staff, tranches, message):
        with pytest.raises(ValidationError, match=message):
            services.grant_propose(
                actor=staff.officer,
                project=project,
                ends_on=dt.date(2027, 3, 31),
                tranches=tranches,
            )
        assert not Grant.objects.exists()

    def test_final_report_later_than_two_months_after_the_end_is_refused(self, project, staff):
        with pytest.raises(ValidationError, match="two months"):
            services.grant_propose(
                actor=staff.officer,
                project=project,
                ends_on=dt.date(2027, 3, 31),
                final_report_due=dt.date(2027, 6, 1),
                tranches=[T(92_502, dt.date(2027, 1, 1))],
            )
        assert not Grant.objects.exists()

    def test_open_project_cannot_be_granted(self, staff):
        project = funded_project()
        Project.objects.filter(pk=project.pk).update(state=Project.State.OPEN)
        project.refresh_from_db()
        with pytest.raises(ValidationError, match="closed"):
            approved_grant(project, staff)

    def test_second_live_grant_for_a_project_is_refused(self, project, staff):
        approved_grant(project, staff)
        project.refresh_from_db()
        with pytest.raises(ValidationError):
            services.grant_propose(
                actor=staff.officer,
                project=project,
                ends_on=dt.date(2027, 3, 31),
                tranches=[T(1, dt.date(2027, 1, 1))],
            )

    def test_only_programme_officers_propose(self, project, staff):
        with pytest.raises(PermissionDenied):
            services.grant_propose(
                actor=staff.finance,
                project=project,
                ends_on=dt.date(2027, 3, 31),
                tranches=[T(92_502, dt.date(2027, 1, 1))],
            )


class TestApproval:
    def test_approval_posts_grant_and_fee_and_marks_project_granted(self, project, staff):
        grant = approved_grant(project, staff)
        assert grant.state == Grant.State.APPROVED and grant.approved_by == staff.approver
        assert balance(grant.payable_account) == 92_502
        assert balance("fee_income") == 7_500
        assert balance(designated(project)) == 0
        project.refresh_from_db()
        assert project.state == Project.State.GRANTED
        assert [e.action for e in grant.events.all()] == ["propose", "approve"]

    def test_the_proposer_can_never_approve_even_holding_both_roles(self, project, staff):
        from accounts.models import FoundationRole

        FoundationRole.objects.create(user=staff.officer, role=FoundationRole.Role.APPROVER)
        from accounts.policy import forget_roles

        forget_roles(staff.officer)
        grant = services.grant_propose(
            actor=staff.officer,
            project=project,
            ends_on=dt.date(2027, 3, 31),
            tranches=[T(92_502, dt.date(2027, 1, 1))],
        )
        with pytest.raises(PermissionDenied, match="another approver"):
            services.grant_approve(grant=grant, actor=staff.officer)
        grant.refresh_from_db()
        assert grant.state == Grant.State.PROPOSED and grant.approved_by is None
        assert balance(designated(project)) == 100_002

    def test_a_programme_officer_cannot_approve(self, project, staff):
        other_officer = grant_staff().officer
        grant = services.grant_propose(
            actor=staff.officer,
            project=project,
            ends_on=dt.date(2027, 3, 31),
            tranches=[T(92_502, dt.date(2027, 1, 1))],
        )
        with pytest.raises(PermissionDenied):
            services.grant_approve(grant=grant, actor=other_officer)

    def test_approving_twice_posts_once(self, project, staff):
        grant = approved_grant(project, staff)
        with pytest.raises(ValidationError):
            services.grant_approve(grant=grant, actor=grant_staff().approver)
        assert JournalEntry.objects.filter(key=f"grant:{grant.pk}:approved").count() == 1

    def test_general_fund_grant(self, staff):
        from tests.factories import give

        give(None, 80_000)
        cso = OrganizationFactory()
        grant = services.grant_propose(
            actor=staff.officer,
            organization=cso,
            purpose="災害時の炊き出し訓練",
            amount_yen=50_000,
            ends_on=dt.date(2027, 3, 31),
            tranches=[T(50_000, dt.date(2027, 1, 1))],
        )
        services.grant_approve(grant=grant, actor=staff.approver)
        assert balance("general_fund") == 30_000
        assert balance(grant.payable_account) == 50_000

    def test_general_fund_grant_beyond_the_fund_is_refused(self, staff):
        with pytest.raises(ValidationError, match="general fund holds"):
            services.grant_propose(
                actor=staff.officer,
                organization=OrganizationFactory(),
                purpose="x",
                amount_yen=1,
                ends_on=dt.date(2027, 3, 31),
                tranches=[T(1, dt.date(2027, 1, 1))],
            )


class TestBankAccounts:
    def test_holder_name_is_normalised_and_bank_names_come_from_the_code_list(self):
        cso = OrganizationFactory()
        admin = MembershipFactory(organization=cso, role="admin").user
        account = services.bank_account_submit(
            organization=cso,
            actor=admin,
            bank_code="0179",
            branch_code="500",
            account_type="1",
            account_number="0012345",
            holder_kana="とくひ）さがきょうどう",
        )
        assert account.holder_kana == "ﾄｸﾋ)ｻｶﾞｷﾖｳﾄﾞｳ"
        assert account.bank_name == "佐賀" and account.state == BankAccount.State.PENDING

    @pytest.mark.parametrize(
        "field, value, key",
        [
            ("bank_code", "9998", "bank_code"),
            ("branch_code", "999", "branch_code"),
            ("account_number", "12345", "account_number"),
            ("holder_kana", "佐賀協働", "holder_kana"),
        ],
    )
    def test_invalid_account_is_refused_with_the_field_named(self, field, value, key):
        cso = OrganizationFactory()
        admin = MembershipFactory(organization=cso, role="admin").user
        data = dict(
            bank_code="0179",
            branch_code="500",
            account_type="1",
            account_number="0012345",
            holder_kana="ｻｶﾞ",
        )
        data[field] = value
        with pytest.raises(ValidationError) as e:
            services.bank_account_submit(organization=cso, actor=admin, **data)
        assert key in e.value.message_dict
        assert not BankAccount.objects.exists()

    def test_whoever_entered_it_cannot_confirm_it(self, staff):
        cso = OrganizationFactory()
        account = services.bank_account_submit(
            organization=cso,
            actor=staff.finance,
            bank_code="0179",
            branch_code="500",
            account_type="1",
            account_number="0012345",
            holder_kana="ｻｶﾞ",
        )
        with pytest.raises(PermissionDenied):
            services.bank_account_confirm(account=account, actor=staff.finance)
        confirmed = services.bank_account_confirm(account=account, actor=grant_staff().finance)
        assert confirmed.state == BankAccount.State.CONFIRMED

    def test_a_new_confirmed_account_replaces_the_old(self):
        cso = OrganizationFactory()
        first = confirmed_bank_account(cso)
        second = confirmed_bank_account(cso, holder_kana="ｻｶﾞ")
        first.refresh_from_db()
        assert first.state == BankAccount.State.REPLACED
        assert services.confirmed_account(cso.pk) == second

    def test_another_organisations_member_cannot_enter_an_account(self):
        cso = OrganizationFactory()
        outsider = MembershipFactory(role="admin").user
        with pytest.raises(PermissionDenied):
            services.bank_account_submit(
                organization=cso,
                actor=outsider,
                bank_code="0179",
                branch_code="500",
                account_type="1",
                account_number="0012345",
                holder_kana="ｻｶﾞ",
            )


class TestTransfersAndReports:
    def test_the_whole_way_to_the_register(self, project, staff):
        grant = approved_grant(project, staff)
        assert run_checks() == {}
        confirmed_bank_account(grant.organization)
        day = next_business_day()
        batch = services.batch_create(
            transfer_date=day, tranches=grant.tranches.all(), actor=staff.finance
        )
        assert run_checks() == {}
        data = services.batch_export(batch=batch, actor=staff.finance)
        assert len(data) == 120 * 4 + 2 * 4
        assert services.batch_export(batch=batch, actor=staff.finance) == data
        assert services.batch_mark_paid(batch=batch, actor=staff.finance) == 1
        assert services.batch_mark_paid(batch=batch, actor=staff.finance) == 0
        grant.refresh_from_db()
        assert grant.state == Grant.State.PAID
        assert balance(grant.payable_account) == 0
        assert run_checks() == {}
        assert balance("bank") == -92_502  # debit-normal: the transfer is a credit

        member = MembershipFactory(organization=grant.organization).user
        final = grant.reports.get(kind=Report.Kind.FINAL)
        services.report_submit(
            report=final,
            actor=member,
            narrative="子ども食堂を週2回開いた。",
            outcomes="延べ480人が利用。",
            spent_yen=92_502,
        )
        assert run_checks() == {}
        services.report_accept(report=final, actor=staff.officer, note="確認しました。")
        assert run_checks() == {}
        grant.refresh_from_db()
        assert grant.state == Grant.State.CLOSED
        proposal = Proposal.objects.get(pk=project.proposal_id)
        assert proposal.state == Proposal.State.ASSESSED
        a = proposal.assessment
        assert (a.fund_raised_yen, a.fund_matched_yen, a.fund_granted_yen) == (
            100_002,
            50_001,
            92_502,
        )
        assert (a.fund_fee_yen, a.fund_paid_yen) == (7_500, 92_502)
        assert "延べ480人" in a.fund_report
        assert proposal.events.filter(action="fund_outcome", actor=staff.officer).exists()

    def test_tranche_waits_for_the_report_due_before_it(self, project, staff):
        today = timezone.localdate()
        grant = approved_grant(
            project,
            staff,
            tranches=[T(50_000, today), T(42_502, today, requires_report=True)],
            interim_report_due=today,
            ends_on=today + dt.timedelta(days=30),
        )
        confirmed_bank_account(grant.organization)
        second = grant.tranches.get(number=2)
        assert "report" in " ".join(services.tranche_blockers(second, on=today))
        with pytest.raises(ValidationError, match="report"):
            services.batch_create(
                transfer_date=next_business_day(), tranches=[second], actor=staff.finance
            )
        assert not TransferLine.objects.exists()

    def test_no_confirmed_account_blocks_the_transfer(self, project, staff):
        grant = approved_grant(project, staff)
        with pytest.raises(ValidationError, match="bank account"):
            services.batch_create(
                transfer_date=next_business_day(),
                tranches=grant.tranches.all(),
                actor=staff.finance,
            )

    def test_transfer_date_must_be_a_bank_business_day(self, project, staff):
        grant = approved_grant(project, staff)
        confirmed_bank_account(grant.organization)
        saturday = timezone.localdate() + dt.timedelta(
            days=(5 - timezone.localdate().weekday()) % 7 or 7
        )
        with pytest.raises(ValidationError, match="business day"):
            services.batch_create(
                transfer_date=saturday, tranches=grant.tranches.all(), actor=staff.finance
            )

    def test_failed_line_reschedules_the_tranche_without_posting(self, project, staff):
        grant = approved_grant(project, staff)
        confirmed_bank_account(grant.organization)
        batch = services.batch_create(
            transfer_date=next_business_day(), tranches=grant.tranches.all(), actor=staff.finance
        )
        line = batch.lines.get()
        with pytest.raises(ValidationError, match="Download"):
            services.line_mark_failed(line=line, actor=staff.finance, reason="口座名義相違")
        services.batch_export(batch=batch, actor=staff.finance)
        assert services.line_mark_failed(line=line, actor=staff.finance, reason="口座名義相違")
        tranche = grant.tranches.get()
        assert tranche.state == Tranche.State.SCHEDULED
        assert balance(grant.payable_account) == grant.amount_yen
        # It can go into a new batch and be paid there.
        batch2 = services.batch_create(
            transfer_date=next_business_day(), tranches=[tranche], actor=staff.finance
        )
        services.batch_export(batch=batch2, actor=staff.finance)
        services.batch_mark_paid(batch=batch2, actor=staff.finance)
        assert balance(grant.payable_account) == 0

    def test_a_transfer_is_not_recorded_before_its_date(self, project, staff, monkeypatch):
        grant = approved_grant(project, staff)
        confirmed_bank_account(grant.organization)
        day = services.today()
        batch = services.batch_create(
            transfer_date=day, tranches=grant.tranches.all(), actor=staff.finance
        )
        services.batch_export(batch=batch, actor=staff.finance)
        monkeypatch.setattr(services, "today", lambda: day - dt.timedelta(days=1))
        with pytest.raises(ValidationError, match="on or after"):
            services.batch_mark_paid(batch=batch, actor=staff.finance)
        with pytest.raises(ValidationError, match="on or after"):
            services.line_mark_paid(line=batch.lines.get(), actor=staff.finance)
        assert batch.lines.get().state == TransferLine.State.PENDING
        assert not JournalEntry.objects.filter(key__startswith="tranche:").exists()
        monkeypatch.setattr(services, "today", lambda: day)
        assert services.batch_mark_paid(batch=batch, actor=staff.finance) == 1
        assert grant.tranches.get().paid_on == day

    def test_someone_elses_grant_report_is_refused(self, project, staff):
        grant = approved_grant(project, staff)
        outsider = MembershipFactory().user
        final = grant.reports.get(kind=Report.Kind.FINAL)
        with pytest.raises(PermissionDenied):
            services.report_submit(
                report=final, actor=outsider, narrative="x", outcomes="y", spent_yen=1
            )
        final.refresh_from_db()
        assert final.state == Report.State.DUE and final.narrative == ""

    def test_changes_requested_then_resubmitted(self, project, staff):
        grant = approved_grant(project, staff)
        member = MembershipFactory(organization=grant.organization).user
        final = grant.reports.get(kind=Report.Kind.FINAL)
        services.report_submit(report=final, actor=member, narrative="a", outcomes="b", spent_yen=0)
        with pytest.raises(ValidationError):
            services.report_request_changes(report=final, actor=staff.officer, note=" ")
        services.report_request_changes(report=final, actor=staff.officer, note="領収書を添付")
        services.report_submit(
            report=final, actor=member, narrative="a2", outcomes="b", spent_yen=1
        )
        final.refresh_from_db()
        assert final.state == Report.State.SUBMITTED and final.narrative == "a2"


class TestCancellation:
    def test_unpaid_grant_returns_money_and_fee_and_the_project_can_be_granted_again(
        self, project, staff
    ):
        grant = approved_grant(project, staff)
        services.grant_cancel(grant=grant, actor=staff.approver, reason="CSO解散")
        assert balance(designated(project)) == 100_002
        assert balance(grant.payable_account) == 0 and balance("fee_income") == 0
        project.refresh_from_db()
        assert project.state == Project.State.CLOSED
        again = approved_grant(project, grant_staff())
        assert again.amount_yen == grant.amount_yen

    def test_part_paid_grant_returns_the_unpaid_part_and_clawback_is_recorded(self, project, staff):
        today = timezone.localdate()
        grant = approved_grant(
            project, staff, tranches=[T(50_000, today), T(42_502, today + dt.timedelta(days=20))]
        )
        confirmed_bank_account(grant.organization)
        first = grant.tranches.get(number=1)
        batch = services.batch_create(
            transfer_date=next_business_day(), tranches=[first], actor=staff.finance
        )
        services.batch_export(batch=batch, actor=staff.finance)
        services.batch_mark_paid(batch=batch, actor=staff.finance)
        services.grant_cancel(grant=grant, actor=staff.officer, reason="事業中止")
        assert balance(designated(project)) == 42_502
        assert balance("fee_income") == 7_500
        first.refresh_from_db()
        with pytest.raises(ValidationError, match="left to claw back"):
            services.clawback_record(
                tranche=first, amount_yen=50_001, reason="x", actor=staff.officer
            )
        services.clawback_record(
            tranche=first, amount_yen=20_000, reason="未使用分", actor=staff.officer
        )
        assert GrantEvent.objects.filter(grant=grant, action="clawback").exists()

    def test_cancel_needs_a_reason(self, project, staff):
        grant = approved_grant(project, staff)
        with pytest.raises(ValidationError):
            services.grant_cancel(grant=grant, actor=staff.officer, reason="")
        grant.refresh_from_db()
        assert grant.state == Grant.State.APPROVED


@pytest.mark.ledger_left_broken
def test_the_ledger_check_sees_a_grant_that_owes_more_than_its_unpaid_tranches(project, staff):
    from fund.ledger import Line, post_entry

    grant = approved_grant(project, staff)
    assert run_checks() == {}
    post_entry(
        kind="test",
        key="stray",
        lines=[Line("bank", debit=1), Line(grant.payable_account, credit=1)],
    )
    problems = run_checks()["grants agree with the ledger"]
    assert problems == [f"{grant}: grant_payable ¥92,503 but unpaid tranches ¥92,502"]
