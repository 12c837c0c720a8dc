import pytest


@pytest.fixture(autouse=True)
def _ledger_checked_after_each_test(request, django_db_blocker):
    """Every test that touches money ends with the same checks as ``manage.py check_ledger``."""
    yield
    if request.node.get_closest_marker("ledger_left_broken"):
        return
    from fund.checks import run_checks

    with django_db_blocker.unblock():
        assert run_checks() == {}
