"""Concurrent withdrawals from one fund on PostgreSQL, with real parallel connections.

Ten clients at once each try to take ¥3,000 from a project holding ¥10,000. With the account
lock, exactly three succeed and the fund ends at ¥1,000. The control run turns the lock off and
shows the race it prevents: every client sees the fund before the others commit, so all ten
succeed and the fund goes ¥20,000 below zero.
"""

import threading
import time

import pytest
from django.db import connection

from fund import ledger
from fund.checks import run_checks
from fund.ledger import LedgerError, Line, balance, designated, post_entry
from tests.factories import ProjectFactory

CLIENTS = 10
TAKE = 3000


def _race(project) -> tuple[int, list[BaseException]]:
    barrier = threading.Barrier(CLIENTS)
    succeeded, errors = [], []
    real_balance = ledger.balance

    def slow_balance(account):
        # Widen the window between reading the fund and committing, the same in both runs.
        # The read comes first: sleeping before it let the clients' reads spread out, so the
        # later ones saw the earlier ones' commits and the control sometimes showed no race.
        held = real_balance(account)
        time.sleep(0.3)
        return held

    def client(n: int) -> None:
        try:
            # Connect before the start line: opening ten connections at once can take longer
            # than the window and would serialise the clients by accident.
            connection.ensure_connection()
            barrier.wait()
            post_entry(
                kind="grant_approved",
                key=f"race:{project.pk}:{n}",
                lines=[
                    Line(designated(project), debit=TAKE),
                    Line(f"grant_payable:{n}", credit=TAKE),
                ],
            )
            succeeded.append(n)
        except LedgerError:
            pass
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)
        finally:
            connection.close()

    ledger.balance = slow_balance
    try:
        threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        ledger.balance = real_balance
    return len(succeeded), errors


def _fund_with(amount: int):
    project = ProjectFactory()
    post_entry(
        kind="test_funding",
        key=f"gift:{project.pk}",
        lines=[Line("stripe_receivable", debit=amount), Line(designated(project), credit=amount)],
    )
    return project


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_withdrawals_never_overdraw_the_fund():
    project = _fund_with(10_000)
    succeeded, errors = _race(project)
    assert errors == []
    assert succeeded == 3
    assert balance(designated(project)) == 1000
    assert run_checks() == {}


@pytest.mark.postgres
@pytest.mark.ledger_left_broken
@pytest.mark.django_db(transaction=True)
def test_control_without_the_lock_the_fund_is_overdrawn(monkeypatch):
    project = _fund_with(10_000)
    monkeypatch.setattr(ledger, "_lock", lambda codes: None)
    succeeded, errors = _race(project)
    assert errors == []
    assert succeeded > 3
    assert balance(designated(project)) < 0
    assert "funds never below zero" in run_checks()
