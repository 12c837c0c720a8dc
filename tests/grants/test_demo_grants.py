"""The demo grants (``grants.demo``, loaded last by ``manage.py load_demo``).

The whole command runs on a small register of its own (the register's loader is left out, as in
tests/fund/test_demo_pools.py): people, projects, pools, gifts, then the grants — one at every
stage, made through ``grants.services`` — and a second run adds nothing.
"""

import datetime as dt
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import transaction
from django.test import override_settings
from django.utils import timezone

from accounts.models import Membership
from fund.checks import run_checks
from fund.demo import PLAN, demo_projects
from fund.ledger import EntryKind, balance
from fund.models import JournalEntry, Posting, Project
from grants import services
from grants.demo import (
    APPROVED,
    CLOSED,
    CSO_ADMIN,
    CSO_MEMBER,
    GENERAL,
    GRANTS,
    PART_PAID,
    PROPOSED,
    REPORTED,
    demo_grants,
    load_grants_demo,
)
from grants.models import (
    BankAccount,
    BankAccountEvent,
    Grant,
    GrantEvent,
    Report,
    Tranche,
    TransferBatch,
    TransferLine,
)
from proposals.demo import MUNICIPALITIES
from proposals.fiscal import JAPAN
from tests.factories import MunicipalityFactory, PrefectureFactory
from tests.fund.test_projects import decided

pytestmark = pytest.mark.django_db

PROGRAMME_OFFICER = "programme@civicfund.example.jp"
APPROVER = "approver@civicfund.example.jp"
FINANCE = "finance@civicfund.example.jp"
MODELS = (
    Grant,
    Tranche,
    Report,
    GrantEvent,
    BankAccount,
    BankAccountEvent,
    TransferBatch,
    TransferLine,
    Membership,
    JournalEntry,
    Posting,
)


def counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in MODELS}


def load_demo() -> str:
    out = StringIO()
    call_command("load_demo", stdout=out)
    return out.getvalue()


@pytest.fixture(scope="module")
def loaded(django_db_setup, django_db_blocker) -> str:
    """``load_demo`` on a register of just enough fundable proposals, once for the module, inside
    a transaction rolled back at its end; each test's own transaction nests inside it."""
    from config.celery import app

    fast = override_settings(
        PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
        LANGUAGE_CODE="ja",
        TIME_ZONE="Asia/Tokyo",
    )
    with (
        django_db_blocker.unblock(),
        fast,
        transaction.atomic(),
        pytest.MonkeyPatch.context() as mp,
    ):
        mp.setitem(app.conf, "task_always_eager", True)
        PrefectureFactory()
        MunicipalityFactory(code=MUNICIPALITIES[0][0], name=MUNICIPALITIES[0][1])
        for _ in PLAN:
            decided()
        mp.setattr(
            "grants.management.commands.load_demo.load_register_demo", lambda stdout=None: {}
        )
        yield load_demo()
        transaction.set_rollback(True)


def today() -> dt.date:
    return timezone.localdate(timezone=JAPAN)


def test_a_grant_at_every_stage(loaded):
    assert "6 demo grants" in loaded
    grants = demo_grants()
    assert set(grants) == {spec.stage for spec in GRANTS}
    states = {stage: grant.state for stage, grant in grants.items()}
    assert states == {
        PROPOSED: Grant.State.PROPOSED,
        APPROVED: Grant.State.APPROVED,
        PART_PAID: Grant.State.APPROVED,
        REPORTED: Grant.State.PAID,
        CLOSED: Grant.State.CLOSED,
        GENERAL: Grant.State.APPROVED,
    }
    # Proposed by the programme officer, approved by the approver, on closed (now granted)
    # projects that raised money; the general fund's grant has no project.
    for stage, grant in grants.items():
        assert grant.proposed_by.email == PROGRAMME_OFFICER
        if stage == PROPOSED:
            assert grant.approved_by is None
            assert grant.project.state == Project.State.CLOSED
        else:
            assert grant.approved_by.email == APPROVER
        if stage == GENERAL:
            assert grant.source == Grant.Source.GENERAL_FUND and grant.project is None
        else:
            assert grant.source == Grant.Source.DESIGNATED
            assert grant.amount_yen == grant.gifts_yen - grant.fee_yen + grant.matched_yen > 0
            assert grant.purpose.startswith(f"「{grant.project.title}」")
            if stage != PROPOSED:
                assert grant.project.state == Project.State.GRANTED
        assert sum(t.amount_yen for t in grant.tranches.all()) == grant.amount_yen
    # One demo project is left open for gifts (the one with three days left).
    assert demo_projects()[2].state == Project.State.OPEN


def test_the_approved_grant_waits_for_its_first_transfer(loaded):
    grant = demo_grants()[APPROVED]
    first, second = grant.tranches.order_by("number")
    assert first.state == second.state == Tranche.State.SCHEDULED
    assert first.due_on <= today() < second.due_on
    assert second.requires_report and not first.requires_report
    assert grant.reports.filter(kind=Report.Kind.INTERIM, due_on__lt=second.due_on).exists()
    # Its CSO's account was entered by the CSO's admin and confirmed by finance.
    account = services.confirmed_account(grant.organization_id)
    assert account.submitted_by.email == CSO_ADMIN
    assert account.confirmed_by.email == FINANCE
    assert services.tranche_blockers(first, on=today()) == []


def test_the_part_paid_grant(loaded):
    grant = demo_grants()[PART_PAID]
    first, second = grant.tranches.order_by("number")
    assert first.state == Tranche.State.PAID and first.paid_on is not None
    assert second.state == Tranche.State.SCHEDULED and second.requires_report
    assert balance(grant.payable_account) == second.amount_yen  # still owed to the CSO
    line = TransferLine.objects.get(tranche=first)
    assert line.state == TransferLine.State.PAID
    assert line.batch.state == TransferBatch.State.SETTLED


def test_batches_were_exported_as_zengin_files(loaded):
    batches = TransferBatch.objects.all()
    assert batches.exists()
    next_day = services.zengin.next_bank_business_day(today())
    for batch in batches:
        assert batch.file is not None and batch.transfer_date == next_day
        records = bytes(batch.file).split(b"\r\n")
        records = [r for r in records if r]
        # Header, a data record per line, trailer, end: 120 bytes each.
        assert len(records) == batch.lines.count() + 3
        assert all(len(record) == 120 for record in records)
        assert batch.events.filter(action="export", actor__email=FINANCE).exists()
    assert JournalEntry.objects.filter(kind=EntryKind.TRANCHE_PAID).count() == (
        Tranche.objects.filter(state=Tranche.State.PAID).count()
    )


def test_the_reported_grant_awaits_review_of_its_final_report(loaded):
    grant = demo_grants()[REPORTED]
    assert not grant.tranches.exclude(state=Tranche.State.PAID).exists()
    assert balance(grant.payable_account) == 0
    interim = grant.reports.get(kind=Report.Kind.INTERIM)
    assert interim.state == Report.State.ACCEPTED
    assert interim.reviewed_by.email == PROGRAMME_OFFICER
    final = grant.reports.get(kind=Report.Kind.FINAL)
    assert final.state == Report.State.SUBMITTED
    assert final.submitted_by.email == CSO_MEMBER
    assert "子ども食堂" in final.narrative and final.outcomes
    assert grant.events.filter(action="report_submit", actor__email=CSO_MEMBER).count() == 2


def test_the_closed_grant_is_written_back_to_the_register(loaded):
    grant = demo_grants()[CLOSED]
    final = grant.reports.get(kind=Report.Kind.FINAL)
    assert final.state == Report.State.ACCEPTED
    assert final.reviewed_by.email == PROGRAMME_OFFICER
    assert grant.events.filter(action="close").exists()
    assessment = grant.project.proposal.assessment
    assert assessment.has_fund_outcome
    assert assessment.fund_grant == grant.reference
    assert assessment.fund_granted_yen == assessment.fund_paid_yen == grant.amount_yen
    assert "見守り" in assessment.fund_report


def test_the_general_fund_grant(loaded):
    grant = demo_grants()[GENERAL]
    assert "災害ボランティア" in grant.purpose
    assert grant.organization.memberships.filter(user__email=CSO_ADMIN).exists()
    # Three quarters of what the general fund held, in thousands of yen; the rest is left.
    assert grant.amount_yen % 1_000 == 0
    assert balance("general_fund") > 0


def test_the_cso_people_can_act_for_every_grantee(loaded):
    for grant in demo_grants().values():
        roles = dict(grant.organization.memberships.values_list("user__email", "role"))
        assert roles[CSO_ADMIN] == Membership.Role.ADMIN
        assert roles[CSO_MEMBER] == Membership.Role.MEMBER


def test_a_bank_account_change_awaits_confirmation(loaded):
    pending = BankAccount.objects.get(state=BankAccount.State.PENDING)
    assert pending.submitted_by.email == CSO_ADMIN
    assert services.confirmed_account(pending.organization_id) is not None  # a change
    assert pending.organization_id == demo_grants()[CLOSED].organization_id


def test_the_ledger_checks_pass_and_a_second_run_adds_nothing(loaded):
    assert run_checks() == {}
    before = counts()
    assert set(load_grants_demo().values()) == {0}
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(
            "grants.management.commands.load_demo.load_register_demo", lambda stdout=None: {}
        )
        assert "nothing to add" in load_demo()
    assert counts() == before
    assert run_checks() == {}
