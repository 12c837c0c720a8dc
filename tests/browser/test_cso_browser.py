"""A CSO member submits a proposal letter in a real browser and follows it in the CSO area.

Screenshots go to test-artifacts/screenshots/ for a person to look at.
"""

import re

import pytest
from django.conf import settings
from django.test import Client
from django.utils import translation

from accounts.models import GovernmentBody, Membership
from proposals.fiscal import current_fiscal_year
from proposals.models import Proposal
from proposals.services import proposal_submit_online
from tests.factories import (
    MembershipFactory,
    MunicipalityFactory,
    OperationFactory,
    OrganizationFactory,
    PrefectureFactory,
)

pytestmark = pytest.mark.browser

PDF = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"
TITLE = "子ども食堂ネットワークの立ち上げ"


@pytest.fixture
def cso(transactional_db, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    prefecture = PrefectureFactory()
    MunicipalityFactory(code="412015", name="佐賀市")
    OperationFactory(
        body=prefecture,
        code="KY-001",
        title="子育て支援ネットワーク事業",
        fiscal_year=current_fiscal_year(),
    )
    organization = OrganizationFactory(name="NPO法人 さが子育てネット")
    return MembershipFactory(
        organization=organization, role=Membership.Role.ADMIN, user__email="cso@example.jp"
    )


def sign_in(page, live_server, user) -> None:
    """Give the browser the session of a signed-in client (no password form to go through)."""
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


def test_a_cso_member_submits_a_proposal_with_a_pdf_letter(page, live_server, cso, screenshot):
    sign_in(page, live_server, cso.user)
    page.goto(f"{live_server.url}/cso/")
    assert page.locator("html").get_attribute("lang") == "ja"
    assert page.locator("h2").filter(has_text="NPO法人 さが子育てネット").count() == 1
    screenshot(page, "cso-home-empty")

    page.click(f"a.button[href$='?organization={cso.organization_id}']")
    page.wait_for_url(re.compile(r"/cso/proposals/new/"))
    page.select_option("#id_body", label="佐賀県")
    page.check("input[name=target][value=operation]")
    page.fill("#id_operation_code", "KY-001")
    page.fill("#id_title", TITLE)
    page.fill("#id_summary", "県内の子ども食堂をつなぎ、食材と担い手を融通する。")
    page.set_input_files(
        "#id_letter",
        files=[{"name": "letter.pdf", "mimeType": "application/pdf", "buffer": PDF}],
    )
    screenshot(page, "cso-submit-form")
    page.click("form.form-stack button[type=submit]")

    page.wait_for_url(re.compile(r"/cso/proposals/\d+/$"))
    proposal = Proposal.objects.get()
    assert proposal.letter and proposal.operation.code == "KY-001"
    with translation.override("ja"):
        received = str(Proposal.State.RECEIVED.label)
    assert page.locator("h1").inner_text() == TITLE
    assert proposal.reference in page.locator(".meta").inner_text()
    assert received in page.locator(".meta").inner_text()
    assert page.locator(".flash__message--success").is_visible()
    letter_link = page.locator(f"a[href='/proposals/{proposal.pk}/letter/']")
    assert letter_link.is_visible()
    screenshot(page, "cso-proposal-detail")

    with page.expect_download() as download_info:
        letter_link.click()
    download = download_info.value
    assert download.suggested_filename == f"{proposal.reference}.pdf"
    with open(download.path(), "rb") as letter:
        assert letter.read() == PDF

    page.goto(f"{live_server.url}/cso/")
    row = page.locator("table.data-table tbody tr").filter(has_text=TITLE)
    assert row.count() == 1
    assert row.locator(".step").inner_text() == received
    assert proposal.reference in row.inner_text()
    screenshot(page, "cso-home")


def test_a_renamed_text_file_is_refused_in_the_form(page, live_server, cso, screenshot):
    sign_in(page, live_server, cso.user)
    page.goto(f"{live_server.url}/cso/proposals/new/")
    page.select_option("#id_body", label="佐賀県")
    page.fill("#id_title", TITLE)
    page.fill("#id_summary", "概要")
    page.set_input_files(
        "#id_letter",
        files=[{"name": "letter.pdf", "mimeType": "application/pdf", "buffer": b"hello"}],
    )
    page.click("form.form-stack button[type=submit]")
    error = page.locator(".field--error .errorlist")
    error.wait_for()
    assert "letter.pdf" in error.inner_text()
    assert page.locator("#id_letter").get_attribute("aria-invalid") == "true"
    assert page.locator("#id_title").input_value() == TITLE  # what was typed is kept
    # The summary at the top links to the field.
    page.click(".error-summary a[href='#id_letter']")
    assert page.evaluate("document.activeElement.id") == "id_letter"
    screenshot(page, "cso-submit-not-a-pdf")
    assert not Proposal.objects.exists()


def test_organisation_page_for_its_admin(page, live_server, cso, screenshot):
    MembershipFactory(organization=cso.organization, user__email="member@example.jp")
    sign_in(page, live_server, cso.user)
    page.goto(f"{live_server.url}/organizations/{cso.organization_id}/")
    page.fill("#id_email", "new.member@example.jp")
    page.click("form[action$='/invitations/'] button[type=submit]")
    page.wait_for_selector(".flash__message--success")
    assert "new.member@example.jp" in page.locator(".plain-list").inner_text()
    assert page.locator("table.data-table tbody tr").count() == 2
    screenshot(page, "organization-detail-admin")


def test_cso_pages_fit_a_phone(chromium, live_server, cso, screenshot):
    context = chromium.new_context(
        viewport={"width": 390, "height": 844}, locale="ja-JP", is_mobile=True
    )
    proposal_submit_online(
        actor=cso.user,
        organization=cso.organization,
        body=GovernmentBody.objects.get(code="410004"),
        operation=None,
        title=TITLE,
        summary="概要",
        letter=None,
    )
    phone = context.new_page()
    try:
        sign_in(phone, live_server, cso.user)
        for path, name in [
            ("/cso/", "cso-home-phone"),
            ("/cso/proposals/new/", "cso-submit-phone"),
            ("/organizations/", "organization-list-phone"),
            (f"/organizations/{cso.organization_id}/", "organization-detail-phone"),
        ]:
            phone.goto(f"{live_server.url}{path}")
            overflow = phone.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0, path
            screenshot(phone, name)
    finally:
        context.close()
