"""Celery tasks of the gift pipeline. Each is safe to run twice: the work is keyed by ids."""

import datetime as dt
import logging

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from config.celery import one_at_a_time

from . import services

log = logging.getLogger(__name__)


@shared_task(acks_late=True)
def drain_events_task() -> int:
    """Process the stored provider events that are due (``services.drain_events``). Woken by
    new events and run periodically; a failed event waits for its retry time, not the task."""
    return services.drain_events()


@shared_task(bind=True, acks_late=True, autoretry_for=(Exception,), retry_backoff=5, max_retries=8)
def issue_receipt_task(self, gift_id: int) -> int | None:
    """Issue a gift's receipt (once) and queue its email after commit."""
    from .models import Gift
    from .receipts import ReceiptError, issue_receipt

    gift = Gift.objects.filter(pk=gift_id).first()
    if gift is None:
        return None
    with transaction.atomic():
        try:
            receipt, created = issue_receipt(gift)
        except ReceiptError as error:
            log.info("gift %s: no receipt (%s)", gift_id, error)
            return None
        if created:
            transaction.on_commit(lambda: email_receipt_task.delay(receipt.pk), robust=True)
    return receipt.pk


@shared_task(bind=True, acks_late=True, autoretry_for=(Exception,), retry_backoff=5, max_retries=8)
def email_receipt_task(self, receipt_id: int) -> bool:
    """Email the receipt's PDF to the donor, once (``emailed_at`` is claimed conditionally)."""
    from .receipt_mail import send_receipt_email

    return send_receipt_email(receipt_id)


@shared_task(acks_late=True)
@one_at_a_time("redrive-receipts", timeout=600)
def redrive_receipts_task() -> tuple[int, int] | None:
    """Queue again what a lost or exhausted task left undone: receipts not issued, receipts
    not emailed. Both steps are safe to repeat (one live receipt per gift; the email claim)."""
    from .receipts import gifts_missing_a_receipt, receipts_not_emailed

    # Give a task its own chance (and its retries) before the re-drive steps in.
    grace = dt.timedelta(seconds=settings.RECEIPT_REDRIVE_GRACE_SECONDS)
    cutoff = timezone.now() - grace
    gifts = list(
        gifts_missing_a_receipt().filter(created_at__lt=cutoff).values_list("pk", flat=True)
    )
    receipts = list(receipts_not_emailed(older_than=grace).values_list("pk", flat=True))
    for gift_id in gifts:
        issue_receipt_task.delay(gift_id)
    for receipt_id in receipts:
        email_receipt_task.delay(receipt_id)
    return len(gifts), len(receipts)


@shared_task(acks_late=True)
@one_at_a_time("reconcile-stripe", timeout=1800)
def reconcile_stripe_task() -> str | None:
    """The daily reconciliation with Stripe (``reconciliation.reconcile``); safe to run twice:
    a second run of the same date replaces that date's open differences."""
    from .reconciliation import reconcile

    run = reconcile()
    return run.outcome
