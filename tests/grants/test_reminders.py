"""Report reminders: before and after the due date, each moment mailed once to the CSO's
members, only the latest moment reached, none for reports filed or accepted."""

import datetime as dt

import pytest
from django.utils import timezone

from grants import reminders, services
from grants.models import Report, ReportReminder
from grants.tasks import send_report_reminders_task
from tests.factories import MembershipFactory, approved_grant, funded_project, grant_staff

pytestmark = pytest.mark.django_db


@pytest.fixture
def final_report():
    grant = approved_grant(funded_project(), grant_staff())
    MembershipFactory(organization=grant.organization, user__email="kaori@npo.example.jp")
    return grant.reports.get(kind=Report.Kind.FINAL)


def run(day, capture):
    with capture(execute=True):
        return reminders.send_report_reminders(day)


@pytest.mark.parametrize(
    "days_before_due, moment",
    [
        (30, None),
        (14, "before_14"),
        (4, "before_14"),
        (3, "before_3"),
        (0, "before_3"),
        (-1, "after_1"),
        (-13, "after_1"),
        (-14, "after_14"),
        (-100, "after_14"),
    ],
)
def test_the_moment_reached(final_report, days_before_due, moment):
    today = final_report.due_on - dt.timedelta(days=days_before_due)
    assert reminders.moment_for(final_report, today) == moment


def test_each_moment_is_mailed_once_to_the_members(
    final_report, mailoutbox, django_capture_on_commit_callbacks
):
    due = final_report.due_on
    assert run(due - dt.timedelta(days=10), django_capture_on_commit_callbacks) == 1
    assert run(due - dt.timedelta(days=9), django_capture_on_commit_callbacks) == 0
    assert len(mailoutbox) == 1
    assert mailoutbox[0].to == ["kaori@npo.example.jp"]
    assert final_report.grant.reference in mailoutbox[0].subject
    assert f"/grants/cso/reports/{final_report.pk}/" in mailoutbox[0].body
    assert run(due + dt.timedelta(days=2), django_capture_on_commit_callbacks) == 1
    assert len(mailoutbox) == 2
    assert set(ReportReminder.objects.values_list("moment", flat=True)) == {"before_14", "after_1"}


def test_a_filed_report_gets_no_reminder(
    final_report, mailoutbox, django_capture_on_commit_callbacks
):
    member = final_report.grant.organization.memberships.first().user
    services.report_submit(
        report=final_report, actor=member, narrative="実施", outcomes="成果", spent_yen=1
    )
    assert run(final_report.due_on + dt.timedelta(days=30), django_capture_on_commit_callbacks) == 0
    assert mailoutbox == []


def test_the_beat_task_runs_the_same_code(
    final_report, mailoutbox, django_capture_on_commit_callbacks
):
    # Due today → "before_3"; the task uses today's date in Japan.
    Report.objects.filter(pk=final_report.pk).update(due_on=timezone.localdate())
    with django_capture_on_commit_callbacks(execute=True):
        assert send_report_reminders_task.apply().get() == 1
    assert len(mailoutbox) == 1


def test_the_beat_task_does_not_overlap_itself(final_report, mailoutbox, settings):
    from config.celery import _lock

    Report.objects.filter(pk=final_report.pk).update(due_on=timezone.localdate())
    held = _lock("civicfund:one-at-a-time:grant-report-reminders", 60)
    assert held.acquire(blocking=False)  # another run of the job is going on
    try:
        assert send_report_reminders_task.apply().get() is None
    finally:
        held.release()
    assert not ReportReminder.objects.exists()
