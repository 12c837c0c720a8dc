"""A government officer records a proposal's consultation and decision, in a real browser.

The officer has two-factor authentication (as every officer must); the browser is signed in
with the session cookie of ``client.force_login``. Screenshots go to
test-artifacts/screenshots/officer-*.png for a person to look at.
"""

import datetime as dt
import re

import pytest
from django.conf import settings
from django.utils import translation

from proposals import services
from proposals.models import Proposal
from tests.browser.conftest import SCREENSHOTS
from tests.factories import (
    GovernmentStaffFactory,
    MunicipalityFactory,
    OperationFactory,
    OrganizationFactory,
    PrefectureFactory,
)

pytestmark = pytest.mark.browser


@pytest.fixture
def register(transactional_db):
    saga = PrefectureFactory()
    karatsu = MunicipalityFactory(code="412023", name="唐津市")
    officer = GovernmentStaffFactory(body=saga).user
    operation = OperationFactory(body=saga, code="KY-900", title="協働提案の窓口運営")
    proposal = services.proposal_create(
        reference="R8-0001",
        received_on=dt.date(2026, 6, 1),
        body=saga,
        organization=OrganizationFactory(name="NPO法人 さが子育てネット"),
        title="子育てサロンの協働運営",
        summary="地域の子育て世帯が集まれるサロンを、NPOと県が共同で運営する。",
        operation=operation,
        actor=None,
        source="test",
    )
    other = services.proposal_create(
        reference="K8-0001",
        received_on=dt.date(2026, 6, 2),
        body=karatsu,
        organization=OrganizationFactory(),
        title="唐津の提案",
        actor=None,
        source="test",
    )
    return {"officer": officer, "proposal": proposal, "other": other}


def sign_in(page, client, live_server, user) -> None:
    """The browser carries the session of ``client.force_login`` (the officer has 2FA)."""
    client.force_login(user)
    page.context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                "url": live_server.url,
            }
        ]
    )


def test_officer_records_a_consultation_and_the_decision(
    page, client, live_server, register, screenshot
):
    officer, proposal = register["officer"], register["proposal"]
    sign_in(page, client, live_server, officer)

    page.goto(f"{live_server.url}/gov/")
    assert page.locator("h1").inner_text() == "佐賀県"
    assert page.locator(".officer-figures .figure dd").first.inner_text() == "1"
    screenshot(page, "officer-home")

    # The received proposal, from the "waiting for you" figure.
    page.locator(".officer-figures .figure dd a").first.click()
    page.wait_for_url(re.compile(r"/gov/proposals/\?state=received"))
    assert page.locator("table.data-table tbody tr").count() == 1  # not the town's proposal
    screenshot(page, "officer-proposals-received")
    page.click("text=子育てサロンの協働運営")
    page.wait_for_url(re.compile(rf"/gov/proposals/{proposal.pk}/$"))
    assert page.locator("#action-contract").count() == 0  # not allowed from "received"
    screenshot(page, "officer-proposal-received")

    # Step 5: a consultation.
    page.fill("#id_consult-held_on", "2026-06-10")
    page.fill("#id_consult-notes", "事業の範囲と役割分担を確認した。")
    with page.expect_navigation():
        page.locator("#action-consult button[type=submit]").click()
    assert page.locator(".flash__message--success").count() == 1
    assert "事業の範囲と役割分担を確認した。" in page.locator(".consultations").inner_text()
    consult_row = page.locator("#history tbody tr[data-action=consult]")
    assert officer.email in consult_row.inner_text()
    screenshot(page, "officer-consultation-recorded")

    # Step 6: a decision dated before the receipt is refused next to its field …
    assert page.locator("#id_respond-decision").input_value() == ""  # no decision chosen for them
    page.select_option("#id_respond-decision", "adopted")
    page.fill("#id_respond-decided_on", "2026-05-01")
    page.select_option("#id_respond-budget_provision", "no")
    with page.expect_navigation():
        page.locator("#action-respond button[type=submit]").click()
    assert page.locator(".flash__message").count() == 0
    error = page.locator("#id_respond-decided_on_error")
    assert error.is_visible()
    assert page.locator("#id_respond-decided_on").get_attribute("aria-invalid") == "true"
    assert Proposal.objects.get(pk=proposal.pk).state == Proposal.State.CONSULTATION
    page.locator("#action-respond").scroll_into_view_if_needed()
    screenshot(page, "officer-decision-error")

    # … and accepted once corrected: adopted, with no budget provision.
    assert page.locator("#id_respond-decision").input_value() == "adopted"
    page.fill("#id_respond-decided_on", "2026-07-01")
    page.fill("#id_respond-reason", "協働により利用者の増加が見込める。")
    page.fill("#id_respond-planned_implementation_year", "2027")
    with page.expect_navigation():
        page.locator("#action-respond button[type=submit]").click()
    assert page.locator(".flash__message--success").count() == 1

    proposal.refresh_from_db()
    assert proposal.state == Proposal.State.RESPONDED
    assert proposal.decision == Proposal.Decision.ADOPTED
    assert proposal.budget_provision == Proposal.BudgetProvision.NO
    assert page.locator("#proposal-state").inner_text().startswith("6.")
    respond_row = page.locator("#history tbody tr[data-action=respond]")
    assert officer.email in respond_row.inner_text()
    with translation.override("ja"):
        not_budgeted = str(Proposal.BudgetProvision.NO.label)
    assert f"→ {not_budgeted}" in respond_row.inner_text()
    assert page.locator("#action-contract").count() == 1  # adopted: a contract may follow
    screenshot(page, "officer-decision-recorded")
    page.locator("#history").screenshot(path=str(SCREENSHOTS / "officer-history.png"))
    assert [e.actor for e in proposal.events.order_by("pk")] == [None, officer, officer]


def test_officer_cannot_open_another_bodys_proposal(page, client, live_server, register):
    sign_in(page, client, live_server, register["officer"])
    # Through the context's request API (same cookies): a 404 page load would be logged as a
    # console error, which the page fixture counts as a failure.
    own = page.request.get(f"{live_server.url}/gov/proposals/{register['proposal'].pk}/")
    other = page.request.get(f"{live_server.url}/gov/proposals/{register['other'].pk}/")
    assert (own.status, other.status) == (200, 404)


def test_officer_adds_an_operation_and_records_a_paper_proposal(
    page, client, live_server, register, screenshot
):
    sign_in(page, client, live_server, register["officer"])

    page.goto(f"{live_server.url}/gov/operations/new/")
    page.fill("#id_code", "KY-901")
    page.fill("#id_title", "里山保全ボランティア育成事業")
    page.fill("#id_department_name", "森林整備課")
    page.fill("#id_budget_yen", "1,200,000.5")
    page.fill("#id_current_provider", "県直営")
    page.fill("#id_collaboration_potential", "育成講座の企画と運営をNPOと共同で行える。")
    with page.expect_navigation():
        page.click("form.officer-form button[type=submit]")
    assert page.locator("#id_budget_yen_error").is_visible()
    screenshot(page, "officer-operation-error")

    page.fill("#id_budget_yen", "1,200,000")
    with page.expect_navigation():
        page.click("form.officer-form button[type=submit]")
    assert page.locator(".flash__message--success").count() == 1
    assert "KY-901" in page.locator("table.data-table").inner_text()
    screenshot(page, "officer-operations")

    page.goto(f"{live_server.url}/gov/proposals/new/")
    page.fill("#id_reference", "R8-0002")
    page.fill("#id_received_on", "2026-06-03")
    page.fill("#id_title", "里山保全の協働提案")
    page.fill("#id_operation_code", "KY-901")
    page.fill("#id_organization_name", "里山を守る会")
    screenshot(page, "officer-paper-proposal")
    with page.expect_navigation():
        page.click("form.officer-form button[type=submit]")
    assert page.locator(".flash__message--success").count() == 1
    assert page.locator("h1").inner_text() == "里山保全の協働提案"
    assert register["officer"].email in page.locator("#history").inner_text()
