"""Money pages for organisations and the foundation's staff.

An organisation's members see what their projects raised (gifts, matches from the ledger,
refunds, net) and only the donors who consented to share their contact details — name and
email, nothing else; another organisation's members and citizens get a 404. Foundation staff
list and filter gifts and see each gift's history; finance staff refund all or part of a gift,
and a refund that is refused (too much, not finance, the provider says no) writes nothing.
"""

import datetime as dt
import re

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import FoundationRole, User
from donations import services
from donations.models import Donation, DonationEvent, Gift, Refund
from donations.providers import DemoProvider, ProviderError
from fund.ledger import EntryKind
from fund.models import JournalEntry
from proposals.fiscal import JAPAN
from tests.factories import (
    FoundationRoleFactory,
    MembershipFactory,
    OrganizationFactory,
    ProjectFactory,
    ProposalFactory,
    SiteAdminFactory,
    UserFactory,
    give,
    pledge_pool,
)

pytestmark = pytest.mark.django_db


def signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    client.cookies["django_language"] = "en"
    return client


def finance() -> User:
    return FoundationRoleFactory(role=FoundationRole.Role.FINANCE).user


def programme_officer() -> User:
    return FoundationRoleFactory(role=FoundationRole.Role.PROGRAMME_OFFICER).user


def member_of(organization) -> User:
    return MembershipFactory(organization=organization).user


@pytest.fixture
def money():
    """Organisation A's project with four gifts (two donors consent to share their contact
    details, one of them refunded in full), a partial refund and a match; B's project with a
    consenting donor of its own."""
    org_a, org_b = OrganizationFactory(name="NPO法人 A"), OrganizationFactory(name="NPO法人 B")
    project_a = ProjectFactory(proposal=ProposalFactory(organization=org_a), goal_yen=100_000)
    project_b = ProjectFactory(proposal=ProposalFactory(organization=org_b))
    staff = finance()
    pledge_pool(4_000, scope="projects", projects=[project_a])  # matches the first gift
    give(
        project_a,
        10_000,
        payment_id="pi_hanako",
        name="佐賀 花子",
        email="hanako@example.jp",
        share_contact=True,
        address="佐賀県佐賀市城内1-1-59",
        message="花子のメッセージ",
    )
    partly = give(project_a, 5_000, payment_id="pi_secret", name="秘密 太郎", email="s@example.jp")
    services.refund_gift(gift=partly, amount=2_000, actor=staff)
    refunded = give(
        project_a,
        3_000,
        payment_id="pi_gone",
        name="返金 次郎",
        email="gone@example.jp",
        share_contact=True,
    )
    services.refund_gift(gift=refunded, amount=3_000, actor=staff)
    give(
        project_a,
        2_000,
        payment_id="pi_later",
        name="後藤 三郎",
        email="goto@example.jp",
        share_contact=True,
    )
    give(
        project_b,
        7_000,
        payment_id="pi_b",
        name="B の寄附者",
        email="b-donor@example.jp",
        share_contact=True,
    )
    return {"a": org_a, "b": org_b, "project_a": project_a, "project_b": project_b}


def figures(response) -> dict[str, str]:
    return dict(re.findall(r'data-figure="([\w-]+)">([^<]*)<', response.content.decode()))


# --- The organisation's money pages ------------------------------------------------------------


def test_a_member_sees_their_projects_money_with_matches_from_the_ledger(money):
    response = signed_in(member_of(money["a"])).get(
        reverse("donations:cso-project-money", args=[money["project_a"].pk])
    )
    assert response.status_code == 200
    shown = response.context["money"]
    assert (shown.gifts, shown.gifts_total) == (4, 20_000)
    assert (shown.refunds, shown.refunds_total) == (2, 5_000)
    assert (shown.net, shown.matched) == (15_000, 4_000)
    assert shown.raised == 19_000  # the ledger: gifts − refunds + matches
    assert figures(response)["net"] == "¥15,000"
    assert figures(response)["matched"] == "¥4,000"


def test_a_member_sees_only_consenting_donors_and_only_their_name_and_email(money):
    response = signed_in(member_of(money["a"])).get(
        reverse("donations:cso-project-money", args=[money["project_a"].pk])
    )
    html = response.content.decode()
    donors = [(d.name, d.email) for d in response.context["donors"]]
    # Latest gift first; the donor refunded in full and the non-consenting one are not there.
    assert donors == [("後藤 三郎", "goto@example.jp"), ("佐賀 花子", "hanako@example.jp")]
    assert html.count('class="consenting-donor"') == 2
    for private in ("秘密 太郎", "s@example.jp", "gone@example.jp", "b-donor@example.jp"):
        assert private not in html
    # Nothing but name and email, even of a consenting donor.
    assert "佐賀県佐賀市城内1-1-59" not in html
    assert "花子のメッセージ" not in html
    assert response["Cache-Control"] == "private, no-store"


def test_the_donor_contacts_download_as_csv(money):
    response = signed_in(member_of(money["a"])).get(
        reverse("donations:cso-project-money", args=[money["project_a"].pk]), {"format": "csv"}
    )
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = response.content.decode("utf-8-sig").splitlines()
    assert rows[1:] == ["後藤 三郎,goto@example.jp", "佐賀 花子,hanako@example.jp"]


def test_the_summary_lists_the_organisations_projects_with_totals(money):
    second = ProjectFactory(proposal=ProposalFactory(organization=money["a"]))
    give(second, 1_000, payment_id="pi_second")
    response = signed_in(member_of(money["a"])).get(reverse("donations:cso-money"))
    assert response.status_code == 200
    (section,) = response.context["sections"]
    rows = {project.pk: figures for project, figures in section["rows"]}
    assert set(rows) == {money["project_a"].pk, second.pk}
    assert rows[money["project_a"].pk].net == 15_000
    assert (section["total"].gifts, section["total"].net) == (5, 16_000)
    assert section["total"].matched == 4_000
    html = response.content.decode()
    assert f'data-project="{money["project_b"].pk}"' not in html
    assert "b-donor@example.jp" not in html


@pytest.mark.parametrize(
    "who",
    [lambda m: member_of(m["b"]), lambda m: UserFactory()],
    ids=["another-organisation", "citizen"],
)
def test_another_organisations_member_and_a_citizen_get_404(money, who):
    url = reverse("donations:cso-project-money", args=[money["project_a"].pk])
    assert signed_in(who(money)).get(url).status_code == 404
    assert signed_in(who(money)).get(url, {"format": "csv"}).status_code == 404


def test_anonymous_visitors_are_sent_to_sign_in(money):
    for url in (
        reverse("donations:cso-money"),
        reverse("donations:cso-project-money", args=[money["project_a"].pk]),
    ):
        response = Client().get(url)
        assert response.status_code == 302
        assert "/accounts/login/" in response["Location"]


def test_the_summary_is_for_organisation_members(money):
    assert signed_in(UserFactory()).get(reverse("donations:cso-money")).status_code == 403
    response = signed_in(member_of(money["b"])).get(reverse("donations:cso-money"))
    (section,) = response.context["sections"]
    assert [project.pk for project, _ in section["rows"]] == [money["project_b"].pk]


def test_an_unknown_project_is_404(money):
    response = signed_in(member_of(money["a"])).get(
        reverse("donations:cso-project-money", args=[99999])
    )
    assert response.status_code == 404


def test_the_cso_area_links_to_the_money_pages(money):
    response = signed_in(member_of(money["a"])).get(reverse("cso:home"))
    assert reverse("donations:cso-money") in response.content.decode()


# --- The foundation's gift list ----------------------------------------------------------------


def gift_ids(response) -> list[int]:
    return [int(pk) for pk in re.findall(r'data-gift="(\d+)"', response.content.decode())]


def test_staff_list_and_filter_gifts():
    project = ProjectFactory()
    other = ProjectFactory()
    day = dt.datetime(2026, 11, 10, 0, 30, tzinfo=JAPAN)  # early morning in Japan, 9th in UTC
    first = give(project, 1_000, received_at=day)
    second = give(other, 2_000, received_at=day + dt.timedelta(days=3))
    general = give(None, 3_000, received_at=day + dt.timedelta(days=5))
    Gift.objects.filter(pk=second.pk).update(disputed=True)
    services.refund_gift(gift=first, amount=1_000, actor=finance())
    client = signed_in(programme_officer())
    url = reverse("donations:staff-gifts")

    assert gift_ids(client.get(url)) == [general.pk, second.pk, first.pk]
    assert gift_ids(client.get(url, {"project": project.pk})) == [first.pk]
    assert gift_ids(client.get(url, {"project": "general"})) == [general.pk]
    assert gift_ids(client.get(url, {"state": "refunded"})) == [first.pk]
    assert gift_ids(client.get(url, {"disputed": "yes"})) == [second.pk]
    assert gift_ids(client.get(url, {"disputed": "no"})) == [general.pk, first.pk]
    # Dates are Japan's: the first gift is of the 10th, not the 9th.
    one_day = {"received_from": "2026-11-10", "received_to": "2026-11-10"}
    assert gift_ids(client.get(url, one_day)) == [first.pk]
    assert gift_ids(client.get(url, {"received_to": "2026-11-09"})) == []
    assert gift_ids(client.get(url, {"received_from": "2026-11-13"})) == [general.pk, second.pk]
    assert client.get(url, {"project": "general"}).context["totals"] == {
        "amount": 3_000,
        "refunded": 0,
    }


def test_bad_filters_are_reported_not_fatal():
    give(ProjectFactory(), 1_000)
    response = signed_in(programme_officer()).get(
        reverse("donations:staff-gifts"),
        {"project": "nope", "state": "lost", "received_from": "yesterday"},
    )
    assert response.status_code == 200
    assert len(gift_ids(response)) == 1
    assert len(response.context["form"].filter_errors()) == 3


@pytest.mark.parametrize(
    "who", [lambda: UserFactory(), lambda: MembershipFactory().user], ids=["citizen", "cso"]
)
def test_the_gift_pages_are_closed_to_everyone_but_foundation_staff(who):
    gift = give(ProjectFactory(), 1_000)
    client = signed_in(who())
    assert client.get(reverse("donations:staff-gifts")).status_code == 403
    assert client.get(reverse("donations:staff-gift", args=[gift.pk])).status_code == 403
    response = Client().get(reverse("donations:staff-gifts"))
    assert "/accounts/login/" in response["Location"]


# --- A gift's page and refunds -----------------------------------------------------------------


def refund_data(amount, reason: str = "requested") -> dict[str, str]:
    return {"refund-amount": str(amount), "refund-reason": reason}


def test_the_gift_page_shows_the_donation_history_refunds_and_receipts():
    gift = give(ProjectFactory(), 5_000, name="佐賀 花子", email="hanako@example.jp")
    services.refund_gift(gift=gift, amount=1_000, actor=finance())
    response = signed_in(programme_officer()).get(reverse("donations:staff-gift", args=[gift.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    assert "hanako@example.jp" in html and "佐賀 花子" in html
    actions = re.findall(r'data-action="(\w+)"', html)
    assert actions[:2] == ["gift_received", "refunded"]
    assert len(re.findall(r"data-refund=", html)) == 1
    assert "¥4,000" in html  # what is left


def test_finance_refunds_part_of_a_gift_then_the_rest():
    gift = give(ProjectFactory(), 5_000)
    client = signed_in(finance())
    url = reverse("donations:staff-gift", args=[gift.pk])
    assert 'id="refund-form"' in client.get(url).content.decode()

    response = client.post(url, refund_data(2_000, "duplicate"))
    assert response.status_code == 302
    gift.refresh_from_db()
    assert (gift.refunded_amount, gift.state) == (2_000, Gift.State.PARTIALLY_REFUNDED)
    refund = Refund.objects.get()
    assert (refund.amount, refund.reason) == (2_000, "duplicate")

    response = client.post(url, refund_data("3,000"))
    assert response.status_code == 302
    gift.refresh_from_db()
    assert (gift.refunded_amount, gift.state) == (5_000, Gift.State.REFUNDED)
    assert JournalEntry.objects.filter(kind=EntryKind.GIFT_REFUNDED).count() == 2
    # Nothing left: no form.
    assert 'id="refund-form"' not in client.get(url).content.decode()


@pytest.mark.parametrize("amount", [5_001, 0, "1.5", "abc"])
def test_a_refund_that_is_too_much_or_not_whole_yen_is_a_form_error(amount):
    gift = give(ProjectFactory(), 5_000)
    entries = JournalEntry.objects.count()
    response = signed_in(finance()).post(
        reverse("donations:staff-gift", args=[gift.pk]), refund_data(amount)
    )
    assert response.status_code == 200
    assert response.context["refund_form"].errors["amount"]
    gift.refresh_from_db()
    assert gift.refunded_amount == 0
    assert not Refund.objects.exists()
    assert JournalEntry.objects.count() == entries


def test_a_refund_of_more_than_is_left_after_a_partial_one_is_refused():
    gift = give(ProjectFactory(), 5_000)
    client = signed_in(finance())
    url = reverse("donations:staff-gift", args=[gift.pk])
    client.post(url, refund_data(4_000))
    response = client.post(url, refund_data(1_001))
    assert response.status_code == 200
    assert "¥1,000" in " ".join(response.context["refund_form"].errors["amount"])
    assert Refund.objects.count() == 1


def test_a_provider_refusal_is_a_message_and_writes_nothing(monkeypatch):
    def refuse(self, **kwargs):
        raise ProviderError("The card network is down.")

    monkeypatch.setattr(DemoProvider, "refund", refuse)
    gift = give(ProjectFactory(), 5_000)
    response = signed_in(finance()).post(
        reverse("donations:staff-gift", args=[gift.pk]), refund_data(1_000)
    )
    assert response.status_code == 200
    assert "The card network is down." in [str(m) for m in response.context["messages"]]
    assert not Refund.objects.exists()
    assert not DonationEvent.objects.filter(action="refunded").exists()


@pytest.mark.parametrize(
    "who",
    [programme_officer, lambda: FoundationRoleFactory(role=FoundationRole.Role.APPROVER).user],
    ids=["programme-officer", "approver"],
)
def test_other_staff_see_the_gift_without_the_form_and_a_refund_is_403(who):
    gift = give(ProjectFactory(), 5_000)
    client = signed_in(who())
    url = reverse("donations:staff-gift", args=[gift.pk])
    response = client.get(url)
    assert response.status_code == 200
    assert 'id="refund-form"' not in response.content.decode()
    assert client.post(url, refund_data(1_000)).status_code == 403
    gift.refresh_from_db()
    assert gift.refunded_amount == 0
    assert not Refund.objects.exists()


def test_the_site_admin_may_refund():
    gift = give(ProjectFactory(), 5_000)
    response = signed_in(SiteAdminFactory()).post(
        reverse("donations:staff-gift", args=[gift.pk]), refund_data(5_000)
    )
    assert response.status_code == 302
    assert Refund.objects.get().amount == 5_000


def test_an_unknown_gift_is_404():
    assert signed_in(finance()).get(reverse("donations:staff-gift", args=[999])).status_code == 404


def test_the_foundation_nav_links_to_gifts():
    response = signed_in(programme_officer()).get(reverse("fund:staff-projects"))
    assert reverse("donations:staff-gifts") in response.content.decode()


# --- The admin ---------------------------------------------------------------------------------


def test_the_admin_shows_money_rows_read_only():
    gift = give(ProjectFactory(), 5_000)
    services.refund_gift(gift=gift, amount=1_000, actor=finance())
    client = signed_in(SiteAdminFactory())
    for model in ("donation", "gift", "refund", "receipt", "webhookevent"):
        assert client.get(reverse(f"admin:donations_{model}_changelist")).status_code == 200
        assert client.get(reverse(f"admin:donations_{model}_add")).status_code == 403
    donation = Donation.objects.get()
    assert client.get(reverse("admin:donations_gift_change", args=[gift.pk])).status_code == 200
    assert client.get(reverse("admin:donations_gift_delete", args=[gift.pk])).status_code == 403
    response = client.post(
        reverse("admin:donations_donation_change", args=[donation.pk]),
        {"email": "changed@example.jp"},
    )
    assert response.status_code == 403
    donation.refresh_from_db()
    assert donation.email != "changed@example.jp"
