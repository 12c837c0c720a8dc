"""A citizen gives ¥3,000 to a project in a real browser, through the demo payment provider.

From the project list to the project page, the give form, the demo checkout ("no real money")
and the thank-you page; then the project's progress and the receipt PDF. Screenshots go to
test-artifacts/screenshots/ for a person to look at.
"""

import datetime as dt
import re

import pytest
from allauth.account.models import EmailAddress
from django.conf import settings
from django.test import Client
from django.utils import timezone, translation

from donations.models import Donation, Gift, Receipt
from tests.factories import OrganizationFactory, ProjectFactory, ProposalFactory, UserFactory

pytestmark = pytest.mark.browser

TITLE = "有明海の干潟を守る子ども自然教室"


@pytest.fixture
def project(transactional_db):
    now = timezone.now()
    return ProjectFactory(
        title=TITLE,
        description="干潟の生き物観察と清掃を、毎月一回、地域の子どもたちと続けます。",
        goal_yen=300_000,
        opens_at=now - dt.timedelta(days=10),
        closes_at=now + dt.timedelta(days=40),
        proposal=ProposalFactory(organization=OrganizationFactory(name="NPO法人 有明の海")),
    )


def test_a_citizen_gives_3000_yen_and_gets_a_receipt(page, live_server, project, screenshot):
    page.goto(f"{live_server.url}/projects/")
    assert page.locator("html").get_attribute("lang") == "ja"
    card = page.locator(".project-card").filter(has_text=TITLE)
    assert card.locator(".progress__raised").inner_text() == "¥0"
    card.locator("a", has_text=TITLE).click()

    page.wait_for_url(re.compile(rf"/projects/{project.pk}/$"))
    assert page.locator("h1").inner_text() == TITLE
    # ¥3,000 is offered first; the donor keeps it and gives once.
    assert page.locator("#quick_amount_1").is_checked()
    screenshot(page, "giving-project-page")
    page.click(".give-box__button")

    page.wait_for_url(re.compile(rf"/projects/{project.pk}/give/\?"))
    assert page.locator("input[name=amount][value='3000']").is_checked()
    fill_donor(page)
    page.check("#id_publish_name")
    page.fill("#id_display_name", "さがの花子")
    screenshot(page, "giving-give-form")
    page.click(".give-actions__submit")

    page.wait_for_url(re.compile(r"/checkout/demo/demo_cs_\w+/$"))
    banner = page.locator(".demo-checkout__banner")
    assert banner.is_visible()
    with translation.override("ja"):
        demo_label = translation.gettext("Demo checkout — no real money moves")
    assert banner.inner_text() == demo_label
    assert page.locator(".demo-checkout__amount").inner_text() == "¥3,000"
    screenshot(page, "giving-demo-checkout")
    page.click("button[name=action][value=pay]")

    page.wait_for_url(re.compile(r"/donations/[0-9a-f-]+/thanks/$"))
    donation = Donation.objects.get()
    assert donation.status == Donation.Status.SUCCEEDED
    assert Gift.objects.get().amount == 3000
    assert page.locator(".thanks__amount").inner_text() == "¥3,000"
    assert page.locator(".thanks__summary").get_attribute("data-status") == "succeeded"
    with translation.override("ja"):
        received = str(Donation.Status.SUCCEEDED.label)
    assert received in page.locator(".thanks__summary").inner_text()
    assert page.locator(".project-progress .progress__raised").inner_text() == "¥3,000"
    screenshot(page, "giving-thanks")

    receipt = Receipt.objects.get(gift__donation=donation)
    with page.expect_download() as download_info:
        page.click(".receipt-link")
    download = download_info.value
    assert download.suggested_filename == f"receipt-{receipt.display_number}.pdf"
    with open(download.path(), "rb") as pdf:
        assert pdf.read(5) == b"%PDF-"

    page.goto(f"{live_server.url}/projects/{project.pk}/")
    assert page.locator(".progress__raised").inner_text() == "¥3,000"
    assert page.locator(".progress__donors").inner_text().startswith("1")
    assert "さがの花子" in page.locator(".donor-wall").inner_text()
    screenshot(page, "giving-project-page-after")


def fill_donor(page) -> None:
    page.fill("#id_email", "hanako@example.jp")
    page.fill("#id_name", "佐賀 花子")
    page.fill("#id_postal_code", "840-0041")
    page.fill("#id_address", "佐賀県佐賀市城内1-1-59")


def test_a_fraction_of_a_yen_is_refused_then_a_konbini_gift_is_paid_at_the_store(
    page, live_server, project, screenshot
):
    page.goto(f"{live_server.url}/projects/{project.pk}/give/")
    page.click("label[for=id_amount_4]")  # "other amount"
    page.fill("#id_other_amount", "3000.5")
    fill_donor(page)
    page.click(".give-actions__submit")
    error = page.locator("#give-errors")
    error.wait_for()
    assert page.locator("#id_other_amount").get_attribute("aria-invalid") == "true"
    assert page.locator("#id_other_amount").input_value() == "3000.5"  # kept to correct
    assert page.locator("#id_email").input_value() == "hanako@example.jp"
    screenshot(page, "giving-give-form-error")
    assert not Donation.objects.exists()

    page.fill("#id_other_amount", "2,000")
    page.click(".give-actions__submit")
    page.wait_for_url(re.compile(r"/checkout/demo/"))
    page.click("button[name=action][value=pay_later]")
    page.wait_for_url(re.compile(r"/thanks/$"))
    assert page.locator(".thanks__summary").get_attribute("data-status") == "awaiting_payment"
    assert page.locator(".thanks__amount").inner_text() == "¥2,000"
    screenshot(page, "giving-thanks-konbini")
    page.click("button[name=action][value=store_paid]")
    page.wait_for_selector(".thanks__summary[data-status=succeeded]")
    assert Gift.objects.get().amount == 2000


def test_a_signed_in_donor_gives_monthly_and_finds_it_in_my_gifts(
    page, live_server, project, screenshot
):
    user = UserFactory(email="taro@example.jp", first_name="太郎", last_name="佐賀")
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
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
    page.goto(f"{live_server.url}/projects/{project.pk}/give/?amount=1000&frequency=monthly")
    assert page.locator("#id_email").input_value() == "taro@example.jp"
    assert page.locator("#id_name").input_value() == "佐賀 太郎"
    page.fill("#id_postal_code", "840-0041")
    page.fill("#id_address", "佐賀県佐賀市城内1-1-59")
    page.click(".give-actions__submit")
    page.wait_for_url(re.compile(r"/checkout/demo/"))
    assert page.locator("button[name=action][value=pay_later]").count() == 0
    page.click("button[name=action][value=pay]")
    page.wait_for_url(re.compile(r"/thanks/$"))
    assert page.locator(".thanks__summary").get_attribute("data-status") == "active"
    page.click(f"a[href$='/donations/{Donation.objects.get().pk}/']")
    page.click("button[name=action][value=next_month]")
    page.wait_for_url(re.compile(r"/donations/[0-9a-f-]+/$"))
    assert page.locator(".gift-table tbody tr").count() == 2
    screenshot(page, "giving-donation-monthly")

    page.goto(f"{live_server.url}/me/gifts/")
    assert page.locator(".gift-list li").count() == 1
    assert page.locator("table.data-table").first.locator("tbody tr").count() == 2
    screenshot(page, "giving-my-gifts")
    with page.expect_download() as download_info:
        page.locator(".annual-list button").first.click()
    with open(download_info.value.path(), "rb") as pdf:
        assert pdf.read(5) == b"%PDF-"
    assert Receipt.objects.filter(kind=Receipt.Kind.ANNUAL).get().amount == 2000


def test_the_giving_pages_fit_a_phone(chromium, live_server, project, screenshot):
    context = chromium.new_context(
        viewport={"width": 390, "height": 844}, locale="ja-JP", is_mobile=True
    )
    phone = context.new_page()
    try:
        for path, name in [
            (f"/projects/{project.pk}/", "giving-project-page-phone"),
            (f"/projects/{project.pk}/give/", "giving-give-form-phone"),
        ]:
            phone.goto(f"{live_server.url}{path}")
            overflow = phone.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0, path
            screenshot(phone, name)
    finally:
        context.close()
