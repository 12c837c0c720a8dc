import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from proposals.fiscal import era_label, fiscal_year_bounds, fiscal_year_of


@pytest.mark.parametrize(
    ("day", "year"),
    [
        (dt.date(2007, 3, 31), 2006),
        (dt.date(2007, 4, 1), 2007),
        (dt.date(2026, 1, 15), 2025),
        (dt.date(2026, 12, 31), 2026),
    ],
)
def test_fiscal_year_starts_on_april_first(day, year):
    assert fiscal_year_of(day) == year


def test_fiscal_year_of_a_datetime_is_taken_in_japan_time():
    # 2007-03-31 16:00 UTC is already 2007-04-01 01:00 in Tokyo.
    moment = dt.datetime(2007, 3, 31, 16, 0, tzinfo=ZoneInfo("UTC"))
    assert fiscal_year_of(moment) == 2007
    assert fiscal_year_of(moment - dt.timedelta(hours=2)) == 2006


def test_naive_datetime_is_refused():
    with pytest.raises(ValueError):
        fiscal_year_of(dt.datetime(2007, 4, 1, 0, 0))


@pytest.mark.parametrize(
    ("year", "label"),
    [
        (2025, "令和7年度"),
        (2019, "令和元年度"),
        (2018, "平成30年度"),
        (1989, "平成元年度"),
        (2006, "平成18年度"),
        (1988, "昭和63年度"),
    ],
)
def test_era_label(year, label):
    assert era_label(year) == label


def test_fiscal_year_bounds():
    assert fiscal_year_bounds(2025) == (dt.date(2025, 4, 1), dt.date(2026, 3, 31))
