"""Stripe: every call the project makes to the Stripe SDK lives here.

``StripeProvider`` speaks the ``providers.PaymentProvider`` interface: it opens Checkout
Sessions and fetches the *current* state of sessions, invoices, subscriptions, charges and
disputes, reduced to the providers' plain records. ``verify_webhook`` checks a webhook's
signature for ``webhooks.stripe_webhook``.

Written for stripe-python 16 (API version ``2026-10-28.endive``, pinned by the SDK):

- Checkout Session create takes ``allowed_payment_method_types`` (``payment_method_types`` is
  refused); Stripe drops what does not apply (konbini: one-time JPY within its limits).
- Session metadata is not copied to what the session creates, so it is also set on
  ``payment_intent_data`` (one-time) or ``subscription_data`` (monthly).
- Invoices carry neither ``subscription`` nor ``payment_intent``: the subscription is at
  ``parent.subscription_details.subscription`` and payments are listed by invoice payments.
- SDK objects are not dicts: each answer is turned into a plain dict with ``to_dict()``.
- JPY is zero-decimal: ``unit_amount=3000`` is ¥3,000. Amounts are never scaled.
"""

import datetime as dt
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import stripe
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext as _

from .models import Donation
from .providers import (
    ChargeState,
    CheckoutState,
    DisputeState,
    InvoiceState,
    Payment,
    ProviderError,
    RefundState,
)

log = logging.getLogger(__name__)

CURRENCY = "jpy"
# Stripe's own default; a signed event older than this is refused (a replay).
WEBHOOK_TOLERANCE_SECONDS = 300
# The SDK retries connection errors and the answers Stripe marks retryable; every POST carries
# an idempotency key, so a retried create cannot make a second session or refund.
MAX_NETWORK_RETRIES = 2
# (connect, read) seconds: a webhook task or a staff page should not hang on Stripe for 80 s.
HTTP_TIMEOUT = (5, 30)


# --- Webhooks ------------------------------------------------------------------------------------


class WebhookRejected(Exception):
    """A webhook body that is not a genuine, recent Stripe event; the message is safe to return."""


def verify_webhook(payload: bytes, signature_header: str | None, secret: str) -> dict[str, Any]:
    """Check the ``Stripe-Signature`` header over the raw body and return the event as a dict.

    Raises ``WebhookRejected`` for a missing or wrong signature, a wrong secret, a timestamp
    older than ``WEBHOOK_TOLERANCE_SECONDS``, or a body that is not a JSON event.
    """
    try:
        stripe.WebhookSignature.verify_header(
            payload, signature_header, secret, tolerance=WEBHOOK_TOLERANCE_SECONDS
        )
    except stripe.SignatureVerificationError as error:
        raise WebhookRejected("Invalid signature.") from error
    except ValueError as error:  # a body that is not UTF-8
        raise WebhookRejected("Invalid payload.") from error
    try:
        event = json.loads(payload)
    except ValueError as error:
        raise WebhookRejected("Invalid payload.") from error
    if not isinstance(event, dict):
        raise WebhookRejected("Not an event.")
    data = event.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    if not (
        isinstance(event.get("id"), str)
        and event["id"]
        and isinstance(event.get("type"), str)
        and isinstance(obj, dict)
        and isinstance(obj.get("id"), str)
    ):
        raise WebhookRejected("Not an event.")
    return event


# --- Reading Stripe's answers ------------------------------------------------------------------


def _plain(obj: Any) -> dict[str, Any]:
    """An SDK object as a plain (recursive) dict."""
    return obj.to_dict() if obj is not None else {}


def _id(value: Any) -> str | None:
    """The id of an expandable field, expanded or not."""
    if isinstance(value, dict):
        return value.get("id")
    return value or None


def _when(timestamp: int | None) -> dt.datetime | None:
    if not timestamp:
        return None
    return dt.datetime.fromtimestamp(timestamp, tz=dt.UTC)


def _check_currency(obj: dict[str, Any]) -> None:
    currency = obj.get("currency")
    if currency and currency.lower() != CURRENCY:
        # Never record cents as yen.
        raise ProviderError(_("Stripe answered with a payment in another currency."))


@contextmanager
def _stripe_call(what: str) -> Iterator[None]:
    """Turn the SDK's errors into ``ProviderError`` with a message safe to show staff."""
    try:
        yield
    except stripe.APIConnectionError as error:
        log.warning("stripe %s: no connection (%s)", what, error)
        raise ProviderError(_("Stripe could not be reached. Please try again later.")) from error
    except stripe.RateLimitError as error:
        log.warning("stripe %s: rate limited (request %s)", what, error.request_id)
        raise ProviderError(_("Stripe is busy. Please try again in a minute.")) from error
    except stripe.AuthenticationError as error:
        log.error("stripe %s: authentication failed", what)
        raise ProviderError(
            _("Stripe refused our credentials (check STRIPE_SECRET_KEY).")
        ) from error
    except stripe.StripeError as error:
        log.warning(
            "stripe %s failed: HTTP %s %s (request %s): %s",
            what,
            error.http_status,
            error.code,
            error.request_id,
            error.user_message,
        )
        raise ProviderError(
            _("Stripe refused the request (%(code)s).")
            % {"code": error.code or error.http_status or "error"}
        ) from error


class StripeProvider:
    """The live payment provider: Stripe Checkout, subscriptions, refunds, disputes."""

    name = Donation.Provider.STRIPE

    def __init__(self, api_key: str | None = None, api_base: str | None = None) -> None:
        api_key = api_key or settings.STRIPE_SECRET_KEY
        if not api_key:
            raise ImproperlyConfigured("STRIPE_SECRET_KEY is not set")
        api_base = api_base or settings.STRIPE_API_BASE
        self.client = stripe.StripeClient(
            api_key,
            base_addresses={"api": api_base} if api_base else None,
            max_network_retries=MAX_NETWORK_RETRIES,
            http_client=stripe.RequestsClient(timeout=HTTP_TIMEOUT),
        )

    # --- Checkout ------------------------------------------------------------------------------

    def create_checkout(
        self, donation: Donation, *, success_url: str, cancel_url: str
    ) -> tuple[str, str]:
        metadata = {
            "donation_id": str(donation.id),
            "project_id": str(donation.project_id) if donation.project_id else "general",
        }
        name = (
            donation.project.title
            if donation.project_id
            else _("Civic Fund general fund (undesignated)")
        )
        price_data: dict[str, Any] = {
            "currency": CURRENCY,
            "unit_amount": donation.amount,  # zero-decimal: ¥3,000 is 3000
            "product_data": {"name": name[:250]},
        }
        params: dict[str, Any] = {
            "customer_email": donation.email,
            "client_reference_id": str(donation.id),
            "metadata": metadata,
            "success_url": success_url,
            "cancel_url": cancel_url,
        }
        if donation.frequency == Donation.Frequency.MONTHLY:
            price_data["recurring"] = {"interval": "month"}
            params |= {
                "mode": "subscription",
                "allowed_payment_method_types": ["card"],
                "subscription_data": {"metadata": metadata},
            }
        else:
            params |= {
                "mode": "payment",
                "submit_type": "donate",
                "allowed_payment_method_types": ["card", "konbini"],
                "payment_intent_data": {"metadata": metadata},
            }
        params["line_items"] = [{"quantity": 1, "price_data": price_data}]
        with _stripe_call("checkout create"):
            session = self.client.v1.checkout.sessions.create(
                params, {"idempotency_key": f"checkout:{donation.id}"}
            )
        return session.id, session.url

    def checkout_state(self, session_id: str) -> CheckoutState:
        with _stripe_call("checkout retrieve"):
            session = _plain(
                self.client.v1.checkout.sessions.retrieve(
                    session_id,
                    {"expand": ["payment_intent.latest_charge", "invoice"]},
                )
            )
        _check_currency(session)
        metadata = session.get("metadata") or {}
        donation_id = metadata.get("donation_id") or session.get("client_reference_id")
        subscription_id = _id(session.get("subscription"))
        payment_status = session.get("payment_status") or "unpaid"
        payment = None
        if session.get("mode") == "subscription":
            invoice = session.get("invoice")
            if not isinstance(invoice, dict) and subscription_id:
                invoice = self._latest_invoice(subscription_id)
            if isinstance(invoice, dict):
                payment = self._invoice_payment(invoice)
            if payment is not None:
                payment_status = "paid"
        else:
            intent = session.get("payment_intent")
            intent = intent if isinstance(intent, dict) else None
            if intent is not None and intent.get("status") == "succeeded":
                payment = self._intent_payment(intent)
                payment_status = "paid"
            elif (
                session.get("status") == "complete"
                and payment_status != "paid"
                and intent is not None
                # A konbini voucher that expired or failed: the intent went back to needing a
                # payment method, or was cancelled.
                and intent.get("status") in ("canceled", "requires_payment_method")
            ):
                payment_status = "failed"
            # A session "paid" whose intent has not succeeded yet keeps payment=None: nothing
            # is recorded until the next event or the return page sees the money.
        return CheckoutState(
            session_id=session["id"],
            donation_id=donation_id,
            status=session.get("status") or "open",
            payment_status=payment_status,
            subscription_id=subscription_id,
            payment=payment,
        )

    def settled_checkout(
        self, session: dict[str, Any], event_created: int | None
    ) -> CheckoutState | None:
        """A one-time session that is complete and paid is final (a refund or dispute is
        another object), so the signed event's copy is enough: no request to Stripe, which
        also keeps a busy day under Stripe's rate limit. Anything else is fetched."""
        intent_id = session.get("payment_intent")
        amount = session.get("amount_total")
        if not (
            session.get("mode") == "payment"
            and session.get("status") == "complete"
            and session.get("payment_status") == "paid"
            and str(session.get("currency", "")).lower() == "jpy"
            and isinstance(intent_id, str)
            and isinstance(amount, int)
            and amount >= 1
        ):
            return None
        metadata = session.get("metadata") or {}
        return CheckoutState(
            session_id=session["id"],
            donation_id=metadata.get("donation_id") or session.get("client_reference_id"),
            status="complete",
            payment_status="paid",
            payment=Payment(
                payment_id=intent_id,
                payment_intent_id=intent_id,
                amount=amount,
                received_at=_when(event_created) or dt.datetime.now(tz=dt.UTC),
            ),
        )

    def _intent_payment(self, intent: dict[str, Any]) -> Payment | None:
        _check_currency(intent)
        amount = intent.get("amount_received") or 0
        if amount < 1:
            return None
        charge = intent.get("latest_charge")
        received = (_when(charge.get("created")) if isinstance(charge, dict) else None) or _when(
            intent.get("created")
        )
        return Payment(
            payment_id=intent["id"],
            payment_intent_id=intent["id"],
            amount=amount,
            received_at=received or dt.datetime.now(tz=dt.UTC),
        )

    # --- Invoices and subscriptions ------------------------------------------------------------

    def _latest_invoice(self, subscription_id: str) -> dict[str, Any] | None:
        with _stripe_call("subscription retrieve"):
            subscription = _plain(
                self.client.v1.subscriptions.retrieve(
                    subscription_id, {"expand": ["latest_invoice"]}
                )
            )
        invoice = subscription.get("latest_invoice")
        return invoice if isinstance(invoice, dict) else None

    def _invoice_payment(self, invoice: dict[str, Any]) -> Payment | None:
        """The money an invoice received, once it is paid; its intent from invoice payments."""
        _check_currency(invoice)
        amount = invoice.get("amount_paid") or 0
        if invoice.get("status") != "paid" or amount < 1:
            return None
        with _stripe_call("invoice payments list"):
            payments = self.client.v1.invoice_payments.list(
                {"invoice": invoice["id"], "status": "paid", "limit": 100}
            )
            paid = [_plain(item) for item in payments.auto_paging_iter()]
        intent_ids = [
            _id(item["payment"].get("payment_intent"))
            for item in paid
            if (item.get("payment") or {}).get("type") == "payment_intent"
        ]
        paid_at = (invoice.get("status_transitions") or {}).get("paid_at")
        return Payment(
            payment_id=invoice["id"],
            payment_intent_id=next((i for i in intent_ids if i), None),
            amount=amount,
            received_at=_when(paid_at) or _when(invoice.get("created")) or dt.datetime.now(dt.UTC),
        )

    def invoice_state(self, invoice_id: str) -> InvoiceState:
        with _stripe_call("invoice retrieve"):
            invoice = _plain(self.client.v1.invoices.retrieve(invoice_id))
        details = (invoice.get("parent") or {}).get("subscription_details") or {}
        metadata = details.get("metadata") or invoice.get("metadata") or {}
        payment = self._invoice_payment(invoice)
        return InvoiceState(
            invoice_id=invoice["id"],
            subscription_id=_id(details.get("subscription")),
            donation_id=metadata.get("donation_id"),
            paid=payment is not None,
            payment=payment,
        )

    def subscription_status(self, subscription_id: str) -> str:
        with _stripe_call("subscription retrieve"):
            return self.client.v1.subscriptions.retrieve(subscription_id).status

    def cancel_subscription(self, subscription_id: str) -> None:
        """End the subscription now; one already ended is fine (a second click)."""
        try:
            with _stripe_call("subscription cancel"):
                self.client.v1.subscriptions.cancel(subscription_id)
        except ProviderError:
            if self.subscription_status(subscription_id) in ("canceled", "incomplete_expired"):
                return
            raise

    # --- Refunds and disputes ------------------------------------------------------------------

    def refund(self, *, payment_intent_id: str, amount: int, idempotency_key: str) -> RefundState:
        with _stripe_call("refund create"):
            refund = self.client.v1.refunds.create(
                {"payment_intent": payment_intent_id, "amount": amount},
                {"idempotency_key": idempotency_key},
            )
        return RefundState(refund_id=refund.id, amount=refund.amount, status=refund.status)

    def charge_state(self, charge_id: str) -> ChargeState:
        with _stripe_call("charge retrieve"):
            charge = _plain(self.client.v1.charges.retrieve(charge_id, {"expand": ["refunds"]}))
            listed = charge.get("refunds") or {}
            refunds = list(listed.get("data") or [])
            if listed.get("has_more") or "refunds" not in charge:
                # An expanded list holds the first page only: list them all.
                pages = self.client.v1.refunds.list({"charge": charge_id, "limit": 100})
                refunds = [_plain(item) for item in pages.auto_paging_iter()]
        return ChargeState(
            charge_id=charge["id"],
            payment_intent_id=_id(charge.get("payment_intent")),
            refunds=[
                RefundState(refund_id=r["id"], amount=r["amount"], status=r["status"])
                for r in refunds
            ],
        )

    def dispute_state(self, dispute_id: str) -> DisputeState:
        with _stripe_call("dispute retrieve"):
            dispute = _plain(self.client.v1.disputes.retrieve(dispute_id))
        _check_currency(dispute)
        return DisputeState(
            dispute_id=dispute["id"],
            payment_intent_id=_id(dispute.get("payment_intent")),
            amount=dispute["amount"],
            status=dispute["status"],
        )

    # --- Payouts and the balance (the daily reconciliation) ------------------------------------

    def payout_state(self, payout_id: str) -> "PayoutState":
        with _stripe_call("payout retrieve"):
            payout = _plain(self.client.v1.payouts.retrieve(payout_id))
        return _payout_state(payout)

    def payouts(
        self,
        *,
        arrival_from: dt.date | None = None,
        arrival_to: dt.date | None = None,
        created_from: dt.date | None = None,
    ) -> list["PayoutState"]:
        """Payouts arriving in ``[arrival_from, arrival_to]`` (Japan dates), or created from a
        date, every page."""
        params: dict[str, Any] = {"limit": 100}
        arrival: dict[str, int] = {}
        if arrival_from is not None:
            arrival["gte"] = _day_start(arrival_from)
        if arrival_to is not None:
            arrival["lt"] = _day_start(arrival_to + dt.timedelta(days=1))
        if arrival:
            params["arrival_date"] = arrival
        if created_from is not None:
            params["created"] = {"gte": _day_start(created_from)}
        with _stripe_call("payouts list"):
            listed = self.client.v1.payouts.list(params)
            return [_payout_state(_plain(item)) for item in listed.auto_paging_iter()]

    def balance_transactions(
        self, *, payout_id: str | None = None, created_from: dt.date | None = None
    ) -> list["BalanceTransaction"]:
        """A payout's balance transactions (``payout=``), or all created from a date."""
        params: dict[str, Any] = {"limit": 100}
        if payout_id is not None:
            params["payout"] = payout_id
        if created_from is not None:
            params["created"] = {"gte": _day_start(created_from)}
        with _stripe_call("balance transactions list"):
            listed = self.client.v1.balance_transactions.list(params)
            items = [_plain(item) for item in listed.auto_paging_iter()]
        for item in items:
            _check_currency(item)
        return [
            BalanceTransaction(
                transaction_id=item["id"],
                type=item.get("type") or "",
                amount=int(item.get("amount") or 0),
                fee=int(item.get("fee") or 0),
                net=int(item.get("net") or 0),
                source=_id(item.get("source")),
            )
            for item in items
        ]

    def balance_total(self) -> int:
        """What Stripe holds for us in yen: available + pending (net of its fees)."""
        with _stripe_call("balance retrieve"):
            balance = _plain(self.client.v1.balance.retrieve())
        return sum(
            int(part.get("amount") or 0)
            for key in ("available", "pending")
            for part in balance.get(key) or []
            if str(part.get("currency", "")).lower() == CURRENCY
        )


JAPAN = ZoneInfo("Asia/Tokyo")


@dataclass(frozen=True)
class PayoutState:
    """A payout as Stripe has it now; ``amount`` is what reaches the bank (net of fees)."""

    payout_id: str
    amount: int
    status: str  # "pending", "in_transit", "paid", "failed", "canceled"
    arrival_date: dt.date | None
    created: dt.datetime | None


@dataclass(frozen=True)
class BalanceTransaction:
    """One movement of our Stripe balance: a charge (+amount, its fee), a refund (−amount), a
    payout (−net), a failed payout given back (+net)…; ``net`` = ``amount`` − ``fee``."""

    transaction_id: str
    type: str
    amount: int
    fee: int
    net: int
    source: str | None


def _day_start(day: dt.date) -> int:
    return int(dt.datetime.combine(day, dt.time(), tzinfo=JAPAN).timestamp())


def _payout_state(payout: dict[str, Any]) -> PayoutState:
    _check_currency(payout)
    arrival = _when(payout.get("arrival_date"))
    return PayoutState(
        payout_id=payout["id"],
        amount=int(payout.get("amount") or 0),
        status=payout.get("status") or "pending",
        arrival_date=arrival.astimezone(JAPAN).date() if arrival else None,
        created=_when(payout.get("created")),
    )


def stripe_provider() -> StripeProvider:
    """The configured Stripe provider (raises ``ImproperlyConfigured`` without a key)."""
    from .providers import _stripe_provider

    provider = _stripe_provider()
    assert isinstance(provider, StripeProvider)
    return provider
