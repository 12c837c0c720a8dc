"""Payment providers: Stripe when ``STRIPE_SECRET_KEY`` is set, otherwise the offline demo.

Both speak the same small interface (``PaymentProvider``). What the pipeline needs from a
provider is the *current* state of an object, fetched rather than trusted from an event (events
arrive late, twice and out of order), reduced to the plain records below. All Stripe SDK calls
live in ``donations.stripe_api``; the demo provider keeps its "remote" state in
``DemoCheckout`` rows and its events go through the same ``WebhookEvent`` pipeline.
"""

import datetime as dt
import secrets
from dataclasses import dataclass, field
from functools import cache
from typing import Protocol

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from .models import DemoCheckout, Donation


class ProviderError(Exception):
    """The provider refused or could not be reached; the message is safe to show staff."""


@dataclass(frozen=True)
class Payment:
    """Money received: ``payment_id`` is the gift's unique key at the provider."""

    payment_id: str
    amount: int
    received_at: dt.datetime
    payment_intent_id: str | None = None


@dataclass(frozen=True)
class CheckoutState:
    """A checkout session as the provider has it now."""

    session_id: str
    donation_id: str | None  # our id, from the metadata
    status: str  # "open", "complete" or "expired"
    # "paid"; "unpaid" (konbini voucher issued, not yet paid); "failed" (the delayed payment
    # failed or its voucher expired)
    payment_status: str
    subscription_id: str | None = None
    payment: Payment | None = None  # once paid: the payment (monthly: the first invoice's)


@dataclass(frozen=True)
class InvoiceState:
    invoice_id: str
    subscription_id: str | None
    donation_id: str | None
    paid: bool
    payment: Payment | None


@dataclass(frozen=True)
class RefundState:
    refund_id: str
    amount: int
    status: str  # "succeeded", "pending", "failed", "canceled"


@dataclass(frozen=True)
class ChargeState:
    charge_id: str
    payment_intent_id: str | None
    refunds: list[RefundState] = field(default_factory=list)


@dataclass(frozen=True)
class DisputeState:
    dispute_id: str
    payment_intent_id: str | None
    amount: int
    status: str  # Stripe's: "needs_response", "under_review", "won", "lost", …


class PaymentProvider(Protocol):
    name: str

    def create_checkout(
        self, donation: Donation, *, success_url: str, cancel_url: str
    ) -> tuple[str, str]:
        """Start a checkout for the donation; returns (session id, the address to send the
        donor to). Safe to repeat: the idempotency key is the donation's id."""

    def checkout_state(self, session_id: str) -> CheckoutState: ...

    def settled_checkout(self, session: dict, event_created: int | None) -> CheckoutState | None:
        """The state a signed event's own copy of a session settles — a one-time payment that
        is complete and paid can no longer change — or None: then it must be fetched."""

    def invoice_state(self, invoice_id: str) -> InvoiceState: ...

    def subscription_status(self, subscription_id: str) -> str:
        """Stripe's status: "active", "past_due", "canceled", "unpaid", "incomplete"…"""

    def cancel_subscription(self, subscription_id: str) -> None: ...

    def refund(self, *, payment_intent_id: str, amount: int, idempotency_key: str) -> RefundState:
        """Give back ``amount`` yen of a payment."""

    def charge_state(self, charge_id: str) -> ChargeState: ...

    def dispute_state(self, dispute_id: str) -> DisputeState: ...


class DemoProvider:
    """The offline provider: a local checkout page (no real money) instead of Stripe.

    ``demo_act`` plays what the donor does there (pay, decline, pay later at a store, …): it
    changes the demo session's state and stores an event shaped like Stripe's, which the
    webhook pipeline then processes as it would Stripe's.
    """

    name = Donation.Provider.DEMO

    def create_checkout(
        self, donation: Donation, *, success_url: str, cancel_url: str
    ) -> tuple[str, str]:
        checkout, _created = DemoCheckout.objects.get_or_create(
            donation=donation,
            defaults={
                "id": f"demo_cs_{secrets.token_hex(12)}",
                "success_url": success_url,
                "cancel_url": cancel_url,
            },
        )
        return checkout.id, reverse("donations:demo-checkout", args=[checkout.id])

    def _checkout(self, session_id: str) -> DemoCheckout:
        try:
            return DemoCheckout.objects.select_related("donation").get(pk=session_id)
        except DemoCheckout.DoesNotExist:
            raise ProviderError(f"No such demo checkout: {session_id}") from None

    def checkout_state(self, session_id: str) -> CheckoutState:
        checkout = self._checkout(session_id)
        payment = None
        if checkout.payment_status == DemoCheckout.PAID:
            payment = Payment(
                payment_id=checkout.first_payment_id,
                payment_intent_id=checkout.payment_intent_id
                if not checkout.subscription_id
                else f"demo_pi_{checkout.first_payment_id}",
                amount=checkout.donation.amount,
                received_at=checkout.paid_at,
            )
        return CheckoutState(
            session_id=checkout.id,
            donation_id=str(checkout.donation_id),
            status=checkout.status,
            payment_status=checkout.payment_status,
            subscription_id=checkout.subscription_id or None,
            payment=payment,
        )

    def settled_checkout(self, session: dict, event_created: int | None) -> CheckoutState | None:
        return None  # demo events carry only the session's id

    def invoice_state(self, invoice_id: str) -> InvoiceState:
        # Demo invoices are "<subscription>_in_<n>"; each is paid when its event is made.
        subscription_id, _, _n = invoice_id.rpartition("_in_")
        checkout = DemoCheckout.objects.select_related("donation").get(
            subscription_id=subscription_id
        )
        payment = Payment(
            payment_id=invoice_id,
            payment_intent_id=f"demo_pi_{invoice_id}",
            amount=checkout.donation.amount,
            received_at=timezone.now(),
        )
        return InvoiceState(
            invoice_id=invoice_id,
            subscription_id=subscription_id,
            donation_id=str(checkout.donation_id),
            paid=True,
            payment=payment,
        )

    def subscription_status(self, subscription_id: str) -> str:
        return DemoCheckout.objects.get(subscription_id=subscription_id).subscription_status

    def cancel_subscription(self, subscription_id: str) -> None:
        DemoCheckout.objects.filter(subscription_id=subscription_id).update(
            subscription_status="canceled"
        )

    def refund(self, *, payment_intent_id: str, amount: int, idempotency_key: str) -> RefundState:
        # Same key, same refund — as Stripe answers a repeated idempotency key.
        return RefundState(
            refund_id=f"demo_re_{idempotency_key.replace(':', '_')}",
            amount=amount,
            status="succeeded",
        )

    def charge_state(self, charge_id: str) -> ChargeState:
        raise ProviderError("The demo provider has no charges: refunds are made by staff here.")

    def dispute_state(self, dispute_id: str) -> DisputeState:
        raise ProviderError("The demo provider has no disputes.")


DEMO_ACTIONS = ("pay", "decline", "pay_later", "store_paid", "store_expired", "next_month")


def demo_act(session_id: str, action: str) -> str | None:
    """Play the donor's (or the store's, or next month's) part on the demo checkout page.

    Changes the demo session and stores the event Stripe would send; returns the event id, or
    None when the action does not apply in the session's state (a second click).
    """
    from .services import store_event  # the pipeline's entry point, as for Stripe's webhook

    if action not in DEMO_ACTIONS:
        raise ValueError(action)
    now = timezone.now()
    with transaction.atomic():
        checkout = DemoCheckout.objects.select_for_update().get(pk=session_id)
        monthly = checkout.donation.frequency == Donation.Frequency.MONTHLY
        event_type = None
        if action == "pay" and checkout.status == DemoCheckout.OPEN:
            checkout.status, checkout.payment_status, checkout.paid_at = "complete", "paid", now
            checkout.payment_intent_id = f"demo_pi_{secrets.token_hex(12)}"
            if monthly:
                checkout.subscription_id = f"demo_sub_{secrets.token_hex(10)}"
                checkout.subscription_status = "active"
                checkout.invoices = 1
            event_type = "checkout.session.completed"
        elif action == "decline" and checkout.status == DemoCheckout.OPEN:
            checkout.status = "expired"
            event_type = "checkout.session.expired"
        elif action == "pay_later" and checkout.status == DemoCheckout.OPEN and not monthly:
            checkout.status, checkout.payment_status = "complete", "unpaid"
            event_type = "checkout.session.completed"
        elif action == "store_paid" and (checkout.status, checkout.payment_status) == (
            "complete",
            "unpaid",
        ):
            checkout.payment_status, checkout.paid_at = "paid", now
            checkout.payment_intent_id = f"demo_pi_{secrets.token_hex(12)}"
            event_type = "checkout.session.async_payment_succeeded"
        elif action == "store_expired" and (checkout.status, checkout.payment_status) == (
            "complete",
            "unpaid",
        ):
            checkout.payment_status = "failed"
            event_type = "checkout.session.async_payment_failed"
        elif action == "next_month" and checkout.subscription_status == "active":
            checkout.invoices += 1
            event_type = "invoice.paid"
        if event_type is None:
            return None
        checkout.save()
        # The first month's invoice comes with the checkout; later months as invoice.paid.
        if event_type == "invoice.paid":
            obj = {"id": f"{checkout.subscription_id}_in_{checkout.invoices}", "object": "invoice"}
        else:
            obj = {"id": checkout.id, "object": "checkout.session"}
        event_id = f"demo_evt_{secrets.token_hex(12)}"
        store_event(
            provider=Donation.Provider.DEMO,
            event_id=event_id,
            event_type=event_type,
            payload={"id": event_id, "type": event_type, "data": {"object": obj}},
        )
    return event_id


@cache
def _stripe_provider() -> PaymentProvider:
    from .stripe_api import StripeProvider

    return StripeProvider()


def get_provider(name: str | None = None) -> PaymentProvider:
    """The provider by name (a donation's ``provider``), or the configured one."""
    name = name or configured_provider_name()
    if name == Donation.Provider.STRIPE:
        return _stripe_provider()
    return DemoProvider()


def configured_provider_name() -> str:
    return Donation.Provider.STRIPE if settings.STRIPE_SECRET_KEY else Donation.Provider.DEMO
