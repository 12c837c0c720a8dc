"""The match pools API: the public list of pools and each pool's private statement.

The list shows a pool's rules and what it pledged, matched (net) and has left — never what the
sponsor has paid or owes, never a donor — filtered by state and by the project a gift would go
to; a bad filter is a 400 with a message; a page costs the same queries however many pools. The
statement (every figure and line) is for the sponsor's members and foundation staff: an anonymous
caller gets the API's 403, anyone else signed in a 404.
"""

import datetime as dt

import pytest
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from accounts.models import FoundationRole, Organization, User
from donations import services as donation_services
from fund.matching import pool_end, pool_record_payment, pool_top_up
from fund.models import MatchPool
from tests.factories import (
    FoundationRoleFactory,
    MembershipFactory,
    MunicipalityFactory,
    OrganizationFactory,
    SiteAdminFactory,
    UserFactory,
    give,
    pledge_pool,
)
from tests.fund.test_project_pages import live
from tests.fund.test_projects import listed, moved

pytestmark = pytest.mark.django_db

POOLS = "/api/v1/match-pools/"


def api(user: User | None = None) -> APIClient:
    client = APIClient()
    client.cookies["django_language"] = "en"  # the messages in English
    if user is not None:
        client.force_authenticate(user)
    return client


def statement_url(pool: MatchPool) -> str:
    return f"{POOLS}{pool.pk}/statement/"


def bank(name: str = "佐賀未来銀行") -> Organization:
    return OrganizationFactory(name=name, kind=Organization.Kind.COMPANY)


def staff(role: str = FoundationRole.Role.FINANCE) -> User:
    return FoundationRoleFactory(role=role).user


def ids(**params) -> list[int]:
    response = api().get(POOLS, params)
    assert response.status_code == 200, response.content
    return [item["id"] for item in response.json()["results"]]


def refund(gift, amount: int, refund_id: str) -> None:
    with transaction.atomic():
        donation_services._record_refund(
            gift, provider_refund_id=refund_id, amount=amount, reason="requested", source="test"
        )


PUBLIC_FIELDS = {
    "id",
    "name",
    "sponsor",
    "ratio_gift",
    "ratio_match",
    "ratio",
    "cap_per_gift_yen",
    "cap_per_donor_yen",
    "scope",
    "projects",
    "body",
    "fiscal_year",
    "starts_at",
    "ends_at",
    "priority",
    "state",
    "pledged_yen",
    "matched_yen",
    "left_yen",
}


# --- The public list -----------------------------------------------------------------------------


def test_the_list_shows_each_pools_rules_and_figures_and_nothing_private():
    project = live()
    pool = pledge_pool(
        100_000,
        sponsor=bank(),
        name="佐賀未来銀行 子ども応援マッチング",
        ratio_gift=1,
        ratio_match=2,
        cap_per_gift=6_000,
        cap_per_donor=10_000,
        scope="projects",
        projects=[project],
        priority=3,
    )
    pool_record_payment(pool=pool, amount=40_000, reference="振込 0001", actor=SiteAdminFactory())
    gift = give(project, 4_000, payment_id="pi_api_1", email="hanako@example.jp", name="佐賀 花子")
    refund(gift, 1_000, "re_api_1")  # gives back ¥1,500 of the ¥6,000 match
    response = api().get(POOLS)
    assert response.status_code == 200
    payload = response.json()
    assert payload["count"] == 1
    (item,) = payload["results"]
    assert set(item) == PUBLIC_FIELDS
    assert item["id"] == pool.pk
    assert (item["name"], item["sponsor"]) == ("佐賀未来銀行 子ども応援マッチング", "佐賀未来銀行")
    assert (item["ratio_gift"], item["ratio_match"], item["ratio"]) == (1, 2, "1:2")
    assert (item["cap_per_gift_yen"], item["cap_per_donor_yen"]) == (6_000, 10_000)
    assert (item["scope"], item["projects"], item["body"], item["fiscal_year"]) == (
        "projects",
        [project.pk],
        None,
        None,
    )
    assert (item["priority"], item["state"]) == (3, "active")
    assert (item["pledged_yen"], item["matched_yen"], item["left_yen"]) == (100_000, 4_500, 95_500)
    assert item["starts_at"] and item["ends_at"]
    content = response.content.decode()
    for private in ("hanako@example.jp", "佐賀 花子", "振込 0001", "paid", "40000", "60000"):
        assert private not in content


def test_a_body_pool_names_its_body_and_unlisted_projects_are_not_named():
    city = MunicipalityFactory(name="唐津市")
    by_body = pledge_pool(50_000, scope="body", body=city)
    draft = listed()
    chosen = pledge_pool(50_000, scope="projects", projects=[draft, live()])
    items = {item["id"]: item for item in api().get(POOLS).json()["results"]}
    assert items[by_body.pk]["body"] == {"id": city.pk, "code": city.code, "name": "唐津市"}
    assert items[by_body.pk]["projects"] == []
    assert draft.pk not in items[chosen.pk]["projects"]
    assert len(items[chosen.pk]["projects"]) == 1


def test_one_pool_by_id():
    pool = pledge_pool(70_000, sponsor=bank())
    response = api().get(f"{POOLS}{pool.pk}/")
    assert response.status_code == 200
    assert set(response.json()) == PUBLIC_FIELDS
    assert response.json()["left_yen"] == 70_000
    assert api().get(f"{POOLS}99999/").status_code == 404
    assert api().get(f"{POOLS}abc/").status_code == 404


def test_the_list_filters_by_state():
    active = pledge_pool(10_000)
    ended = pledge_pool(10_000)
    pool_end(pool=ended, actor=staff())
    assert set(ids()) == {active.pk, ended.pk}
    assert ids(state="active") == [active.pk]
    assert ids(state="ended") == [ended.pk]


def test_the_list_filters_by_the_project_a_gift_would_go_to_now():
    city = MunicipalityFactory()
    project, city_project = live(), live(body=city)
    now = timezone.now()
    everyone = pledge_pool(10_000, priority=1)
    for_project = pledge_pool(10_000, scope="projects", projects=[project], priority=2)
    for_city = pledge_pool(10_000, scope="body", body=city)
    later = pledge_pool(
        10_000, starts_at=now + dt.timedelta(days=5), ends_at=now + dt.timedelta(days=50)
    )
    ended = pledge_pool(10_000)
    pool_end(pool=ended, actor=staff())
    assert ids(project=project.pk) == [for_project.pk, everyone.pk]
    assert ids(project=city_project.pk) == [everyone.pk, for_city.pk]
    assert later.pk not in ids(project=project.pk)
    assert ids(project=project.pk, state="ended") == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"state": "spent"}, "state"),
        ({"state": "ACTIVE"}, "state"),
        ({"project": "abc"}, "project"),
        ({"project": "0"}, "project"),
        ({"project": "99999"}, "project"),
        ({"page": "x"}, "page"),
    ],
)
def test_a_bad_filter_is_400_with_a_message(params, field):
    pledge_pool(10_000)
    response = api().get(POOLS, params)
    assert response.status_code == 400
    assert response.json()[field]


def test_a_project_that_is_not_public_is_an_unknown_project():
    pledge_pool(10_000)
    for hidden in (listed(), moved(live(), "cancel")):
        response = api().get(POOLS, {"project": hidden.pk})
        assert response.status_code == 400
        assert response.json()["project"] == ["There is no project with this id."]


def test_the_state_message_says_what_is_allowed():
    response = api().get(POOLS, {"state": "spent"})
    assert response.json() == {"state": ["Choose active or ended."]}


def test_the_list_makes_the_same_number_of_queries_for_1_and_6_pools():
    project = live()

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert api().get(POOLS).status_code == 200
        return len(captured)

    pledge_pool(10_000, scope="projects", projects=[project])
    give(project, 1_000, payment_id="pi_q0")
    one = queries()
    for i in range(5):
        pledge_pool(10_000 + i, scope="projects", projects=[project, live()], priority=i)
        give(project, 2_000, payment_id=f"pi_q{i + 1}")
    assert api().get(POOLS).json()["count"] == 6
    assert queries() == one


# --- The statement -------------------------------------------------------------------------------


@pytest.fixture
def sponsored():
    """A sponsor's pool with a pledge, a top-up, a payment, two matched gifts, a refund's release
    and its end; and the people around it."""
    sponsor = bank()
    admin = SiteAdminFactory()
    project = live(title="有明海の干潟再生")
    pool = pledge_pool(20_000, sponsor=sponsor, actor=admin)
    pool_top_up(pool=pool, amount=5_000, actor=admin)
    pool_record_payment(pool=pool, amount=8_000, reference="振込 0042", actor=admin)
    first = give(project, 3_000, payment_id="pi_st_1", email="hanako@example.jp", name="佐賀 花子")
    give(project, 2_000, payment_id="pi_st_2", email="taro@example.jp", name="唐津 太郎")
    refund(first, 1_000, "re_st_1")
    pool_end(pool=pool, actor=admin)
    return {
        "pool": MatchPool.objects.get(pk=pool.pk),
        "project": project,
        "sponsor_member": MembershipFactory(organization=sponsor).user,
    }


@pytest.mark.parametrize(
    "who",
    ["sponsor_member", "programme_officer", "finance", "approver", "site_admin"],
)
def test_the_sponsor_and_foundation_staff_read_the_statement(sponsored, who):
    users = {
        "sponsor_member": lambda: sponsored["sponsor_member"],
        "programme_officer": lambda: staff(FoundationRole.Role.PROGRAMME_OFFICER),
        "finance": lambda: staff(FoundationRole.Role.FINANCE),
        "approver": lambda: staff(FoundationRole.Role.APPROVER),
        "site_admin": SiteAdminFactory,
    }
    response = api(users[who]()).get(statement_url(sponsored["pool"]))
    assert response.status_code == 200
    assert response["Cache-Control"] == "private, no-store"


def test_an_anonymous_caller_gets_403(sponsored):
    assert api().get(statement_url(sponsored["pool"])).status_code == 403
    assert api().get(f"{POOLS}99999/statement/").status_code == 403  # says nothing either way


@pytest.mark.parametrize("who", ["citizen", "other_organisation", "other_sponsor"])
def test_anyone_else_signed_in_gets_404(sponsored, who):
    users = {
        "citizen": UserFactory,
        "other_organisation": lambda: MembershipFactory().user,
        "other_sponsor": lambda: MembershipFactory(organization=bank("唐津信用金庫")).user,
    }
    user = users[who]()
    assert api(user).get(statement_url(sponsored["pool"])).status_code == 404
    assert api(user).get(f"{POOLS}99999/statement/").status_code == 404


def test_the_statement_is_read_with_a_token_or_the_sites_session(sponsored):
    member = sponsored["sponsor_member"]
    by_token = APIClient()
    by_token.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=member).key}")
    assert by_token.get(statement_url(sponsored["pool"])).status_code == 200
    by_session = Client()
    by_session.force_login(member)
    assert by_session.get(statement_url(sponsored["pool"])).status_code == 200


def test_staff_without_two_factor_get_nothing(sponsored):
    officer = FoundationRoleFactory(role=FoundationRole.Role.FINANCE, mfa=False).user
    assert api(officer).get(statement_url(sponsored["pool"])).status_code == 403


def test_the_statement_has_every_figure_and_line_and_no_donor(sponsored):
    pool, project = sponsored["pool"], sponsored["project"]
    response = api(sponsored["sponsor_member"]).get(statement_url(pool))
    payload = response.json()
    assert set(payload) == {"pool", "figures", "lines"}
    assert set(payload["pool"]) == PUBLIC_FIELDS
    assert (payload["pool"]["id"], payload["pool"]["state"]) == (pool.pk, "ended")
    # ¥25,000 pledged; ¥5,000 matched, ¥1,000 of it given back; ¥21,000 left at the end:
    # ¥8,000 paid goes back to the sponsor, the ¥17,000 unpaid is no longer owed.
    assert payload["figures"] == {
        "pledged_yen": 25_000,
        "paid_yen": 8_000,
        "unpaid_yen": 0,
        "allocated_yen": 5_000,
        "released_yen": 1_000,
        "matched_yen": 4_000,
        "returned_yen": 21_000,
        "left_yen": 0,
    }
    lines = payload["lines"]
    assert [(line["kind"], line["amount_yen"]) for line in lines] == [
        ("pool_pledged", 20_000),
        ("pool_pledged", 5_000),
        ("pledge_paid", 8_000),
        ("match_allocated", 3_000),
        ("match_allocated", 2_000),
        ("match_released", 1_000),
        ("pool_ended", 21_000),
    ]
    gift_lines = [line for line in lines if line["kind"].startswith("match_")]
    assert all(
        line["project"] == {"id": project.pk, "title": "有明海の干潟再生"} for line in gift_lines
    )
    assert [line["gift_amount_yen"] for line in gift_lines] == [3_000, 2_000, 3_000]
    assert lines[2]["reference"] == "振込 0042"
    assert lines[0]["project"] is None and lines[0]["gift_amount_yen"] is None
    assert all(line["at"] for line in lines)
    content = response.content.decode()
    for private in ("hanako@example.jp", "taro@example.jp", "佐賀 花子", "唐津 太郎", "pi_st_"):
        assert private not in content


# --- The schema ----------------------------------------------------------------------------------


def test_the_schema_lists_the_pool_endpoints(client):
    content = client.get("/api/schema/").content.decode()
    for path in (
        "/api/v1/match-pools/",
        "/api/v1/match-pools/{id}/",
        "/api/v1/match-pools/{id}/statement/",
    ):
        assert path in content
