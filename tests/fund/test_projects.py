"""The project services: who may list which proposal, the transitions table, the history.

A project is listed only from a proposal the government adopted (or partially adopted) and did
not budget, once; only programme officers (and the site admin) list and move projects; every
refusal comes with a message and leaves nothing written.
"""

import datetime as dt
import threading
from typing import Any

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, connection

from accounts.models import FoundationRole, User
from fund import services
from fund.models import Project, ProjectEvent
from proposals import services as proposal_services
from proposals.fiscal import JAPAN
from proposals.models import Proposal
from tests.factories import (
    FoundationRoleFactory,
    GovernmentStaffFactory,
    MembershipFactory,
    ProposalFactory,
    SiteAdminFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

OPENS = dt.datetime(2026, 7, 1, tzinfo=JAPAN)
CLOSES = dt.datetime(2026, 8, 31, 23, 59, 59, tzinfo=JAPAN)
State = Project.State


# --- Helpers, shared with test_project_pages -------------------------------------------------


def decided(
    decision: str = Proposal.Decision.ADOPTED, budget: str = Proposal.BudgetProvision.NO, **kw: Any
) -> Proposal:
    """A proposal with the government's response recorded through the register's services."""
    proposal = ProposalFactory(**kw)
    return proposal_services.proposal_transition(
        proposal=proposal,
        action="respond",
        decision=decision,
        decided_on=dt.date(2026, 6, 20),
        budget_provision=budget,
        actor=None,
        source="test",
    )


def programme_officer(**kw: Any) -> User:
    """A programme officer who is also an approver: "grant" and "ungrant" are moved by the
    grants work with an approver's authority, and the table's tests walk every move as one user."""
    user = FoundationRoleFactory(role=FoundationRole.Role.PROGRAMME_OFFICER, **kw).user
    FoundationRole.objects.create(user=user, role=FoundationRole.Role.APPROVER)
    return user


def terms(**overrides: Any) -> dict[str, Any]:
    values = {
        "title": "子ども食堂の立ち上げ",
        "description": "地域の子ども食堂を3か所で始めます。",
        "goal_yen": 1_000_000,
        "opens_at": OPENS,
        "closes_at": CLOSES,
    }
    values.update(overrides)
    return values


def listed(proposal: Proposal | None = None, *, actor: User | None = None, **kw: Any) -> Project:
    return services.project_create(
        proposal=proposal or decided(), actor=actor or programme_officer(), **terms(**kw)
    )


def moved(project: Project, *actions: str, actor: User | None = None) -> Project:
    actor = actor or programme_officer()
    for action in actions:
        project = services.project_transition(project=project, action=action, actor=actor)
    return project


def _nothing_written() -> None:
    assert Project.objects.count() == 0
    assert ProjectEvent.objects.count() == 0


@pytest.fixture
def officer() -> User:
    return programme_officer()


# --- Listing -----------------------------------------------------------------------------------


def test_a_programme_officer_lists_an_adopted_unbudgeted_proposal(officer):
    proposal = decided()
    project = services.project_create(proposal=proposal, actor=officer, **terms())
    assert project.state == State.DRAFT
    assert project.fee_rate_bp == 1500
    assert project.close_at_goal is False
    assert project.created_by == officer
    assert project.proposal == proposal
    event = ProjectEvent.objects.get(project=project)
    assert (event.action, event.from_state, event.to_state) == ("create", "", State.DRAFT)
    assert event.actor == officer


def test_a_partially_adopted_proposal_can_be_listed(officer):
    project = listed(decided(Proposal.Decision.PARTIALLY_ADOPTED), actor=officer)
    assert project.state == State.DRAFT


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: ProposalFactory(), "adopted"),  # received, no decision yet
        (lambda: decided(Proposal.Decision.NOT_ADOPTED), "adopted"),
        (lambda: decided(Proposal.Decision.NOTED), "adopted"),
        (lambda: decided(budget=Proposal.BudgetProvision.YES), "budget"),
        (lambda: decided(budget=Proposal.BudgetProvision.PENDING), "budget"),
    ],
    ids=["pending-decision", "not-adopted", "noted", "budgeted", "budget-pending"],
)
def test_only_adopted_unbudgeted_proposals_can_be_listed(officer, make, message, settings):
    settings.LANGUAGE_CODE = "en"
    proposal = make()
    with pytest.raises(ValidationError) as refused:
        services.project_create(proposal=proposal, actor=officer, **terms())
    assert message in " ".join(refused.value.messages)
    _nothing_written()


def test_a_withdrawn_proposal_cannot_be_listed(officer):
    proposal = proposal_services.proposal_transition(
        proposal=ProposalFactory(), action="withdraw", actor=None, source="test"
    )
    with pytest.raises(ValidationError):
        services.project_create(proposal=proposal, actor=officer, **terms())
    _nothing_written()


def test_a_proposal_is_listed_once(officer):
    proposal = decided()
    listed(proposal, actor=officer)
    with pytest.raises(ValidationError) as refused:
        services.project_create(proposal=proposal, actor=officer, **terms(title="二度目"))
    assert refused.value.messages == [services.already_listed_message()]
    assert Project.objects.count() == 1
    assert ProjectEvent.objects.count() == 1


def test_a_concurrent_second_listing_gets_the_same_message(officer, monkeypatch):
    """The existence check passed for both; the database's unique key refuses the second."""
    proposal = decided()
    listed(proposal, actor=officer)
    real_filter = Project.objects.filter

    class Blind:
        """As if the other listing had not committed yet when this one looked."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self.qs = real_filter(*args, **kwargs)
            self.calls = kwargs

        def exists(self) -> bool:
            return False if "proposal" in self.calls else self.qs.exists()

    monkeypatch.setattr(Project.objects, "filter", Blind)
    with pytest.raises(ValidationError) as refused:
        services.project_create(proposal=proposal, actor=officer, **terms())
    monkeypatch.undo()
    assert refused.value.messages == [services.already_listed_message()]
    assert Project.objects.count() == 1


def test_another_integrity_error_is_not_disguised(officer, monkeypatch):
    def fail(*args: Any, **kwargs: Any) -> None:
        raise IntegrityError("something else")

    monkeypatch.setattr(Project, "save", fail)
    with pytest.raises(IntegrityError):
        listed(actor=officer)


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        ("finance", PermissionDenied),
        ("approver", PermissionDenied),
        ("government", PermissionDenied),
        ("cso", PermissionDenied),
        ("citizen", PermissionDenied),
        ("site_admin", None),
    ],
)
def test_only_programme_officers_and_the_site_admin_list(who, expected):
    user = {
        "finance": lambda: FoundationRoleFactory(role=FoundationRole.Role.FINANCE).user,
        "approver": lambda: FoundationRoleFactory(role=FoundationRole.Role.APPROVER).user,
        "government": lambda: GovernmentStaffFactory().user,
        "cso": lambda: MembershipFactory().user,
        "citizen": lambda: UserFactory(),
        "site_admin": lambda: SiteAdminFactory(),
    }[who]()
    proposal = decided()
    if expected is None:
        project = services.project_create(proposal=proposal, actor=user, **terms())
        assert project.events.get().actor == user
        return
    with pytest.raises(expected):
        services.project_create(proposal=proposal, actor=user, **terms())
    _nothing_written()


def test_a_change_needs_a_user():
    with pytest.raises(PermissionDenied):
        services.project_create(proposal=decided(), actor=None, **terms())
    _nothing_written()


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"goal_yen": 0}, "goal_yen"),
        ({"goal_yen": -5}, "goal_yen"),
        ({"goal_yen": 1000.5}, "goal_yen"),
        ({"goal_yen": True}, "goal_yen"),
        ({"closes_at": OPENS}, "closes_at"),
        ({"closes_at": OPENS - dt.timedelta(days=1)}, "closes_at"),
        ({"fee_rate_bp": -1}, "fee_rate_bp"),
        ({"fee_rate_bp": 10_001}, "fee_rate_bp"),
        ({"title": "   "}, "title"),
        ({"description": ""}, "description"),
    ],
)
def test_goal_window_fee_and_texts_are_validated(officer, overrides, field):
    with pytest.raises(ValidationError) as refused:
        services.project_create(proposal=decided(), actor=officer, **terms(**overrides))
    assert field in refused.value.message_dict
    _nothing_written()


@pytest.mark.parametrize("fee", [0, 10_000])
def test_fee_rate_bounds_are_allowed(officer, fee):
    assert listed(actor=officer, fee_rate_bp=fee).fee_rate_bp == fee


def test_a_one_yen_goal_is_allowed(officer):
    assert listed(actor=officer, goal_yen=1).goal_yen == 1


# --- Transitions -------------------------------------------------------------------------------

# How to reach each state from a fresh draft.
PATHS = {
    State.DRAFT: (),
    State.OPEN: ("open",),
    State.CLOSED: ("open", "close"),
    State.GRANTED: ("open", "close", "grant"),
    State.CANCELLED: ("cancel",),
}
ALLOWED = {
    (State.DRAFT, "open"): State.OPEN,
    (State.DRAFT, "cancel"): State.CANCELLED,
    (State.OPEN, "close"): State.CLOSED,
    (State.OPEN, "cancel"): State.CANCELLED,
    (State.CLOSED, "grant"): State.GRANTED,
    (State.CLOSED, "cancel"): State.CANCELLED,
    (State.GRANTED, "ungrant"): State.CLOSED,
}
EVERY_PAIR = [(state, action) for state in PATHS for action in services.TRANSITIONS]


def test_the_table_is_the_one_in_the_brief():
    table = {
        (source, name): t.target for name, t in services.TRANSITIONS.items() for source in t.sources
    }
    assert table == ALLOWED


@pytest.mark.parametrize(("state", "action"), EVERY_PAIR, ids=[f"{s}-{a}" for s, a in EVERY_PAIR])
def test_every_transition_is_allowed_or_refused_by_the_table(officer, state, action):
    project = moved(listed(actor=officer), *PATHS[state], actor=officer)
    assert project.state == state
    events_before = ProjectEvent.objects.count()
    if (state, action) in ALLOWED:
        project = services.project_transition(
            project=project, action=action, actor=officer, note="理由"
        )
        assert project.state == ALLOWED[(state, action)]
        assert Project.objects.get(pk=project.pk).state == ALLOWED[(state, action)]
        event = ProjectEvent.objects.latest("pk")
        assert (event.action, event.from_state, event.to_state) == (
            action,
            state,
            ALLOWED[(state, action)],
        )
        assert event.actor == officer
        assert event.note == "理由"
        return
    with pytest.raises(ValidationError) as refused:
        services.project_transition(project=project, action=action, actor=officer)
    assert refused.value.messages  # a message, not a bare refusal
    assert Project.objects.get(pk=project.pk).state == state
    assert ProjectEvent.objects.count() == events_before


def test_an_unknown_action_is_refused(officer):
    project = listed(actor=officer)
    with pytest.raises(ValidationError):
        services.project_transition(project=project, action="publish", actor=officer)
    assert ProjectEvent.objects.count() == 1


@pytest.mark.parametrize("role", [FoundationRole.Role.FINANCE, FoundationRole.Role.APPROVER])
def test_other_foundation_staff_cannot_move_a_project(officer, role):
    project = listed(actor=officer)
    with pytest.raises(PermissionDenied):
        moved(project, "open", actor=FoundationRoleFactory(role=role).user)
    assert Project.objects.get(pk=project.pk).state == State.DRAFT
    assert ProjectEvent.objects.count() == 1


def test_opening_is_refused_once_the_government_budgets_it(officer):
    project = listed(actor=officer)
    proposal_services.proposal_set_budget_provision(
        proposal=project.proposal, budget_provision="yes", actor=None, source="test"
    )
    with pytest.raises(ValidationError):
        moved(project, "open", actor=officer)
    assert Project.objects.get(pk=project.pk).state == State.DRAFT


def test_the_history_names_each_actor_in_order():
    lister, opener, closer = programme_officer(), programme_officer(), SiteAdminFactory()
    project = listed(actor=lister)
    moved(project, "open", actor=opener)
    moved(project, "close", actor=closer)
    assert list(project.events.values_list("action", "actor")) == [
        ("create", lister.pk),
        ("open", opener.pk),
        ("close", closer.pk),
    ]


def test_allowed_actions_by_hand_leave_grant_to_the_grants_work(officer):
    project = moved(listed(actor=officer), "open", "close", actor=officer)
    assert services.allowed_actions(project) == ["grant", "cancel"]
    assert services.allowed_actions(project, by_hand_only=True) == ["cancel"]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_officers_opening_at_once_open_it_once():
    officer = programme_officer()
    project = listed(actor=officer)
    results: list[str] = []

    def attempt() -> None:
        try:
            moved(project, "open", actor=officer)
            results.append("opened")
        except ValidationError:
            results.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["opened", "refused"]
    assert ProjectEvent.objects.filter(action="open").count() == 1


# --- Editing -----------------------------------------------------------------------------------


def test_an_open_project_is_edited_with_a_history_row(officer):
    project = moved(listed(actor=officer), "open", actor=officer)
    later = CLOSES + dt.timedelta(days=14)
    project = services.project_update(
        project=project, actor=officer, goal_yen=1_200_000, closes_at=later, title="新しい題"
    )
    project.refresh_from_db()
    assert (project.goal_yen, project.closes_at, project.title) == (1_200_000, later, "新しい題")
    event = ProjectEvent.objects.latest("pk")
    assert (event.action, event.actor, event.to_state) == ("edit", officer, State.OPEN)
    assert "goal_yen: 1000000 → 1200000" in event.note


def test_editing_nothing_writes_nothing(officer):
    project = listed(actor=officer)
    services.project_update(project=project, actor=officer, goal_yen=project.goal_yen)
    assert ProjectEvent.objects.count() == 1


def test_the_fee_rate_changes_only_while_a_draft(officer):
    project = listed(actor=officer)
    services.project_update(project=project, actor=officer, fee_rate_bp=1000)
    project = moved(project, "open", actor=officer)
    with pytest.raises(ValidationError) as refused:
        services.project_update(project=project, actor=officer, fee_rate_bp=500)
    assert "fee_rate_bp" in refused.value.message_dict
    assert Project.objects.get(pk=project.pk).fee_rate_bp == 1000


@pytest.mark.parametrize("path", [("open", "close"), ("cancel",)])
def test_closed_and_cancelled_projects_are_not_edited(officer, path):
    project = moved(listed(actor=officer), *path, actor=officer)
    count = ProjectEvent.objects.count()
    with pytest.raises(ValidationError):
        services.project_update(project=project, actor=officer, title="変更")
    assert Project.objects.get(pk=project.pk).title == "子ども食堂の立ち上げ"
    assert ProjectEvent.objects.count() == count


def test_an_edit_must_keep_the_window_and_goal_valid(officer):
    project = listed(actor=officer)
    with pytest.raises(ValidationError) as refused:
        services.project_update(project=project, actor=officer, closes_at=OPENS, goal_yen=0)
    assert {"closes_at", "goal_yen"} <= set(refused.value.message_dict)
    assert ProjectEvent.objects.count() == 1


def test_an_edit_is_refused_to_finance(officer):
    project = listed(actor=officer)
    finance = FoundationRoleFactory(role=FoundationRole.Role.FINANCE).user
    with pytest.raises(PermissionDenied):
        services.project_update(project=project, actor=finance, title="変更")
    assert Project.objects.get(pk=project.pk).title == "子ども食堂の立ち上げ"
