"""The demo gifts (``donations.demo``, loaded by ``manage.py load_demo`` after the projects).

Every gift goes through the pipeline (checkout, demo payment, event, ledger, history); the
ledger checks pass; a second load adds nothing. The whole command, register included, is run
twice by tests/proposals/test_demo.py; here the fund's and the donations' loaders run on a small
register of their own, which is quick — with the demo's match pools pledged first, as
``load_demo`` does, since the projects' goals are set for the gifts with their matches
(tests/fund/test_demo_pools.py looks at the pools themselves).
"""

from io import StringIO

import pytest
from django.core.management import call_command

from accounts.demo import load_sponsors_demo
from accounts.models import FoundationRole
from donations.demo import DONOR_DOMAIN, demo_projects, load_donations_demo, planned_gifts
from donations.models import (
    DemoCheckout,
    Donation,
    DonationEvent,
    Gift,
    Receipt,
    Refund,
    WebhookEvent,
)
from donations.selectors import donor_wall, progress_of
from fund.demo import PLAN, PROGRAMME_OFFICER, finish_pools_demo, load_fund_demo, load_pools_demo
from fund.models import JournalEntry, Posting, Project
from tests.factories import FoundationRoleFactory, UserFactory
from tests.fund.test_projects import decided

pytestmark = pytest.mark.django_db

MODELS = (
    Donation,
    Gift,
    Refund,
    Receipt,
    DonationEvent,
    WebhookEvent,
    DemoCheckout,
    JournalEntry,
    Posting,
)


def counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in MODELS}


@pytest.fixture
def loaded() -> dict[str, int]:
    """A register with just enough fundable proposals, the demo staff and sponsors, and the
    loaders run in ``load_demo``'s order: projects, pools, gifts, payments and pool ends."""
    for _ in PLAN:
        decided()
    FoundationRoleFactory(
        user=UserFactory(email=PROGRAMME_OFFICER), role=FoundationRole.Role.PROGRAMME_OFFICER
    )
    FoundationRoleFactory(
        user=UserFactory(email="finance@civicfund.example.jp"), role=FoundationRole.Role.FINANCE
    )
    UserFactory(email="citizen@example.jp")
    load_sponsors_demo()
    load_fund_demo()
    load_pools_demo(planned_gifts())
    given = load_donations_demo()
    finish_pools_demo()
    return given


def test_the_demo_gives_through_the_pipeline(loaded):
    assert loaded == {"demo_donations": 36, "demo_gifts": 36, "demo_refunds": 1}
    assert Gift.objects.count() == 36
    # Every payment came as an event and was processed; every gift has its history row.
    assert not WebhookEvent.objects.filter(processed_at__isnull=True).exists()
    assert DonationEvent.objects.filter(action="gift_received").count() == 36
    assert JournalEntry.objects.filter(kind="gift_succeeded").count() == 36
    # Donors at the demo domain, and the demo citizen's gift linked to their account.
    citizen = Donation.objects.get(email="citizen@example.jp")
    assert citizen.donor.email == "citizen@example.jp"
    assert Donation.objects.exclude(email__endswith=f"@{DONOR_DOMAIN}").count() == 1


def test_the_demo_has_every_kind_of_gift(loaded):
    # Konbini: a voucher first, then paid at the store — or not yet.
    konbini = Donation.objects.filter(events__action="voucher_issued")
    assert konbini.count() == 5
    assert konbini.filter(status=Donation.Status.SUCCEEDED).count() == 4
    assert konbini.filter(status=Donation.Status.AWAITING_PAYMENT).count() == 1
    monthly = Donation.objects.get(frequency=Donation.Frequency.MONTHLY)
    assert (monthly.status, monthly.gifts.count()) == (Donation.Status.ACTIVE, 2)
    refund = Refund.objects.get()
    assert refund.created_by.email == "finance@civicfund.example.jp"
    assert refund.gift.state == Gift.State.PARTIALLY_REFUNDED
    assert Gift.objects.filter(project__isnull=True).count() == 3  # the general fund
    assert Donation.objects.filter(share_contact=True).count() >= 5
    assert Receipt.objects.filter(voided_at__isnull=True).count() == 4


def test_some_projects_are_well_funded_and_one_is_close_to_its_goal(loaded):
    progress = {slot: progress_of(project) for slot, project in demo_projects().items()}
    well_funded = [slot for slot, p in progress.items() if 80 <= p.percent < 100]
    assert len(well_funded) >= 3
    close = [slot for slot, p in progress.items() if p.percent >= 90 and p.days_left is not None]
    assert close and all(progress[slot].percent < 100 for slot in close)
    projects = demo_projects()
    closed = next(p for p in projects.values() if p.state == Project.State.CLOSED)
    assert progress_of(closed).raised > 0  # given while it was open
    for project in projects.values():
        if project.state in (Project.State.DRAFT, Project.State.CANCELLED):
            assert progress_of(project).raised == 0
    # Japanese display names on the wall, for donors who chose to show one.
    wall = donor_wall(projects[0])
    assert "古賀健一" in [entry.name for entry in wall.named]
    assert wall.anonymous > 0


def test_a_second_load_adds_nothing_and_the_ledger_is_consistent(loaded):
    before = counts()
    assert load_donations_demo() == {"demo_donations": 0, "demo_gifts": 0, "demo_refunds": 0}
    assert counts() == before
    out = StringIO()
    call_command("check_ledger", stdout=out)
    assert out.getvalue().strip()
