"""The fund's staff pages, and the progress figures the public pages show.

Progress figures come from the ledger; only programme officers list and move projects, and a
refusal writes nothing. The public list and project page are gift pages now:
tests/donations/test_public_pages.py.
"""

import datetime as dt
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import FoundationRole, User
from fund import selectors
from fund.models import Project, ProjectEvent
from proposals.fiscal import JAPAN
from proposals.models import Proposal
from tests import factories
from tests.factories import (
    FoundationRoleFactory,
    MembershipFactory,
    UserFactory,
)
from tests.fund.test_projects import decided, listed, moved, programme_officer

pytestmark = pytest.mark.django_db
State = Project.State


def live(
    *, days_left: int = 10, goal_yen: int = 1_000_000, title: str = "", **proposal: Any
) -> Project:
    """An open project whose window runs from ten days ago to ``days_left`` days ahead;
    ``proposal`` goes to the proposal's factory."""
    today = timezone.localdate(timezone=JAPAN)
    project = listed(
        decided(**proposal),
        title=title or "子ども食堂の立ち上げ",
        goal_yen=goal_yen,
        opens_at=dt.datetime.combine(today - dt.timedelta(days=10), dt.time.min, tzinfo=JAPAN),
        closes_at=dt.datetime.combine(
            today + dt.timedelta(days=days_left), dt.time(23, 59, 59), tzinfo=JAPAN
        ),
    )
    return moved(project, "open")


def give(project: Project, amount: int, key: str) -> None:
    """A succeeded gift for the project, recorded by the gift pipeline's own step."""
    factories.give(project, amount, payment_id=key)


def signed_in(user: User, *, enforce_csrf: bool = False) -> Client:
    client = Client(enforce_csrf_checks=enforce_csrf)
    client.force_login(user)
    return client


# --- Progress (the public pages themselves: tests/donations/test_public_pages.py) -----------


def test_bulk_progress_agrees_with_each_projects_progress():
    projects = [live(goal_yen=9_000) for _ in range(3)]
    give(projects[0], 3_000, "t-0")
    give(projects[2], 9_500, "t-2")
    bulk = selectors.progress_for(projects)
    for project in projects:
        assert bulk[project.pk] == selectors.project_progress(project)
    assert [bulk[p.pk].raised for p in projects] == [3_000, 0, 9_500]
    assert bulk[projects[2].pk].percent == 105
    assert bulk[projects[2].pk].bar_percent == 100


def test_days_left_are_counted_in_japan_time():
    project = live()
    # 23:30 in Japan on the 10th; closes at 23:59:59 on the 11th: one day left, not two.
    now = dt.datetime(2026, 7, 10, 23, 30, tzinfo=JAPAN)
    project.closes_at = dt.datetime(2026, 7, 11, 23, 59, 59, tzinfo=JAPAN)
    assert selectors.days_left(project, now=now) == 1
    # 00:30 in Japan is still the previous day in UTC: counted from the Japanese date.
    assert selectors.days_left(project, now=dt.datetime(2026, 7, 11, 0, 30, tzinfo=JAPAN)) == 0
    assert selectors.days_left(project, now=project.closes_at) is None


# --- Staff pages -------------------------------------------------------------------------------


def _create_data(**overrides: Any) -> dict[str, Any]:
    data = {
        "title": "子ども食堂の立ち上げ",
        "description": "地域の子ども食堂を3か所で始めます。",
        "goal_yen": "1,500,000",
        "opens_at": "2026-07-01",
        "closes_at": "2026-08-31",
        "fee_rate_bp": "1500",
    }
    data.update(overrides)
    return data


def test_a_programme_officer_sees_projects_and_proposals_to_list():
    officer = programme_officer()
    project = listed(actor=officer, title="掲載済みの事業")
    waiting = decided(title="まだ掲載されていない提案")
    budgeted = decided(title="予算化された提案", budget=Proposal.BudgetProvision.YES)
    response = signed_in(officer).get(reverse("fund:staff-projects"))
    assert response.status_code == 200
    content = response.content.decode()
    assert project.title in content
    assert waiting.title in content
    assert reverse("fund:project-create", args=[waiting.pk]) in content
    assert budgeted.title not in content
    assert reverse("fund:project-create", args=[project.proposal.pk]) not in content


def test_the_create_form_is_prefilled_from_the_proposal():
    proposal = decided(title="干潟の清掃活動", summary="毎月の清掃と観察会。")
    response = signed_in(programme_officer()).get(
        reverse("fund:project-create", args=[proposal.pk])
    )
    assert response.status_code == 200
    form = response.context["form"]
    assert form["title"].value() == "干潟の清掃活動"
    assert form["description"].value() == "毎月の清掃と観察会。"
    assert form["fee_rate_bp"].value() == 1500


def test_a_programme_officer_lists_a_project():
    officer = programme_officer()
    proposal = decided()
    response = signed_in(officer).post(
        reverse("fund:project-create", args=[proposal.pk]), _create_data()
    )
    project = Project.objects.get(proposal=proposal)
    assert response.status_code == 302
    assert response["Location"] == reverse("fund:staff-project", args=[project.pk])
    assert project.state == State.DRAFT
    assert project.goal_yen == 1_500_000
    assert project.opens_at == dt.datetime(2026, 7, 1, tzinfo=JAPAN)
    assert project.closes_at == dt.datetime(2026, 8, 31, 23, 59, 59, tzinfo=JAPAN)
    assert project.events.get().actor == officer


@pytest.mark.parametrize(
    ("make", "data", "field"),
    [
        (lambda: decided(budget=Proposal.BudgetProvision.YES), {}, None),
        (lambda: decided(Proposal.Decision.NOT_ADOPTED), {}, None),
        (lambda: decided(), {"goal_yen": "0"}, "goal_yen"),
        (lambda: decided(), {"goal_yen": "1500.5"}, "goal_yen"),
        (lambda: decided(), {"closes_at": "2026-06-30"}, "closes_at"),
        (lambda: decided(), {"fee_rate_bp": "10001"}, "fee_rate_bp"),
    ],
    ids=["budgeted", "not-adopted", "zero-goal", "fraction", "window", "fee"],
)
def test_refused_listings_are_form_errors_and_write_nothing(make, data, field):
    proposal = make()
    response = signed_in(programme_officer()).post(
        reverse("fund:project-create", args=[proposal.pk]), _create_data(**data)
    )
    assert response.status_code == 200
    form = response.context["form"]
    assert form.errors
    if field:
        assert field in form.errors
    else:
        assert form.non_field_errors()
    assert not Project.objects.exists()
    assert not ProjectEvent.objects.exists()


def test_listing_an_already_listed_proposal_is_a_form_error():
    officer = programme_officer()
    project = listed(actor=officer)
    response = signed_in(officer).post(
        reverse("fund:project-create", args=[project.proposal.pk]), _create_data()
    )
    assert response.status_code == 200
    assert response.context["form"].non_field_errors()
    assert Project.objects.count() == 1


def _finance() -> User:
    return FoundationRoleFactory(role=FoundationRole.Role.FINANCE).user


def _approver() -> User:
    return FoundationRoleFactory(role=FoundationRole.Role.APPROVER).user


OUTSIDERS = {
    "finance": _finance,
    "approver": _approver,
    "cso": lambda: MembershipFactory().user,
    "citizen": lambda: UserFactory(),
}


@pytest.mark.parametrize("who", list(OUTSIDERS))
def test_others_cannot_list_a_project(who):
    proposal = decided()
    client = signed_in(OUTSIDERS[who]())
    url = reverse("fund:project-create", args=[proposal.pk])
    assert client.get(url).status_code in (403, 404)
    assert client.post(url, _create_data()).status_code in (403, 404)
    assert not Project.objects.exists()
    assert not ProjectEvent.objects.exists()


def test_anonymous_visitors_are_sent_to_sign_in():
    proposal = decided()
    response = Client().post(reverse("fund:project-create", args=[proposal.pk]), _create_data())
    assert response.status_code == 302
    assert reverse("account_login") in response["Location"]
    assert not Project.objects.exists()


@pytest.mark.parametrize("who", ["cso", "citizen"])
def test_the_staff_area_is_closed_to_non_foundation_users(who):
    client = signed_in(OUTSIDERS[who]())
    assert client.get(reverse("fund:staff-projects")).status_code == 403


@pytest.mark.parametrize("who", ["finance", "approver"])
def test_other_foundation_staff_see_the_staff_pages_without_actions(who):
    project = listed()
    waiting = decided()
    client = signed_in(OUTSIDERS[who]())
    response = client.get(reverse("fund:staff-projects"))
    assert response.status_code == 200
    assert reverse("fund:project-create", args=[waiting.pk]) not in response.content.decode()
    detail = client.get(reverse("fund:staff-project", args=[project.pk]))
    assert detail.status_code == 200
    assert detail.context["transition_forms"] == []
    assert detail.context["edit_form"] is None
    open_url = reverse("fund:project-transition", args=[project.pk, "open"])
    assert client.post(open_url).status_code == 403
    edit_url = reverse("fund:project-edit", args=[project.pk])
    assert client.post(edit_url, _create_data(title="変更")).status_code == 403
    project.refresh_from_db()
    assert (project.state, project.title) == (State.DRAFT, "子ども食堂の立ち上げ")
    assert ProjectEvent.objects.count() == 1


def test_the_staff_page_shows_history_and_the_allowed_transitions():
    officer = programme_officer()
    project = moved(listed(actor=officer), "open", actor=officer)
    response = signed_in(officer).get(reverse("fund:staff-project", args=[project.pk]))
    assert response.status_code == 200
    assert [name for name, _form in response.context["transition_forms"]] == ["close", "cancel"]
    content = response.content.decode()
    assert reverse("fund:project-transition", args=[project.pk, "close"]) in content
    assert reverse("fund:project-transition", args=[project.pk, "open"]) not in content
    assert content.count('data-action="') == 2  # create, open
    assert officer.email in content


def test_a_programme_officer_opens_and_closes_a_project():
    officer = programme_officer()
    project = listed(actor=officer)
    client = signed_in(officer)
    response = client.post(
        reverse("fund:project-transition", args=[project.pk, "open"]), {"open-note": "準備完了"}
    )
    assert response.status_code == 302
    project.refresh_from_db()
    assert project.state == State.OPEN
    event = project.events.latest("pk")
    assert (event.action, event.actor, event.note) == ("open", officer, "準備完了")
    client.post(reverse("fund:project-transition", args=[project.pk, "close"]))
    project.refresh_from_db()
    assert project.state == State.CLOSED


def test_a_refused_transition_is_shown_as_an_error_not_a_500():
    officer = programme_officer()
    project = listed(actor=officer)
    response = signed_in(officer).post(
        reverse("fund:project-transition", args=[project.pk, "close"])
    )
    assert response.status_code == 200
    forms = dict(response.context["transition_forms"])
    assert forms["close"].non_field_errors()
    project.refresh_from_db()
    assert project.state == State.DRAFT
    assert ProjectEvent.objects.count() == 1


@pytest.mark.parametrize("action", ["grant", "publish"])
def test_grant_and_unknown_actions_are_not_buttons(action):
    officer = programme_officer()
    project = moved(listed(actor=officer), "open", "close", actor=officer)
    response = signed_in(officer).post(
        reverse("fund:project-transition", args=[project.pk, action])
    )
    assert response.status_code == 404
    project.refresh_from_db()
    assert project.state == State.CLOSED


def test_transitions_are_post_only():
    officer = programme_officer()
    project = listed(actor=officer)
    response = signed_in(officer).get(reverse("fund:project-transition", args=[project.pk, "open"]))
    assert response.status_code == 405


def test_a_programme_officer_edits_a_project():
    officer = programme_officer()
    project = moved(listed(actor=officer), "open", actor=officer)
    response = signed_in(officer).post(
        reverse("fund:project-edit", args=[project.pk]),
        _create_data(title="題を変更", goal_yen="2,000,000", closes_at="2026-09-30"),
    )
    assert response.status_code == 302
    project.refresh_from_db()
    assert (project.title, project.goal_yen) == ("題を変更", 2_000_000)
    assert project.closes_at == dt.datetime(2026, 9, 30, 23, 59, 59, tzinfo=JAPAN)
    assert project.fee_rate_bp == 1500
    assert project.events.latest("pk").action == "edit"


def test_a_bad_edit_is_a_form_error():
    officer = programme_officer()
    project = listed(actor=officer)
    response = signed_in(officer).post(
        reverse("fund:project-edit", args=[project.pk]), _create_data(goal_yen="-1")
    )
    assert response.status_code == 200
    assert "goal_yen" in response.context["edit_form"].errors
    assert ProjectEvent.objects.count() == 1


def test_editing_a_closed_project_is_refused_with_a_message():
    officer = programme_officer()
    project = moved(listed(actor=officer), "open", "close", actor=officer)
    response = signed_in(officer).post(
        reverse("fund:project-edit", args=[project.pk]), _create_data(title="変更"), follow=True
    )
    assert response.status_code == 200
    assert list(response.context["messages"])
    project.refresh_from_db()
    assert project.title == "子ども食堂の立ち上げ"


def test_a_post_without_the_csrf_token_is_refused():
    officer = programme_officer()
    project = listed(actor=officer)
    proposal = decided()
    client = signed_in(officer, enforce_csrf=True)
    assert (
        client.post(reverse("fund:project-transition", args=[project.pk, "open"])).status_code
        == 403
    )
    assert (
        client.post(reverse("fund:project-create", args=[proposal.pk]), _create_data()).status_code
        == 403
    )
    project.refresh_from_db()
    assert project.state == State.DRAFT
    assert Project.objects.count() == 1


def test_a_post_with_the_csrf_token_is_accepted():
    officer = programme_officer()
    project = listed(actor=officer)
    client = signed_in(officer, enforce_csrf=True)
    page = client.get(reverse("fund:staff-project", args=[project.pk]))
    token = str(page.context["csrf_token"])
    response = client.post(
        reverse("fund:project-transition", args=[project.pk, "open"]),
        {"csrfmiddlewaretoken": token},
    )
    assert response.status_code == 302
    project.refresh_from_db()
    assert project.state == State.OPEN


def test_the_admin_shows_projects_and_the_ledger_read_only():
    from tests.factories import SiteAdminFactory

    admin = SiteAdminFactory()
    project = live()
    give(project, 3000, "t-admin")
    client = signed_in(admin)
    for name, args in (
        ("admin:fund_project_changelist", []),
        ("admin:fund_project_change", [project.pk]),
        ("admin:fund_ledgeraccount_changelist", []),
        ("admin:fund_journalentry_changelist", []),
    ):
        assert client.get(reverse(name, args=args)).status_code == 200, name
    assert client.get(reverse("admin:fund_project_add")).status_code == 403
    assert client.get(reverse("admin:fund_journalentry_add")).status_code == 403
