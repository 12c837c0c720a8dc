"""Celery tasks of the grants app. Safe to run twice: each reminder is claimed by a unique row."""

from celery import shared_task

from config.celery import one_at_a_time

from .reminders import send_report_reminders


@shared_task(acks_late=True)
@one_at_a_time("grant-report-reminders", timeout=1800)
def send_report_reminders_task() -> int | None:
    """Remind CSOs of reports coming due and overdue (run by beat)."""
    return send_report_reminders()
