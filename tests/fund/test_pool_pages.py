"""Match pool pages: the foundation's staff pages (/projects/staff/pools/) and the sponsor's
statement (/pools/), on the page and as CSV."""

import csv
import datetime as dt
import io
from typing import Any

import pytest
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import FoundationRole, Organization, User
from donations import services as donation_services
from fund.ledger import balance
from fund.matching import pool_end, pool_record_payment
from fund.models import JournalEntry, MatchPool, MatchPoolEvent, Project
from fund.selectors import pool_figures
from proposals.fiscal import JAPAN
from tests.factories import (
    FoundationRoleFactory,
    MembershipFactory,
    OrganizationFactory,
    ProjectFactory,
    SiteAdminFactory,
    UserFactory,
    give,
    pledge_pool,
)

pytestmark = pytest.mark.django_db

DONOR_EMAIL = "hanako.donor@example.jp"
DONOR_NAME = "佐賀 花子"


def figures(pool: MatchPool):
    return pool_figures([pool])[pool.pk]


def signed_in(user: User | None, *, enforce_csrf: bool = False) -> Client:
    client = Client(enforce_csrf_checks=enforce_csrf)
    if user is not None:
        client.force_login(user)
    return client


def refund(gift, amount: int, refund_id: str):
    """A refund as the webhook records it (the provider already moved the money)."""
    with transaction.atomic():
        return donation_services._record_refund(
            gift, provider_refund_id=refund_id, amount=amount, reason="requested", source="test"
        )


def staff(role: str) -> User:
    return FoundationRoleFactory(role=role).user


@pytest.fixture
def sponsor() -> Organization:
    return OrganizationFactory(name="佐賀未来銀行", kind=Organization.Kind.COMPANY)


@pytest.fixture
def pool(sponsor) -> MatchPool:
    return pledge_pool(500_000, sponsor=sponsor, name="佐賀未来銀行 1:1 マッチング")


# Who is who, given the pool: every role the pages must answer for.
ROLES = {
    "anonymous": lambda pool: None,
    "citizen": lambda pool: UserFactory(),
    "cso_member": lambda pool: MembershipFactory().user,
    "other_sponsor": lambda pool: (
        MembershipFactory(organization=pledge_pool(10_000, name="他社のプール").sponsor).user
    ),
    "sponsor_member": lambda pool: MembershipFactory(organization=pool.sponsor).user,
    "approver": lambda pool: staff(FoundationRole.Role.APPROVER),
    "programme_officer": lambda pool: staff(FoundationRole.Role.PROGRAMME_OFFICER),
    "finance": lambda pool: staff(FoundationRole.Role.FINANCE),
    "site_admin": lambda pool: SiteAdminFactory(),
}
OUTSIDE_FOUNDATION = ["citizen", "cso_member", "other_sponsor", "sponsor_member"]
MANAGERS = ["programme_officer", "finance", "site_admin"]
LOGIN = "login"


def expected_staff_view(who: str) -> Any:
    if who == "anonymous":
        return LOGIN
    return 403 if who in OUTSIDE_FOUNDATION else 200


def expected_staff_manage(who: str) -> Any:
    if who == "anonymous":
        return LOGIN
    return 200 if who in MANAGERS else 403


def expected_statement(who: str) -> Any:
    if who == "anonymous":
        return LOGIN
    return 404 if who in ("citizen", "cso_member", "other_sponsor") else 200


def assert_outcome(response, expected: Any) -> None:
    if expected == LOGIN:
        assert response.status_code == 302
        assert reverse("account_login") in response["Location"]
    else:
        assert response.status_code == expected


# --- Who may see what ----------------------------------------------------------------------------


@pytest.mark.parametrize("who", list(ROLES))
def test_who_sees_the_staff_pool_pages(pool, who):
    client = signed_in(ROLES[who](pool))
    for url in (reverse("fund:staff-pools"), reverse("fund:staff-pool", args=[pool.pk])):
        assert_outcome(client.get(url), expected_staff_view(who))
    for url in (reverse("fund:pool-create"), reverse("fund:pool-end", args=[pool.pk])):
        assert_outcome(client.get(url), expected_staff_manage(who))


@pytest.mark.parametrize("who", list(ROLES))
def test_who_reads_a_statement(pool, who):
    client = signed_in(ROLES[who](pool))
    for name in ("pools:statement", "pools:statement-csv"):
        response = client.get(reverse(name, args=[pool.pk]))
        assert_outcome(response, expected_statement(who))
        if response.status_code == 200:
            assert response["Cache-Control"] == "private, no-store"


@pytest.mark.parametrize("who", list(ROLES))
def test_the_pool_list_shows_each_user_their_own_pools(pool, who):
    user = ROLES[who](pool)
    response = signed_in(user).get(reverse("pools:list"))
    if who == "anonymous":
        assert_outcome(response, LOGIN)
        return
    assert response.status_code == 200
    shown = {row.pool.pk for row in response.context["rows"]}
    if who in ("approver", *MANAGERS):
        assert shown == set(MatchPool.objects.values_list("pk", flat=True))
    elif who == "sponsor_member":
        assert shown == {pool.pk}
    elif who == "other_sponsor":
        assert shown == {user.memberships.get().organization.match_pools.get().pk}
    else:
        assert shown == set()
        assert 'id="no-pools"' in response.content.decode()


def _create_data(**overrides: Any) -> dict[str, Any]:
    data = {
        "sponsor": str(OrganizationFactory(kind=Organization.Kind.COMPANY).pk),
        "name": "佐賀ガス 子ども応援マッチング",
        "pledged": "1,000,000",
        "ratio_gift": "1",
        "ratio_match": "2",
        "cap_per_gift": "10,000",
        "cap_per_donor": "",
        "scope": "all",
        "starts_at": "2026-12-01",
        "ends_at": "2027-03-31",
        "priority": "5",
        "leftover": "sponsor",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def _actions(pool: MatchPool) -> dict[str, tuple[str, dict[str, Any]]]:
    return {
        "create": (reverse("fund:pool-create"), _create_data()),
        "top-up": (
            reverse("fund:pool-action", args=[pool.pk, "top-up"]),
            {"top_up-amount": "100000"},
        ),
        "payment": (
            reverse("fund:pool-action", args=[pool.pk, "payment"]),
            {"payment-amount": "100000", "payment-reference": "振込 0001"},
        ),
        "change": (
            reverse("fund:pool-action", args=[pool.pk, "change"]),
            {"change-name": "新しい名前", "change-priority": "9", "change-ends_at": "2027-06-30"},
        ),
        "end": (reverse("fund:pool-end", args=[pool.pk]), {}),
    }


@pytest.mark.parametrize("action", ["create", "top-up", "payment", "change", "end"])
@pytest.mark.parametrize("who", list(ROLES))
def test_only_programme_and_finance_staff_and_the_admin_manage_pools(pool, who, action):
    client = signed_in(ROLES[who](pool))
    url, data = _actions(pool)[action]
    before = (
        MatchPool.objects.count(),
        MatchPoolEvent.objects.count(),
        JournalEntry.objects.count(),
    )
    response = client.post(url, data)
    if who in MANAGERS:
        assert response.status_code == 302
        assert MatchPoolEvent.objects.count() == before[1] + 1
        pool.refresh_from_db()
        if action == "change":
            assert pool.name == "新しい名前"
        if action == "end":
            assert pool.state == MatchPool.State.ENDED
        return
    if who == "anonymous":
        assert_outcome(response, LOGIN)
    else:
        assert response.status_code == 403
    after = (
        MatchPool.objects.count(),
        MatchPoolEvent.objects.count(),
        JournalEntry.objects.count(),
    )
    assert after == before
    pool.refresh_from_db()
    assert (pool.state, pool.name) == (MatchPool.State.ACTIVE, "佐賀未来銀行 1:1 マッチング")


def test_actions_are_post_only_with_the_csrf_token(pool):
    client = signed_in(staff(FoundationRole.Role.FINANCE), enforce_csrf=True)
    for action in ("top-up", "payment", "change"):
        url = reverse("fund:pool-action", args=[pool.pk, action])
        assert client.get(url).status_code == 405
        assert client.post(url, _actions(pool)[action][1]).status_code == 403
    assert client.post(reverse("fund:pool-end", args=[pool.pk])).status_code == 403
    assert client.post(reverse("fund:pool-create"), _create_data()).status_code == 403
    assert MatchPoolEvent.objects.count() == 1
    assert MatchPool.objects.count() == 1


def test_an_unknown_action_is_a_404(pool):
    response = signed_in(SiteAdminFactory()).post(
        reverse("fund:pool-action", args=[pool.pk, "drain"])
    )
    assert response.status_code == 404


def test_approvers_see_the_pool_without_the_forms(pool):
    response = signed_in(staff(FoundationRole.Role.APPROVER)).get(
        reverse("fund:staff-pool", args=[pool.pk])
    )
    assert response.status_code == 200
    assert not response.context["may_manage"]
    content = response.content.decode()
    assert reverse("fund:pool-action", args=[pool.pk, "top-up"]) not in content
    assert reverse("fund:pool-end", args=[pool.pk]) not in content
    listing = signed_in(staff(FoundationRole.Role.APPROVER)).get(reverse("fund:staff-pools"))
    assert reverse("fund:pool-create") not in listing.content.decode()


# --- Creating a pool -----------------------------------------------------------------------------


def test_a_programme_officer_creates_a_pool():
    officer = staff(FoundationRole.Role.PROGRAMME_OFFICER)
    data = _create_data()
    response = signed_in(officer).post(reverse("fund:pool-create"), data)
    pool = MatchPool.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("fund:staff-pool", args=[pool.pk])
    assert pool.sponsor_id == int(data["sponsor"])
    assert (pool.ratio_label, pool.cap_per_gift, pool.cap_per_donor) == ("1:2", 10_000, None)
    assert (pool.priority, pool.scope, pool.created_by) == (5, "all", officer)
    assert pool.starts_at == dt.datetime(2026, 12, 1, tzinfo=JAPAN)
    assert pool.ends_at == dt.datetime(2027, 3, 31, 23, 59, 59, tzinfo=JAPAN)
    f = figures(pool)
    assert (f.pledged, f.unpaid, f.left) == (1_000_000, 1_000_000, 1_000_000)
    assert pool.events.get().actor == officer


def test_a_pool_for_chosen_projects_keeps_them_and_cancelled_projects_are_not_offered():
    chosen = ProjectFactory()
    cancelled = ProjectFactory(state=Project.State.CANCELLED)
    client = signed_in(staff(FoundationRole.Role.PROGRAMME_OFFICER))
    form = client.get(reverse("fund:pool-create")).context["form"]
    offered = set(form.fields["projects"].queryset)
    assert chosen in offered
    assert cancelled not in offered
    data = _create_data(scope="projects")
    data["projects"] = [str(chosen.pk)]
    client.post(reverse("fund:pool-create"), data)
    assert list(MatchPool.objects.get().projects.all()) == [chosen]


def test_general_fund_with_the_sponsors_consent_is_accepted():
    data = _create_data(leftover="general_fund", sponsor_consents_to_general_fund="on")
    response = signed_in(SiteAdminFactory()).post(reverse("fund:pool-create"), data)
    assert response.status_code == 302
    assert MatchPool.objects.get().leftover == MatchPool.Leftover.GENERAL_FUND


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"ratio_gift": "0"}, "ratio_gift"),
        ({"ratio_match": "-1"}, "ratio_match"),
        ({"cap_per_gift": "0"}, "cap_per_gift"),
        ({"cap_per_donor": "-5"}, "cap_per_donor"),
        ({"ends_at": "2026-11-30"}, "ends_at"),
        ({"leftover": "general_fund"}, "sponsor_consents_to_general_fund"),
        ({"scope": "projects"}, "projects"),
        ({"scope": "body"}, "body"),
        ({"scope": "fiscal_year"}, "fiscal_year"),
        ({"pledged": "0"}, "pledged"),
        ({"pledged": "-100"}, "pledged"),
        ({"pledged": "1000.5"}, "pledged"),
        ({"name": "   "}, "name"),
        ({"sponsor": ""}, "sponsor"),
    ],
    ids=[
        "zero-ratio",
        "negative-ratio",
        "zero-cap",
        "negative-cap",
        "window",
        "general-fund-without-consent",
        "projects-without-projects",
        "body-without-body",
        "fiscal-year-without-year",
        "zero-pledge",
        "negative-pledge",
        "fraction",
        "blank-name",
        "no-sponsor",
    ],
)
def test_bad_pools_are_form_errors_and_nothing_is_saved(data, field):
    response = signed_in(staff(FoundationRole.Role.FINANCE)).post(
        reverse("fund:pool-create"), _create_data(**data)
    )
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert field in errors, errors
    assert not MatchPool.objects.exists()
    assert not MatchPoolEvent.objects.exists()
    assert not JournalEntry.objects.exists()


def test_a_rule_error_is_not_repeated_on_a_field_already_refused():
    response = signed_in(SiteAdminFactory()).post(
        reverse("fund:pool-create"), _create_data(ratio_gift="abc")
    )
    assert len(response.context["form"].errors["ratio_gift"]) == 1


# --- Running a pool through its page -------------------------------------------------------------


def test_top_up_payment_and_change_through_the_page(pool):
    finance = staff(FoundationRole.Role.FINANCE)
    client = signed_in(finance)
    action = lambda name: reverse("fund:pool-action", args=[pool.pk, name])  # noqa: E731
    response = client.post(action("top-up"), {"top_up-amount": "¥200,000", "top_up-note": "増額"})
    assert response.status_code == 302
    assert [str(m) for m in client.get(response["Location"]).context["messages"]]
    assert (figures(pool).pledged, figures(pool).unpaid) == (700_000, 700_000)

    client.post(action("payment"), {"payment-amount": "300000", "payment-reference": "振込 0001"})
    f = figures(pool)
    assert (f.paid, f.unpaid, f.left) == (300_000, 400_000, 700_000)
    assert balance("bank") == 300_000

    client.post(
        action("change"),
        {"change-name": "名称変更", "change-priority": "7", "change-ends_at": "2027-09-30"},
    )
    pool.refresh_from_db()
    assert (pool.name, pool.priority) == ("名称変更", 7)
    assert pool.ends_at == dt.datetime(2027, 9, 30, 23, 59, 59, tzinfo=JAPAN)
    actions = list(pool.events.values_list("action", "actor"))
    assert actions == [
        ("created", MatchPool.objects.get().created_by_id),
        ("topped_up", finance.pk),
        ("payment_received", finance.pk),
        ("changed", finance.pk),
    ]
    page = client.get(reverse("fund:staff-pool", args=[pool.pk])).content.decode()
    assert "振込 0001" in page
    assert page.count('data-action="') == 4


def test_a_change_that_keeps_the_end_date_keeps_its_time(pool):
    ends_at = pool.ends_at
    signed_in(SiteAdminFactory()).post(
        reverse("fund:pool-action", args=[pool.pk, "change"]),
        {
            "change-name": pool.name,
            "change-priority": "3",
            "change-ends_at": ends_at.astimezone(JAPAN).date().isoformat(),
        },
    )
    pool.refresh_from_db()
    assert (pool.priority, pool.ends_at) == (3, ends_at)


def test_a_payment_above_what_is_owed_is_a_form_error_naming_the_amount(pool):
    client = signed_in(staff(FoundationRole.Role.FINANCE))
    url = reverse("fund:pool-action", args=[pool.pk, "payment"])
    client.post(url, {"payment-amount": "100000", "payment-reference": "A-1"})
    response = client.post(url, {"payment-amount": "400001", "payment-reference": "A-2"})
    assert response.status_code == 200
    form = response.context["payment_form"]
    assert "¥400,000" in " ".join(form.errors["amount"])
    assert "¥400,000" in response.content.decode()
    assert figures(pool).paid == 100_000
    assert pool.events.filter(action="payment_received").count() == 1


def test_the_same_bank_reference_is_a_form_error(pool):
    client = signed_in(staff(FoundationRole.Role.FINANCE))
    url = reverse("fund:pool-action", args=[pool.pk, "payment"])
    client.post(url, {"payment-amount": "1000", "payment-reference": "REF-1"})
    response = client.post(url, {"payment-amount": "1000", "payment-reference": "REF-1"})
    assert response.status_code == 200
    assert "reference" in response.context["payment_form"].errors
    assert figures(pool).paid == 1000


@pytest.mark.parametrize(
    ("action", "data", "field"),
    [
        ("top-up", {"top_up-amount": "0"}, "amount"),
        ("top-up", {"top_up-amount": "abc"}, "amount"),
        ("payment", {"payment-amount": "-1", "payment-reference": "x"}, "amount"),
        ("payment", {"payment-amount": "1000", "payment-reference": ""}, "reference"),
        (
            "change",
            {"change-name": "", "change-priority": "1", "change-ends_at": "2027-01-01"},
            "name",
        ),
        (
            "change",
            {"change-name": "x", "change-priority": "1", "change-ends_at": "2020-01-01"},
            "ends_at",
        ),
    ],
)
def test_bad_actions_are_form_errors_and_change_nothing(pool, action, data, field):
    response = signed_in(SiteAdminFactory()).post(
        reverse("fund:pool-action", args=[pool.pk, action]), data
    )
    assert response.status_code == 200
    form = response.context[f"{action.replace('-', '_')}_form"]
    assert field in form.errors
    assert MatchPoolEvent.objects.count() == 1
    f = figures(pool)
    assert (f.pledged, f.paid) == (500_000, 0)


def test_ending_a_pool_shows_where_the_money_goes_then_ends_it(pool):
    give(ProjectFactory(), 100_000)  # matched 1:1: 400,000 left
    pool_record_payment(pool=pool, amount=450_000, reference="R-1", actor=SiteAdminFactory())
    client = signed_in(staff(FoundationRole.Role.PROGRAMME_OFFICER))
    url = reverse("fund:pool-end", args=[pool.pk])
    confirm = client.get(url)
    assert confirm.status_code == 200
    leftover = confirm.context["leftover"]
    # Of the 400,000 left, 50,000 was never paid (forgiven), 350,000 goes back to the sponsor.
    assert (leftover.left, leftover.forgiven, leftover.paid_back) == (400_000, 50_000, 350_000)
    content = confirm.content.decode()
    assert "¥350,000" in content
    assert "¥50,000" in content
    assert pool.state == MatchPool.State.ACTIVE  # a GET changes nothing

    response = client.post(url)
    assert response.status_code == 302
    pool.refresh_from_db()
    assert pool.state == MatchPool.State.ENDED
    f = figures(pool)
    assert (f.left, f.unpaid, f.returned, f.net_matched) == (0, 0, 400_000, 100_000)
    messages = [str(m) for m in client.get(response["Location"]).context["messages"]]
    assert any("¥400,000" in m for m in messages)

    # Ended: no more forms, and ending again is refused with a message.
    detail = client.get(reverse("fund:staff-pool", args=[pool.pk]))
    assert detail.context["top_up_form"] is None
    assert detail.context["change_form"] is None
    again = client.post(url, follow=True)
    assert [str(m) for m in again.context["messages"]]
    assert pool.events.filter(action="ended").count() == 1


def test_the_end_page_says_when_what_is_left_goes_to_the_general_fund():
    pool = pledge_pool(200_000, leftover="general_fund", sponsor_consents_to_general_fund=True)
    pool_record_payment(pool=pool, amount=200_000, reference="R", actor=SiteAdminFactory())
    client = signed_in(SiteAdminFactory())
    confirm = client.get(reverse("fund:pool-end", args=[pool.pk]))
    leftover = confirm.context["leftover"]
    assert (leftover.paid_back, leftover.forgiven, leftover.to_general_fund) == (200_000, 0, True)
    assert 'data-leftover="paid-back"' in confirm.content.decode()
    client.post(reverse("fund:pool-end", args=[pool.pk]))
    assert balance("general_fund") == 200_000


def test_an_ended_pool_refuses_a_top_up_on_the_page(pool):
    admin = SiteAdminFactory()
    pool_end(pool=pool, actor=admin)
    response = signed_in(admin).post(
        reverse("fund:pool-action", args=[pool.pk, "top-up"]), {"top_up-amount": "1000"}
    )
    assert response.status_code == 200
    assert response.context["top_up_form"].non_field_errors()
    assert figures(pool).pledged == 500_000


# --- The list ------------------------------------------------------------------------------------


def test_the_staff_list_shows_each_pools_figures_and_expiry(pool):
    project = ProjectFactory()
    give(project, 30_000)
    ended = pledge_pool(50_000, name="終了したプール")
    pool_end(pool=ended, actor=SiteAdminFactory())
    response = signed_in(staff(FoundationRole.Role.FINANCE)).get(reverse("fund:staff-pools"))
    rows = {row.pool.pk: row for row in response.context["rows"]}
    assert rows[pool.pk].figures.net_matched == 30_000
    assert rows[pool.pk].figures.left == 470_000
    assert (
        rows[pool.pk].days_left
        == (pool.ends_at.astimezone(JAPAN).date() - timezone.localdate(timezone=JAPAN)).days
    )
    assert rows[ended.pk].days_left is None
    content = response.content.decode()
    assert "¥470,000" in content
    assert "1:1" in content
    assert reverse("fund:pool-create") in content
    # The filter by state; a bad state is reported, not a 500.
    client = signed_in(SiteAdminFactory())
    active = client.get(reverse("fund:staff-pools"), {"state": "active"}).context["rows"]
    assert [row.pool.pk for row in active] == [pool.pk]
    bad = client.get(reverse("fund:staff-pools"), {"state": "nonsense"})
    assert bad.status_code == 200
    assert len(bad.context["rows"]) == 2


def test_the_staff_list_costs_the_same_queries_for_one_pool_or_many():
    user = staff(FoundationRole.Role.FINANCE)
    client = signed_in(user)
    pledge_pool(100_000)
    client.get(reverse("fund:staff-pools"))  # warm the session

    def count() -> tuple[int, int]:
        with CaptureQueriesContext(connection) as queries:
            assert client.get(reverse("fund:staff-pools")).status_code == 200
        postings = [q for q in queries.captured_queries if "fund_posting" in q["sql"]]
        return len(queries.captured_queries), len(postings)

    one = count()
    project = ProjectFactory()
    for n in range(4):
        pledge_pool(100_000 + n, priority=n)
        give(project, 1000)
    many = count()
    assert one == many
    assert one[1] == 1  # every pool's figures in one query


# --- The statement -------------------------------------------------------------------------------


@pytest.fixture
def statement_pool(pool):
    """A pool with a payment, a matched gift and a partial refund of it."""
    project = ProjectFactory(title="干潟の清掃活動")
    pool_record_payment(
        pool=pool, amount=200_000, reference="振込 2026-12", actor=SiteAdminFactory()
    )
    gift = give(
        project,
        20_000,
        email=DONOR_EMAIL,
        name=DONOR_NAME,
        display_name="はなこ",
        publish_name=True,
    )
    refund(gift, 5_000, "re_partial")
    return pool


def test_the_statement_page_lists_every_movement_without_donors(statement_pool):
    pool = statement_pool
    user = MembershipFactory(organization=pool.sponsor).user
    response = signed_in(user).get(reverse("pools:statement", args=[pool.pk]))
    assert response.status_code == 200
    kinds = [item.line.kind for item in response.context["lines"]]
    assert kinds == ["pool_pledged", "pledge_paid", "match_allocated", "match_released"]
    lefts = [item.left for item in response.context["lines"]]
    assert lefts == [500_000, 500_000, 480_000, 485_000]
    assert lefts[-1] == figures(pool).left
    content = response.content.decode()
    for text in ("干潟の清掃活動", "¥20,000", "¥5,000", "¥485,000", "振込 2026-12", "1:1"):
        assert text in content
    for secret in (DONOR_EMAIL, DONOR_NAME, "はなこ"):
        assert secret not in content
    assert reverse("fund:staff-pool", args=[pool.pk]) not in content  # not staff


def test_the_statement_csv(statement_pool):
    pool = statement_pool
    user = MembershipFactory(organization=pool.sponsor).user
    response = signed_in(user).get(reverse("pools:statement-csv", args=[pool.pk]))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert f"pool-{pool.pk}-statement.csv" in response["Content-Disposition"]
    body = response.content
    assert body.startswith("\ufeff".encode())
    text = body.decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert len(rows) == 5
    header, *lines = rows
    assert len(header) == 7
    dates = [dt.datetime.fromisoformat(line[0]) for line in lines]
    assert all(d.utcoffset() == dt.timedelta(hours=9) for d in dates)
    assert [line[4] for line in lines] == ["500000", "200000", "20000", "5000"]
    assert [line[5] for line in lines] == ["500000", "500000", "480000", "485000"]
    assert lines[2][2] == "干潟の清掃活動"
    assert lines[2][3] == "20000"
    assert lines[1][6] == "振込 2026-12"
    for secret in (DONOR_EMAIL, DONOR_NAME, "はなこ"):
        assert secret not in text


def test_the_csv_headers_follow_the_language(statement_pool):
    client = signed_in(SiteAdminFactory())
    url = reverse("pools:statement-csv", args=[statement_pool.pk])
    japanese = client.get(url).content.decode("utf-8-sig")
    assert japanese.splitlines()[0].startswith("日時,")
    client.cookies["django_language"] = "en"
    english = client.get(url).content.decode("utf-8-sig")
    assert english.splitlines()[0].startswith("Date,")


def test_the_statement_of_an_ended_pool_shows_the_end_and_later_releases_pass_on(pool):
    project = ProjectFactory()
    gift = give(project, 10_000)
    pool_end(pool=pool, actor=SiteAdminFactory())
    refund(gift, 10_000, "re_after_end")
    response = signed_in(staff(FoundationRole.Role.APPROVER)).get(
        reverse("pools:statement", args=[pool.pk])
    )
    items = response.context["lines"]
    assert [i.line.kind for i in items] == [
        "pool_pledged",
        "match_allocated",
        "pool_ended",
        "match_released",
    ]
    assert [i.left for i in items] == [500_000, 490_000, 0, 0]
    assert items[-1].passed_on
    assert figures(pool).left == 0
    assert reverse("fund:staff-pool", args=[pool.pk]) in response.content.decode()


def test_the_dashboard_links_members_and_staff_to_the_statements(pool):
    member = MembershipFactory(organization=pool.sponsor).user
    assert (
        reverse("pools:list")
        in signed_in(member).get(reverse("accounts:dashboard")).content.decode()
    )
    assert (
        reverse("pools:list")
        not in signed_in(UserFactory()).get(reverse("accounts:dashboard")).content.decode()
    )


def test_the_staff_navigation_links_the_pools():
    content = (
        signed_in(staff(FoundationRole.Role.APPROVER))
        .get(reverse("fund:staff-projects"))
        .content.decode()
    )
    assert reverse("fund:staff-pools") in content


def test_csv_text_never_reads_as_a_formula(pool):
    give(ProjectFactory(title='=HYPERLINK("http://example.com")'), 1000)
    response = signed_in(SiteAdminFactory()).get(reverse("pools:statement-csv", args=[pool.pk]))
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[2][2].startswith("'=")
