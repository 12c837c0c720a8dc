"""Unfunded proposals: the government's page and API.

A proposal adopted without budget is unfunded while no project lists it (a cancelled project
counts as none: the proposal is unfunded again) or while its project is under goal. Government
officers see only their own body's; foundation staff and the site admin every body's; citizens
and CSO members get a 403. Reads cost a fixed number of queries however many projects there are.
The projects API is tested with the donations API (tests/donations/test_api.py).
"""

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.models import FoundationRole, User
from fund import selectors
from fund.models import Project
from proposals.models import Proposal
from tests.factories import (
    FoundationRoleFactory,
    GovernmentStaffFactory,
    MembershipFactory,
    MunicipalityFactory,
    PrefectureFactory,
    SiteAdminFactory,
    UserFactory,
)
from tests.fund.test_project_pages import give, live, signed_in
from tests.fund.test_projects import decided, listed, moved

pytestmark = [pytest.mark.django_db]
State = Project.State

UNFUNDED = "/api/v1/unfunded-proposals/"


def officer_of(body) -> User:
    return GovernmentStaffFactory(body=body).user


def api(user: User | None = None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def unfunded_ids(**kw) -> list[int]:
    return [row.proposal.pk for row in selectors.unfunded_proposals(**kw)]


# --- The selector ------------------------------------------------------------------------------


def test_unfunded_rules():
    unlisted = decided()
    partial = decided(Proposal.Decision.PARTIALLY_ADOPTED)
    budgeted = decided(budget=Proposal.BudgetProvision.YES)
    pending = decided(budget=Proposal.BudgetProvision.PENDING)
    rejected = decided(Proposal.Decision.NOT_ADOPTED)
    under = live(goal_yen=100_000)
    give(under, 30_000, "t-under")
    at_goal = live(goal_yen=100_000)
    give(at_goal, 100_000, "t-at-goal")
    over = live(goal_yen=100_000)
    give(over, 120_000, "t-over")
    draft = listed(goal_yen=50_000)

    ids = unfunded_ids()
    assert unlisted.pk in ids and partial.pk in ids
    assert under.proposal_id in ids and draft.proposal_id in ids
    for excluded in (budgeted, pending, rejected, at_goal.proposal, over.proposal):
        assert excluded.pk not in ids

    rows = {row.proposal.pk: row for row in selectors.unfunded_proposals()}
    assert (rows[under.proposal_id].goal, rows[under.proposal_id].raised) == (100_000, 30_000)
    assert rows[under.proposal_id].gap == 70_000
    assert rows[under.proposal_id].deadline == under.closes_at
    assert (
        rows[under.proposal_id].deadline_date
        == under.closes_at.astimezone(dt.timezone(dt.timedelta(hours=9))).date()
    )
    assert rows[draft.proposal_id].gap == 50_000  # nothing raised yet
    assert rows[unlisted.pk].project is None
    assert (rows[unlisted.pk].gap, rows[unlisted.pk].deadline, rows[unlisted.pk].raised) == (
        None,
        None,
        None,
    )


def test_a_cancelled_project_leaves_its_proposal_unfunded_again_as_unlisted():
    project = moved(live(goal_yen=100_000), "cancel")
    (row,) = selectors.unfunded_proposals()
    assert row.proposal.pk == project.proposal_id
    assert row.project is None and row.gap is None and row.deadline is None


def test_a_closed_project_under_goal_is_unfunded_and_a_granted_one_is_not():
    closed = moved(live(goal_yen=100_000), "close")
    give(closed, 10_000, "t-closed")
    granted = moved(live(goal_yen=100_000), "close")
    Project.objects.filter(pk=granted.pk).update(state=State.GRANTED)
    ids = unfunded_ids()
    assert closed.proposal_id in ids
    assert granted.proposal_id not in ids


def test_filters_by_body_and_fiscal_year():
    city = MunicipalityFactory()
    pref = decided()
    local = decided(body=city)
    older = decided(body=city, received_on=dt.date(2025, 6, 1))
    assert older.fiscal_year == 2025 and local.fiscal_year == 2026
    assert set(unfunded_ids(body=city)) == {local.pk, older.pk}
    assert unfunded_ids(body=city, fiscal_year=2025) == [older.pk]
    assert unfunded_ids(body=PrefectureFactory()) == [pref.pk]


def test_the_selector_makes_a_fixed_number_of_queries():
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            selectors.unfunded_proposals()
        return len(captured)

    for i in range(2):
        give(live(goal_yen=100_000), 1_000, f"t-q{i}")
    with_two = queries()
    for i in range(8):
        give(live(goal_yen=100_000), 1_000, f"t-r{i}")
        decided()
    assert len(selectors.unfunded_proposals()) == 18
    assert queries() == with_two == 2


# --- The page ----------------------------------------------------------------------------------


def _page_ids(response) -> set[int]:
    import re

    return {int(pk) for pk in re.findall(r'data-proposal="(\d+)"', response.content.decode())}


def test_a_municipality_officer_sees_only_their_municipality():
    city = MunicipalityFactory()
    pref_proposal = decided()
    city_proposal = decided(body=city)
    project = live(goal_yen=200_000, body=city)
    give(project, 50_000, "t-city")
    response = signed_in(officer_of(city)).get(reverse("fund:unfunded"))
    assert response.status_code == 200
    assert _page_ids(response) == {city_proposal.pk, project.proposal_id}
    assert pref_proposal.pk not in _page_ids(response)
    html = response.content.decode()
    assert "¥150,000" in html  # the gap
    assert project.get_absolute_url() in html
    assert city_proposal.get_absolute_url() in html
    # A body filter is not theirs to use: still their own body only.
    response = signed_in(officer_of(city)).get(reverse("fund:unfunded"), {"body": "410004"})
    assert _page_ids(response) == {city_proposal.pk, project.proposal_id}


def test_a_prefecture_officer_sees_only_the_prefecture_and_filters_by_year():
    city = MunicipalityFactory()
    pref_now = decided()
    pref_old = decided(received_on=dt.date(2025, 6, 1))
    decided(body=city)
    client = signed_in(officer_of(PrefectureFactory()))
    assert _page_ids(client.get(reverse("fund:unfunded"))) == {pref_now.pk, pref_old.pk}
    assert _page_ids(client.get(reverse("fund:unfunded"), {"fiscal_year": 2025})) == {pref_old.pk}
    # A bad year is reported and dropped, not a 500.
    response = client.get(reverse("fund:unfunded"), {"fiscal_year": "abc"})
    assert response.status_code == 200
    assert _page_ids(response) == {pref_now.pk, pref_old.pk}


@pytest.mark.parametrize(
    "make",
    [
        lambda: FoundationRoleFactory(role=FoundationRole.Role.FINANCE).user,
        lambda: SiteAdminFactory(),
    ],
    ids=["foundation", "site-admin"],
)
def test_foundation_staff_and_the_site_admin_see_every_body_and_filter_by_body(make):
    city = MunicipalityFactory()
    pref = decided()
    local = decided(body=city)
    client = signed_in(make())
    assert _page_ids(client.get(reverse("fund:unfunded"))) == {pref.pk, local.pk}
    assert _page_ids(client.get(reverse("fund:unfunded"), {"body": city.code})) == {local.pk}


@pytest.mark.parametrize(
    "make",
    [lambda: UserFactory(), lambda: MembershipFactory().user],
    ids=["citizen", "cso-member"],
)
def test_the_page_is_closed_to_citizens_and_cso_members(make):
    decided()
    assert signed_in(make()).get(reverse("fund:unfunded")).status_code == 403


def test_the_page_asks_anonymous_visitors_to_sign_in(client):
    response = client.get(reverse("fund:unfunded"))
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_the_page_makes_the_same_number_of_queries_for_2_and_10_projects():
    client = signed_in(SiteAdminFactory())

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(reverse("fund:unfunded")).status_code == 200
        return len(captured)

    for i in range(2):
        give(live(goal_yen=100_000), 1_000, f"t-p{i}")
    with_two = queries()
    for i in range(8):
        give(live(goal_yen=100_000), 1_000, f"t-s{i}")
    assert len(_page_ids(client.get(reverse("fund:unfunded")))) == 10
    assert queries() == with_two


# --- API: unfunded proposals -------------------------------------------------------------------


def _api_ids(response) -> set[int]:
    assert response.status_code == 200, response.content
    return {item["id"] for item in response.json()["results"]}


def test_the_unfunded_api_fields():
    project = live(goal_yen=100_000)
    give(project, 25_000, "t-u")
    unlisted = decided()
    rows = {item["id"]: item for item in api(SiteAdminFactory()).get(UNFUNDED).json()["results"]}
    listed_row = rows[project.proposal_id]
    assert listed_row["project"] == project.pk
    assert (listed_row["goal_yen"], listed_row["raised_yen"], listed_row["gap_yen"]) == (
        100_000,
        25_000,
        75_000,
    )
    assert listed_row["closes_at"] is not None
    assert listed_row["body"] == {"code": "410004", "name": "佐賀県"}
    assert listed_row["reference"] == project.proposal.reference
    unlisted_row = rows[unlisted.pk]
    assert unlisted_row["project"] is None
    assert [unlisted_row[k] for k in ("goal_yen", "raised_yen", "gap_yen", "closes_at")] == [
        None
    ] * 4


def test_the_unfunded_api_scopes_government_officers_to_their_body():
    city = MunicipalityFactory()
    pref = decided()
    local = decided(body=city)
    city_officer = api(officer_of(city))
    assert _api_ids(city_officer.get(UNFUNDED)) == {local.pk}
    # Asking for the prefecture's gets nothing of the prefecture's.
    assert _api_ids(city_officer.get(UNFUNDED, {"body": "410004"})) == set()
    assert _api_ids(api(officer_of(PrefectureFactory())).get(UNFUNDED)) == {pref.pk}
    staff = api(FoundationRoleFactory(role=FoundationRole.Role.APPROVER).user)
    assert _api_ids(staff.get(UNFUNDED)) == {pref.pk, local.pk}
    assert _api_ids(staff.get(UNFUNDED, {"body": city.code})) == {local.pk}
    older = decided(body=city, received_on=dt.date(2025, 6, 1))
    assert _api_ids(staff.get(UNFUNDED, {"fiscal_year": 2025})) == {older.pk}


@pytest.mark.parametrize(
    "make",
    [lambda: None, lambda: UserFactory(), lambda: MembershipFactory().user],
    ids=["anonymous", "citizen", "cso-member"],
)
def test_the_unfunded_api_is_403_for_anyone_else(make):
    decided()
    response = api(make()).get(UNFUNDED)
    assert response.status_code == 403
    assert response.json()["detail"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"body": "999999"}, "body"),
        ({"fiscal_year": "x"}, "fiscal_year"),
        ({"fiscal_year": "1900"}, "fiscal_year"),
        ({"page": "0"}, "page"),
    ],
)
def test_the_unfunded_api_answers_400_for_bad_params(params, field):
    response = api(SiteAdminFactory()).get(UNFUNDED, params)
    assert response.status_code == 400
    assert response.json()[field]


def test_the_unfunded_api_makes_the_same_number_of_queries_for_2_and_10_projects():
    client = api(SiteAdminFactory())

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(UNFUNDED).status_code == 200
        return len(captured)

    queries()  # the user's roles are read once, then cached on the forced user
    for i in range(2):
        give(live(goal_yen=100_000), 1_000, f"t-c{i}")
    with_two = queries()
    for i in range(8):
        give(live(goal_yen=100_000), 1_000, f"t-d{i}")
    assert client.get(UNFUNDED).json()["count"] == 10
    assert queries() == with_two
