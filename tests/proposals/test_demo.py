"""The demo register: it loads, reloads without change, and reproduces the seed's statistics.

The demo is loaded once for the module (it takes seconds, not milliseconds) inside a transaction
that is rolled back when the module is done, so no other test sees it. Each test's own
transaction nests inside it as a savepoint.
"""

import csv
import datetime as dt
import re
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import transaction
from django.db.models import Count, F, Min

from accounts.models import GovernmentBody, Organization, User
from proposals.demo import load_register_demo, plan_operations, plan_proposals
from proposals.fiscal import JAPAN, current_fiscal_year, fiscal_year_bounds
from proposals.models import (
    Assessment,
    Consultation,
    Contract,
    Department,
    Operation,
    OrientationSession,
    Participation,
    Proposal,
    ProposalEvent,
)
from proposals.selectors import adoption_statistics

pytestmark = pytest.mark.django_db

# The copy in the repository is the source of truth for the tests: a developer's clone may not
# have shared/ beside it. Where shared/ is there (CI), the copy must not have drifted from it.
SEED_CSV = Path(__file__).resolve().parent.parent / "data" / "adoption_stats_seed.csv"
SHARED_SEED_CSV = Path(settings.BASE_DIR).parent / "shared" / "data" / "adoption_stats_seed.csv"

MODELS = [
    GovernmentBody,
    Department,
    Participation,
    Operation,
    OrientationSession,
    Organization,
    Proposal,
    ProposalEvent,
    Consultation,
    Contract,
    Assessment,
]

# From the brief, checked independently of proposals.demo's own list.
EXPECTED_BODIES = {
    "410004": "佐賀県",
    "412015": "佐賀市",
    "412023": "唐津市",
    "412031": "鳥栖市",
    "412040": "多久市",
    "412058": "伊万里市",
    "412066": "武雄市",
    "412074": "鹿島市",
    "412082": "小城市",
    "412091": "嬉野市",
    "412104": "神埼市",
    "413275": "吉野ヶ里町",
    "413411": "基山町",
    "413453": "上峰町",
    "413461": "みやき町",
    "413879": "玄海町",
    "414018": "有田町",
    "414239": "大町町",
    "414247": "江北町",
    "414255": "白石町",
    "414417": "太良町",
}


def _seed_rows() -> list[dict]:
    with SEED_CSV.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    return [
        {
            "fiscal_year": int(row["fiscal_year"]),
            "level": row["level"],
            "participating_municipalities": (
                int(row["participating_municipalities"])
                if row["participating_municipalities"]
                else None
            ),
            "proposing_organizations": int(row["proposing_organizations"]),
            "proposals": int(row["proposals"]),
            "adopted": int(row["adopted"]),
            "adoption_rate_percent": int(row["adoption_rate_percent"]),
        }
        for row in rows
    ]


SEED_ROWS = _seed_rows()
SEED_YEARS = sorted({row["fiscal_year"] for row in SEED_ROWS})


def _jis_check_digit_ok(code: str) -> bool:
    r = sum(w * int(d) for w, d in zip((6, 5, 4, 3, 2), code[:5], strict=True)) % 11
    return (11 - r) % 10 == int(code[5])


def _counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in MODELS}


@pytest.fixture(scope="module", autouse=True)
def demo_output(django_db_setup, django_db_blocker):
    """Run ``load_demo`` once for the module; roll it all back afterwards."""
    with django_db_blocker.unblock(), transaction.atomic():
        out = StringIO()
        call_command("load_demo", stdout=out)
        yield out.getvalue()
        transaction.set_rollback(True)


def test_seed_copy_matches_shared_data():
    assert len(SEED_ROWS) == 11
    if not SHARED_SEED_CSV.exists():
        pytest.skip("shared/ is not beside this clone; the copy in tests/data is used alone")
    assert SEED_CSV.read_bytes() == SHARED_SEED_CSV.read_bytes()


@pytest.mark.parametrize(
    "expected", SEED_ROWS, ids=[f"FY{r['fiscal_year']}-{r['level']}" for r in SEED_ROWS]
)
def test_statistics_reproduce_the_seed_cell_by_cell(expected):
    key = (expected["fiscal_year"], expected["level"])
    for rows in (adoption_statistics(), adoption_statistics(level=expected["level"])):
        by_key = {(r.fiscal_year, r.level): r.as_dict() for r in rows}
        assert by_key[key] == expected


def test_no_municipal_statistics_before_fy2009():
    rows = adoption_statistics(level=GovernmentBody.Kind.MUNICIPALITY)
    assert min(r.fiscal_year for r in rows) == 2009


def test_statistics_cover_every_year_up_to_the_current_one():
    years = {r.fiscal_year for r in adoption_statistics(level=GovernmentBody.Kind.PREFECTURE)}
    assert years == set(range(2006, current_fiscal_year() + 1))


def test_second_run_changes_nothing(demo_output):
    assert "loaded" in demo_output
    before = _counts()
    snapshot = list(
        Proposal.objects.order_by("reference").values_list(
            "reference", "state", "decision", "budget_provision", "received_on"
        )
    )
    out = StringIO()
    call_command("load_demo", stdout=out)
    assert "nothing to add" in out.getvalue()
    assert _counts() == before
    assert (
        list(
            Proposal.objects.order_by("reference").values_list(
                "reference", "state", "decision", "budget_provision", "received_on"
            )
        )
        == snapshot
    )
    # And the function says so itself.
    assert set(load_register_demo().values()) == {0}


def test_bodies_are_saga_and_its_twenty_municipalities():
    bodies = {b.code: b for b in GovernmentBody.objects.all()}
    assert {code: b.name for code, b in bodies.items()} == EXPECTED_BODIES
    assert all(_jis_check_digit_ok(code) for code in bodies)
    assert bodies["410004"].kind == GovernmentBody.Kind.PREFECTURE
    assert sum(b.kind == GovernmentBody.Kind.MUNICIPALITY for b in bodies.values()) == 20


def test_departments_for_every_body():
    per_body = dict(
        Department.objects.values("body__code")
        .annotate(n=Count("id"))
        .values_list("body__code", "n")
    )
    assert set(per_body) == set(EXPECTED_BODIES)
    assert per_body["410004"] >= 30
    assert Department.objects.filter(body__code="410004", name="県民環境部 協働推進課").exists()
    assert all(3 <= n <= 10 for code, n in per_body.items() if code != "410004")


def test_current_catalogue_has_about_two_thousand_operations():
    fy = current_fiscal_year()
    operations = Operation.objects.filter(fiscal_year=fy)
    total = operations.count()
    assert 1_900 <= total <= 2_100
    assert operations.filter(body__code="410004").count() / total > 0.85
    first, last = fiscal_year_bounds(fy)
    assert not operations.exclude(published_on__range=(first, last)).exists()
    assert not operations.filter(budget_yen__isnull=True).exists()
    assert not operations.filter(budget_yen__lt=1).exists()
    assert not operations.filter(current_provider="").exists()
    assert not operations.filter(collaboration_potential="").exists()
    assert not operations.filter(department__isnull=True).exists()
    # Municipal catalogues only from municipalities taking part this year.
    participating = set(
        Participation.objects.filter(fiscal_year=fy).values_list("body__code", flat=True)
    )
    municipal = set(
        operations.filter(body__kind=GovernmentBody.Kind.MUNICIPALITY).values_list(
            "body__code", flat=True
        )
    )
    assert municipal and municipal <= participating


def test_participation_per_year():
    counts = dict(
        Participation.objects.values("fiscal_year")
        .annotate(n=Count("id"))
        .values_list("fiscal_year", "n")
    )
    assert {fy: counts[fy] for fy in (2009, 2010, 2011, 2012)} == {
        2009: 18,
        2010: 18,
        2011: 19,
        2012: 17,
    }
    assert set(counts) == set(range(2009, current_fiscal_year() + 1))
    assert all(5 <= n <= 20 for n in counts.values())
    assert not Participation.objects.filter(body__kind=GovernmentBody.Kind.PREFECTURE).exists()


def test_municipal_proposals_go_to_participating_municipalities():
    stray = Proposal.objects.filter(body__kind=GovernmentBody.Kind.MUNICIPALITY).exclude(
        body__participations__fiscal_year=F("fiscal_year")
    )
    assert not stray.exists()


def test_rules_are_exercised_in_the_seed_years():
    seed = Proposal.objects.filter(fiscal_year__in=SEED_YEARS)
    withdrawn_years = set(
        seed.filter(state=Proposal.State.WITHDRAWN).values_list("fiscal_year", flat=True)
    )
    assert withdrawn_years == set(SEED_YEARS)
    assert seed.filter(decision=Proposal.Decision.WITHDRAWN).count() == (
        seed.filter(state=Proposal.State.WITHDRAWN).count()
    )
    kinds = set(seed.values_list("organization__kind", flat=True))
    assert {Organization.Kind.COMPANY, Organization.Kind.UNIVERSITY} <= kinds

    cso = {(r.fiscal_year, r.level): r for r in adoption_statistics()}
    everyone = {(r.fiscal_year, r.level): r for r in adoption_statistics(proposer_kind="all")}
    differing = [
        key for key in cso if key[0] in SEED_YEARS and cso[key].as_dict() != everyone[key].as_dict()
    ]
    assert differing


def test_partially_adopted_and_noted_decisions_occur():
    decisions = set(Proposal.objects.values_list("decision", flat=True))
    assert {
        Proposal.Decision.ADOPTED,
        Proposal.Decision.PARTIALLY_ADOPTED,
        Proposal.Decision.NOT_ADOPTED,
        Proposal.Decision.NOTED,
        Proposal.Decision.WITHDRAWN,
    } <= decisions


def test_receipts_span_the_fiscal_year_boundary():
    # Received in February or March of the next calendar year: counted in the earlier FY.
    late = Proposal.objects.filter(fiscal_year__in=SEED_YEARS, received_on__month__in=(2, 3))
    assert late.count() >= 10
    assert all(p.received_on.year == p.fiscal_year + 1 for p in late)
    civic_fund = Proposal.objects.get(title="オールさが市民ファンドの創設")
    assert civic_fund.received_on == dt.date(2013, 3, 8)
    assert civic_fund.fiscal_year == 2012


def test_steps_are_recorded_with_history():
    assert Consultation.objects.exists()
    assert Contract.objects.exists()
    assert Assessment.objects.exists()
    # Contracts and assessments only on adopted proposals.
    assert not Contract.objects.exclude(proposal__decision__in=Proposal.ADOPTED_DECISIONS).exists()
    assert not Assessment.objects.exclude(
        proposal__decision__in=Proposal.ADOPTED_DECISIONS
    ).exists()
    # Every proposal came in through the service: its history starts with a receipt by the demo.
    assert not Proposal.objects.exclude(events__action="receive").exists()
    # ... except the civic fund's outcome, written by the programme officer who accepted the
    # final report of the demo's closed grant.
    register = ProposalEvent.objects.exclude(action="fund_outcome")
    assert set(register.values_list("source", flat=True)) == {"demo"}
    assert not register.filter(actor__isnull=False).exists()
    fund_outcomes = ProposalEvent.objects.filter(action="fund_outcome")
    assert set(fund_outcomes.values_list("source", flat=True)) <= {"civic_fund"}
    assert not fund_outcomes.filter(actor__isnull=True).exists()
    # Budget provision was set on adopted proposals, with all three values in use.
    adopted = Proposal.objects.filter(decision__in=Proposal.ADOPTED_DECISIONS)
    assert set(adopted.values_list("budget_provision", flat=True)) == {"yes", "no", "pending"}


def test_nothing_is_dated_after_today():
    today = dt.datetime.now(JAPAN).date()
    assert not Proposal.objects.filter(received_on__gt=today).exists()
    assert not Proposal.objects.filter(decided_on__gt=today).exists()
    assert not Consultation.objects.filter(held_on__gt=today).exists()
    assert not Contract.objects.filter(signed_on__gt=today).exists()
    assert not Assessment.objects.filter(assessed_on__gt=today).exists()
    # Dates within a proposal run forwards.
    assert not Proposal.objects.filter(decided_on__lt=F("received_on")).exists()
    first_consultation = Proposal.objects.annotate(first=Min("consultations__held_on"))
    assert not first_consultation.filter(first__lt=F("received_on")).exists()


def test_recent_years_have_fundable_and_pending_proposals():
    fy = current_fiscal_year()
    recent = Proposal.objects.filter(fiscal_year__in=(fy - 1, fy))
    fundable = recent.filter(
        decision__in=Proposal.ADOPTED_DECISIONS,
        budget_provision=Proposal.BudgetProvision.NO,
    ).exclude(state=Proposal.State.WITHDRAWN)
    assert fundable.count() >= 20
    assert recent.filter(state=Proposal.State.CONSULTATION).count() >= 2
    # This year's proposals refer to this year's catalogue where they take on an operation.
    current = Proposal.objects.filter(fiscal_year=fy)
    with_operation = current.exclude(operation__isnull=True)
    assert with_operation.count() >= 10
    assert not with_operation.exclude(operation__fiscal_year=fy).exists()
    assert not with_operation.exclude(operation__body=F("body")).exists()
    # Older proposals are new projects: no catalogue is loaded for their years.
    assert not Proposal.objects.filter(fiscal_year__lt=fy, operation__isnull=False).exists()


def test_references_and_organisations():
    pattern = re.compile(r"^SAGA-(\d{4})-(\d{4})$")
    for reference, fiscal_year in Proposal.objects.values_list("reference", "fiscal_year"):
        match = pattern.match(reference)
        assert match, reference
        assert int(match.group(1)) == fiscal_year
    names = list(Organization.objects.values_list("name", flat=True))
    assert len(names) == len(set(names))
    cso = Organization.objects.filter(kind=Organization.Kind.CSO)
    assert cso.filter(name__startswith="NPO法人 ").exists()
    assert cso.filter(name__startswith="一般社団法人 ").exists()


def test_orientation_sessions_each_year():
    years = set(OrientationSession.objects.values_list("fiscal_year", flat=True))
    assert set(range(2006, current_fiscal_year())) <= years


def test_plan_is_deterministic_and_stable_across_the_year_end():
    """Same inputs, same plan; and the seed years' plan does not depend on today."""
    today = dt.date(2026, 11, 28)
    ops = plan_operations(2026, today)
    first = plan_proposals(today=today, current_fy=2026, operations=ops)
    again = plan_proposals(today=today, current_fy=2026, operations=plan_operations(2026, today))
    assert first == again

    # Years later: the seed years are planned exactly as before, and every year already loaded
    # keeps its references, so a run after the fiscal year rolls over only adds the new years.
    later = dt.date(2031, 5, 1)
    after = plan_proposals(today=later, current_fy=2031, operations=plan_operations(2031, later))
    assert [p for p in first if p.fiscal_year <= 2012] == [
        p for p in after if p.fiscal_year <= 2012
    ]
    assert {p.reference for p in first} == {p.reference for p in after if p.fiscal_year <= 2026}


def test_the_demo_cso_sees_money_raised_for_its_project_and_the_ledger_is_clean():
    from accounts.policy import may
    from donations.selectors import progress_of
    from fund.checks import run_checks
    from fund.models import Project

    member = User.objects.get(email="cso-member@npo.example.jp")
    theirs = [p for p in Project.objects.all() if may(member, "project.view_money", p)]
    assert theirs and any(progress_of(p).raised > 0 for p in theirs)
    assert run_checks() == {}
