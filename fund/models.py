"""Designated-donation projects and the double-entry ledger (DOMAIN.md §2).

Money lives only in ``Posting`` rows: every movement is a ``JournalEntry`` whose postings sum to
zero (debits positive, credits negative), written by ``fund.ledger.post_entry`` and nothing else.
Balances are sums of postings; no total is kept anywhere else.
"""

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from proposals.models import Proposal

DEFAULT_FEE_RATE_BP = 1500  # 15%, in basis points


class Project(models.Model):
    """A designated-donation project: one adopted proposal that the government did not budget."""

    class State(models.TextChoices):
        DRAFT = "draft", _("Draft")
        OPEN = "open", _("Open for gifts")
        CLOSED = "closed", _("Closed")
        GRANTED = "granted", _("Granted")
        CANCELLED = "cancelled", _("Cancelled")

    proposal = models.OneToOneField(
        Proposal, on_delete=models.PROTECT, related_name="project", verbose_name=_("proposal")
    )
    title = models.CharField(_("public title"), max_length=200)
    description = models.TextField(_("description"))
    goal_yen = models.PositiveBigIntegerField(_("goal (yen)"), validators=[MinValueValidator(1)])
    opens_at = models.DateTimeField(_("fundraising opens"))
    closes_at = models.DateTimeField(_("fundraising closes"))
    fee_rate_bp = models.PositiveIntegerField(
        _("fee rate (basis points)"),
        default=DEFAULT_FEE_RATE_BP,
        validators=[MaxValueValidator(10_000)],
        help_text=_("1,500 = 15%."),
    )
    close_at_goal = models.BooleanField(_("close when the goal is reached"), default=False)
    state = models.CharField(
        _("state"), max_length=20, choices=State.choices, default=State.DRAFT, db_index=True
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("listed by"),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["closes_at", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(closes_at__gt=models.F("opens_at")),
                name="project_window_ends_after_it_starts",
            ),
            models.CheckConstraint(
                condition=models.Q(fee_rate_bp__lte=10_000), name="project_fee_rate_at_most_100"
            ),
        ]
        verbose_name = _("project")
        verbose_name_plural = _("projects")

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        # The public page lives with the gift pages (a URL name, not an import of donations).
        return reverse("donations:project-detail", args=[self.pk])


class ProjectEvent(models.Model):
    """History: every change of a project's state, dated and attributed."""

    project = models.ForeignKey(
        Project, on_delete=models.CASCADE, related_name="events", verbose_name=_("project")
    )
    action = models.CharField(_("action"), max_length=30)
    from_state = models.CharField(_("from state"), max_length=20, blank=True)
    to_state = models.CharField(_("to state"), max_length=20)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("by"),
    )
    source = models.CharField(_("source"), max_length=50, blank=True)
    occurred_at = models.DateTimeField(_("recorded at"), auto_now_add=True)
    note = models.TextField(_("note"), blank=True)

    class Meta:
        ordering = ["occurred_at", "pk"]
        verbose_name = _("project history entry")
        verbose_name_plural = _("project history")

    def __str__(self) -> str:
        return f"{self.project_id} {self.action}"


class LedgerAccount(models.Model):
    """An account of the ledger, named as in DOMAIN.md §2 (``designated:<project id>`` …)."""

    class Kind(models.TextChoices):
        STRIPE_RECEIVABLE = "stripe_receivable", _("Stripe receivable")
        BANK = "bank", _("Bank")
        DESIGNATED = "designated", _("Designated (a project)")
        GENERAL_FUND = "general_fund", _("General fund")
        MATCH_POOL = "match_pool", _("Match pool")
        PLEDGE_RECEIVABLE = "pledge_receivable", _("Pledge receivable")
        GRANT_PAYABLE = "grant_payable", _("Grant payable")
        FEE_INCOME = "fee_income", _("Fee income")
        PAYMENT_FEES = "payment_fees", _("Payment fees")

    # Money held for a purpose: its balance (credit side) may never go below zero.
    FUNDS = (Kind.DESIGNATED, Kind.GENERAL_FUND, Kind.MATCH_POOL)
    # Kinds that exist once per object; the others exist once.
    PER_OBJECT = (Kind.DESIGNATED, Kind.MATCH_POOL, Kind.PLEDGE_RECEIVABLE, Kind.GRANT_PAYABLE)

    code = models.CharField(_("code"), max_length=80, unique=True)
    kind = models.CharField(_("kind"), max_length=30, choices=Kind.choices)
    project = models.ForeignKey(
        Project,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="ledger_accounts",
        verbose_name=_("project"),
    )

    class Meta:
        ordering = ["code"]
        verbose_name = _("ledger account")
        verbose_name_plural = _("ledger accounts")

    def __str__(self) -> str:
        return self.code

    @property
    def is_fund(self) -> bool:
        return self.kind in self.FUNDS


class JournalEntry(models.Model):
    """One money movement: a group of postings that balance. ``key`` makes it happen once."""

    kind = models.CharField(_("kind"), max_length=40)
    # What the entry records, e.g. "gift:42:succeeded". Unique: the same event posts once,
    # however often a webhook or a retry brings it.
    key = models.CharField(_("idempotency key"), max_length=200, unique=True)
    memo = models.CharField(_("memo"), max_length=300, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("by"),
    )
    created_at = models.DateTimeField(_("recorded at"), auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["created_at", "pk"]
        verbose_name = _("journal entry")
        verbose_name_plural = _("journal entries")

    def __str__(self) -> str:
        return self.key


class Posting(models.Model):
    """One line of an entry: a debit (positive) or a credit (negative) to one account, in yen."""

    entry = models.ForeignKey(
        JournalEntry, on_delete=models.PROTECT, related_name="postings", verbose_name=_("entry")
    )
    account = models.ForeignKey(
        LedgerAccount,
        on_delete=models.PROTECT,
        related_name="postings",
        verbose_name=_("account"),
    )
    amount = models.BigIntegerField(_("amount (yen; debit +, credit −)"))

    class Meta:
        constraints = [
            models.CheckConstraint(condition=~models.Q(amount=0), name="posting_amount_not_zero"),
        ]
        indexes = [models.Index(fields=["account", "entry"], name="posting_account_idx")]
        verbose_name = _("posting")
        verbose_name_plural = _("postings")

    def __str__(self) -> str:
        return f"{self.account.code} {self.amount:+d}"
