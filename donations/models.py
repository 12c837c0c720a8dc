"""Gifts (DOMAIN.md §3): a donor's checkout, the payments it brings, refunds, receipts.

- ``Donation``: what a donor asked for at checkout — a project (or the general fund), an amount,
  once or monthly, and the donor's choices. It is the checkout's (and, monthly, the
  subscription's) record at the payment provider.
- ``Gift``: one payment received. A one-time donation brings at most one; a monthly donation one
  per paid invoice. ``payment_id`` is unique: one payment = one gift = one ledger entry.
- ``Refund``: money given back for a gift (``provider_refund_id`` unique); a lost dispute is one.
- ``WebhookEvent``: every provider event, stored under its unique id before we acknowledge it.
- ``Receipt``: a tax receipt with a number per calendar year, gapless (``ReceiptCounter``).
- ``DonationEvent``: the history of a donation and its gifts, dated and attributed.
"""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from fund.models import Project

MIN_AMOUNT_YEN = 100
MAX_AMOUNT_YEN = 10_000_000


class Donation(models.Model):
    class Frequency(models.TextChoices):
        ONCE = "once", _("One-time")
        MONTHLY = "monthly", _("Monthly")

    class Status(models.TextChoices):
        # Waiting for the donor at the checkout page.
        PENDING = "pending", _("Waiting for payment")
        # Konbini: the donor has the voucher and pays later at a store.
        AWAITING_PAYMENT = "awaiting_payment", _("To be paid at a store")
        SUCCEEDED = "succeeded", pgettext_lazy("donation status", "Received")
        FAILED = "failed", _("Payment failed")
        EXPIRED = "expired", _("Checkout expired")
        # Monthly: the subscription runs, is behind on a payment, or has ended.
        ACTIVE = "active", _("Monthly gift active")
        PAST_DUE = "past_due", _("Monthly payment overdue")
        CANCELLED = "cancelled", _("Monthly gift cancelled")

    class Provider(models.TextChoices):
        DEMO = "demo", _("Demo (no real money)")
        STRIPE = "stripe", _("Stripe")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # None: the general fund (an undesignated gift).
    project = models.ForeignKey(
        Project,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="donations",
        verbose_name=_("project"),
    )
    amount = models.PositiveBigIntegerField(_("amount (yen)"))
    frequency = models.CharField(
        _("frequency"), max_length=10, choices=Frequency.choices, default=Frequency.ONCE
    )
    status = models.CharField(
        _("status"), max_length=20, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    provider = models.CharField(_("payment provider"), max_length=10, choices=Provider.choices)
    checkout_session_id = models.CharField(
        _("checkout session"), max_length=255, unique=True, null=True, blank=True
    )
    checkout_url = models.URLField(_("checkout address"), max_length=2000, blank=True)
    subscription_id = models.CharField(
        _("subscription"), max_length=255, unique=True, null=True, blank=True
    )

    # The donor. Giving needs no account; a signed-in donor's gifts are linked to it.
    donor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="donations",
        verbose_name=_("donor account"),
    )
    email = models.EmailField(_("email"))
    name = models.CharField(_("name (for the receipt)"), max_length=200)
    postal_code = models.CharField(_("postal code"), max_length=8, blank=True)
    address = models.CharField(_("address"), max_length=300, blank=True)
    # Choices (APPI: each a separate opt-in).
    display_name = models.CharField(_("name shown publicly"), max_length=100, blank=True)
    publish_name = models.BooleanField(_("show my name on the donor wall"), default=False)
    message = models.TextField(_("message"), max_length=1000, blank=True)
    share_contact = models.BooleanField(
        _("share my name and email with the organisation"), default=False
    )
    wants_receipt = models.BooleanField(_("send me a tax receipt"), default=True)

    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(amount__gte=MIN_AMOUNT_YEN, amount__lte=MAX_AMOUNT_YEN),
                name="donation_amount_in_range",
            ),
        ]
        verbose_name = _("donation")
        verbose_name_plural = _("donations")

    def __str__(self) -> str:
        return f"{self.id} ¥{self.amount:,}"

    @property
    def public_name(self) -> str:
        """The name on the donor wall, or "" (anonymous) unless the donor opted in."""
        return (self.display_name or "").strip() if self.publish_name else ""


class Gift(models.Model):
    """One payment received. Its ledger entry has the key ``gift:<payment_id>``."""

    class State(models.TextChoices):
        SUCCEEDED = "succeeded", pgettext_lazy("gift state", "Received")
        PARTIALLY_REFUNDED = "partially_refunded", _("Partly refunded")
        REFUNDED = "refunded", _("Refunded")

    donation = models.ForeignKey(
        Donation, on_delete=models.PROTECT, related_name="gifts", verbose_name=_("donation")
    )
    # Copied from the donation so the project's money can be read without a join.
    project = models.ForeignKey(
        Project,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="gifts",
        verbose_name=_("project"),
    )
    # The provider's id of the payment: a PaymentIntent for one-time gifts, an Invoice for a
    # monthly instalment (its PaymentIntent is in payment_intent_id).
    payment_id = models.CharField(_("payment"), max_length=255, unique=True)
    payment_intent_id = models.CharField(
        _("payment intent"), max_length=255, unique=True, null=True, blank=True
    )
    amount = models.PositiveBigIntegerField(_("amount (yen)"))
    refunded_amount = models.PositiveBigIntegerField(_("refunded (yen)"), default=0)
    state = models.CharField(
        _("state"), max_length=20, choices=State.choices, default=State.SUCCEEDED
    )
    disputed = models.BooleanField(_("disputed"), default=False)
    received_at = models.DateTimeField(_("received at"), db_index=True)
    created_at = models.DateTimeField(_("recorded at"), auto_now_add=True)

    class Meta:
        ordering = ["-received_at", "-pk"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gte=1), name="gift_amount_positive"),
            models.CheckConstraint(
                condition=Q(refunded_amount__lte=F("amount")),
                name="gift_refunded_at_most_amount",
            ),
        ]
        verbose_name = _("gift")
        verbose_name_plural = _("gifts")

    def __str__(self) -> str:
        return f"{self.payment_id} ¥{self.amount:,}"

    @property
    def net_amount(self) -> int:
        return self.amount - self.refunded_amount


class Refund(models.Model):
    """Money given back for a gift. Its ledger entry has the key ``refund:<provider_refund_id>``."""

    class Reason(models.TextChoices):
        REQUESTED = "requested", _("Requested by the donor")
        DUPLICATE = "duplicate", _("Duplicate")
        FRAUDULENT = "fraudulent", _("Fraudulent")
        PROJECT_CANCELLED = "project_cancelled", _("Project cancelled")
        DISPUTE_LOST = "dispute_lost", _("Dispute lost")
        OTHER = "other", _("Other")

    gift = models.ForeignKey(
        Gift, on_delete=models.PROTECT, related_name="refunds", verbose_name=_("gift")
    )
    provider_refund_id = models.CharField(_("refund at the provider"), max_length=255, unique=True)
    amount = models.PositiveBigIntegerField(_("amount (yen)"))
    reason = models.CharField(
        _("reason"), max_length=20, choices=Reason.choices, default=Reason.REQUESTED
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("by"),
    )
    created_at = models.DateTimeField(_("recorded at"), auto_now_add=True)

    class Meta:
        ordering = ["created_at", "pk"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gte=1), name="refund_amount_positive"),
        ]
        verbose_name = _("refund")
        verbose_name_plural = _("refunds")

    def __str__(self) -> str:
        return f"{self.provider_refund_id} ¥{self.amount:,}"


class DonationEvent(models.Model):
    """History of a donation: status changes, gifts, refunds, disputes — dated and attributed."""

    donation = models.ForeignKey(
        Donation, on_delete=models.CASCADE, related_name="events", verbose_name=_("donation")
    )
    action = models.CharField(_("action"), max_length=40)
    from_status = models.CharField(_("from status"), max_length=20, blank=True)
    to_status = models.CharField(_("to status"), max_length=20, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("by"),
        help_text=_("Empty when the change came from the payment provider."),
    )
    # What brought the change: "webhook:<event id>", "return-page", "staff", "donor" …
    source = models.CharField(_("source"), max_length=120, blank=True)
    occurred_at = models.DateTimeField(_("recorded at"), auto_now_add=True, db_index=True)
    note = models.TextField(_("note"), blank=True)

    class Meta:
        ordering = ["occurred_at", "pk"]
        verbose_name = _("donation history entry")
        verbose_name_plural = _("donation history")

    def __str__(self) -> str:
        return f"{self.donation_id} {self.action}"


class WebhookEvent(models.Model):
    """A provider event, stored under its unique id before it is acknowledged."""

    id = models.CharField(_("event id"), max_length=255, primary_key=True)
    provider = models.CharField(_("payment provider"), max_length=10, choices=Donation.Provider)
    type = models.CharField(_("type"), max_length=100, db_index=True)
    payload = models.JSONField(_("payload"))
    received_at = models.DateTimeField(_("received at"), auto_now_add=True)
    processed_at = models.DateTimeField(_("processed at"), null=True, blank=True, db_index=True)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    last_error = models.TextField(_("last error"), blank=True)
    # After a failure: not before this time (the drain backs off).
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True)

    class Meta:
        ordering = ["received_at"]
        verbose_name = _("webhook event")
        verbose_name_plural = _("webhook events")

    def __str__(self) -> str:
        return f"{self.id} {self.type}"


class ReceiptCounter(models.Model):
    """The last receipt number issued in a calendar year (the tax year): one row per year,
    locked while a number is taken, so numbers have no gaps and no duplicates."""

    year = models.PositiveIntegerField(_("year"), primary_key=True)
    last_number = models.PositiveIntegerField(_("last number"), default=0)

    class Meta:
        verbose_name = _("receipt counter")
        verbose_name_plural = _("receipt counters")

    def __str__(self) -> str:
        return f"{self.year}: {self.last_number}"


class Receipt(models.Model):
    """寄附金受領証明書: for one gift, or an annual summary of a donor's gifts in a year.

    The donor's particulars and the amount are copied when it is issued: a receipt says what
    it said on the day, whatever changes later. A refund voids it.
    """

    class Kind(models.TextChoices):
        SINGLE = "single", _("Receipt for one gift")
        ANNUAL = "annual", _("Annual summary")

    year = models.PositiveIntegerField(_("year"))
    number = models.PositiveIntegerField(_("number"))
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    # A single receipt's gift. A partial refund voids it and a new one is issued for the rest,
    # so a gift may have several receipts, of which at most one is live.
    gift = models.ForeignKey(
        Gift,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="receipts",
        verbose_name=_("gift"),
    )
    gifts = models.ManyToManyField(
        Gift, related_name="annual_receipts", blank=True, verbose_name=_("gifts")
    )
    donor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="receipts",
        verbose_name=_("donor account"),
    )
    email = models.EmailField(_("email"))
    donor_name = models.CharField(_("donor name"), max_length=200)
    donor_postal_code = models.CharField(_("postal code"), max_length=8, blank=True)
    donor_address = models.CharField(_("donor address"), max_length=300, blank=True)
    amount = models.PositiveBigIntegerField(_("amount (yen)"))
    received_on = models.DateField(_("date received"), null=True, blank=True)
    purpose = models.CharField(_("purpose"), max_length=300)
    issued_at = models.DateTimeField(_("issued at"), auto_now_add=True)
    voided_at = models.DateTimeField(_("voided at"), null=True, blank=True)
    void_reason = models.CharField(_("reason voided"), max_length=200, blank=True)
    emailed_at = models.DateTimeField(_("emailed at"), null=True, blank=True)

    class Meta:
        ordering = ["-year", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["year", "number"], name="receipt_number_unique"),
            models.CheckConstraint(condition=Q(amount__gte=1), name="receipt_amount_positive"),
            models.UniqueConstraint(
                fields=["gift"],
                condition=Q(kind="single", voided_at__isnull=True),
                name="one_live_receipt_per_gift",
            ),
            # One live annual summary per donor email and year.
            models.UniqueConstraint(
                fields=["email", "year"],
                condition=Q(kind="annual", voided_at__isnull=True),
                name="one_live_annual_receipt",
            ),
        ]
        verbose_name = _("receipt")
        verbose_name_plural = _("receipts")

    def __str__(self) -> str:
        return self.display_number

    @property
    def display_number(self) -> str:
        return f"{self.year}-{self.number:06d}"


class DemoCheckout(models.Model):
    """The demo provider's side of a checkout (what Stripe would hold): no real money moves."""

    OPEN = "open"
    PAID = "paid"

    id = models.CharField(_("session id"), max_length=64, primary_key=True)
    donation = models.OneToOneField(
        Donation, on_delete=models.CASCADE, related_name="demo_checkout", verbose_name=_("donation")
    )
    status = models.CharField(_("status"), max_length=20, default=OPEN)  # open/complete/expired
    payment_status = models.CharField(_("payment status"), max_length=20, default="unpaid")
    payment_intent_id = models.CharField(_("payment intent"), max_length=64, blank=True)
    paid_at = models.DateTimeField(_("paid at"), null=True, blank=True)
    subscription_id = models.CharField(
        _("subscription"), max_length=64, unique=True, null=True, blank=True
    )
    subscription_status = models.CharField(_("subscription status"), max_length=20, blank=True)
    invoices = models.PositiveIntegerField(_("invoices paid"), default=0)
    success_url = models.CharField(_("return address"), max_length=2000)
    cancel_url = models.CharField(_("cancel address"), max_length=2000)

    class Meta:
        verbose_name = _("demo checkout")
        verbose_name_plural = _("demo checkouts")

    def __str__(self) -> str:
        return self.id

    @property
    def first_payment_id(self) -> str:
        """A one-time gift's payment is its PaymentIntent; a monthly gift's first is invoice 1."""
        if self.subscription_id:
            return f"{self.subscription_id}_in_1"
        return self.payment_intent_id


class Payout(models.Model):
    """Money Stripe paid out of our balance to the bank, net of its fees.

    Posted once when paid (ledger key ``payout:<provider_id>``): debit bank (net), debit
    payment_fees (the fees of its balance transactions), credit stripe_receivable (gross). A
    payout that fails gives the net back to the Stripe balance (``payout:<provider_id>:failed``).
    """

    # "Pending", "Failed" and "Cancelled" are also other models' words (a budget not decided
    # yet, a bank transfer of a grant, a project): a context lets a payout's be its own.
    class Status(models.TextChoices):
        PENDING = "pending", pgettext_lazy("payout status", "Pending")
        IN_TRANSIT = "in_transit", _("In transit")
        PAID = "paid", _("Paid out")
        FAILED = "failed", pgettext_lazy("payout status", "Failed")
        CANCELED = "canceled", pgettext_lazy("payout status", "Cancelled")

    provider_id = models.CharField(_("payout at the provider"), max_length=255, unique=True)
    amount = models.BigIntegerField(_("paid to the bank (yen)"))
    fee_total = models.BigIntegerField(_("fees (yen)"), default=0)
    gross = models.BigIntegerField(_("gross (yen)"), default=0)
    arrival_date = models.DateField(_("arrival date"), null=True, blank=True, db_index=True)
    status = models.CharField(_("status"), max_length=20, choices=Status.choices)
    # The ledger entry's key once posted; the reversal's once a paid payout failed.
    entry_key = models.CharField(_("ledger entry"), max_length=200, blank=True)
    reversal_key = models.CharField(_("reversal entry"), max_length=200, blank=True)
    # What brought the last change: "webhook:<event id>", "reconciliation" …
    source = models.CharField(_("source"), max_length=120, blank=True)
    created_at = models.DateTimeField(_("recorded at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["-arrival_date", "-pk"]
        verbose_name = _("payout")
        verbose_name_plural = _("payouts")

    def __str__(self) -> str:
        return f"{self.provider_id} ¥{self.amount:,}"


class ReconciliationRun(models.Model):
    """One run of the daily reconciliation with Stripe: when, by whom, what it found."""

    class Outcome(models.TextChoices):
        CLEAN = "clean", _("No differences")
        DIFFERENCES = "differences", _("Differences found")
        NOTHING = "nothing", _("Nothing to reconcile")
        FAILED = "failed", _("Could not run")

    # Stored as a code and translated when shown: the scheduled run and staff of either
    # language write the same row, and each reader sees it in their own.
    class Note(models.TextChoices):
        DEMO_PROVIDER = "demo_provider", _("Nothing to reconcile (demo provider).")

    day = models.DateField(_("date"), db_index=True)
    window_start = models.DateField(_("payouts arriving from"), null=True, blank=True)
    outcome = models.CharField(_("outcome"), max_length=20, choices=Outcome.choices)
    payouts_checked = models.PositiveIntegerField(_("payouts checked"), default=0)
    differences = models.PositiveIntegerField(_("differences"), default=0)
    stripe_balance = models.BigIntegerField(_("Stripe balance (yen)"), null=True, blank=True)
    ledger_receivable = models.BigIntegerField(
        _("stripe_receivable in the ledger (yen)"), null=True, blank=True
    )
    note_code = models.CharField(_("note"), max_length=30, choices=Note.choices, blank=True)
    # What the provider answered when the run failed. Stored untranslated (the message's msgid,
    # see ``reconcile``) and translated for the reader by ``note_text``.
    note = models.TextField(_("provider's message"), blank=True)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("by"),
        help_text=_("Empty when the scheduled run made it."),
    )
    ran_at = models.DateTimeField(_("ran at"), auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-ran_at", "-pk"]
        verbose_name = _("reconciliation run")
        verbose_name_plural = _("reconciliation runs")

    def __str__(self) -> str:
        return f"{self.day} {self.outcome}"

    @property
    def note_text(self) -> str:
        """The note in the reader's language."""
        if self.note_code:
            return self.get_note_code_display()
        # A message we do not know (or one stored translated before note_code) shows as stored.
        return gettext(self.note) if self.note else ""


class ReconciliationDifference(models.Model):
    """A figure where Stripe and the ledger disagree, for finance staff to look into.

    One per (date, kind, reference): a second run on the same date replaces that date's open
    differences and leaves the resolved ones as they are.
    """

    class Kind(models.TextChoices):
        MISSING = "missing", _("Payout missing from the ledger")
        AMOUNT = "amount", _("Amount paid out differs")
        FEES = "fees", _("Fees differ")
        NOT_AT_STRIPE = "not_at_stripe", _("Payout in the ledger not found at Stripe")
        BALANCE = "balance", _("Stripe balance differs from the ledger")

    day = models.DateField(_("date"), db_index=True)
    run = models.ForeignKey(
        ReconciliationRun,
        on_delete=models.PROTECT,
        related_name="found",
        verbose_name=_("run"),
    )
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    # The payout's id at Stripe; empty for the balance.
    reference = models.CharField(_("reference"), max_length=255, blank=True)
    stripe_amount = models.BigIntegerField(_("Stripe (yen)"), null=True, blank=True)
    ledger_amount = models.BigIntegerField(_("ledger (yen)"), null=True, blank=True)
    # The figures behind the difference (ISO dates, whole yen), worded by ``detail_text`` in
    # the reader's language: {"arrival_date", "fees"} for a missing payout, {"arrival_date"}
    # for one not at Stripe, {"held", "in_flight", "fees"} for the balance.
    figures = models.JSONField(_("figures"), default=dict, blank=True)
    # Rows stored before ``figures``: their detail as text, in the language of whoever ran it.
    detail = models.TextField(_("detail"), blank=True)
    resolved = models.BooleanField(_("resolved"), default=False)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("resolved by"),
    )
    resolved_at = models.DateTimeField(_("resolved at"), null=True, blank=True)

    class Meta:
        ordering = ["-day", "kind", "reference"]
        constraints = [
            models.UniqueConstraint(
                fields=["day", "kind", "reference"], name="one_difference_per_day_kind_reference"
            ),
        ]
        verbose_name = _("reconciliation difference")
        verbose_name_plural = _("reconciliation differences")

    def __str__(self) -> str:
        return f"{self.day} {self.kind} {self.reference}"

    @property
    def detail_text(self) -> str:
        """How the figures add up, in the reader's language."""
        figures = self.figures or {}
        if not figures:
            return self.detail

        def yen(key: str) -> str:
            return f"{figures[key]:,}"

        if self.kind == self.Kind.MISSING:
            return gettext("Paid out on %(date)s; fees ¥%(fees)s.") % {
                "date": figures["arrival_date"],
                "fees": yen("fees"),
            }
        if self.kind == self.Kind.NOT_AT_STRIPE:
            return gettext("Arrival date %(date)s.") % {"date": figures["arrival_date"]}
        if self.kind == self.Kind.BALANCE:
            return gettext(
                "Stripe balance ¥%(held)s + payouts on their way ¥%(in_flight)s + fees not yet "
                "paid out ¥%(fees)s."
            ) % {"held": yen("held"), "in_flight": yen("in_flight"), "fees": yen("fees")}
        return self.detail
