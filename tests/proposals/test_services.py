import datetime as dt

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from proposals.models import Proposal, ProposalEvent
from proposals.services import (
    TRANSITIONS,
    allowed_actions,
    proposal_create,
    proposal_set_budget_provision,
    proposal_transition,
    proposal_update,
)
from tests.factories import (
    GovernmentStaffFactory,
    MembershipFactory,
    MunicipalityFactory,
    OperationFactory,
    OrganizationFactory,
    PrefectureFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def officer():
    """An officer of Saga Prefecture, the body every proposal here is made to."""
    return GovernmentStaffFactory(body=PrefectureFactory()).user


@pytest.fixture
def proposal(officer):
    return proposal_create(
        reference="SAGA-2026-0001",
        received_on=dt.date(2026, 5, 12),
        body=PrefectureFactory(),
        organization=OrganizationFactory(),
        title="子ども食堂の運営を協働で",
        actor=officer,
    )


def test_create_receives_the_proposal_with_its_fiscal_year_and_history(proposal, officer):
    assert proposal.state == Proposal.State.RECEIVED
    assert proposal.fiscal_year == 2026
    event = proposal.events.get()
    assert (event.action, event.from_state, event.to_state) == ("receive", "", "received")
    assert event.actor == officer
    assert event.occurred_at is not None


def test_receipt_on_march_31_belongs_to_the_previous_fiscal_year(officer):
    proposal = proposal_create(
        reference="SAGA-2006-0185",
        received_on=dt.date(2007, 3, 31),
        body=PrefectureFactory(),
        organization=OrganizationFactory(),
        title="年度末の提案",
        actor=officer,
    )
    assert proposal.fiscal_year == 2006


def test_full_life_of_an_adopted_proposal(proposal, officer):
    proposal_transition(
        proposal=proposal,
        action="consult",
        actor=officer,
        held_on=dt.date(2026, 6, 1),
        notes="1回目",
    )
    proposal_transition(
        proposal=proposal,
        action="consult",
        actor=officer,
        held_on=dt.date(2026, 7, 1),
        notes="2回目",
    )
    proposal_transition(
        proposal=proposal,
        action="respond",
        actor=officer,
        decision=Proposal.Decision.ADOPTED,
        decided_on=dt.date(2026, 8, 1),
        reason="県の方針に合致",
        planned_implementation_year=2027,
    )
    proposal_set_budget_provision(proposal=proposal, budget_provision="no", actor=officer)
    proposal_transition(
        proposal=proposal,
        action="contract",
        actor=officer,
        kind="joint",
        signed_on=dt.date(2027, 4, 1),
        amount_yen=1_500_000,
    )
    proposal_transition(
        proposal=proposal,
        action="assess",
        actor=officer,
        assessed_on=dt.date(2028, 5, 1),
        summary="利用者 1,200 人",
    )
    proposal.refresh_from_db()
    assert proposal.state == Proposal.State.ASSESSED
    assert proposal.decision == Proposal.Decision.ADOPTED
    assert proposal.budget_provision == Proposal.BudgetProvision.NO
    assert proposal.consultations.count() == 2
    assert proposal.contract.amount_yen == 1_500_000
    assert proposal.assessment.summary == "利用者 1,200 人"
    actions = list(proposal.events.values_list("action", "to_state", "actor"))
    assert actions == [
        ("receive", "received", officer.pk),
        ("consult", "consultation", officer.pk),
        ("consult", "consultation", officer.pk),
        ("respond", "responded", officer.pk),
        ("budget_provision", "responded", officer.pk),
        ("contract", "contracted", officer.pk),
        ("assess", "assessed", officer.pk),
    ]


def test_not_adopted_proposal_cannot_be_contracted(proposal, officer):
    proposal_transition(proposal=proposal, action="respond", actor=officer, decision="not_adopted")
    assert "contract" not in allowed_actions(proposal)
    with pytest.raises(ValidationError):
        proposal_transition(
            proposal=proposal,
            action="contract",
            actor=officer,
            kind="joint",
            signed_on=dt.date(2026, 9, 1),
        )
    assert not hasattr(Proposal.objects.get(pk=proposal.pk), "contract")


@pytest.mark.parametrize("action", sorted(TRANSITIONS))
def test_every_transition_out_of_withdrawn_is_refused(proposal, officer, action):
    proposal_transition(proposal=proposal, action="withdraw", actor=officer, note="事情により")
    proposal.refresh_from_db()
    assert proposal.decision == Proposal.Decision.WITHDRAWN
    events_before = ProposalEvent.objects.count()
    with pytest.raises(ValidationError):
        proposal_transition(
            proposal=proposal,
            action=action,
            actor=officer,
            held_on=dt.date(2026, 9, 1),
            decision="adopted",
            kind="joint",
            signed_on=dt.date(2026, 9, 1),
            assessed_on=dt.date(2026, 9, 1),
            summary="x",
        )
    assert ProposalEvent.objects.count() == events_before


def test_withdrawn_is_not_a_decision_the_response_can_give(proposal, officer):
    with pytest.raises(ValidationError):
        proposal_transition(
            proposal=proposal, action="respond", actor=officer, decision="withdrawn"
        )
    proposal.refresh_from_db()
    assert proposal.state == Proposal.State.RECEIVED


def test_bad_details_write_nothing(proposal, officer):
    with pytest.raises(ValidationError):
        proposal_transition(
            proposal=proposal, action="consult", actor=officer, held_on=dt.date(2026, 1, 1)
        )
    proposal.refresh_from_db()
    assert proposal.state == Proposal.State.RECEIVED
    assert proposal.consultations.count() == 0
    assert proposal.events.count() == 1


def test_an_officer_of_another_body_may_not_move_the_proposal(proposal):
    other = GovernmentStaffFactory(body=MunicipalityFactory()).user
    with pytest.raises(PermissionDenied):
        proposal_transition(proposal=proposal, action="respond", actor=other, decision="adopted")
    proposal.refresh_from_db()
    assert proposal.state == Proposal.State.RECEIVED


def test_a_cso_member_submits_and_may_withdraw_but_not_decide():
    member = MembershipFactory().user
    organization = member.memberships.get().organization
    proposal = proposal_create(
        reference="WEB-1",
        received_on=dt.date(2026, 6, 1),
        body=PrefectureFactory(),
        organization=organization,
        title="オンライン提出",
        actor=member,
    )
    with pytest.raises(PermissionDenied):
        proposal_transition(proposal=proposal, action="respond", actor=member, decision="adopted")
    with pytest.raises(PermissionDenied):
        proposal_create(
            reference="WEB-2",
            received_on=dt.date(2026, 6, 1),
            body=PrefectureFactory(),
            organization=OrganizationFactory(),  # not the member's organisation
            title="他団体の名義",
            actor=member,
        )
    proposal_transition(proposal=proposal, action="withdraw", actor=member)
    proposal.refresh_from_db()
    assert proposal.state == Proposal.State.WITHDRAWN
    assert proposal.events.last().actor == member


def test_a_user_who_is_not_staff_may_not_change_the_register(proposal):
    citizen = UserFactory()
    with pytest.raises(PermissionDenied):
        proposal_transition(proposal=proposal, action="respond", actor=citizen, decision="adopted")
    with pytest.raises(PermissionDenied):
        proposal_set_budget_provision(proposal=proposal, budget_provision="no", actor=citizen)
    proposal.refresh_from_db()
    assert proposal.decision == ""


def test_a_change_without_a_user_must_name_its_source(proposal):
    with pytest.raises(PermissionDenied):
        proposal_transition(proposal=proposal, action="respond", actor=None, decision="adopted")
    proposal_transition(
        proposal=proposal, action="respond", actor=None, source="import", decision="adopted"
    )
    assert proposal.events.last().source == "import"


def test_update_records_what_changed_and_nothing_when_unchanged(proposal, officer):
    operation = OperationFactory(body=proposal.body)
    proposal_update(proposal=proposal, actor=officer, title="新しい題名", operation=operation)
    proposal_update(proposal=proposal, actor=officer, title="新しい題名")
    edits = proposal.events.filter(action="edit")
    assert edits.count() == 1
    assert edits.get().changes["title"] == ["子ども食堂の運営を協働で", "新しい題名"]


def test_operation_of_another_body_is_refused(officer):
    other = OperationFactory(body__code="412015", body__name="佐賀市", body__kind="municipality")
    with pytest.raises(ValidationError):
        proposal_create(
            reference="X-1",
            received_on=dt.date(2026, 5, 1),
            body=PrefectureFactory(),
            organization=OrganizationFactory(),
            title="t",
            operation=other,
            actor=officer,
        )
    assert not Proposal.objects.exists()


def test_history_rows_carry_the_day_each_step_happened(proposal, officer):
    proposal_transition(
        proposal=proposal, action="consult", actor=officer, held_on=dt.date(2026, 6, 3)
    )
    proposal_transition(
        proposal=proposal,
        action="respond",
        actor=officer,
        decision="adopted",
        decided_on=dt.date(2026, 7, 9),
    )
    proposal_transition(
        proposal=proposal, action="withdraw", actor=officer, withdrawn_on=dt.date(2026, 8, 20)
    )
    proposal.refresh_from_db()
    assert proposal.decided_on == dt.date(2026, 8, 20)
    assert list(proposal.events.values_list("action", "effective_on")) == [
        ("receive", dt.date(2026, 5, 12)),
        ("consult", dt.date(2026, 6, 3)),
        ("respond", dt.date(2026, 7, 9)),
        ("withdraw", dt.date(2026, 8, 20)),
    ]
