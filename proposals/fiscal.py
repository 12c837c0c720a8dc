"""Japanese fiscal years (年度): April 1 – March 31, named by the year they start, in Japan time."""

import datetime as dt
from zoneinfo import ZoneInfo

JAPAN = ZoneInfo("Asia/Tokyo")

# (first Gregorian year of the era, name). FY2019 began under Heisei but is officially
# 令和元年度: fiscal years are named in the era that is current for most of the year.
_ERAS = [(2019, "令和"), (1989, "平成"), (1926, "昭和")]


def fiscal_year_of(value: dt.date | dt.datetime) -> int:
    """The fiscal year of a date, or of an aware datetime taken in Japan time.

    2007-03-31 is FY2006; 2007-04-01 is FY2007.
    """
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise ValueError("fiscal_year_of needs an aware datetime")
        value = value.astimezone(JAPAN).date()
    return value.year if value.month >= 4 else value.year - 1


def current_fiscal_year() -> int:
    from django.utils import timezone

    return fiscal_year_of(timezone.now())


def fiscal_year_bounds(fiscal_year: int) -> tuple[dt.date, dt.date]:
    """First and last day of a fiscal year."""
    return dt.date(fiscal_year, 4, 1), dt.date(fiscal_year + 1, 3, 31)


def era_label(fiscal_year: int) -> str:
    """The official Japanese name of a fiscal year: 2025 → 令和7年度, 2019 → 令和元年度."""
    for first_year, era in _ERAS:
        if fiscal_year >= first_year:
            number = fiscal_year - first_year + 1
            return f"{era}{'元' if number == 1 else number}年度"
    raise ValueError(f"No era name for fiscal year {fiscal_year}")
