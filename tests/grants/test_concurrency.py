"""Two finance staff confirming two new bank accounts of one CSO at the same moment, on
PostgreSQL with real parallel connections.

With the organisation locked for the confirmation, they take turns: the second confirmation
replaces the first, and one account is used for transfers. The control run turns the lock off
and shows the race it prevents: each sees no other confirmed account, both confirm theirs, and
the database refuses the second (an error page for a clerk who did nothing wrong).
"""

import threading
import time

import pytest
from django.db import IntegrityError, connection

from grants import services
from grants.models import BankAccount
from tests.factories import FoundationRoleFactory, MembershipFactory, OrganizationFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _two_pending_accounts():
    cso = OrganizationFactory()
    admin = MembershipFactory(organization=cso, role="admin").user
    accounts = [
        services.bank_account_submit(
            organization=cso,
            actor=admin,
            bank_code="0179",
            branch_code="500",
            account_type="1",
            account_number=number,
            holder_kana="ｻｶﾞｷﾖｳﾄﾞｳ",
        )
        for number in ("1111111", "2222222")
    ]
    clerks = [FoundationRoleFactory(role="finance").user for _ in accounts]
    return cso, accounts, clerks


def _race(monkeypatch, accounts, clerks) -> list[BaseException]:
    barrier = threading.Barrier(len(accounts))
    errors: list[BaseException] = []
    real_replace = services._replace_confirmed

    def slow_replace(organization_id, actor):
        # Widen the window between looking for the confirmed account and committing.
        real_replace(organization_id, actor)
        time.sleep(0.3)

    monkeypatch.setattr(services, "_replace_confirmed", slow_replace)

    def clerk(account, user):
        try:
            connection.ensure_connection()
            barrier.wait()
            services.bank_account_confirm(account=account, actor=user)
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=clerk, args=pair) for pair in zip(accounts, clerks, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def test_two_confirmations_at_once_take_turns(monkeypatch):
    cso, accounts, clerks = _two_pending_accounts()
    assert _race(monkeypatch, accounts, clerks) == []
    states = sorted(BankAccount.objects.filter(organization=cso).values_list("state", flat=True))
    assert states == ["confirmed", "replaced"]


def test_control_without_the_lock_the_second_confirmation_fails(monkeypatch):
    _cso, accounts, clerks = _two_pending_accounts()
    monkeypatch.setattr(services, "_lock_organization", lambda organization_id: None)
    errors = _race(monkeypatch, accounts, clerks)
    assert len(errors) == 1 and isinstance(errors[0], IntegrityError)
