"""The grants' tests act on the next bank business day: a batch is made for it and its
transfers are recorded on it (a transfer is never recorded before its date), whatever day of
the week the tests run. Tests of that rule set the clock themselves."""

import pytest

from grants import services, zengin


@pytest.fixture(autouse=True)
def _on_a_bank_business_day(monkeypatch):
    day = zengin.next_bank_business_day(services.today())
    monkeypatch.setattr(services, "today", lambda: day)
    return day
