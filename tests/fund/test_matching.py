"""Match pools: how a gift is matched, released and a pool ended (fund.matching)."""

import datetime as dt

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from donations import services as donation_services
from fund.ledger import balance
from fund.matching import (
    end_expired_pools,
    entitlement,
    pool_end,
    pool_record_payment,
    pool_top_up,
    pool_update,
)
from fund.models import JournalEntry, MatchAllocation, MatchPool, MatchPoolEvent
from fund.selectors import matches_by_gift, matching_offers, pool_figures
from tests.factories import (
    FoundationRoleFactory,
    MunicipalityFactory,
    OrganizationFactory,
    ProjectFactory,
    SiteAdminFactory,
    UserFactory,
    give,
    pledge_pool,
)

pytestmark = pytest.mark.django_db


def figures(pool):
    return pool_figures([pool])[pool.pk]


def matched(gift):
    return sum(m.net for m in matches_by_gift([gift.payment_id]).get(gift.payment_id, []))


def refund(gift, amount, refund_id):
    """A refund as a webhook records it (the provider already moved the money)."""
    from django.db import transaction

    with transaction.atomic():
        return donation_services._record_refund(
            gift, provider_refund_id=refund_id, amount=amount, reason="requested", source="test"
        )


# --- Pledge and payments -------------------------------------------------------------------------


def test_a_pledge_is_posted_and_owed_until_paid():
    pool = pledge_pool(500_000)
    f = figures(pool)
    assert (f.pledged, f.paid, f.unpaid, f.left) == (500_000, 0, 500_000, 500_000)
    pool_record_payment(pool=pool, amount=200_000, reference="振込 0001", actor=SiteAdminFactory())
    f = figures(pool)
    assert (f.paid, f.unpaid) == (200_000, 300_000)
    assert balance("bank") == 200_000


def test_a_payment_above_what_is_owed_is_refused_and_nothing_is_saved():
    pool = pledge_pool(100_000)
    with pytest.raises(ValidationError) as error:
        pool_record_payment(pool=pool, amount=100_001, reference="x", actor=SiteAdminFactory())
    assert "¥100,000" in str(error.value)
    assert figures(pool).paid == 0
    assert not pool.events.filter(action=MatchPoolEvent.Action.PAYMENT_RECEIVED).exists()


def test_the_same_bank_reference_is_recorded_once():
    pool = pledge_pool(100_000)
    admin = SiteAdminFactory()
    pool_record_payment(pool=pool, amount=10_000, reference="REF-1", actor=admin)
    with pytest.raises(ValidationError):
        pool_record_payment(pool=pool, amount=10_000, reference="REF-1", actor=admin)
    assert figures(pool).paid == 10_000


def test_a_top_up_raises_the_pledge():
    pool = pledge_pool(100_000)
    pool_top_up(pool=pool, amount=50_000, actor=SiteAdminFactory())
    assert (figures(pool).pledged, figures(pool).left) == (150_000, 150_000)


@pytest.mark.parametrize(
    "rules, field",
    [
        ({"ratio_gift": 0}, "ratio_gift"),
        ({"ratio_match": -1}, "ratio_match"),
        ({"cap_per_gift": 0}, "cap_per_gift"),
        ({"cap_per_donor": -5}, "cap_per_donor"),
        ({"scope": "projects"}, "projects"),
        ({"leftover": "general_fund"}, "sponsor_consents_to_general_fund"),
    ],
)
def test_bad_rules_are_refused_with_the_field_named_and_nothing_saved(rules, field):
    with pytest.raises(ValidationError) as error:
        pledge_pool(**rules)
    assert field in error.value.message_dict
    assert not MatchPool.objects.exists()
    assert not JournalEntry.objects.exists()


def test_a_window_ending_before_it_starts_is_refused():
    now = timezone.now()
    with pytest.raises(ValidationError) as error:
        pledge_pool(starts_at=now, ends_at=now - dt.timedelta(days=1))
    assert "ends_at" in error.value.message_dict
    assert not MatchPool.objects.exists()


@pytest.mark.parametrize("pledged", [0, -1, 1.5, True])
def test_a_pledge_is_whole_yen_of_at_least_one(pledged):
    with pytest.raises(ValidationError):
        pledge_pool(pledged)
    assert not MatchPool.objects.exists()


def test_only_programme_or_finance_staff_run_pools():
    pool = pledge_pool()
    for role in ("programme_officer", "finance"):
        pool_top_up(pool=pool, amount=1, actor=FoundationRoleFactory(role=role).user)
    for outsider in (UserFactory(), FoundationRoleFactory(role="approver").user):
        with pytest.raises(PermissionDenied):
            pool_top_up(pool=pool, amount=1, actor=outsider)
        with pytest.raises(PermissionDenied):
            pool_end(pool=pool, actor=outsider)


# --- Matching ------------------------------------------------------------------------------------


def test_a_gift_is_matched_one_to_one_and_the_project_counts_it():
    project = ProjectFactory()
    pool = pledge_pool(100_000)
    gift = give(project, 3000)
    assert matched(gift) == 3000
    assert figures(pool).left == 97_000
    assert balance(f"designated:{project.pk}") == 6000


@pytest.mark.parametrize(
    "ratio, gift_yen, expected",
    [((1, 1), 3000, 3000), ((1, 2), 3000, 6000), ((2, 1), 3001, 1500), ((3, 1), 1000, 333)],
)
def test_the_ratio_is_gift_to_match_rounded_down(ratio, gift_yen, expected):
    pool = pledge_pool(100_000, ratio_gift=ratio[0], ratio_match=ratio[1])
    assert entitlement(pool, gift_yen) == expected
    assert matched(give(ProjectFactory(), gift_yen)) == expected


def test_the_cap_per_gift_limits_and_the_rest_goes_to_the_next_pool():
    project = ProjectFactory()
    first = pledge_pool(100_000, priority=2, cap_per_gift=2000)
    second = pledge_pool(100_000, priority=1)
    gift = give(project, 5000)
    assert figures(first).net_matched == 2000
    assert figures(second).net_matched == 3000  # the 3,000 of the gift the first left unmatched
    assert matched(gift) == 5000


def test_a_nearly_spent_pool_matches_partially_and_the_next_pool_the_rest():
    project = ProjectFactory()
    first = pledge_pool(1000, priority=5)
    second = pledge_pool(100_000, priority=1)
    gift = give(project, 3000)
    assert (figures(first).left, figures(first).net_matched) == (0, 1000)
    assert figures(second).net_matched == 2000
    assert matched(gift) == 3000


def test_with_no_money_left_a_gift_is_simply_not_matched():
    project = ProjectFactory()
    pool = pledge_pool(1000)
    give(project, 1000)
    gift = give(project, 1000)
    assert matched(gift) == 0
    assert figures(pool).left == 0


def test_the_cap_per_donor_counts_by_account_and_by_email():
    project = ProjectFactory()
    pool = pledge_pool(100_000, cap_per_donor=5000)
    donor = UserFactory(email="hanako@example.jp")
    assert matched(give(project, 3000, donor=donor, email=donor.email)) == 3000
    # The same person without signing in, by email (any case): 2,000 left of the cap.
    assert matched(give(project, 3000, email="HANAKO@example.jp")) == 2000
    # Signed in with a different email: still the same account.
    assert matched(give(project, 3000, donor=donor, email="other@example.jp")) == 0
    assert matched(give(project, 3000, email="someone@example.jp")) == 3000
    assert figures(pool).net_matched == 8000


def test_monthly_instalments_are_matched_each_within_the_donor_cap():
    project = ProjectFactory()
    pledge_pool(100_000, cap_per_donor=2500)
    results = [matched(give(project, 1000, email="monthly@example.jp")) for _ in range(4)]
    assert results == [1000, 1000, 500, 0]


def test_eligibility_by_list_body_and_fiscal_year():
    # Fiscal years run April–March: a proposal received in March 2026 is of FY2025.
    fy2025 = dict(proposal__body=MunicipalityFactory(), proposal__received_on=dt.date(2026, 3, 31))
    chosen = ProjectFactory(**fy2025)
    also_2025 = ProjectFactory(**fy2025)
    other = ProjectFactory(proposal__body=MunicipalityFactory())  # FY2026
    listed = pledge_pool(100_000, scope="projects", projects=[chosen], priority=2)
    by_body = pledge_pool(100_000, scope="body", body=other.proposal.body)
    by_year = pledge_pool(100_000, scope="fiscal_year", fiscal_year=2025)
    give(other, 2000)
    assert [figures(p).net_matched for p in (listed, by_body, by_year)] == [0, 2000, 0]
    give(also_2025, 1500)
    assert [figures(p).net_matched for p in (listed, by_body, by_year)] == [0, 2000, 1500]
    give(chosen, 1000)  # the list (priority 2) goes before the year
    assert [figures(p).net_matched for p in (listed, by_body, by_year)] == [1000, 2000, 1500]


def test_outside_the_window_or_after_the_end_nothing_is_matched():
    project = ProjectFactory()
    now = timezone.now()
    later = pledge_pool(100_000, starts_at=now + dt.timedelta(days=1))
    ended = pledge_pool(100_000)
    pool_end(pool=ended, actor=SiteAdminFactory())
    give(project, 1000)
    assert figures(later).net_matched == 0
    assert figures(ended).net_matched == 0


def test_general_fund_gifts_are_not_matched():
    pool = pledge_pool(100_000)
    give(None, 1000)
    assert figures(pool).net_matched == 0


# --- Refunds -------------------------------------------------------------------------------------


def test_a_refund_gives_the_match_back_exactly_once():
    project = ProjectFactory()
    pool = pledge_pool(100_000)
    gift = give(project, 3000)
    refund(gift, 3000, "re_1")
    refund(gift, 3000, "re_1")  # the same refund again (a repeated webhook)
    assert figures(pool).released == 3000
    assert figures(pool).left == 100_000
    assert matched(gift) == 0


def test_a_partial_refund_gives_back_the_matching_share_and_the_last_one_the_rest():
    project = ProjectFactory()
    pool = pledge_pool(100_000, ratio_gift=1, ratio_match=2)
    gift = give(project, 3000)  # matched 6,000
    refund(gift, 1000, "re_a")
    assert figures(pool).released == 2000
    refund(gift, 1001, "re_b")
    assert figures(pool).released == 4002
    gift.refresh_from_db()
    refund(gift, 999, "re_c")
    assert figures(pool).released == 6000
    assert matched(gift) == 0


def test_a_lost_dispute_gives_the_match_back(monkeypatch):
    from donations.providers import DisputeState

    project = ProjectFactory()
    pool = pledge_pool(100_000)
    gift = give(project, 3000)
    state = DisputeState(
        dispute_id="dp_1", payment_intent_id=gift.payment_intent_id, status="lost", amount=3000
    )
    monkeypatch.setattr(
        donation_services,
        "get_provider",
        lambda name: type("P", (), {"dispute_state": lambda s, i: state})(),
    )
    donation_services.sync_dispute("dp_1", provider="demo", source="test")
    donation_services.sync_dispute("dp_1", provider="demo", source="test")
    assert figures(pool).released == 3000


def test_released_match_goes_on_to_the_next_gift():
    project = ProjectFactory()
    pool = pledge_pool(3000)
    first = give(project, 3000)
    refund(first, 3000, "re_1")
    assert matched(give(project, 3000)) == 3000
    assert figures(pool).left == 0


# --- Ending --------------------------------------------------------------------------------------


def test_ending_an_unpaid_pool_forgives_what_was_not_used():
    project = ProjectFactory()
    pool = pledge_pool(10_000)
    give(project, 4000)
    pool_end(pool=pool, actor=SiteAdminFactory())
    f = figures(pool)
    assert (f.left, f.returned, f.unpaid) == (0, 6000, 4000)  # the sponsor owes what was matched


def test_ending_a_paid_pool_returns_the_rest_to_the_sponsor_or_the_general_fund():
    project = ProjectFactory()
    back = pledge_pool(10_000)
    kept = pledge_pool(10_000, leftover="general_fund", sponsor_consents_to_general_fund=True)
    admin = SiteAdminFactory()
    for pool in (back, kept):
        pool_record_payment(pool=pool, amount=10_000, reference="paid", actor=admin)
    give(project, 4000)  # matched by one of them
    bank_before = balance("bank")
    general_before = balance("general_fund")
    pool_end(pool=back, actor=admin)
    pool_end(pool=kept, actor=admin)
    returned = figures(back).returned
    assert balance("bank") == bank_before - returned
    assert balance("general_fund") == general_before + figures(kept).returned
    assert figures(back).left == figures(kept).left == 0
    with pytest.raises(ValidationError):
        pool_end(pool=back, actor=admin)


def test_a_refund_after_the_end_passes_the_match_straight_on():
    project = ProjectFactory()
    pool = pledge_pool(10_000)
    gift = give(project, 4000)
    pool_end(pool=pool, actor=SiteAdminFactory())
    refund(gift, 4000, "re_late")
    f = figures(pool)
    assert (f.left, f.released, f.unpaid) == (0, 4000, 0)


def test_the_schedule_ends_pools_whose_window_has_passed():
    pool = pledge_pool(10_000)
    still = pledge_pool(10_000)
    MatchPool.objects.filter(pk=pool.pk).update(ends_at=timezone.now() - dt.timedelta(minutes=1))
    assert end_expired_pools() == 1
    pool.refresh_from_db()
    assert pool.state == MatchPool.State.ENDED
    assert pool.events.get(action="ended").source == "schedule"
    still.refresh_from_db()
    assert still.state == MatchPool.State.ACTIVE


def test_changes_to_a_pool_are_recorded():
    pool = pledge_pool()
    admin = SiteAdminFactory()
    pool_update(pool=pool, actor=admin, priority=7, name="新しい名前")
    event = pool.events.get(action="changed")
    assert event.actor == admin and "priority: 0 → 7" in event.note
    with pytest.raises(ValidationError):
        pool_update(pool=pool, actor=admin, ends_at=pool.starts_at)


def test_the_project_page_offer_shows_what_is_left_in_matching_order():
    project = ProjectFactory()
    low = pledge_pool(5000, priority=1, sponsor=OrganizationFactory(name="佐賀銀行"))
    high = pledge_pool(1000, priority=9)
    pledge_pool(1000, scope="projects", projects=[ProjectFactory()])  # not this project
    offers = matching_offers(project)
    assert [(o.pool, o.left) for o in offers] == [(high, 1000), (low, 5000)]
    give(project, 1500)
    assert [(o.pool, o.left) for o in matching_offers(project)] == [(low, 4500)]


def test_every_allocation_has_its_ledger_entry():
    project = ProjectFactory()
    pledge_pool(100_000)
    gift = give(project, 3000)
    allocation = MatchAllocation.objects.get(gift_key=gift.payment_id)
    assert JournalEntry.objects.filter(key=f"match:{allocation.pool_id}:{gift.payment_id}").exists()
