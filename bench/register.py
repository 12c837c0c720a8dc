"""Benchmark of the register: does a catalogue page cost the same at 200 and 20,000 operations?

Run from the repository root:

    .venv/bin/python bench/register.py            # throwaway SQLite files under /tmp
    BENCH_DATABASE_URL=postgres://user@host:5432/civic .venv/bin/python bench/register.py

With ``BENCH_DATABASE_URL`` the benchmark creates ``test_<name>_small`` and
``test_<name>_large`` next to the database named (as Django's test runner would) and drops them
afterwards: the named database itself is never written to. It measures, at 200 operations
(50 proposals) and at 20,000 operations (5,000 proposals):

- SQL queries per request of the catalogue page (``proposals:operation-list``) and of
  ``GET /api/v1/operations/``: they must not change with the size;
- the median wall time of those requests (Django's test ``Client``, after a warm-up, the two
  sizes alternating request by request) and the ratio large/small (goal: the catalogue page at
  20,000 ≤ 1.5 × at 200);
- the SQL queries of ``adoption_statistics()`` over 2 and over 20 fiscal years (a fixed number).

It prints Markdown tables that can be pasted into the README, and exits 1 if a goal is missed.
It is a script, not a test: timings depend on the machine and have no place in CI's pass/fail.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SMALL = (200, 50)  # (operations, proposals)
LARGE = (20_000, 5_000)
FISCAL_YEARS = (2022, 2023, 2024, 2025, 2026)
RATIO_GOAL = 1.5
T = TypeVar("T")

PREFECTURE_DEPARTMENTS = [
    "県民協働課",
    "男女参画・こども局こども家庭課",
    "長寿社会課",
    "障害福祉課",
    "健康福祉政策課",
    "環境課",
    "循環型社会推進課",
    "観光課",
    "文化課",
    "道路課",
    "農政企画課",
    "教育総務課",
    "危機管理防災課",
    "国際課",
]
MUNICIPAL_DEPARTMENTS = [
    "企画政策課",
    "市民協働課",
    "福祉課",
    "子育て支援課",
    "環境課",
    "商工観光課",
]
THEMES = [
    "子育て支援",
    "高齢者見守り",
    "障がい者就労支援",
    "環境保全",
    "里山保全",
    "観光案内",
    "防災啓発",
    "文化財保護",
    "地域交通",
    "食育推進",
    "国際交流",
    "生涯学習",
    "男女共同参画",
    "空き家活用",
    "移住定住促進",
    "自殺予防",
    "不登校支援",
    "フードバンク",
]
ACTIVITIES = [
    "事業",
    "推進事業",
    "啓発事業",
    "相談窓口運営業務",
    "講座開催事業",
    "ネットワーク構築事業",
    "調査研究業務",
    "ボランティア育成事業",
]
AREAS = ["", "", "", "県東部", "県西部", "有明海沿岸", "中山間地域", "離島", "市街地"]
PROVIDERS = [
    "直営",
    "委託（社会福祉協議会）",
    "指定管理者",
    "補助（地域団体）",
    "委託（民間事業者）",
]
POTENTIALS = [
    "相談窓口の運営をNPOと協働で行う余地がある。",
    "当事者団体の知見を講座の企画に生かせる。",
    "広報と参加者募集を地域団体と分担できる。",
    "夜間・休日の対応を民間の力で補える。",
    "",
]
ORG_PREFIXES = ["NPO法人", "一般社団法人", "任意団体", "株式会社", "国立大学法人", "公益財団法人"]


@dataclass
class Timing:
    label: str
    url: str
    queries: dict[str, int]
    medians_ms: dict[str, float]


# --- Set-up ---------------------------------------------------------------------------------------


def configure_django() -> Path:
    """Point Django at the benchmark's own database, then start it; returns a temp dir."""
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    tmp_dir = Path(tempfile.mkdtemp(prefix="register-bench-", dir="/tmp"))
    # Only the engine and credentials are used from here: Databases derives one name per size.
    url = os.environ.get("BENCH_DATABASE_URL") or f"sqlite:///{tmp_dir / 'bench.sqlite3'}"
    # settings.py reads DATABASE_URL at import time, so it must be set before django.setup().
    os.environ["DATABASE_URL"] = url

    import django

    django.setup()
    return tmp_dir


class Databases:
    """One migrated database per data size, each with its own open connection.

    Both sizes exist at once so the timed requests can alternate between them: load from
    anything else on the machine then falls on both sizes alike instead of skewing the ratio.
    ``use(label)`` makes one of them Django's "default" connection.
    """

    def __init__(self, tmp_dir: Path) -> None:
        self.tmp_dir = tmp_dir
        self.wrappers: dict = {}
        self._drops: list[Callable[[], None]] = []

    def create(self, label: str) -> None:
        import copy

        from django.core.management import call_command
        from django.db import DEFAULT_DB_ALIAS, connections
        from django.db.utils import load_backend

        settings_dict = copy.deepcopy(connections[DEFAULT_DB_ALIAS].settings_dict)
        if settings_dict["ENGINE"] == "django.db.backends.sqlite3":
            settings_dict["NAME"] = str(self.tmp_dir / f"{label}.sqlite3")
        else:
            settings_dict["NAME"] = f"{settings_dict['NAME']}_{label}"
        wrapper = load_backend(settings_dict["ENGINE"]).DatabaseWrapper(
            settings_dict, DEFAULT_DB_ALIAS
        )
        self.wrappers[label] = wrapper
        self.use(label)
        if wrapper.vendor == "sqlite":
            call_command("migrate", verbosity=0)
            self._drops.append(wrapper.close)
        else:
            # Never write to the database the user named: create test_<name>_<size> instead,
            # as Django's test runner would, and drop it afterwards.
            old_name = settings_dict["NAME"]
            wrapper.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
            self._drops.append(lambda: wrapper.creation.destroy_test_db(old_name, verbosity=0))

    def use(self, label: str) -> None:
        from django.db import DEFAULT_DB_ALIAS, connections

        connections[DEFAULT_DB_ALIAS] = self.wrappers[label]

    def drop_all(self) -> None:
        for drop in self._drops:
            drop()


# --- Data -----------------------------------------------------------------------------------------


def create_bodies_and_organizations(rng: random.Random) -> None:
    from accounts.models import GovernmentBody, Organization
    from proposals.demo import MUNICIPALITIES, PREFECTURE
    from proposals.models import (
        Department,
        Participation,
    )

    prefecture = GovernmentBody.objects.create(
        code=PREFECTURE[0], name=PREFECTURE[1], kind=GovernmentBody.Kind.PREFECTURE
    )
    municipalities = GovernmentBody.objects.bulk_create(
        GovernmentBody(code=code, name=name, kind=GovernmentBody.Kind.MUNICIPALITY)
        for code, name in MUNICIPALITIES
    )
    Department.objects.bulk_create(
        [Department(body=prefecture, name=name) for name in PREFECTURE_DEPARTMENTS]
        + [
            Department(body=body, name=name)
            for body in municipalities
            for name in MUNICIPAL_DEPARTMENTS
        ]
    )
    Participation.objects.bulk_create(
        Participation(fiscal_year=year, body=body)
        for year in FISCAL_YEARS
        for body in municipalities
        if rng.random() < 0.8
    )
    kinds = [Organization.Kind.CSO] * 7 + [
        Organization.Kind.COMPANY,
        Organization.Kind.UNIVERSITY,
        Organization.Kind.OTHER,
    ]
    Organization.objects.bulk_create(
        Organization(
            name=f"{rng.choice(ORG_PREFIXES)} {rng.choice(THEMES)}ネット{i:04d}",
            kind=rng.choice(kinds),
        )
        for i in range(600)
    )


def clear_register() -> None:
    from proposals.models import (
        Assessment,
        Consultation,
        Contract,
        Operation,
        Proposal,
        ProposalEvent,
    )

    for model in (Assessment, Contract, Consultation, ProposalEvent, Proposal, Operation):
        model.objects.all().delete()


def create_register(
    rng: random.Random, *, operations: int, proposals: int, fiscal_years: tuple[int, ...]
) -> None:
    from accounts.models import GovernmentBody

    """Bulk-create a register; ``save()`` is bypassed, so fiscal years are set here."""
    from accounts.models import Organization
    from proposals.fiscal import fiscal_year_bounds, fiscal_year_of
    from proposals.models import (
        Assessment,
        Contract,
        Department,
        Operation,
        Proposal,
    )

    clear_register()
    bodies = list(GovernmentBody.objects.all())
    departments: dict[int, list[Department]] = {}
    for department in Department.objects.all():
        departments.setdefault(department.body_id, []).append(department)
    # The prefecture publishes about as many operations as all its municipalities together.
    weights = [
        len(bodies) - 1 if body.kind == GovernmentBody.Kind.PREFECTURE else 1 for body in bodies
    ]

    rows = []
    for i in range(operations):
        body = rng.choices(bodies, weights)[0]
        department = rng.choice(departments[body.pk]) if rng.random() < 0.95 else None
        year = fiscal_years[i % len(fiscal_years)]
        theme = rng.choice(THEMES)
        rows.append(
            Operation(
                fiscal_year=year,
                body=body,
                department=department,
                code=f"{body.code}-{year}-{i:06d}",
                title=f"{rng.choice(AREAS)}{theme}{rng.choice(ACTIVITIES)}",
                summary=f"{body.name}が{theme}に取り組む。対象者への周知と参加の促進を図る。",
                budget_yen=rng.randrange(100, 50_000) * 1_000 if rng.random() < 0.9 else None,
                current_provider=f"{body.name}{rng.choice(PROVIDERS)}",
                collaboration_potential=rng.choice(POTENTIALS),
                published_on=dt.date(year, 5, rng.randint(1, 31)),
            )
        )
    Operation.objects.bulk_create(rows, batch_size=2_000)
    by_body: dict[int, list[int]] = {}
    for operation_id, body_id in Operation.objects.values_list("pk", "body_id"):
        by_body.setdefault(body_id, []).append(operation_id)

    organization_ids = list(Organization.objects.values_list("pk", flat=True))
    decisions = [
        Proposal.Decision.ADOPTED,
        Proposal.Decision.PARTIALLY_ADOPTED,
        Proposal.Decision.NOT_ADOPTED,
        Proposal.Decision.NOTED,
    ]
    first_day = fiscal_year_bounds(min(fiscal_years))[0]
    span = (fiscal_year_bounds(max(fiscal_years))[1] - first_day).days
    rows = []
    for i in range(proposals):
        body = rng.choices(bodies, weights)[0]
        received_on = first_day + dt.timedelta(days=rng.randrange(span + 1))
        state, decision = rng.choice(
            [
                (Proposal.State.RECEIVED, ""),
                (Proposal.State.CONSULTATION, ""),
                (Proposal.State.RESPONDED, rng.choice(decisions)),
                (Proposal.State.RESPONDED, rng.choice(decisions)),
                (Proposal.State.CONTRACTED, Proposal.Decision.ADOPTED),
                (Proposal.State.ASSESSED, Proposal.Decision.PARTIALLY_ADOPTED),
                (Proposal.State.WITHDRAWN, Proposal.Decision.WITHDRAWN),
            ]
        )
        decided = bool(decision) and decision != Proposal.Decision.WITHDRAWN
        operation_ids = by_body.get(body.pk)
        rows.append(
            Proposal(
                reference=f"R{i:06d}",
                received_on=received_on,
                fiscal_year=fiscal_year_of(received_on),
                body=body,
                operation_id=rng.choice(operation_ids)
                if operation_ids and rng.random() < 0.7
                else None,
                organization_id=rng.choice(organization_ids),
                title=f"{rng.choice(THEMES)}の協働による{rng.choice(ACTIVITIES)}",
                summary="地域の団体が持つ経験を生かし、行政と役割を分担して実施する。",
                state=state,
                decision=decision,
                decided_on=received_on + dt.timedelta(days=60) if decided else None,
                decision_reason="協働の効果が見込まれるため。" if decided else "",
                planned_implementation_year=fiscal_year_of(received_on) + 1 if decided else None,
                budget_provision=rng.choice(list(Proposal.BudgetProvision.values))
                if decided
                else Proposal.BudgetProvision.PENDING,
            )
        )
    Proposal.objects.bulk_create(rows, batch_size=2_000)
    contracted = Proposal.objects.filter(
        state__in=[Proposal.State.CONTRACTED, Proposal.State.ASSESSED]
    ).values_list("pk", "received_on", "state")
    Contract.objects.bulk_create(
        Contract(
            proposal_id=pk,
            kind=Contract.Kind.COMMISSION,
            signed_on=received_on + dt.timedelta(days=120),
            amount_yen=rng.randrange(100, 5_000) * 1_000,
        )
        for pk, received_on, _ in contracted
    )
    Assessment.objects.bulk_create(
        Assessment(
            proposal_id=pk,
            assessed_on=received_on + dt.timedelta(days=400),
            summary="参加者数・満足度とも目標を上回った。",
        )
        for pk, received_on, state in contracted
        if state == Proposal.State.ASSESSED
    )
    analyze()


def analyze() -> None:
    """Bring PostgreSQL to the state autovacuum keeps it in: statistics and visibility map fresh.

    Straight after a bulk load, COUNT(*) reads every heap page; once vacuumed it can count from
    an index alone (EXPLAIN: "Index Only Scan … Heap Fetches: 0"). Timing the first state would
    charge the catalogue for a load that production never sees twice.
    """
    from django.db import connection

    if connection.vendor == "postgresql":
        # VACUUM cannot run in a transaction; outside atomic() Django is in autocommit.
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")


# --- Measuring ------------------------------------------------------------------------------------


def count_queries(fn: Callable[[], T]) -> tuple[int, T]:
    """The number of SQL queries ``fn`` makes, and what it returns."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        value = fn()
    return len(captured), value


def get(client, url: str):
    response = client.get(url)
    if response.status_code != 200:
        raise SystemExit(f"GET {url} answered {response.status_code}")
    return response


def endpoints() -> Iterator[tuple[str, str]]:
    from django.urls import NoReverseMatch, reverse

    try:
        yield "catalogue page", reverse("proposals:operation-list")
        yield "catalogue page, `?q=子育て`", reverse("proposals:operation-list") + "?q=子育て"
    except NoReverseMatch:
        print(
            "The catalogue page (proposals:operation-list) does not exist yet: not measured.",
            file=sys.stderr,
        )
    yield "`GET /api/v1/operations/`", reverse("proposals_api:operation-list")
    search = reverse("proposals_api:operation-list") + "?search=子育て"
    yield "`GET /api/v1/operations/?search=子育て`", search
    yield "`GET /api/v1/proposals/`", reverse("proposals_api:proposal-list")


def measure_pages(
    databases: Databases, rng: random.Random, *, warmup: int, requests: int
) -> list[Timing]:
    from django.test import Client

    sizes = {"small": SMALL, "large": LARGE}
    for label, (operations, proposals) in sizes.items():
        started = time.perf_counter()
        databases.create(label)
        create_bodies_and_organizations(random.Random(rng.random()))
        create_register(rng, operations=operations, proposals=proposals, fiscal_years=FISCAL_YEARS)
        print(
            f"  {operations:,} operations and {proposals:,} proposals in the {label} database "
            f"({time.perf_counter() - started:.1f} s)",
            file=sys.stderr,
        )

    client = Client()
    timings = []
    for label, url in endpoints():
        timing = Timing(label, url, {}, {})
        samples: dict[str, list[float]] = {size: [] for size in sizes}
        for size in sizes:
            databases.use(size)
            timing.queries[size], _ = count_queries(lambda url=url: get(client, url))
            for _ in range(warmup):
                get(client, url)
        # Alternate the sizes request by request (see Databases).
        for _ in range(requests):
            for size in sizes:
                databases.use(size)
                started = time.perf_counter()
                get(client, url)
                samples[size].append((time.perf_counter() - started) * 1000)
        timing.medians_ms = {size: statistics.median(samples[size]) for size in sizes}
        timings.append(timing)
    return timings


def measure_statistics(databases: Databases, rng: random.Random) -> dict[int, tuple[int, int]]:
    """Queries of adoption_statistics() (and rows returned) over 2 and over 20 fiscal years."""
    from proposals.models import Participation
    from proposals.selectors import adoption_statistics

    databases.use("small")
    result = {}
    for n_years in (2, 20):
        years = tuple(range(2026 - n_years + 1, 2027))
        create_register(rng, operations=200, proposals=2_000, fiscal_years=years)
        Participation.objects.all().delete()
        Participation.objects.bulk_create(
            Participation(fiscal_year=year, body_id=body_id)
            for year in years
            for body_id in _municipality_ids()
        )
        queries, rows = count_queries(adoption_statistics)
        result[n_years] = (queries, len(rows))
    return result


def _municipality_ids() -> list[int]:
    from accounts.models import GovernmentBody

    return list(
        GovernmentBody.objects.filter(kind=GovernmentBody.Kind.MUNICIPALITY).values_list(
            "pk", flat=True
        )
    )


# --- Report ---------------------------------------------------------------------------------------


def report(timings: list[Timing], stats: dict[int, tuple[int, int]], requests: int) -> bool:
    import django
    from django.db import connection

    small, large = f"{SMALL[0]:,}", f"{LARGE[0]:,}"
    print()
    if connection.vendor == "sqlite":
        database = f"SQLite {connection.Database.sqlite_version}"
    else:
        with connection.cursor() as cursor:
            cursor.execute("SHOW server_version")
            database = f"PostgreSQL {cursor.fetchone()[0]}"
    print(
        f"Register benchmark — {database}, "
        f"Django {django.get_version()}, Python {platform.python_version()}; "
        f"median of {requests} requests per size, sizes alternating, after warm-up; "
        f"{SMALL[1]:,} and {LARGE[1]:,} proposals; {len(FISCAL_YEARS)} fiscal years, "
        "Saga Prefecture and its 20 municipalities."
    )
    print()
    print(
        f"| request | queries at {small} ops | queries at {large} ops "
        f"| median at {small} ops | median at {large} ops | ratio |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    goal_met = True
    for t in timings:
        ratio = t.medians_ms["large"] / t.medians_ms["small"]
        print(
            f"| {t.label} | {t.queries['small']} | {t.queries['large']} "
            f"| {t.medians_ms['small']:.1f} ms | {t.medians_ms['large']:.1f} ms | {ratio:.2f}× |"
        )
        if t.queries["small"] != t.queries["large"]:
            goal_met = False
        if t.label == "catalogue page" and ratio > RATIO_GOAL:
            goal_met = False
    print()
    print("| `adoption_statistics()` | 2 fiscal years | 20 fiscal years |")
    print("|---|---:|---:|")
    print(f"| SQL queries | {stats[2][0]} | {stats[20][0]} |")
    print(f"| rows returned | {stats[2][1]} | {stats[20][1]} |")
    print()
    if stats[2][0] != stats[20][0]:
        goal_met = False
    print(
        f"Goals (equal query counts; catalogue page ≤ {RATIO_GOAL}× at {large} ops): "
        + ("met." if goal_met else "MISSED.")
    )
    return goal_met


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--requests", type=int, default=30, help="timed requests per URL")
    parser.add_argument("--warmup", type=int, default=5, help="untimed requests first")
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()

    # WhiteNoise warns once per middleware start-up that collectstatic has not run: not our concern.
    warnings.filterwarnings("ignore", message="No directory at", category=UserWarning)
    tmp_dir = configure_django()
    from django.conf import settings

    # Time what production runs: no per-query logging (CaptureQueriesContext still counts).
    settings.DEBUG = False
    databases = Databases(tmp_dir)
    try:
        rng = random.Random(args.seed)
        timings = measure_pages(databases, rng, warmup=args.warmup, requests=args.requests)
        stats = measure_statistics(databases, rng)
        goal_met = report(timings, stats, args.requests)
    finally:
        databases.drop_all()
        shutil.rmtree(tmp_dir, ignore_errors=True)
    return 0 if goal_met else 1


if __name__ == "__main__":
    sys.exit(main())
