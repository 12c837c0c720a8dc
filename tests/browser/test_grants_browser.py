"""A project's grant from proposal to the register, in a real browser: the programme officer
proposes it, another person approves it, finance pays it with a Zengin file, the CSO files its
final report, the officer accepts it; the government officer reads the fund's figures on the
proposal and anyone reads the project's public timeline.

Pages are driven by stable hooks (names, ids, data-* attributes, URLs, button values), never by
visible text, so the test holds whether or not the new strings are translated yet. Screenshots
go to test-artifacts/screenshots/grants-*.png for a person to look at.
"""

import datetime as dt
import re
from types import SimpleNamespace

import pytest
from django.utils import timezone

from fund.checks import run_checks
from grants.models import BankAccount, Grant, Report, Tranche, TransferBatch
from proposals.models import Proposal
from tests.browser.test_matching_browser import sign_in
from tests.factories import (
    GovernmentStaffFactory,
    MembershipFactory,
    confirmed_bank_account,
    funded_project,
    grant_staff,
)

# Finance records a transfer on its date, never before: the journey plays out on the next bank
# business day, whatever day the tests run (an autouse fixture, as in tests/grants/).
from tests.grants.conftest import _on_a_bank_business_day  # noqa: F401

pytestmark = pytest.mark.browser

NARRATIVE = "干潟の清掃を月2回、観察会を3回開いた。"
OUTCOMES = "延べ210人が参加し、ごみ1.2トンを回収した。"
ZENGIN_RECORD = 122  # 120 characters and CR LF


@pytest.fixture
def journey(transactional_db):
    project = funded_project(gifts=(30_000, 20_001))
    organization = project.proposal.organization
    return SimpleNamespace(
        project=project,
        staff=grant_staff(),
        gov_officer=GovernmentStaffFactory(body=project.proposal.body).user,
        account=confirmed_bank_account(organization),
        member=MembershipFactory(organization=organization).user,
    )


def as_user(page, live_server, user) -> None:
    page.context.clear_cookies()
    sign_in(page, live_server, user)


def grant_state(page) -> str:
    return page.locator("p.meta .badge[data-state]").get_attribute("data-state")


def test_a_grant_from_proposal_to_the_register(page, live_server, journey, screenshot):
    url, project = live_server.url, journey.project
    today = timezone.localdate()

    # 1. The programme officer proposes the grant: the terms are computed from the ledger.
    as_user(page, live_server, journey.staff.officer)
    page.goto(f"{url}/grants/staff/new/?project={project.pk}")
    terms = page.locator("#grant-terms")
    assert terms.locator("dd[data-term=gifts]").inner_text() == "¥50,001"
    assert terms.locator("dd[data-term=fee]").inner_text() == "¥7,500"
    assert terms.locator("dd[data-term=matched]").inner_text() == "¥50,001"
    assert terms.locator("dd[data-term=amount]").inner_text() == "¥92,502"
    form = page.locator("#grant-form")
    # Tranche 1 is prefilled with the whole grant, payable today.
    assert form.locator("[name=tranche_1_amount]").input_value() == "92502"
    assert form.locator("[name=tranche_1_due_on]").input_value() == today.isoformat()
    form.locator("[name=ends_on]").fill((today + dt.timedelta(days=60)).isoformat())
    form.locator("[name=tranche_1_amount]").fill("92,502")
    form.locator("[name=tranche_1_due_on]").fill(today.isoformat())
    form.locator("button[type=submit]").click()
    page.wait_for_url(re.compile(r"/grants/staff/\d+/$"))
    grant = Grant.objects.get(project=project)
    assert page.url == f"{url}/grants/staff/{grant.pk}/"
    assert grant_state(page) == "proposed"
    assert page.locator("#grant-terms dd[data-term=amount]").inner_text() == "¥92,502"
    # The proposer is not offered the approval.
    assert page.locator("#action-approve").count() == 0
    screenshot(page, "grants-1-proposed")

    # 2. Another person, an approver, approves it.
    as_user(page, live_server, journey.staff.approver)
    page.goto(f"{url}/grants/staff/{grant.pk}/")
    assert grant_state(page) == "proposed"
    page.locator("#action-approve button[type=submit]").click()
    page.wait_for_url(f"{url}/grants/staff/{grant.pk}/")
    assert grant_state(page) == "approved"
    grant.refresh_from_db()
    assert grant.state == Grant.State.APPROVED

    # 3. Finance: the tranche is offered, goes into a batch, the Zengin file, all paid.
    tranche = grant.tranches.get()
    as_user(page, live_server, journey.staff.finance)
    page.goto(f"{url}/grants/staff/transfers/")
    batch_form = page.locator("#batch-form")
    offered = batch_form.locator(f"input[name=tranches][value='{tranche.pk}']")
    assert offered.is_checked() and offered.is_enabled()
    default_date = batch_form.locator("[name=transfer_date]").input_value()
    assert default_date >= today.isoformat()
    batch_form.locator("button[type=submit]").click()
    page.wait_for_url(re.compile(r"/grants/staff/transfers/\d+/$"))
    batch = TransferBatch.objects.get()
    assert page.url == f"{url}/grants/staff/transfers/{batch.pk}/"
    assert batch.transfer_date.isoformat() == default_date
    assert page.locator(f"#lines tr[data-line] a[href$='/grants/staff/{grant.pk}/']").count() == 1
    assert page.locator("#batch-figures dd[data-figure=total]").inner_text() == "¥92,502"

    with page.expect_download() as download_info:
        page.locator(f"#batch-actions form[action$='/transfers/{batch.pk}/file/'] button").click()
    download = download_info.value
    assert download.suggested_filename == batch.filename
    data = download.path().read_bytes()
    assert len(data) > 0 and len(data) % ZENGIN_RECORD == 0
    text = data.decode("shift_jis")
    records = text.split("\r\n")[:-1]
    assert all(len(record.encode("shift_jis")) == 120 for record in records)
    account = BankAccount.objects.get(pk=journey.account.pk)
    assert account.holder_kana in text
    assert "0000092502" in text  # the amount field: ten digits, zero-padded

    page.goto(f"{url}/grants/staff/transfers/{batch.pk}/")  # now exported: record what happened
    screenshot(page, "grants-3-transfer-batch")
    page.locator(f"#batch-actions form[action$='/transfers/{batch.pk}/paid/'] button").click()
    page.wait_for_url(f"{url}/grants/staff/transfers/{batch.pk}/")
    assert page.locator("p.meta .badge[data-state]").get_attribute("data-state") == "settled"
    assert page.locator("#batch-figures dd[data-figure=paid]").inner_text() == "¥92,502"
    page.goto(f"{url}/grants/staff/{grant.pk}/")
    assert grant_state(page) == "paid"
    assert page.locator("#grant-terms dd[data-term=paid]").inner_text() == "¥92,502"
    tranche.refresh_from_db()
    assert tranche.state == Tranche.State.PAID

    # 4. The CSO's member files the final report, with a file.
    final = grant.reports.get(kind=Report.Kind.FINAL)
    as_user(page, live_server, journey.member)
    page.goto(f"{url}/grants/cso/")
    card = page.locator(f"article.grant-card[data-grant='{grant.pk}']")
    assert "¥92,502" in card.inner_text()
    assert card.locator(f"li[data-report='{final.pk}']").get_attribute("data-state") == "due"
    card.locator(f"li[data-report='{final.pk}'] a[href$='/grants/cso/reports/{final.pk}/']").click()
    page.wait_for_url(f"{url}/grants/cso/reports/{final.pk}/")
    report_form = page.locator("#report-form")
    report_form.locator("[name=narrative]").fill(NARRATIVE)
    report_form.locator("[name=outcomes]").fill(OUTCOMES)
    report_form.locator("[name=spent_yen]").fill("92502")
    report_form.locator("input[type=file][name=attachments]").set_input_files(
        {
            "name": "receipts.csv",
            "mimeType": "text/csv",
            "buffer": "日付,品目,金額\n2026-11-01,ごみ袋,3200\n".encode(),
        }
    )
    report_form.locator("button[type=submit]").click()
    page.wait_for_url(f"{url}/grants/cso/reports/{final.pk}/")
    assert page.locator("#report-form").count() == 0
    assert page.locator("#report-awaiting").is_visible()
    assert page.locator("#report-attachments li").count() == 1
    assert "receipts.csv" in page.locator("#report-attachments").inner_text()
    assert NARRATIVE in page.content()
    screenshot(page, "grants-4-report-submitted")
    page.goto(f"{url}/grants/cso/")
    assert page.locator(f"li[data-report='{final.pk}']").get_attribute("data-state") == (
        "submitted"
    )
    final.refresh_from_db()
    assert final.state == Report.State.SUBMITTED

    # 5. The programme officer reads the report and accepts it: the grant closes.
    as_user(page, live_server, journey.staff.officer)
    page.goto(f"{url}/grants/staff/{grant.pk}/")
    page.locator(f"#reports tr[data-report='{final.pk}'] a").click()
    page.wait_for_url(f"{url}/grants/staff/reports/{final.pk}/")
    assert page.locator("p.meta .badge[data-state]").get_attribute("data-state") == "submitted"
    assert page.locator("dd[data-figure=spent]").inner_text() == "¥92,502"
    assert page.locator("a[href^='/grants/attachments/']").count() == 1
    page.locator("#review-form [name=note]").fill("確認しました。")
    page.locator("#review-form button[name=decision][value=accept]").click()
    page.wait_for_url(f"{url}/grants/staff/{grant.pk}/")
    assert grant_state(page) == "closed"

    # 6. The government officer reads the fund's figures on the proposal.
    proposal = project.proposal
    as_user(page, live_server, journey.gov_officer)
    page.goto(f"{url}/gov/proposals/{proposal.pk}/")
    outcome = page.locator("#fund-outcome")
    assert outcome.locator("dd").all_inner_texts() == [
        grant.reference,
        "¥100,002",  # raised: gifts and matches
        "¥50,001",  # matched
        "¥7,500",  # the foundation's fee
        "¥92,502",  # granted
        "¥92,502",  # paid
        f"{NARRATIVE}\n\n{OUTCOMES}",
    ]
    outcome.scroll_into_view_if_needed()
    screenshot(page, "grants-6-officer-proposal")

    # 7. Anyone reads the project's timeline: every step done, no bank detail.
    page.context.clear_cookies()
    page.goto(f"{url}/grants/projects/{project.pk}/timeline/")
    steps = page.locator("#project-timeline li")
    assert steps.count() >= 8
    assert [s.get_attribute("data-done") for s in steps.all()] == ["true"] * steps.count()
    timeline = page.locator("#project-timeline").inner_text()
    for figure in ("¥100,002", "¥50,001", "¥92,502", "¥7,500", NARRATIVE):
        assert figure in timeline
    assert account.holder_kana not in page.content()
    assert "1234567" not in page.content()
    screenshot(page, "grants-7-public-timeline")

    grant.refresh_from_db()
    assert grant.state == Grant.State.CLOSED
    assert Proposal.objects.get(pk=proposal.pk).state == Proposal.State.ASSESSED
    assert run_checks() == {}
