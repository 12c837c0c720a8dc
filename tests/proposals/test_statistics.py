"""``adoption_statistics`` on small hand-made registers: each rule of DOMAIN.md §1 on its own."""

import datetime as dt
import itertools

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import GovernmentBody, Organization
from proposals.models import Proposal
from proposals.selectors import adoption_rate_percent, adoption_statistics
from proposals.services import proposal_create, proposal_transition
from tests.factories import (
    MunicipalityFactory,
    OrganizationFactory,
    ParticipationFactory,
    PrefectureFactory,
)

pytestmark = pytest.mark.django_db

PREF = GovernmentBody.Kind.PREFECTURE
MUNI = GovernmentBody.Kind.MUNICIPALITY
D = Proposal.Decision
_references = itertools.count(1)


def propose(
    *,
    body=None,
    organization=None,
    received_on=dt.date(2010, 6, 1),
    decision: str = "",
    withdraw: bool = False,
) -> Proposal:
    """A proposal received through the service and, if asked, decided and/or withdrawn."""
    system = {"actor": None, "source": "test"}
    proposal = proposal_create(
        reference=f"T-{next(_references):05d}",
        received_on=received_on,
        body=body or PrefectureFactory(),
        organization=organization or OrganizationFactory(),
        title="協働提案",
        **system,
    )
    if decision:
        proposal = proposal_transition(
            proposal=proposal,
            action="respond",
            decision=decision,
            decided_on=received_on + dt.timedelta(days=30),
            **system,
        )
    if withdraw:
        proposal = proposal_transition(proposal=proposal, action="withdraw", **system)
    return proposal


def rows_by_key(**kwargs) -> dict[tuple[int, str], dict]:
    return {(r.fiscal_year, r.level): r.as_dict() for r in adoption_statistics(**kwargs)}


def test_empty_register_has_no_rows():
    assert adoption_statistics() == []


def test_withdrawn_proposals_are_not_counted():
    kept = OrganizationFactory()
    only_withdrew = OrganizationFactory()
    propose(organization=kept, decision=D.ADOPTED)
    propose(organization=kept, decision=D.NOT_ADOPTED)
    propose(organization=kept, withdraw=True)
    # Adopted, then withdrawn: neither a proposal nor an adoption any more.
    propose(organization=only_withdrew, decision=D.ADOPTED, withdraw=True)

    row = rows_by_key()[(2010, PREF)]
    assert row["proposals"] == 2
    assert row["adopted"] == 1
    # An organisation whose only proposal was withdrawn proposed nothing that year.
    assert row["proposing_organizations"] == 1
    assert row["adoption_rate_percent"] == 50


def test_partially_adopted_counts_as_adopted_and_undecided_does_not():
    for decision in (D.ADOPTED, D.PARTIALLY_ADOPTED, D.NOT_ADOPTED, D.NOTED, ""):
        propose(decision=decision)

    row = rows_by_key()[(2010, PREF)]
    assert (row["proposals"], row["adopted"], row["adoption_rate_percent"]) == (5, 2, 40)


def test_organisations_are_distinct_per_level_and_year():
    city = MunicipalityFactory()
    town = MunicipalityFactory()
    busy, other = OrganizationFactory(), OrganizationFactory()
    for _ in range(3):
        propose(organization=busy)
    propose(organization=busy, body=city)
    propose(organization=busy, body=town)
    propose(organization=other, body=town)
    propose(organization=other, received_on=dt.date(2011, 6, 1))

    rows = rows_by_key()
    assert rows[(2010, PREF)]["proposing_organizations"] == 1
    assert rows[(2010, PREF)]["proposals"] == 3
    # Two municipalities, but organisations are counted once for the level.
    assert rows[(2010, MUNI)]["proposing_organizations"] == 2
    assert rows[(2010, MUNI)]["proposals"] == 3
    assert rows[(2011, PREF)]["proposing_organizations"] == 1


def test_receipt_date_fixes_the_fiscal_year():
    propose(received_on=dt.date(2007, 3, 31))
    propose(received_on=dt.date(2007, 4, 1))
    propose(received_on=dt.date(2007, 4, 1))

    rows = rows_by_key()
    assert rows[(2006, PREF)]["proposals"] == 1
    assert rows[(2007, PREF)]["proposals"] == 2


@pytest.mark.parametrize(
    ("adopted", "proposals", "percent"),
    [(1, 8, 13), (5, 8, 63), (1, 3, 33), (2, 3, 67), (3, 8, 38), (0, 4, 0), (4, 4, 100)],
)
def test_rate_is_rounded_half_up_from_the_register(adopted, proposals, percent):
    for i in range(proposals):
        propose(decision=D.ADOPTED if i < adopted else D.NOT_ADOPTED)

    assert rows_by_key()[(2010, PREF)]["adoption_rate_percent"] == percent


@pytest.mark.parametrize(
    ("adopted", "proposals", "percent"),
    [
        (1, 8, 13),  # 12.5 → 13, where round() (to even) would give 12
        (5, 8, 63),  # 62.5 → 63
        (1, 3, 33),
        (79, 185, 43),  # the seed's FY2006
        (1, 200, 1),  # 0.5 → 1
        (199, 200, 100),  # 99.5 → 100
        (0, 1, 0),
        (0, 0, None),  # no proposals: no rate
    ],
)
def test_rate_function_rounds_half_up(adopted, proposals, percent):
    assert adoption_rate_percent(adopted, proposals) == percent


def test_participation_is_counted_in_years_without_proposals():
    for _ in range(3):
        ParticipationFactory(fiscal_year=2015)
    ParticipationFactory(fiscal_year=2016)

    rows = rows_by_key()
    assert rows[(2015, MUNI)] == {
        "fiscal_year": 2015,
        "level": MUNI,
        "participating_municipalities": 3,
        "proposing_organizations": 0,
        "proposals": 0,
        "adopted": 0,
        "adoption_rate_percent": None,
    }
    assert rows[(2016, MUNI)]["participating_municipalities"] == 1
    # Participation says nothing about the prefecture.
    assert (2015, PREF) not in rows
    assert rows_by_key(level=PREF) == {}


def test_participation_is_independent_of_which_municipalities_received_proposals():
    taking_part = [ParticipationFactory(fiscal_year=2010).body for _ in range(4)]
    propose(body=taking_part[0])

    row = rows_by_key(level=MUNI)[(2010, MUNI)]
    assert row["participating_municipalities"] == 4
    assert row["proposals"] == 1


def test_prefecture_row_has_no_participating_municipalities():
    ParticipationFactory(fiscal_year=2010)
    propose()

    assert rows_by_key()[(2010, PREF)]["participating_municipalities"] is None
    assert rows_by_key(level=PREF)[(2010, PREF)]["participating_municipalities"] is None


def test_proposer_kind_filters_and_all_counts_everyone():
    propose(organization=OrganizationFactory(kind=Organization.Kind.CSO), decision=D.ADOPTED)
    propose(organization=OrganizationFactory(kind=Organization.Kind.COMPANY), decision=D.ADOPTED)
    propose(organization=OrganizationFactory(kind=Organization.Kind.UNIVERSITY))
    propose(organization=OrganizationFactory(kind=Organization.Kind.OTHER))

    def counts(**kwargs):
        row = rows_by_key(**kwargs)[(2010, PREF)]
        return row["proposing_organizations"], row["proposals"], row["adopted"]

    assert counts() == (1, 1, 1)  # CSOs by default, as the seed counts
    assert counts(proposer_kind=Organization.Kind.CSO) == (1, 1, 1)
    assert counts(proposer_kind=Organization.Kind.COMPANY) == (1, 1, 1)
    assert counts(proposer_kind=Organization.Kind.UNIVERSITY) == (1, 1, 0)
    assert counts(proposer_kind="all") == (4, 4, 2)


def test_level_filter_and_row_order():
    city = MunicipalityFactory()
    ParticipationFactory(fiscal_year=2011, body=city)
    propose(received_on=dt.date(2011, 5, 1))
    propose(received_on=dt.date(2009, 5, 1))
    propose(body=city, received_on=dt.date(2010, 5, 1))

    keys = [(r.fiscal_year, r.level) for r in adoption_statistics()]
    # Prefecture first, then municipalities; each by year.
    assert keys == [(2009, PREF), (2011, PREF), (2010, MUNI), (2011, MUNI)]
    assert {r.level for r in adoption_statistics(level=PREF)} == {PREF}
    assert {r.level for r in adoption_statistics(level=MUNI)} == {MUNI}


def _populate(years: range) -> None:
    city = MunicipalityFactory()
    for year in years:
        ParticipationFactory(fiscal_year=year, body=city)
        propose(received_on=dt.date(year, 6, 1), decision=D.ADOPTED)
        propose(body=city, received_on=dt.date(year, 7, 1), decision=D.NOTED)


@pytest.mark.parametrize("kwargs", [{}, {"level": PREF}, {"level": MUNI}, {"proposer_kind": "all"}])
def test_query_count_does_not_grow_with_the_number_of_years(kwargs):
    _populate(range(2010, 2012))
    with CaptureQueriesContext(connection) as two_years:
        rows = adoption_statistics(**kwargs)
    assert {r.fiscal_year for r in rows} == {2010, 2011}

    _populate(range(2012, 2025))
    with CaptureQueriesContext(connection) as fifteen_years:
        rows = adoption_statistics(**kwargs)
    assert {r.fiscal_year for r in rows} == set(range(2010, 2025))

    assert len(fifteen_years) == len(two_years) <= 2
