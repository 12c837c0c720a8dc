"""What citizens and staff see of sponsors' match pools on the gift pages.

The project page and the give form say which pools match a gift now and how much matching each
has left (``fund.selectors.matching_offers``): the line follows the pool as gifts use it up and
disappears once it is spent, and only while the project takes gifts. The thank-you page, the
donation page and the donor's gifts say what each gift was matched, net of what a refund gave
back; a gift not paid yet (konbini) shows nothing. Foundation staff see matches and releases.
Every page reads the matches in a fixed number of queries, however many pools or gifts.
"""

import datetime as dt
import re

import pytest
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import FoundationRole, Organization, User
from donations import access
from donations import services as donation_services
from donations.models import Donation, Gift
from donations.providers import Payment
from fund.matching import pool_end
from fund.models import Project
from tests.factories import (
    DonationFactory,
    FoundationRoleFactory,
    OrganizationFactory,
    UserFactory,
    give,
    pledge_pool,
)
from tests.fund.test_project_pages import live
from tests.fund.test_projects import moved

pytestmark = pytest.mark.django_db


def bank(name: str = "佐賀未来銀行") -> Organization:
    return OrganizationFactory(name=name, kind=Organization.Kind.COMPANY)


def english(client: Client | None = None) -> Client:
    client = client or Client()
    client.cookies["django_language"] = "en"
    return client


def signed_in(user: User) -> Client:
    client = english()
    client.force_login(user)
    return client


def page_text(response) -> str:
    """The response's text with whitespace runs collapsed (blocktranslate keeps line breaks)."""
    return re.sub(r"\s+", " ", response.content.decode())


def offer_lines(response) -> list[str]:
    found = re.findall(r'<p class="match-offer"[^>]*>(.*?)</p>', response.content.decode(), re.S)
    return [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", line)).strip() for line in found]


def project_page(project: Project, client: Client | None = None):
    return (client or english()).get(reverse("donations:project-detail", args=[project.pk]))


def refund(gift: Gift, amount: int, refund_id: str) -> None:
    """A refund as the webhook records it (the provider already moved the money)."""
    with transaction.atomic():
        donation_services._record_refund(
            gift, provider_refund_id=refund_id, amount=amount, reason="requested", source="test"
        )


# --- The project page --------------------------------------------------------------------------


def test_the_project_page_names_the_sponsor_and_what_is_left():
    project = live()
    pledge_pool(100_000, sponsor=bank())
    response = project_page(project)
    assert offer_lines(response) == [
        "Gifts matched 1:1 by 佐賀未来銀行 — ¥100,000 of matching left"
    ]


def test_the_line_shows_in_japanese_too():
    project = live()
    pledge_pool(100_000, sponsor=bank())
    (line,) = offer_lines(project_page(project, Client()))  # the default language
    assert "佐賀未来銀行" in line
    assert "¥100,000" in line
    assert "1:1" in line


def test_the_amount_left_goes_down_with_each_gift_and_the_line_disappears_when_spent():
    project = live()
    pool = pledge_pool(10_000, sponsor=bank())
    give(project, 3_000, payment_id="pi_m1")
    assert offer_lines(project_page(project)) == [
        "Gifts matched 1:1 by 佐賀未来銀行 — ¥7,000 of matching left"
    ]
    give(project, 9_000, payment_id="pi_m2")  # matched ¥7,000 of ¥9,000: the pool is spent
    response = project_page(project)
    assert offer_lines(response) == []
    assert 'id="match-offers"' not in response.content.decode()
    assert response.context["progress"].matched == 10_000
    assert pool.pk not in [offer.pool.pk for offer in response.context["offers"]]


def test_pools_are_listed_in_the_order_they_match_with_their_rules():
    project = live()
    pledge_pool(50_000, sponsor=bank("唐津信用金庫"), priority=1, cap_per_gift=5_000)
    pledge_pool(
        300_000, sponsor=bank(), priority=5, ratio_gift=1, ratio_match=2, cap_per_donor=20_000
    )
    assert offer_lines(project_page(project)) == [
        "Gifts matched 1:2 by 佐賀未来銀行 — ¥300,000 of matching left "
        "¥2 added for every ¥1 given · up to ¥20,000 per donor",
        "Gifts matched 1:1 by 唐津信用金庫 — ¥50,000 of matching left up to ¥5,000 per gift",
    ]


def test_only_pools_whose_rules_take_the_project_are_shown():
    project, other = live(), live()
    pledge_pool(10_000, sponsor=bank("他の事業の協賛"), scope="projects", projects=[other])
    pledge_pool(20_000, sponsor=bank(), scope="projects", projects=[project])
    lines = offer_lines(project_page(project))
    assert lines == ["Gifts matched 1:1 by 佐賀未来銀行 — ¥20,000 of matching left"]


def test_a_pool_before_its_window_or_ended_is_not_shown():
    project = live()
    now = timezone.now()
    pledge_pool(10_000, starts_at=now + dt.timedelta(days=1), ends_at=now + dt.timedelta(days=9))
    ended = pledge_pool(10_000)
    pool_end(pool=ended, actor=FoundationRoleFactory(role=FoundationRole.Role.FINANCE).user)
    assert offer_lines(project_page(project)) == []


@pytest.mark.parametrize("path", [("close",), ("close", "grant")])
def test_a_project_that_no_longer_takes_gifts_shows_no_match(path):
    project = live()
    pledge_pool(10_000, sponsor=bank())
    moved(project, *path)
    response = project_page(project)
    assert response.context["giving"] == "ended"
    assert response.context["offers"] == []
    assert offer_lines(response) == []


def test_a_project_before_its_window_shows_no_match():
    project = live()
    Project.objects.filter(pk=project.pk).update(opens_at=timezone.now() + dt.timedelta(days=3))
    pledge_pool(10_000, sponsor=bank())
    assert offer_lines(project_page(project)) == []


def _queries(url: str) -> int:
    client = english()
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries)


def test_the_project_page_makes_the_same_number_of_queries_for_1_and_6_pools():
    project = live()
    url = reverse("donations:project-detail", args=[project.pk])
    pledge_pool(100_000, sponsor=bank("協賛0"))
    give(project, 1_000, payment_id="pi_q0")
    one_pool = _queries(url)
    for i in range(1, 6):
        pledge_pool(10_000, sponsor=bank(f"協賛{i}"), priority=i, cap_per_gift=1_000)
        give(project, 5_000, payment_id=f"pi_q{i}")
    six_pools = _queries(url)
    assert len(offer_lines(project_page(project))) == 6
    assert one_pool == six_pools


# --- The give form -----------------------------------------------------------------------------


def test_the_give_form_says_the_gift_will_be_matched():
    project = live()
    pledge_pool(100_000, sponsor=bank(), cap_per_gift=10_000)
    response = english().get(reverse("donations:give", args=[project.pk]))
    assert response.status_code == 200
    assert "Your gift will be matched while matching lasts:" in page_text(response)
    assert offer_lines(response) == [
        "Gifts matched 1:1 by 佐賀未来銀行 — ¥100,000 of matching left up to ¥10,000 per gift"
    ]


def test_the_general_fund_form_mentions_no_match():
    pledge_pool(100_000, sponsor=bank())
    response = english().get(reverse("donations:give-general"))
    assert response.status_code == 200
    assert offer_lines(response) == []
    assert "matched" not in page_text(response)


# --- The donor's pages -------------------------------------------------------------------------


def thanks_url(gift_or_donation) -> str:
    donation = getattr(gift_or_donation, "donation", gift_or_donation)
    return f"{reverse('donations:thanks', args=[donation.pk])}?t={access.token_for(donation)}"


def test_the_thank_you_page_shows_the_match():
    project = live()
    pledge_pool(100_000, sponsor=bank())
    gift = give(project, 3_000, payment_id="pi_thanks")
    text = page_text(english().get(thanks_url(gift)))
    assert "Matched by sponsors" in text
    assert "Matched ¥3,000 by 佐賀未来銀行" in text


def test_a_gift_matched_by_two_pools_shows_both():
    project = live()
    pledge_pool(1_000, sponsor=bank(), priority=2)
    pledge_pool(100_000, sponsor=bank("唐津信用金庫"), priority=1)
    gift = give(project, 3_000, payment_id="pi_two")
    text = page_text(english().get(thanks_url(gift)))
    assert "Matched ¥1,000 by 佐賀未来銀行" in text
    assert "Matched ¥2,000 by 唐津信用金庫" in text


def test_an_unmatched_gift_says_nothing_about_matches():
    project = live()
    gift = give(project, 3_000, payment_id="pi_plain")
    text = page_text(english().get(thanks_url(gift)))
    assert "Matched" not in text


def test_a_konbini_gift_not_paid_yet_shows_nothing_about_the_match():
    project = live()
    pledge_pool(100_000, sponsor=bank())
    donation = DonationFactory(project=project, status=Donation.Status.AWAITING_PAYMENT)
    response = english().get(thanks_url(donation))
    assert response.status_code == 200
    text = page_text(response)
    assert "Matched" not in text
    assert "佐賀未来銀行" not in text
    assert response.context["matches"] == []


def test_the_donation_page_shows_each_payments_match_net_of_refunds():
    project = live()
    pledge_pool(100_000, sponsor=bank())
    gift = give(project, 4_000, payment_id="pi_net")
    refund(gift, 1_000, "re_part")
    client = english()
    url = f"{reverse('donations:donation', args=[gift.donation_id])}?t="
    text = page_text(client.get(url + access.token_for(gift.donation)))
    assert "Matched ¥3,000 by 佐賀未来銀行 (¥4,000, less ¥1,000 given back after a refund)" in text
    refund(Gift.objects.get(pk=gift.pk), 3_000, "re_rest")
    text = page_text(client.get(url + access.token_for(gift.donation)))
    assert "The match of ¥4,000 by 佐賀未来銀行 was given back after the refund" in text
    # The thank-you page shows the net as well.
    assert "was given back after the refund" in page_text(client.get(thanks_url(gift)))


def test_my_gifts_shows_each_gifts_match():
    donor = UserFactory(email="hanako@example.jp")
    project, other = live(title="干潟の再生"), live(title="森の学校")
    pledge_pool(100_000, sponsor=bank(), scope="projects", projects=[project])
    give(project, 3_000, payment_id="pi_mine_1", donor=donor, email=donor.email)
    give(other, 2_000, payment_id="pi_mine_2", donor=donor, email=donor.email)
    response = signed_in(donor).get(reverse("donations:my-gifts"))
    text = page_text(response)
    assert "Matched ¥3,000 by 佐賀未来銀行" in text
    rows = {gift.payment_id: gift.matches for gift, _link in response.context["gifts"]}
    assert [m.net for m in rows["pi_mine_1"]] == [3_000]
    assert rows["pi_mine_2"] == []


def test_my_gifts_reads_the_matches_in_one_query_however_many_gifts():
    donor = UserFactory(email="taro@example.jp")
    project = live()
    pledge_pool(1_000_000, sponsor=bank())
    give(project, 1_000, payment_id="pi_few_0", donor=donor, email=donor.email)
    client = signed_in(donor)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(reverse("donations:my-gifts")).status_code == 200
        return len(captured)

    one = queries()
    for i in range(1, 8):
        give(project, 1_000 + i, payment_id=f"pi_few_{i}", donor=donor, email=donor.email)
    assert queries() == one


def test_the_donation_page_makes_the_same_number_of_queries_for_1_and_6_matched_payments():
    project = live()
    pledge_pool(1_000_000, sponsor=bank())
    first = give(project, 1_000, payment_id="pi_month_0")
    donation = first.donation
    url = f"{reverse('donations:donation', args=[donation.pk])}?t={access.token_for(donation)}"
    client = english()

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url).status_code == 200
        return len(captured)

    client.get(url)  # the signed link is remembered in the session on the first visit
    one = queries()
    for i in range(1, 6):
        # Further instalments of the same donation, each matched.
        with transaction.atomic():
            donation_services._record_gift(
                donation,
                Payment(
                    payment_id=f"in_month_{i}",
                    payment_intent_id=f"pi_month_{i}",
                    amount=1_000,
                    received_at=timezone.now(),
                ),
                source="test",
            )
    assert Gift.objects.filter(donation=donation).count() == 6
    assert queries() == one
    assert page_text(client.get(url)).count("Matched ¥1,000 by 佐賀未来銀行") == 6


# --- The foundation's pages --------------------------------------------------------------------


def finance() -> User:
    return FoundationRoleFactory(role=FoundationRole.Role.FINANCE).user


def test_the_staff_gift_list_has_a_matched_column():
    project = live()
    pledge_pool(100_000, sponsor=bank())
    matched = give(project, 3_000, payment_id="pi_staff_1")
    refund(matched, 1_000, "re_staff")
    give(None, 2_000, payment_id="pi_staff_2")
    response = signed_in(finance()).get(reverse("donations:staff-gifts"))
    rows = {gift.payment_id: gift.matches for gift in response.context["page_obj"]}
    assert [(m.matched, m.released, m.net) for m in rows["pi_staff_1"]] == [(3_000, 1_000, 2_000)]
    assert rows["pi_staff_2"] == []
    text = page_text(response)
    assert "¥2,000 佐賀未来銀行 · ¥1,000 given back" in re.sub(r"<[^>]+>", "", text)


def test_the_staff_gift_page_shows_matches_and_releases():
    project = live()
    pledge_pool(1_000, sponsor=bank(), priority=2, name="先着マッチング")
    pledge_pool(100_000, sponsor=bank("唐津信用金庫"), priority=1, name="唐津 1:1")
    gift = give(project, 3_000, payment_id="pi_staff_detail")
    refund(gift, 1_500, "re_half")
    response = signed_in(finance()).get(reverse("donations:staff-gift", args=[gift.pk]))
    assert response.status_code == 200
    history = response.context["matches"]
    assert [(h.allocation.pool.name, h.allocation.amount, h.released, h.net) for h in history] == [
        ("先着マッチング", 1_000, 500, 500),
        ("唐津 1:1", 2_000, 1_000, 1_000),
    ]
    content = response.content.decode()
    assert content.count("data-release=") == 2
    assert "唐津信用金庫" in content
    assert "No sponsor matched this gift." not in content


def test_the_staff_gift_page_says_when_nothing_was_matched():
    gift = give(live(), 3_000, payment_id="pi_staff_none")
    response = signed_in(finance()).get(reverse("donations:staff-gift", args=[gift.pk]))
    assert "No sponsor matched this gift." in page_text(response)
