"""The public project pages, now gift pages: the list of open projects and each project's page
with its progress (money from the ledger, donors from the gifts), the donor wall and the give
button.

Moved from tests/fund/test_project_pages.py with the pages themselves. Drafts and cancelled
projects are not public; closed and granted ones are, without a give form; the list and the
page make a fixed number of queries however many gifts there are.
"""

import datetime as dt
import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import FoundationRole, User
from fund.models import Project
from proposals.models import Proposal
from tests import factories
from tests.factories import (
    FoundationRoleFactory,
    MunicipalityFactory,
    PrefectureFactory,
    UserFactory,
    pledge_pool,
)
from tests.fund.test_project_pages import live
from tests.fund.test_projects import decided, listed, moved, programme_officer

pytestmark = pytest.mark.django_db


def give(project: Project, amount: int, key: str, **donation_fields) -> None:
    """A succeeded gift for the project, recorded by the gift pipeline's own step."""
    factories.give(project, amount, payment_id=key, **donation_fields)


def signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def listed_ids(response) -> list[int]:
    return [int(pk) for pk in re.findall(r'data-project="(\d+)"', response.content.decode())]


def english(client: Client, url: str, **params):
    client.cookies["django_language"] = "en"
    return client.get(url, params)


# --- The public list ---------------------------------------------------------------------------


def test_the_list_shows_open_projects_only(client):
    shown = live(title="公開中の事業")
    draft = listed(title="下書きの事業")
    closed = moved(live(title="終了した事業"), "close")
    cancelled = moved(live(title="中止した事業"), "cancel")
    response = client.get(reverse("donations:project-list"))
    assert response.status_code == 200
    assert listed_ids(response) == [shown.pk]
    content = response.content.decode()
    for hidden in (draft, closed, cancelled):
        assert hidden.title not in content


def test_the_old_fund_address_still_serves_the_list(client):
    # /projects/ is the same address as before the pages moved to donations.
    assert reverse("donations:project-list") == "/projects/"
    project = live()
    assert reverse("donations:project-detail", args=[project.pk]) == f"/projects/{project.pk}/"
    assert project.get_absolute_url() == f"/projects/{project.pk}/"


def test_a_project_whose_window_has_passed_is_not_listed(client):
    project = live()
    Project.objects.filter(pk=project.pk).update(closes_at=timezone.now() - dt.timedelta(minutes=1))
    assert listed_ids(client.get(reverse("donations:project-list"))) == []


def test_sort_ending_soon_and_most_needed(client):
    soon = live(days_left=2, goal_yen=500_000)
    later = live(days_left=30, goal_yen=800_000)
    big_but_funded = live(days_left=15, goal_yen=2_000_000)
    give(big_but_funded, 1_900_000, "t-big")  # needs ¥100,000 more
    url = reverse("donations:project-list")
    assert listed_ids(client.get(url)) == [soon.pk, big_but_funded.pk, later.pk]
    assert listed_ids(client.get(url, {"sort": "ending"})) == [
        soon.pk,
        big_but_funded.pk,
        later.pk,
    ]
    # Needed: ¥800,000, ¥500,000, ¥100,000.
    assert listed_ids(client.get(url, {"sort": "needed"})) == [
        later.pk,
        soon.pk,
        big_but_funded.pk,
    ]


def test_filters_by_body_and_fiscal_year(client):
    saga = PrefectureFactory()
    karatsu = MunicipalityFactory(code="412023", name="唐津市")
    pref_2026 = live(body=saga, received_on=dt.date(2026, 6, 1))
    pref_2025 = live(body=saga, received_on=dt.date(2026, 3, 31))  # FY2025
    city_2026 = live(body=karatsu, received_on=dt.date(2026, 4, 1))
    url = reverse("donations:project-list")
    assert set(listed_ids(client.get(url, {"body": "412023"}))) == {city_2026.pk}
    assert set(listed_ids(client.get(url, {"fiscal_year": "2025"}))) == {pref_2025.pk}
    assert set(listed_ids(client.get(url, {"body": "410004", "fiscal_year": "2026"}))) == {
        pref_2026.pk
    }


def test_bad_filters_are_reported_not_fatal(client):
    project = live()
    response = client.get(
        reverse("donations:project-list"),
        {"body": "999999", "fiscal_year": "abc", "sort": "cheapest", "page": "x"},
    )
    assert response.status_code == 200
    assert listed_ids(response) == [project.pk]
    assert len(response.context["form"].filter_errors()) == 3


def test_the_list_shows_progress_and_donors(client):
    project = live(goal_yen=10_000)
    give(project, 2_500, "t-progress")
    give(project, 500, "t-progress-2")
    response = client.get(reverse("donations:project-list"))
    content = response.content.decode()
    assert "¥3,000" in content
    assert "¥10,000" in content
    assert 'aria-valuenow="30"' in content
    [(_project, progress)] = response.context["cards"]
    assert progress.donors == 2


def _queries(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url, {"sort": "needed"})
    assert response.status_code == 200
    return len(queries)


def test_the_list_makes_the_same_number_of_queries_for_2_and_12_projects(client):
    officer = programme_officer()
    for i in range(2):
        give(live(), 1000 + i, f"t-a{i}")
    url = reverse("donations:project-list")
    with_two = _queries(client, url)
    assert len(listed_ids(client.get(url))) == 2
    for i in range(10):
        project = listed(
            decided(),
            actor=officer,
            opens_at=timezone.now() - dt.timedelta(days=1),
            closes_at=timezone.now() + dt.timedelta(days=5 + i),
        )
        give(moved(project, "open", actor=officer), 2000 + i, f"t-b{i}")
    with_twelve = _queries(client, url)
    assert len(listed_ids(client.get(url))) == 12
    assert with_two == with_twelve


def test_the_list_and_page_make_the_same_number_of_queries_for_1_and_30_gifts(client):
    project = live(goal_yen=1_000_000)
    list_url = reverse("donations:project-list")
    page_url = reverse("donations:project-detail", args=[project.pk])
    give(project, 1000, "t-q0", publish_name=True, display_name="最初の寄附者")
    one_gift = (_queries(client, list_url), _queries(client, page_url))
    for i in range(1, 30):
        give(project, 1000, f"t-q{i}", publish_name=i % 2 == 0, display_name=f"寄附者{i}")
    thirty_gifts = (_queries(client, list_url), _queries(client, page_url))
    assert one_gift == thirty_gifts
    response = client.get(page_url)
    assert response.context["progress"].donors == 30
    assert response.context["progress"].raised == 30_000


# --- The project page --------------------------------------------------------------------------


def test_the_project_page_shows_progress_from_the_ledger(client):
    project = live(goal_yen=10_000, days_left=12)
    give(project, 3000, "t1")
    response = client.get(reverse("donations:project-detail", args=[project.pk]))
    assert response.status_code == 200
    progress = response.context["progress"]
    assert (progress.raised, progress.goal, progress.percent, progress.days_left) == (
        3000,
        10_000,
        30,
        12,
    )
    assert progress.donors == 1
    content = response.content.decode()
    assert "¥3,000" in content
    assert "¥10,000" in content
    assert "30%" in content
    assert "12日" in content or "12 days" in content


def test_the_project_page_shows_the_proposal_it_comes_from(client):
    project = live(title="有明海の干潟を守る協働提案")
    proposal = project.proposal
    content = client.get(reverse("donations:project-detail", args=[project.pk])).content.decode()
    assert proposal.get_absolute_url() in content
    assert proposal.body.name in content
    assert proposal.organization.name in content
    assert str(Proposal.Decision.ADOPTED.label) in content or "採択" in content
    assert "disabled" not in content  # no dead controls


def test_an_open_project_page_has_the_give_form(client):
    project = live()
    response = client.get(reverse("donations:project-detail", args=[project.pk]))
    content = response.content.decode()
    assert response.context["giving"] == "open"
    assert f'action="{reverse("donations:give", args=[project.pk])}"' in content
    for preset in ("¥1,000", "¥3,000", "¥5,000", "¥10,000"):
        assert preset in content
    assert 'name="frequency" value="monthly"' in content


@pytest.mark.parametrize("path", [("open", "close"), ("open", "close", "grant")])
def test_closed_and_granted_projects_stay_public_without_a_give_form(client, path):
    project = moved(listed(), *path)
    response = english(client, reverse("donations:project-detail", args=[project.pk]))
    assert response.status_code == 200
    assert response.context["giving"] == "ended"
    content = response.content.decode()
    assert reverse("donations:give", args=[project.pk]) not in content
    assert "Fundraising has ended" in content


def test_a_project_before_its_window_says_when_gifts_open(client):
    project = live()
    Project.objects.filter(pk=project.pk).update(opens_at=timezone.now() + dt.timedelta(days=3))
    response = client.get(reverse("donations:project-detail", args=[project.pk]))
    assert response.context["giving"] == "not_yet"
    assert reverse("donations:give", args=[project.pk]) not in response.content.decode()


def test_the_donor_wall_names_only_donors_who_opted_in(client):
    project = live()
    give(project, 3000, "t-w1", publish_name=True, display_name="さが太郎", message="応援します")
    # A display name typed without the publish box ticked stays private.
    give(project, 3000, "t-w2", publish_name=False, display_name="秘密の名前")
    give(project, 3000, "t-w3", name="匿名 希望")
    response = english(client, reverse("donations:project-detail", args=[project.pk]))
    content = response.content.decode()
    assert "さが太郎" in content
    assert "応援します" in content
    assert "秘密の名前" not in content
    assert "匿名 希望" not in content
    assert "and 2 other donors" in content


def test_a_wall_with_no_names_counts_the_donors(client):
    project = live()
    give(project, 3000, "t-a1")
    response = english(client, reverse("donations:project-detail", args=[project.pk]))
    assert "1 donor has given, without a public name." in response.content.decode()


def test_matched_money_is_shown_only_when_there_is_some(client):
    project = live(goal_yen=100_000)
    give(project, 3000, "t-m1")
    url = reverse("donations:project-detail", args=[project.pk])
    assert "matched by sponsors" not in english(client, url).content.decode()
    pledge_pool(10_000)
    give(project, 3000, "t-m2")
    response = english(client, url)
    assert response.context["progress"].matched == 3000
    assert "Of this, ¥3,000 was matched by sponsors." in response.content.decode()


@pytest.mark.parametrize("path", [(), ("cancel",)], ids=["draft", "cancelled"])
def test_drafts_and_cancelled_projects_are_not_public(client, path):
    project = moved(listed(), *path)
    url = reverse("donations:project-detail", args=[project.pk])
    assert client.get(url).status_code == 404
    assert signed_in(UserFactory()).get(url).status_code == 404
    finance = FoundationRoleFactory(role=FoundationRole.Role.FINANCE).user
    assert signed_in(finance).get(url).status_code == 404
    response = signed_in(programme_officer()).get(url)
    assert response.status_code == 200
    assert response.context["is_public"] is False


def test_an_unknown_project_is_404(client):
    assert client.get(reverse("donations:project-detail", args=[999_999])).status_code == 404


def test_the_main_menu_links_the_projects_and_signed_in_donors_their_gifts(client):
    content = client.get(reverse("donations:project-list")).content.decode()
    assert f'href="{reverse("donations:project-list")}" aria-current="page"' in content
    assert reverse("donations:my-gifts") not in content
    content = signed_in(UserFactory()).get(reverse("donations:project-list")).content.decode()
    assert reverse("donations:my-gifts") in content
