"""Reminders to CSOs about reports: before the due date and after it, once per moment.

"Once" is a unique row (report, moment) inserted before the email is queued: the beat job can
run twice, or on two machines, and each reminder is sent once. Only the latest moment reached is
sent — a report found three weeks late gets the late reminder, not every earlier one.
"""

import datetime as dt
import logging

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation

from accounts.models import Membership

from .models import Grant, Report, ReportReminder

log = logging.getLogger(__name__)

# (moment, days before the due date: positive before, negative after), latest first.
MOMENTS = (("after_14", -14), ("after_1", -1), ("before_3", 3), ("before_14", 14))


def moment_for(report: Report, today: dt.date) -> str | None:
    """The latest reminder moment the report has reached on ``today``, if any."""
    days_left = (report.due_on - today).days
    for moment, days in MOMENTS:
        if days_left <= days:
            return moment
    return None


def open_reports():
    return Report.objects.filter(
        state__in=(Report.State.DUE, Report.State.CHANGES_REQUESTED),
        grant__state__in=(Grant.State.APPROVED, Grant.State.PAID),
    ).select_related("grant", "grant__organization")


def send_report_reminders(today: dt.date | None = None) -> int:
    """Queue the reminders due today; returns how many were claimed now."""
    today = today or timezone.localdate()
    sent = 0
    for report in open_reports():
        moment = moment_for(report, today)
        if moment is None:
            continue
        try:
            with transaction.atomic():
                ReportReminder.objects.create(report=report, moment=moment)
                transaction.on_commit(lambda r=report, m=moment: _mail(r, m))
        except IntegrityError:
            continue
        sent += 1
    return sent


def _mail(report: Report, moment: str) -> None:
    recipients = list(
        Membership.objects.filter(organization_id=report.grant.organization_id)
        .values_list("user__email", flat=True)
        .order_by("user__email")
    )
    if not recipients:
        log.warning("report reminder %s for %s: the CSO has no members", moment, report)
        return
    context = {
        "report": report,
        "grant": report.grant,
        "late": moment.startswith("after"),
        "url": f"{settings.SITE_URL}{reverse('grants:cso-report', args=[report.pk])}",
    }
    with translation.override(settings.LANGUAGE_CODE):
        subject = render_to_string("grants/email/report_reminder_subject.txt", context).strip()
        body = render_to_string("grants/email/report_reminder_body.txt", context)
    send_mail(subject, body, None, recipients)
