import pytest
from django.core.management import CommandError, call_command
from hypothesis import given, settings
from hypothesis import strategies as st

from fund.checks import run_checks
from fund.ledger import LedgerError, Line, balance, designated, post_entry
from fund.models import JournalEntry, LedgerAccount, Posting
from tests.factories import ProjectFactory

pytestmark = pytest.mark.django_db


def gift(project, amount, key):
    return post_entry(
        kind="test_funding",
        key=key,
        lines=[
            Line("stripe_receivable", debit=amount),
            Line(designated(project), credit=amount),
        ],
    )


def test_a_gift_is_a_balanced_entry_and_balances_come_from_postings():
    project = ProjectFactory()
    entry, created = gift(project, 3000, "gift:1:succeeded")
    assert created
    assert sorted(entry.postings.values_list("amount", flat=True)) == [-3000, 3000]
    assert balance(designated(project)) == 3000
    assert balance("stripe_receivable") == 3000
    account = LedgerAccount.objects.get(code=designated(project))
    assert account.kind == "designated" and account.project == project


def test_the_same_key_posts_once():
    project = ProjectFactory()
    gift(project, 3000, "gift:1:succeeded")
    _entry, created = gift(project, 3000, "gift:1:succeeded")
    assert not created
    assert JournalEntry.objects.count() == 1
    assert balance(designated(project)) == 3000


@pytest.mark.parametrize(
    "lines",
    [
        [Line("bank", debit=1000), Line("general_fund", credit=999)],  # unbalanced
        [Line("bank", debit=1000)],  # one line
        [Line("bank", debit=10.0), Line("general_fund", credit=10.0)],  # float
        [Line("bank", debit=True), Line("general_fund", credit=True)],  # bool
        [Line("bank", debit=0), Line("general_fund", credit=0)],  # zero
        [Line("bank", debit=-5), Line("general_fund", credit=-5)],  # negative
        [Line("bank", debit=5, credit=5), Line("general_fund", credit=0, debit=0)],
        [Line("nonsense", debit=5), Line("general_fund", credit=5)],  # unknown account
        [Line("designated", debit=5), Line("general_fund", credit=5)],  # needs an id
    ],
)
def test_bad_entries_are_refused_and_write_nothing(lines):
    with pytest.raises(LedgerError):
        post_entry(kind="test", key="bad", lines=lines)
    assert not JournalEntry.objects.exists()
    assert not Posting.objects.exists()


def test_a_fund_never_goes_below_zero():
    project = ProjectFactory()
    gift(project, 5000, "gift:1")
    with pytest.raises(LedgerError):
        post_entry(
            kind="grant_approved",
            key="grant:1:approved",
            lines=[Line(designated(project), debit=5001), Line("grant_payable:1", credit=5001)],
        )
    assert balance(designated(project)) == 5000
    assert not JournalEntry.objects.filter(key="grant:1:approved").exists()


def test_check_ledger_passes_on_a_clean_ledger_and_fails_on_a_broken_one(capsys):
    project = ProjectFactory()
    gift(project, 2000, "gift:1")
    call_command("check_ledger")
    assert "consistent" in capsys.readouterr().out

    # Corrupt it behind the service's back, as a bad migration or a manual edit could.
    posting = Posting.objects.filter(amount=-2000).get()
    Posting.objects.filter(pk=posting.pk).update(amount=-2500)
    with pytest.raises(CommandError) as error:
        call_command("check_ledger")
    assert "gift:1" in str(error.value)
    assert set(run_checks()) == {"entries balance"}
    Posting.objects.filter(pk=posting.pk).update(amount=-2000)


@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["gift", "refund", "grant"]), st.integers(1, 50_000)),
        max_size=15,
    )
)
def test_any_sequence_of_movements_keeps_the_invariants(movements):
    # A fresh project per example: hypothesis runs examples inside one test transaction.
    project = ProjectFactory()
    held = 0
    for n, (what, amount) in enumerate(movements):
        key = f"{project.pk}:{n}"
        if what == "gift":
            lines = [
                Line("stripe_receivable", debit=amount),
                Line(designated(project), credit=amount),
            ]
        elif what == "refund":
            lines = [
                Line(designated(project), debit=amount),
                Line("stripe_receivable", credit=amount),
            ]
        else:
            lines = [
                Line(designated(project), debit=amount),
                Line(f"grant_payable:{n}", credit=amount),
            ]
        try:
            post_entry(kind=what, key=key, lines=lines)
        except LedgerError:
            assert what != "gift" and amount > held  # refused only when it would overdraw
        else:
            held += amount if what == "gift" else -amount
        assert balance(designated(project)) == held >= 0
        assert run_checks() == {}
