"""A sponsor's match pool in a real browser: a citizen sees the offer, gives, sees the match on
the thank-you page; the offer's "left" goes down; the sponsor reads it on their statement.

Screenshots go to test-artifacts/screenshots/ for a person to look at.
"""

import datetime as dt
import re

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone

from donations.models import Gift
from fund.models import MatchAllocation
from tests.browser.test_giving_browser import fill_donor
from tests.factories import (
    MembershipFactory,
    OrganizationFactory,
    ProjectFactory,
    ProposalFactory,
    pledge_pool,
)

pytestmark = pytest.mark.browser

SPONSOR = "株式会社 佐賀未来銀行"


@pytest.fixture
def project(transactional_db):
    now = timezone.now()
    return ProjectFactory(
        title="干潟の清掃活動と観察会",
        goal_yen=300_000,
        opens_at=now - dt.timedelta(days=10),
        closes_at=now + dt.timedelta(days=40),
        proposal=ProposalFactory(organization=OrganizationFactory(name="NPO法人 有明の海")),
    )


def sign_in(page, live_server, user) -> None:
    client = Client()
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


def test_a_gift_is_matched_and_the_sponsor_sees_it(page, live_server, project, screenshot):
    sponsor = OrganizationFactory(name=SPONSOR, kind="company")
    pool = pledge_pool(10_000, sponsor=sponsor, name="佐賀未来銀行 1:1 マッチング")

    page.goto(f"{live_server.url}/projects/{project.pk}/")
    offer = page.locator(f".match-offer[data-pool='{pool.pk}']")
    assert SPONSOR in offer.inner_text()
    assert "¥10,000" in offer.inner_text()
    assert "1:1" in offer.inner_text()
    screenshot(page, "matching-project-page")

    page.click(".give-box__button")
    page.wait_for_url(re.compile(rf"/projects/{project.pk}/give/\?"))
    assert SPONSOR in page.locator("#match-offers").inner_text()
    fill_donor(page)
    page.click(".give-actions__submit")
    page.wait_for_url(re.compile(r"/checkout/demo/"))
    page.click("button[name=action][value=pay]")

    page.wait_for_url(re.compile(r"/donations/[0-9a-f-]+/thanks/$"))
    match = page.locator(".gift-match").first
    assert SPONSOR in match.inner_text() and "¥3,000" in match.inner_text()
    # The project's total counts the gift and its match.
    assert page.locator(".project-progress .progress__raised").inner_text() == "¥6,000"
    screenshot(page, "matching-thanks")
    gift = Gift.objects.get()
    assert MatchAllocation.objects.get(gift_key=gift.payment_id).amount == 3000

    page.goto(f"{live_server.url}/projects/{project.pk}/")
    assert "¥7,000" in page.locator(f".match-offer[data-pool='{pool.pk}']").inner_text()

    # The sponsor's member reads the statement: the gift by date, project and amount only.
    member = MembershipFactory(organization=sponsor).user
    sign_in(page, live_server, member)
    page.goto(f"{live_server.url}/pools/")
    page.click(f"a[href$='/pools/{pool.pk}/statement/']")
    page.wait_for_url(re.compile(rf"/pools/{pool.pk}/statement/$"))
    lines = page.locator("#statement-lines tbody tr[data-kind=match_allocated]")
    assert lines.count() == 1
    assert "干潟の清掃活動と観察会" in lines.first.inner_text()
    assert "hanako@example.jp" not in page.content()
    assert "佐賀 花子" not in page.content()
    screenshot(page, "matching-sponsor-statement")
