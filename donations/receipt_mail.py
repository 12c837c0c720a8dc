"""Emailing a receipt to its donor: once, in Japanese, with the PDF attached.

"Once" is a claim: ``emailed_at`` goes from empty to now in one conditional update, so a task
delivered twice (Celery's acks_late redelivers) or run by two workers sends one email. A send
that fails gives the claim back so the task's retry sends it. A worker that dies between the
claim and the send leaves the receipt marked emailed: the donor can still download it from
the donation page, which beats sending a tax document twice.
"""

import logging

from django.conf import settings
from django.core.mail import EmailMessage
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation

from .access import token_for
from .models import Receipt
from .receipt_pdf import render_receipt_pdf
from .receipts import RECEIPT_LANGUAGE

log = logging.getLogger(__name__)


def absolute_url(path: str) -> str:
    """A link for an email (there is no request to build it from): ``settings.SITE_URL``."""
    return f"{settings.SITE_URL}{path}"


def _links(receipt: Receipt) -> dict[str, str]:
    """A single receipt links to its donation with the signed token (no account needed); an
    annual summary spans donations, so it links to the donor's gifts page (sign-in)."""
    if receipt.gift_id is not None:
        donation = receipt.gift.donation
        path = reverse("donations:donation", args=[donation.pk])
        return {"donation_url": absolute_url(f"{path}?t={token_for(donation)}")}
    return {"gifts_url": absolute_url(reverse("donations:my-gifts"))}


def receipt_email(receipt: Receipt) -> EmailMessage:
    """The message for a receipt, in Japanese (the site's language), with its PDF."""
    context = {
        "receipt": receipt,
        "foundation_name": settings.FOUNDATION_NAME,
        "foundation_address": settings.FOUNDATION_ADDRESS,
        **_links(receipt),
    }
    with translation.override(RECEIPT_LANGUAGE):
        subject = render_to_string("donations/email/receipt_subject.txt", context)
        body = render_to_string("donations/email/receipt_body.txt", context)
    message = EmailMessage(
        subject=" ".join(subject.split()),  # one line: a header may not hold a newline
        body=body,
        to=[receipt.email],
    )
    message.attach(
        f"receipt-{receipt.display_number}.pdf", render_receipt_pdf(receipt), "application/pdf"
    )
    return message


def send_receipt_email(receipt_id: int) -> bool:
    """Send a live receipt to its donor once; True if this call sent it.

    Not sent: a receipt already emailed (or being emailed by another worker) and a void one.
    Must run outside a transaction (the task runs after commit) so the claim is seen at once.
    """
    claimed_at = timezone.now()
    claimed = Receipt.objects.filter(
        pk=receipt_id, emailed_at__isnull=True, voided_at__isnull=True
    ).update(emailed_at=claimed_at)
    if not claimed:
        return False
    try:
        receipt = Receipt.objects.select_related("gift__donation").get(pk=receipt_id)
        receipt_email(receipt).send()
    except Exception:
        # Give the claim back (only ours) so the retry sends it.
        Receipt.objects.filter(pk=receipt_id, emailed_at=claimed_at).update(emailed_at=None)
        raise
    return True
