"""Celery tasks of the grants app. Safe to run twice: each reminder is claimed by a unique row."""

from celery import shared_task

from .reminders import send_report_reminders


@shared_task(acks_late=True)
def send_report_reminders_task() -> int:
    """Remind CSOs of reports coming due and overdue (run by beat)."""
    return send_report_reminders()
