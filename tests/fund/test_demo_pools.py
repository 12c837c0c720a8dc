"""The demo's match pools (``fund.demo``, pledged by ``manage.py load_demo`` before the gifts).

The whole command runs, twice, on a small register of its own (the register's own loader is
left out: tests/proposals/test_demo.py runs the command with it). The pools are pledged through
``fund.matching``, the demo gifts go through the pipeline and are matched there, then the
sponsors' payments are recorded and one pool is ended.
"""

from io import StringIO

import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command
from django.db import transaction
from django.db.models import Sum
from django.test import Client, override_settings
from django.urls import reverse
from django.utils import timezone

from accounts.demo import (
    DEMO_PASSWORD,
    SPONSOR_BANK,
    SPONSOR_FOUNDATION,
    SPONSOR_PREFECTURE,
    SPONSOR_USER,
)
from accounts.models import Membership, Organization
from accounts.policy import may
from donations.demo import demo_projects, planned_gifts
from donations.models import Gift
from fund.checks import run_checks
from fund.demo import NEARLY_SPENT_LEFT, PLAN, POOLS
from fund.ledger import EntryKind
from fund.models import (
    JournalEntry,
    MatchAllocation,
    MatchPool,
    MatchPoolEvent,
    MatchRelease,
    Posting,
)
from fund.selectors import matching_offers, pool_figures
from proposals.demo import MUNICIPALITIES
from tests.factories import MunicipalityFactory, PrefectureFactory, SiteAdminFactory
from tests.fund.test_projects import decided

pytestmark = pytest.mark.django_db

MODELS = (MatchPool, MatchPoolEvent, MatchAllocation, MatchRelease, JournalEntry, Posting, Gift)
NEARLY_SPENT, PREFECTURE_POOL, ENDED, LARGE = (spec.name for spec in POOLS)


def counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in MODELS}


def load_demo() -> str:
    out = StringIO()
    call_command("load_demo", stdout=out)
    return out.getvalue()


@pytest.fixture(scope="module")
def loaded(django_db_setup, django_db_blocker) -> str:
    """``load_demo`` on a register of just enough fundable proposals (the real register takes a
    minute): the people, sponsors, projects, pools, gifts, payments and the ended pool. Loaded
    once for the module inside a transaction rolled back at its end; each test's own transaction
    nests inside it."""
    from config.celery import app

    # The settings tests/conftest.py gives each test, for the module's load.
    fast = override_settings(
        PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
        LANGUAGE_CODE="ja",
        TIME_ZONE="Asia/Tokyo",
    )
    with (
        django_db_blocker.unblock(),
        fast,
        transaction.atomic(),
        pytest.MonkeyPatch.context() as mp,
    ):
        mp.setitem(app.conf, "task_always_eager", True)
        PrefectureFactory()
        MunicipalityFactory(code=MUNICIPALITIES[0][0], name=MUNICIPALITIES[0][1])
        for _ in PLAN:
            decided()
        mp.setattr(
            "grants.management.commands.load_demo.load_register_demo", lambda stdout=None: {}
        )
        yield load_demo()
        transaction.set_rollback(True)


def pools() -> dict[str, MatchPool]:
    return {pool.name: pool for pool in MatchPool.objects.select_related("sponsor")}


def test_sponsors_pledge_pools_that_match_the_demo_gifts(loaded):
    assert "4 demo pools" in loaded
    by_name = pools()
    assert set(by_name) == {spec.name for spec in POOLS}
    sponsors = {name: pool.sponsor for name, pool in by_name.items()}
    assert sponsors[NEARLY_SPENT].name == SPONSOR_BANK
    assert sponsors[NEARLY_SPENT].kind == Organization.Kind.COMPANY
    assert sponsors[LARGE].name == SPONSOR_FOUNDATION
    assert sponsors[PREFECTURE_POOL].name == SPONSOR_PREFECTURE
    # Created by foundation staff through the service: history and pledge entry for each.
    assert MatchPoolEvent.objects.filter(action="created").count() == 4
    assert JournalEntry.objects.filter(kind=EntryKind.POOL_PLEDGED).count() == 4
    assert {p.created_by.email for p in by_name.values()} == {"programme@civicfund.example.jp"}
    # The rules: a large 1:1 pool for all projects with a cap per gift, a 1:2 pool on two
    # projects, one for a fiscal year's proposals, one that ended.
    large = by_name[LARGE]
    assert (large.scope, large.ratio_label, large.cap_per_gift) == ("all", "1:1", 30_000)
    assert by_name[NEARLY_SPENT].ratio_label == "1:2"
    assert by_name[NEARLY_SPENT].projects.count() == 2
    assert by_name[PREFECTURE_POOL].scope == MatchPool.Scope.FISCAL_YEAR
    assert by_name[PREFECTURE_POOL].cap_per_donor == 10_000
    # The gifts were matched as they succeeded, by every pool.
    assert MatchAllocation.objects.count() > 30
    for pool in by_name.values():
        assert pool.allocations.exists(), pool.name
    gift_keys = set(Gift.objects.filter(project__isnull=False).values_list("payment_id", flat=True))
    matched_keys = set(MatchAllocation.objects.values_list("gift_key", flat=True))
    assert matched_keys <= gift_keys
    # Every window holds the gifts it matched, and the active ones run around today.
    now = timezone.now()
    for pool in by_name.values():
        received = pool.allocations.values_list("gift_received_at", flat=True)
        assert all(pool.starts_at <= at < pool.ends_at for at in received)
        if pool.state == MatchPool.State.ACTIVE:
            assert pool.starts_at < now < pool.ends_at
    # The refunded gift gave back its share of each match.
    assert MatchRelease.objects.exists()
    assert run_checks() == {}


def test_one_pool_is_nearly_spent(loaded):
    pool = pools()[NEARLY_SPENT]
    figures = pool_figures([pool])[pool.pk]
    assert pool.state == MatchPool.State.ACTIVE
    assert figures.left == NEARLY_SPENT_LEFT
    assert 0 < figures.left < figures.pledged // 10
    assert figures.released > 0  # the partial refund on one of its projects
    # The project pages offer what is left of it.
    for project in pool.projects.all():
        offers = {offer.pool.pk: offer.left for offer in matching_offers(project)}
        assert offers[pool.pk] == NEARLY_SPENT_LEFT


def test_the_ended_pool_left_its_money_to_the_general_fund(loaded):
    pool = pools()[ENDED]
    figures = pool_figures([pool])[pool.pk]
    assert pool.state == MatchPool.State.ENDED and pool.ended_at is not None
    assert pool.leftover == MatchPool.Leftover.GENERAL_FUND
    assert pool.sponsor_consents_to_general_fund
    # Matched before it ended; paid in full, so what was left went to the general fund.
    assert pool.allocations.filter(created_at__lt=pool.ended_at).count() > 0
    assert figures.matched > 0 and figures.paid == figures.pledged and figures.unpaid == 0
    assert figures.returned == figures.pledged - figures.matched + figures.released > 0
    assert figures.left == 0
    to_general_fund = Posting.objects.filter(
        entry__kind=EntryKind.POOL_ENDED, account__code="general_fund"
    ).aggregate(total=Sum("amount"))["total"]
    assert to_general_fund == -figures.returned  # a credit to the general fund
    assert pool.events.filter(action="ended", actor__email="programme@civicfund.example.jp")


def test_statements_show_paid_and_unpaid(loaded):
    figures = pool_figures(MatchPool.objects.all())
    by_name = pools()
    large = figures[by_name[LARGE].pk]
    assert (large.paid, large.unpaid) == (500_000, 500_000)
    assert figures[by_name[NEARLY_SPENT].pk].paid == 0
    payments = MatchPoolEvent.objects.filter(action="payment_received")
    assert payments.count() == 2
    assert {e.actor.email for e in payments} == {"finance@civicfund.example.jp"}


def test_the_sponsor_signs_in_and_sees_the_banks_statements(loaded):
    user = authenticate(email=SPONSOR_USER, password=DEMO_PASSWORD)
    assert user is not None
    assert Membership.objects.get(user=user).organization.name == SPONSOR_BANK
    by_name = pools()
    for name in (NEARLY_SPENT, ENDED):
        assert may(user, "pool.view_statement", by_name[name]), name
    for name in (LARGE, PREFECTURE_POOL):
        assert not may(user, "pool.view_statement", by_name[name]), name
    assert not may(user, "pool.manage")


def test_the_demo_projects_raise_what_the_plan_says(loaded):
    from donations.selectors import progress_of

    progress = {slot: progress_of(project) for slot, project in demo_projects().items()}
    # With the matches: well funded, and the one with three days left close to its goal.
    assert progress[0].matched > 0 and 80 <= progress[0].percent < 100
    assert 90 <= progress[2].percent < 100 and progress[2].days_left == 3
    assert 80 <= progress[4].percent < 100
    assert progress[3].percent < 100  # the one that closes at its goal is still open


def test_a_second_load_changes_nothing(loaded, monkeypatch):
    monkeypatch.setattr(
        "grants.management.commands.load_demo.load_register_demo", lambda stdout=None: {}
    )
    before = counts()
    figures = pool_figures(MatchPool.objects.all())
    assert planned_gifts() == {}  # the gifts are given: nothing is coming for a new pledge
    assert "nothing to add" in load_demo()
    assert counts() == before
    assert pool_figures(MatchPool.objects.all()) == figures
    assert run_checks() == {}


def test_the_admin_shows_the_pools_read_only(loaded):
    pool = pools()[ENDED]
    allocation = pool.allocations.first()
    release = MatchRelease.objects.first()
    client = Client()
    client.force_login(SiteAdminFactory())
    for name, args in (
        ("admin:fund_matchpool_changelist", []),
        ("admin:fund_matchpool_change", [pool.pk]),
        ("admin:fund_matchpoolevent_changelist", []),
        ("admin:fund_matchallocation_changelist", []),
        ("admin:fund_matchallocation_change", [allocation.pk]),
        ("admin:fund_matchrelease_changelist", []),
        ("admin:fund_matchrelease_change", [release.pk]),
    ):
        assert client.get(reverse(name, args=args)).status_code == 200, name
    filtered = client.get(
        reverse("admin:fund_matchallocation_changelist"), {"pool__id__exact": pool.pk}
    )
    assert filtered.status_code == 200
    assert filtered.context["cl"].result_count == pool.allocations.count()
    for model in ("matchpool", "matchpoolevent", "matchallocation", "matchrelease"):
        assert client.get(reverse(f"admin:fund_{model}_add")).status_code == 403, model
    assert client.get(reverse("admin:fund_matchpool_delete", args=[pool.pk])).status_code == 403
    page = client.get(reverse("admin:fund_matchpool_change", args=[pool.pk]))
    assert "¥100,000" in page.content.decode()  # its figures, from the ledger
