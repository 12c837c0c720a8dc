"""Tax receipts (寄附金受領証明書, DOMAIN.md §3): numbering, issuing, voiding.

Numbers run per calendar year (the tax year, January–December, by the date the money was
received in Japan time) with no gaps and no duplicates: a number is taken by incrementing the
year's ``ReceiptCounter`` row under a lock in the same transaction that writes the receipt, so a
rolled-back receipt gives its number back and two issuers wait for each other.
The PDF is drawn by ``donations.receipt_pdf``; the email is sent by ``tasks.email_receipt_task``.
"""

import datetime as dt

from django.db import IntegrityError, transaction
from django.db.models import Exists, F, OuterRef
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from proposals.fiscal import JAPAN

from .models import Gift, Receipt, ReceiptCounter, Refund

# Receipts are Japanese tax documents: the texts they keep (the purpose) are stored in Japanese
# whatever language the page that asked for them was in.
RECEIPT_LANGUAGE = "ja"


class ReceiptError(Exception):
    """A receipt that cannot be issued (nothing to certify, no name or address)."""


def next_receipt_number(year: int) -> int:
    """Take the year's next number. Must run inside the transaction that uses it."""
    ReceiptCounter.objects.get_or_create(year=year)  # the row exists before anyone locks it
    counter = ReceiptCounter.objects.select_for_update().get(year=year)
    counter.last_number = F("last_number") + 1
    counter.save(update_fields=["last_number"])
    counter.refresh_from_db(fields=["last_number"])
    return counter.last_number


def _received_on(gift: Gift) -> dt.date:
    return gift.received_at.astimezone(JAPAN).date()


def purpose_of(gift: Gift) -> str:
    if gift.project_id is None:
        return _("Civic Fund general fund (undesignated)")
    return _("Designated donation: %(project)s") % {"project": gift.project.title}


def _check_particulars(donation) -> None:
    if not (donation.name.strip() and donation.address.strip()):
        raise ReceiptError(_("A receipt needs the donor's name and address."))


@transaction.atomic
def issue_receipt(gift: Gift) -> tuple[Receipt, bool]:
    """The receipt for one gift, once; returns (receipt, created).

    A gift already (partly) refunded is receipted for what is left; a fully refunded gift has
    nothing to certify. The gift row is locked first: a refund updates it (and voids its
    receipts) in its own transaction, so the two run one after the other and a receipt is never
    issued for an amount a refund committed meanwhile has changed.
    """
    Gift.objects.select_for_update().filter(pk=gift.pk).values_list("pk").get()
    gift = Gift.objects.select_related("donation", "project").get(pk=gift.pk)
    existing = Receipt.objects.filter(gift=gift, voided_at__isnull=True).first()
    if existing is not None:
        return existing, False
    if gift.net_amount < 1:
        raise ReceiptError(_("A refunded gift has no receipt."))
    donation = gift.donation
    _check_particulars(donation)
    received_on = _received_on(gift)
    with translation.override(RECEIPT_LANGUAGE):
        purpose = purpose_of(gift)
    try:
        with transaction.atomic():
            receipt = Receipt.objects.create(
                year=received_on.year,
                number=next_receipt_number(received_on.year),
                kind=Receipt.Kind.SINGLE,
                gift=gift,
                donor_id=donation.donor_id,
                email=donation.email,
                donor_name=donation.name,
                donor_postal_code=donation.postal_code,
                donor_address=donation.address,
                amount=gift.net_amount,
                received_on=received_on,
                purpose=purpose,
            )
    except IntegrityError:
        # Issued at the same moment by another worker: its transaction took the number and
        # ours (rolled back to the savepoint) gave it back.
        return Receipt.objects.get(gift=gift, voided_at__isnull=True), False
    return receipt, True


def gifts_for_annual_receipt(email: str, year: int):
    """A donor's gifts received in calendar ``year`` (Japan time), not fully refunded."""
    start = dt.datetime(year, 1, 1, tzinfo=JAPAN)
    end = dt.datetime(year + 1, 1, 1, tzinfo=JAPAN)
    return (
        Gift.objects.filter(
            donation__email__iexact=email, received_at__gte=start, received_at__lt=end
        )
        .exclude(state=Gift.State.REFUNDED)
        .select_related("donation", "project")
        .order_by("received_at", "pk")
    )


def annual_purpose(year: int) -> str:
    with translation.override(RECEIPT_LANGUAGE):
        return _("Donations to the Civic Fund in %(year)s") % {"year": year}


@transaction.atomic
def issue_annual_receipt(*, email: str, year: int) -> Receipt:
    """The donor's annual summary for a calendar year: one live summary per email and year;
    issuing again voids the old one (gifts or refunds may have changed) and numbers a new one."""
    # Locked (in date order, the same order for every issuer) so that a refund of one of them
    # waits for this summary and then voids it, rather than slipping in between.
    gifts = list(gifts_for_annual_receipt(email, year).select_for_update(of=("self",)))
    if not gifts:
        raise ReceiptError(_("No gifts received in %(year)s.") % {"year": year})
    latest = gifts[-1].donation
    _check_particulars(latest)
    total = sum(gift.net_amount for gift in gifts)
    live = (
        Receipt.objects.select_for_update()
        .filter(kind=Receipt.Kind.ANNUAL, email__iexact=email, year=year, voided_at__isnull=True)
        .first()
    )
    if live is not None:
        if live.amount == total and set(live.gifts.values_list("pk", flat=True)) == {
            g.pk for g in gifts
        }:
            return live
        with translation.override(RECEIPT_LANGUAGE):
            reason = _("Replaced by a new annual summary.")
        _void(live, reason=reason)
    receipt = Receipt.objects.create(
        year=year,
        number=next_receipt_number(year),
        kind=Receipt.Kind.ANNUAL,
        donor_id=latest.donor_id,
        email=latest.email,
        donor_name=latest.name,
        donor_postal_code=latest.postal_code,
        donor_address=latest.address,
        amount=total,
        purpose=annual_purpose(year),
    )
    receipt.gifts.set(gifts)
    return receipt


def _void(receipt: Receipt, *, reason: str) -> None:
    Receipt.objects.filter(pk=receipt.pk, voided_at__isnull=True).update(
        voided_at=timezone.now(), void_reason=reason[:200]
    )


def void_receipts_for_refund(gift: Gift, *, refund: Refund) -> None:
    """A refunded gift's receipt is void (a partial refund too: the amount it certifies is no
    longer right; a new one for what is left follows), and so is any annual summary that
    counted it. The reason is printed on the (Japanese) receipt, whoever made the refund."""
    with translation.override(RECEIPT_LANGUAGE):
        reason = str(refund.get_reason_display())
    now = timezone.now()
    Receipt.objects.filter(gift=gift, voided_at__isnull=True).update(
        voided_at=now, void_reason=reason[:200]
    )
    Receipt.objects.filter(gifts=gift, voided_at__isnull=True).update(
        voided_at=now, void_reason=reason[:200]
    )


def gifts_missing_a_receipt():
    """Gifts whose donor wants a receipt, with money left to certify, and no live receipt —
    their receipt task never ran or gave up (the re-drive finds them)."""
    live_receipt = Receipt.objects.filter(
        gift=OuterRef("pk"), kind=Receipt.Kind.SINGLE, voided_at__isnull=True
    )
    return (
        Gift.objects.filter(donation__wants_receipt=True, refunded_amount__lt=F("amount"))
        .exclude(Exists(live_receipt))
        .exclude(donation__name="")
        .exclude(donation__address="")
    )


def receipts_not_emailed(*, older_than: dt.timedelta):
    """Live receipts issued more than ``older_than`` ago and never emailed."""
    return Receipt.objects.filter(
        emailed_at__isnull=True,
        voided_at__isnull=True,
        issued_at__lt=timezone.now() - older_than,
    )
