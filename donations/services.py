"""Every change to donations, gifts and refunds goes through here, with a history row.

The flow of a gift (README, Architecture):

1. ``donation_start`` checks the amount, the project and the card-testing limits, writes a
   pending ``Donation`` and asks the provider for a checkout (``providers``).
2. The provider tells us what happened by events: Stripe's webhook (``views.stripe_webhook``)
   or the demo checkout page (``providers.demo_act``) call ``store_event``, which stores the
   event under its unique id; a Celery task then runs ``process_event``.
3. ``process_event`` fetches the object's current state from the provider and applies it:
   ``confirm_checkout`` (shared with the return page), ``record_invoice``, refunds, disputes,
   subscription changes. Everything it writes is keyed by the provider's ids (unique
   constraints and the ledger's entry keys), so a repeated or concurrent run changes nothing.
4. ``_record_gift`` writes the ``Gift`` and its ledger entry in one transaction and, after
   commit, queues the receipt.

Who may: ``accounts.policy`` — ``gift.refund`` (finance staff), ``donation.view_any``
(foundation staff); a donor manages their own monthly gift.
"""

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from accounts.policy import may
from fund.ledger import EntryKind, Line, account_code, balance, post_entry
from fund.matching import match_gift, release_due, release_matches
from fund.models import LedgerAccount, Project
from fund.services import close_if_goal_reached

from .models import (
    MAX_AMOUNT_YEN,
    MIN_AMOUNT_YEN,
    Donation,
    DonationEvent,
    Gift,
    Refund,
    WebhookEvent,
)
from .payouts import record_payout
from .providers import (
    CheckoutState,
    Payment,
    ProviderError,
    configured_provider_name,
    get_provider,
)

log = logging.getLogger(__name__)

Status = Donation.Status
GENERAL_FUND = account_code(LedgerAccount.Kind.GENERAL_FUND)
STRIPE_RECEIVABLE = account_code(LedgerAccount.Kind.STRIPE_RECEIVABLE)


# --- History -----------------------------------------------------------------------------------


def _record(
    donation: Donation,
    *,
    action: str,
    from_status: str = "",
    actor: User | None = None,
    source: str = "",
    note: str = "",
) -> DonationEvent:
    return DonationEvent.objects.create(
        donation=donation,
        action=action,
        from_status=from_status,
        to_status=donation.status,
        actor=actor,
        source=source,
        note=note,
    )


def _set_status(donation: Donation, status: str, *, action: str, source: str, **kw: Any) -> None:
    """Change a (locked) donation's status and write the history row; no-op if unchanged."""
    if donation.status == status:
        return
    from_status = donation.status
    donation.status = status
    donation.save(update_fields=["status", "updated_at"])
    _record(donation, action=action, from_status=from_status, source=source, **kw)


# --- Starting a gift ---------------------------------------------------------------------------


class NotYetRecorded(Exception):
    """An event about a payment or subscription we have not recorded yet (events arrive out of
    order). Raised so the event stays unprocessed: its task retries, and the re-drive after."""


class TooManyAttempts(Exception):
    """A card-testing limit was hit; the message says when to try again."""


@dataclass(frozen=True)
class DonorDetails:
    email: str
    name: str
    postal_code: str = ""
    address: str = ""
    display_name: str = ""
    publish_name: bool = False
    message: str = ""
    share_contact: bool = False
    wants_receipt: bool = True


def validate_amount(amount: Any) -> int:
    """A gift is a whole number of yen from ¥100 to ¥10,000,000; raises ValidationError."""
    if not isinstance(amount, int) or isinstance(amount, bool):
        raise ValidationError({"amount": _("Give the amount as a whole number of yen.")})
    if not MIN_AMOUNT_YEN <= amount <= MAX_AMOUNT_YEN:
        raise ValidationError(
            {
                "amount": _("A gift is from ¥%(min)s to ¥%(max)s.")
                % {"min": f"{MIN_AMOUNT_YEN:,}", "max": f"{MAX_AMOUNT_YEN:,}"}
            }
        )
    return amount


def check_project_accepts_gifts(project: Project | None) -> None:
    """None is the general fund, always open. A project takes gifts while open and in window."""
    if project is None:
        return
    now = timezone.now()
    if project.state != Project.State.OPEN or not project.opens_at <= now < project.closes_at:
        raise ValidationError(_("This project is not taking gifts now."))


def _hit(key: str, limit: int, window: int) -> bool:
    """Count one attempt under ``key``; True if the limit for the window is passed."""
    cache.add(key, 0, timeout=window)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=window)
        count = 1
    return count > limit


def check_checkout_limits(*, ip: str, email: str, session_key: str) -> None:
    """Card-testing defence: checkouts per IP, per email or browser session, and in total,
    each per ``CHECKOUT_RATE_WINDOW`` seconds (settings; sensible defaults)."""
    window = settings.CHECKOUT_RATE_WINDOW
    slot = int(timezone.now().timestamp()) // window
    checks = [
        (f"checkout:ip:{ip}:{slot}", settings.CHECKOUT_LIMIT_PER_IP),
        (f"checkout:email:{email.lower()}:{slot}", settings.CHECKOUT_LIMIT_PER_DONOR),
        (f"checkout:all:{slot}", settings.CHECKOUT_LIMIT_TOTAL),
    ]
    if session_key:
        checks.append((f"checkout:session:{session_key}:{slot}", settings.CHECKOUT_LIMIT_PER_DONOR))
    for key, limit in checks:
        if _hit(key, limit, window):
            raise TooManyAttempts(
                _(
                    "Too many attempts to give in a short time. Please wait %(minutes)s minutes "
                    "and try again."
                )
                % {"minutes": max(window // 60, 1)}
            )


def donation_start(
    *,
    project: Project | None,
    amount: Any,
    frequency: str,
    donor: DonorDetails,
    user: User | None,
    success_url: str,
    cancel_url: str,
    ip: str = "",
    session_key: str = "",
    rate_limited: bool = True,
) -> Donation:
    """Write a pending donation and open a checkout for it at the provider.

    ``success_url`` may hold ``{donation_id}``. Raises ``ValidationError`` (bad amount, project
    not open…), ``TooManyAttempts`` or ``ProviderError``; on a refusal nothing is written.
    ``rate_limited=False`` is for the demo loader only (its gifts come from no browser).
    """
    amount = validate_amount(amount)
    if frequency not in Donation.Frequency.values:
        raise ValidationError({"frequency": _("Choose one-time or monthly.")})
    check_project_accepts_gifts(project)
    if donor.wants_receipt and not (donor.name.strip() and donor.address.strip()):
        raise ValidationError(_("A tax receipt needs your name and address."))
    if rate_limited:
        check_checkout_limits(ip=ip, email=donor.email, session_key=session_key)
    with transaction.atomic():
        donation = Donation.objects.create(
            project=project,
            amount=amount,
            frequency=frequency,
            provider=configured_provider_name(),
            donor=user if user is not None and user.is_authenticated else None,
            email=donor.email.strip(),
            name=donor.name.strip(),
            postal_code=donor.postal_code.strip(),
            address=donor.address.strip(),
            display_name=donor.display_name.strip() if donor.publish_name else "",
            publish_name=donor.publish_name,
            message=donor.message.strip(),
            share_contact=donor.share_contact,
            wants_receipt=donor.wants_receipt,
        )
        _record(donation, action="start", source="checkout")
    provider = get_provider(donation.provider)
    try:
        session_id, url = provider.create_checkout(
            donation,
            success_url=success_url.replace("{donation_id}", str(donation.id)),
            cancel_url=cancel_url.replace("{donation_id}", str(donation.id)),
        )
    except ProviderError:
        with transaction.atomic():
            _set_status(donation, Status.FAILED, action="checkout_failed", source="provider")
        raise
    Donation.objects.filter(pk=donation.pk).update(checkout_session_id=session_id, checkout_url=url)
    donation.checkout_session_id, donation.checkout_url = session_id, url
    return donation


# --- Recording money ---------------------------------------------------------------------------


def _fund_account(project_id: int | None) -> str:
    if project_id is None:
        return GENERAL_FUND
    return account_code(LedgerAccount.Kind.DESIGNATED, project_id)


def _record_gift(donation: Donation, payment: Payment, *, source: str) -> tuple[Gift, bool]:
    """The gift for one payment, its ledger entry and its match, once; returns (gift, created).

    Runs inside the caller's transaction with the donation locked. The unique ``payment_id``
    lets one insert through; a concurrent or repeated call finds the existing gift. The match
    comes last: it locks the pools, and every other gift to them waits until this transaction
    commits, so nothing that can be written before it is written after it.
    """
    try:
        with transaction.atomic():
            gift = Gift.objects.create(
                donation=donation,
                project_id=donation.project_id,
                payment_id=payment.payment_id,
                payment_intent_id=payment.payment_intent_id,
                amount=payment.amount,
                received_at=payment.received_at,
            )
    except IntegrityError:
        return Gift.objects.get(payment_id=payment.payment_id), False
    post_entry(
        kind=EntryKind.GIFT_SUCCEEDED,
        key=gift_entry_key(gift),
        lines=[
            Line(STRIPE_RECEIVABLE, debit=gift.amount),
            Line(_fund_account(gift.project_id), credit=gift.amount),
        ],
        memo=f"donation {donation.id}",
    )
    _record(donation, action="gift_received", source=source, note=f"¥{gift.amount:,}")
    # After commit, and robust: neither may undo the gift. A receipt that failed to queue is
    # found again by the receipts' re-drive (gifts without one).
    if donation.project is not None and donation.project.close_at_goal:
        transaction.on_commit(
            lambda: close_if_goal_reached(gift.project_id, source=f"gift:{gift.payment_id}"),
            robust=True,
        )
    if donation.wants_receipt:
        from .tasks import issue_receipt_task

        transaction.on_commit(lambda: issue_receipt_task.delay(gift.pk), robust=True)
    if donation.project is not None:
        match_gift(
            gift_key=gift.payment_id,
            project=donation.project,
            amount=gift.amount,
            received_at=gift.received_at,
            donor_user_id=donation.donor_id,
            donor_email=donation.email,
        )
    return gift, True


def gift_entry_key(gift: Gift) -> str:
    return f"gift:{gift.payment_id}"


def refund_entry_key(refund: Refund) -> str:
    return f"refund:{refund.provider_refund_id}"


def _lock_donation(*, donation_id: str | None = None, **lookup: Any) -> Donation | None:
    # The project comes along (is it set to close at its goal?) but only the donation's row is
    # locked: gifts to one project must not wait for each other.
    query = Donation.objects.select_related("project").select_for_update(of=("self",))
    try:
        if donation_id:
            return query.get(pk=donation_id)
        return query.get(**lookup)
    except (Donation.DoesNotExist, ValidationError, ValueError):
        return None


def confirm_checkout(
    session_id: str, *, source: str, provider: str | None = None
) -> Donation | None:
    """Bring a donation up to date with its checkout session: the one confirm step.

    Called by the webhook pipeline (which knows the ``provider``) and by the return page; safe
    to run twice at once (the donation row is locked, the gift and its entry are unique by
    payment id).
    """
    if provider is None:
        provider = (
            Donation.objects.filter(checkout_session_id=session_id)
            .values_list("provider", flat=True)
            .first()
        )
    state = get_provider(provider).checkout_state(session_id)
    return apply_checkout_state(state, source=source)


# No savepoint of its own: inside the event's transaction a failure rolls back to the event's
# savepoint anyway; called alone (the return page) it is the transaction.
@transaction.atomic(savepoint=False)
def apply_checkout_state(state: CheckoutState, *, source: str) -> Donation | None:
    donation = _lock_donation(donation_id=state.donation_id) or _lock_donation(
        checkout_session_id=state.session_id
    )
    if donation is None:
        log.warning("checkout %s: no donation for it", state.session_id)
        return None
    if state.status == "expired":
        if donation.status == Status.PENDING:
            _set_status(donation, Status.EXPIRED, action="expired", source=source)
        return donation
    if state.status != "complete":
        return donation
    if donation.frequency == Donation.Frequency.MONTHLY:
        if state.subscription_id and not donation.subscription_id:
            donation.subscription_id = state.subscription_id
            donation.save(update_fields=["subscription_id", "updated_at"])
        if state.payment is not None:
            _record_gift(donation, state.payment, source=source)
        if donation.status in (Status.PENDING, Status.FAILED, Status.EXPIRED):
            _set_status(donation, Status.ACTIVE, action="subscribed", source=source)
        return donation
    if state.payment_status == "paid" and state.payment is not None:
        _record_gift(donation, state.payment, source=source)
        _set_status(donation, Status.SUCCEEDED, action="paid", source=source)
    elif state.payment_status == "unpaid" and donation.status == Status.PENDING:
        _set_status(donation, Status.AWAITING_PAYMENT, action="voucher_issued", source=source)
    elif state.payment_status == "failed" and donation.status in (
        Status.PENDING,
        Status.AWAITING_PAYMENT,
    ):
        _set_status(donation, Status.FAILED, action="payment_failed", source=source)
    return donation


def record_invoice(invoice_id: str, *, provider: str, source: str) -> Gift | None:
    """A paid invoice of a monthly gift is one gift (``invoice.paid``)."""
    state = get_provider(provider).invoice_state(invoice_id)
    if not state.paid or state.payment is None:
        return None
    with transaction.atomic():
        donation = _lock_donation(donation_id=state.donation_id) or _lock_donation(
            subscription_id=state.subscription_id
        )
        if donation is None:
            log.warning("invoice %s: no donation for it", invoice_id)
            return None
        if state.subscription_id and not donation.subscription_id:
            donation.subscription_id = state.subscription_id
            donation.save(update_fields=["subscription_id", "updated_at"])
        gift, _created = _record_gift(donation, state.payment, source=source)
        if donation.status in (Status.PENDING, Status.PAST_DUE):
            _set_status(donation, Status.ACTIVE, action="instalment_paid", source=source)
        return gift


# Stripe's subscription statuses, as the donation's.
SUBSCRIPTION_STATUSES = {
    "active": Status.ACTIVE,
    "trialing": Status.ACTIVE,
    "past_due": Status.PAST_DUE,
    "unpaid": Status.PAST_DUE,
    "canceled": Status.CANCELLED,
    "incomplete_expired": Status.CANCELLED,
}


def sync_subscription(
    subscription_id: str, *, provider: str, source: str, actor: User | None = None
) -> Donation | None:
    """Set a monthly donation's status from its subscription as the provider has it now."""
    status = SUBSCRIPTION_STATUSES.get(get_provider(provider).subscription_status(subscription_id))
    with transaction.atomic():
        donation = _lock_donation(subscription_id=subscription_id)
        if donation is None:
            raise NotYetRecorded(f"subscription {subscription_id}: no donation recorded yet")
        if status is None:
            return donation
        if donation.status == Status.CANCELLED:
            return donation  # an ended subscription does not come back
        _set_status(donation, status, action=f"subscription_{status}", source=source, actor=actor)
        return donation


def note_failed_instalment(invoice_id: str, *, provider: str, source: str) -> Donation | None:
    """``invoice.payment_failed``: the history says so; the status follows the subscription."""
    state = get_provider(provider).invoice_state(invoice_id)
    with transaction.atomic():
        donation = _lock_donation(donation_id=state.donation_id) or _lock_donation(
            subscription_id=state.subscription_id
        )
        if donation is None:
            raise NotYetRecorded(f"invoice {invoice_id}: no donation recorded yet")
        _record(donation, action="instalment_failed", source=source, note=invoice_id)
    if state.subscription_id:
        sync_subscription(state.subscription_id, provider=provider, source=source)
    return donation


def _record_refund(
    gift: Gift,
    *,
    provider_refund_id: str,
    amount: int,
    reason: str,
    source: str,
    actor: User | None = None,
) -> tuple[Refund | None, bool]:
    """Money given back, once per provider refund id: the refund row, the gift's refunded
    total (a conditional update: never above the gift), the reversing entry, the void receipt.
    Runs inside the caller's transaction."""
    if Refund.objects.filter(provider_refund_id=provider_refund_id).exists():
        # Only an optimisation: the unique constraint below is what makes it once.
        return Refund.objects.get(provider_refund_id=provider_refund_id), False
    try:
        with transaction.atomic():
            refund = Refund.objects.create(
                gift=gift,
                provider_refund_id=provider_refund_id,
                amount=amount,
                reason=reason,
                created_by=actor,
            )
            updated = Gift.objects.filter(
                pk=gift.pk, refunded_amount__lte=gift.amount - amount
            ).update(refunded_amount=F("refunded_amount") + amount)
            if not updated:
                raise ValidationError(_("The refund is more than what is left of the gift."))
    except IntegrityError:
        return Refund.objects.get(provider_refund_id=provider_refund_id), False
    gift.refresh_from_db(fields=["refunded_amount"])
    fully = gift.refunded_amount >= gift.amount
    gift.state = Gift.State.REFUNDED if fully else Gift.State.PARTIALLY_REFUNDED
    gift.save(update_fields=["state"])
    post_entry(
        kind=EntryKind.GIFT_REFUNDED,
        key=refund_entry_key(refund),
        lines=[
            Line(_fund_account(gift.project_id), debit=amount),
            Line(STRIPE_RECEIVABLE, credit=amount),
        ],
        memo=f"gift {gift.payment_id}",
        actor=actor,
    )
    release_matches(
        gift_key=gift.payment_id,
        gift_amount=gift.amount,
        refunded_total=gift.refunded_amount,
        refund_key=refund.provider_refund_id,
    )
    _record(
        gift.donation,
        action="refunded",
        source=source,
        actor=actor,
        note=f"¥{amount:,} ({refund.get_reason_display()})",
    )
    from .receipts import void_receipts_for_refund

    void_receipts_for_refund(gift, refund=refund)
    if not fully and gift.donation.wants_receipt:
        from .tasks import issue_receipt_task

        transaction.on_commit(lambda: issue_receipt_task.delay(gift.pk), robust=True)
    return refund, True


def refund_gift(*, gift: Gift, amount: Any, actor: User, reason: str = "requested") -> Refund:
    """Staff refund (full or partial) through the provider, then recorded like a webhook's.

    The idempotency key is the gift and what was refunded before: a double-submitted form asks
    the provider for the same refund, and the refund id makes our record once.
    """
    if not may(actor, "gift.refund", gift):
        raise PermissionDenied(_("Only finance staff may refund gifts."))
    if not isinstance(amount, int) or isinstance(amount, bool) or amount < 1:
        raise ValidationError({"amount": _("Give the refund as a whole number of yen.")})
    if reason not in Refund.Reason.values:
        raise ValidationError({"reason": _("Choose a reason.")})
    gift = Gift.objects.select_related("donation").get(pk=gift.pk)
    if amount > gift.net_amount:
        raise ValidationError(
            {
                "amount": _("At most ¥%(left)s of this gift can be refunded.")
                % {"left": f"{gift.net_amount:,}"}
            }
        )
    if not gift.payment_intent_id:
        raise ValidationError(_("This gift has no payment to refund at the provider."))
    # Check the fund can give it back, with the match it releases, before asking the provider
    # to move money.
    releases = release_due(
        gift_key=gift.payment_id,
        gift_amount=gift.amount,
        refunded_total=gift.refunded_amount + amount,
    )
    if balance(_fund_account(gift.project_id)) < amount + releases:
        raise ValidationError(
            _("The fund no longer holds enough of this gift to refund it (it was granted).")
        )
    result = get_provider(gift.donation.provider).refund(
        payment_intent_id=gift.payment_intent_id,
        amount=amount,
        idempotency_key=f"refund:{gift.pk}:{gift.refunded_amount}:{amount}",
    )
    if result.status in ("failed", "canceled"):
        raise ProviderError(_("The payment provider refused the refund."))
    with transaction.atomic():
        Donation.objects.select_for_update().get(pk=gift.donation_id)
        refund, _created = _record_refund(
            gift,
            provider_refund_id=result.refund_id,
            amount=result.amount,
            reason=reason,
            source="staff",
            actor=actor,
        )
    return refund


def sync_charge_refunds(charge_id: str, *, provider: str, source: str) -> list[Refund]:
    """``charge.refunded``: record each succeeded refund of the charge that we do not have."""
    state = get_provider(provider).charge_state(charge_id)
    gift = Gift.objects.filter(payment_intent_id=state.payment_intent_id).first()
    if gift is None:
        raise NotYetRecorded(f"charge {charge_id}: no gift for {state.payment_intent_id} yet")
    recorded = []
    with transaction.atomic():
        Donation.objects.select_for_update().get(pk=gift.donation_id)
        gift = Gift.objects.select_related("donation").get(pk=gift.pk)
        for refund in state.refunds:
            if refund.status != "succeeded":
                continue
            row, created = _record_refund(
                gift,
                provider_refund_id=refund.refund_id,
                amount=refund.amount,
                reason=Refund.Reason.REQUESTED,
                source=source,
            )
            if created:
                recorded.append(row)
    return recorded


def sync_dispute(dispute_id: str, *, provider: str, source: str) -> Gift | None:
    """``charge.dispute.created``/``.closed``: flag the gift; a lost dispute gives the money back
    (recorded as a refund with the dispute's id, so once)."""
    state = get_provider(provider).dispute_state(dispute_id)
    gift = Gift.objects.filter(payment_intent_id=state.payment_intent_id).first()
    if gift is None:
        raise NotYetRecorded(f"dispute {dispute_id}: no gift for {state.payment_intent_id} yet")
    with transaction.atomic():
        Donation.objects.select_for_update().get(pk=gift.donation_id)
        gift = Gift.objects.select_related("donation").get(pk=gift.pk)
        disputed = state.status not in ("won", "lost", "warning_closed")
        if gift.disputed != disputed:
            gift.disputed = disputed
            gift.save(update_fields=["disputed"])
            _record(
                gift.donation,
                action="dispute_opened" if disputed else f"dispute_{state.status}",
                source=source,
                note=dispute_id,
            )
        if state.status == "lost":
            _record_refund(
                gift,
                provider_refund_id=f"dispute:{dispute_id}",
                amount=min(state.amount, gift.net_amount),
                reason=Refund.Reason.DISPUTE_LOST,
                source=source,
            )
    return gift


def cancel_monthly(
    *, donation: Donation, actor: User | None, holds_donor_link: bool = False
) -> Donation:
    """End a monthly gift at the provider; the history says who.

    Allowed to the signed-in donor, foundation staff, or — for a donor who gave without an
    account — whoever holds the donation's link or gave in this browser (``holds_donor_link``,
    checked by ``donations.access``).
    """
    is_donor = actor is not None and actor.is_authenticated and donation.donor_id == actor.pk
    is_staff = actor is not None and may(actor, "donation.view_any", donation)
    if not (is_donor or is_staff or holds_donor_link):
        raise PermissionDenied(_("You may cancel only your own monthly gift."))
    if actor is not None and not actor.is_authenticated:
        actor = None
    if donation.frequency != Donation.Frequency.MONTHLY or not donation.subscription_id:
        raise ValidationError(_("This is not a monthly gift."))
    if donation.status == Status.CANCELLED:
        return donation
    get_provider(donation.provider).cancel_subscription(donation.subscription_id)
    with transaction.atomic():
        donation = Donation.objects.select_for_update().get(pk=donation.pk)
        _set_status(donation, Status.CANCELLED, action="cancelled", source="site", actor=actor)
    return donation


# --- Events ------------------------------------------------------------------------------------


def store_event(*, provider: str, event_id: str, event_type: str, payload: dict) -> None:
    """Store a provider event under its unique id and wake the drain after commit.

    One statement (``INSERT … ON CONFLICT DO NOTHING``): a redelivered event is not stored
    twice. The webhook answers 2xx once this returns; processing is the drain's job.
    """
    _insert_event_once(
        id=event_id,
        provider=provider,
        type=event_type,
        payload=payload,
        received_at=timezone.now(),
        attempts=0,
        last_error="",
    )
    # Robust: the event is stored, so the sender gets its 2xx whatever happens to the wake-up
    # (a broker outage, or a failure with eager tasks); the periodic drain finds it anyway.
    transaction.on_commit(wake_drain, robust=True)


def _insert_event_once(**values: Any) -> None:
    """``INSERT … ON CONFLICT (id) DO NOTHING`` as ONE statement (PostgreSQL and SQLite).

    ``bulk_create(ignore_conflicts=True)`` writes the same row but wraps it in a transaction
    (BEGIN, INSERT, COMMIT): three round trips on the webhook's hot path instead of one.
    """
    meta = WebhookEvent._meta
    fields = [meta.get_field(name) for name in values]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(field.column) for field in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    params = [field.get_db_prep_save(values[field.name], connection) for field in fields]
    # Only the model's own table and column names go into the text; the values are parameters.
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({columns}) VALUES ({placeholders}) "  # noqa: S608
        f"ON CONFLICT ({quote(meta.pk.column)}) DO NOTHING"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


DRAIN_WAKE_KEY = "donations:event-drain-woken"
# While a drain is known to run (the key is set), new events do not queue another task; a
# busy stream still starts a new drain each second, so up to the worker's concurrency drain
# side by side.
DRAIN_WAKE_SECONDS = 1


def wake_drain() -> None:
    """Queue a drain unless one was queued in the last second (one Redis SET NX, not a task
    message per event)."""
    from .tasks import drain_events_task

    if cache.add(DRAIN_WAKE_KEY, 1, timeout=DRAIN_WAKE_SECONDS):
        drain_events_task.delay()


def retry_delay(attempts: int) -> dt.timedelta:
    """How long a failed event waits before the next try: 2, 4, 8 … seconds, at most an hour."""
    return dt.timedelta(seconds=min(2**attempts, 3600))


def drain_events(*, limit: int | None = None) -> int:
    """Process every stored event that is due, one at a time, each in its own transaction.

    Several drains run side by side: each claims the next due event with ``SKIP LOCKED``. A
    failing event keeps its error and waits (``retry_delay``); the drain goes on with the rest.
    When nothing is left it clears the wake-up key and looks once more, so an event stored
    while the key was set is not left behind. Returns how many events it processed.
    """
    processed = 0
    looked_again = False
    while limit is None or processed < limit:
        if _process_next_event():
            processed += 1
            looked_again = False
            continue
        if looked_again:
            break
        cache.delete(DRAIN_WAKE_KEY)
        looked_again = True
    return processed


def _due_events():
    now = timezone.now()
    return WebhookEvent.objects.filter(processed_at__isnull=True).filter(
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    )


def _process_next_event() -> bool:
    """Claim and process the oldest due event; False when there is none to claim."""
    with transaction.atomic():
        event = _due_events().select_for_update(skip_locked=True).order_by("received_at").first()
        if event is None:
            return False
        try:
            _process_claimed(event)
        except Exception:
            log.exception("event %s failed (attempt %s)", event.pk, event.attempts)
    return True


HANDLED_EVENTS = (
    "checkout.session.completed",
    "checkout.session.async_payment_succeeded",
    "checkout.session.async_payment_failed",
    "checkout.session.expired",
    "charge.refunded",
    "charge.dispute.created",
    "charge.dispute.closed",
    "invoice.paid",
    "invoice.payment_failed",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "payout.paid",
    "payout.failed",
)


def _apply(event: WebhookEvent) -> None:
    obj_id = event.payload["data"]["object"]["id"]
    source = f"webhook:{event.id}"
    kind, provider = event.type, event.provider
    if kind.startswith("checkout.session."):
        settled = get_provider(provider).settled_checkout(
            event.payload["data"]["object"], event.payload.get("created")
        )
        if settled is not None:
            apply_checkout_state(settled, source=source)
        else:
            confirm_checkout(obj_id, source=source, provider=provider)
    elif kind == "invoice.paid":
        record_invoice(obj_id, provider=provider, source=source)
    elif kind == "invoice.payment_failed":
        note_failed_instalment(obj_id, provider=provider, source=source)
    elif kind.startswith("customer.subscription."):
        sync_subscription(obj_id, provider=provider, source=source)
    elif kind == "charge.refunded":
        sync_charge_refunds(obj_id, provider=provider, source=source)
    elif kind.startswith("charge.dispute."):
        sync_dispute(obj_id, provider=provider, source=source)
    elif kind.startswith("payout."):
        record_payout(obj_id, provider=provider, source=source)


def process_event(event_id: str) -> bool:
    """Apply one stored event now, once (the drain's step, for one id). Returns True if this
    call processed it; raises the failure after recording it."""
    with transaction.atomic():
        event = (
            WebhookEvent.objects.select_for_update(skip_locked=True)
            .filter(pk=event_id, processed_at__isnull=True)
            .first()
        )
        if event is None:
            return False
        failure = _process_claimed(event)
    if failure is not None:
        raise failure
    return True


def _process_claimed(event: WebhookEvent) -> Exception | None:
    """Apply a claimed (locked) event; mark it processed in the same transaction as what it
    wrote, or keep the attempt, the error and when to try again. Returns the failure."""
    event.attempts += 1
    try:
        with transaction.atomic():
            if event.type in HANDLED_EVENTS:
                _apply(event)
    except Exception as error:
        event.last_error = f"{type(error).__name__}: {error}"[:2000]
        event.next_attempt_at = timezone.now() + retry_delay(event.attempts)
        event.save(update_fields=["attempts", "last_error", "next_attempt_at"])
        return error
    event.processed_at = timezone.now()
    event.last_error = ""
    event.save(update_fields=["attempts", "processed_at", "last_error"])
    return None
