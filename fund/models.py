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

from accounts.models import GovernmentBody, Organization
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


class MatchPool(models.Model):
    """A sponsor's pledge that multiplies citizens' gifts to eligible projects (DOMAIN.md §2).

    What was pledged, paid, matched and left is read from the ledger (``match_pool:<id>``,
    ``pledge_receivable:<id>``), never stored here. Rules change only through
    ``fund.matching``; allocations happen there when a gift succeeds.
    """

    class Scope(models.TextChoices):
        ALL = "all", _("All projects")
        PROJECTS = "projects", _("Chosen projects")
        BODY = "body", _("Projects from one government body's proposals")
        FISCAL_YEAR = "fiscal_year", _("Projects from one fiscal year's proposals")

    class Leftover(models.TextChoices):
        SPONSOR = "sponsor", _("Back to the sponsor")
        GENERAL_FUND = "general_fund", _("To the general fund (the sponsor agreed)")

    class State(models.TextChoices):
        ACTIVE = "active", _("Active")
        ENDED = "ended", _("Ended")

    sponsor = models.ForeignKey(
        Organization,
        on_delete=models.PROTECT,
        related_name="match_pools",
        verbose_name=_("sponsor"),
    )
    name = models.CharField(_("public name"), max_length=200)
    # "gift : match": 1:1 adds ¥1 per ¥1 given, 1:2 adds ¥2, 2:1 adds ¥1 per ¥2.
    ratio_gift = models.PositiveIntegerField(
        _("ratio: yen given"), default=1, validators=[MinValueValidator(1)]
    )
    ratio_match = models.PositiveIntegerField(
        _("ratio: yen matched"), default=1, validators=[MinValueValidator(1)]
    )
    cap_per_gift = models.PositiveBigIntegerField(
        _("most matched per gift (yen)"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text=_("Leave empty for no cap."),
    )
    cap_per_donor = models.PositiveBigIntegerField(
        _("most matched per donor (yen)"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text=_("Counted by account and by email address. Leave empty for no cap."),
    )
    scope = models.CharField(
        _("eligible projects"), max_length=20, choices=Scope.choices, default=Scope.ALL
    )
    projects = models.ManyToManyField(
        Project, blank=True, related_name="match_pools", verbose_name=_("chosen projects")
    )
    body = models.ForeignKey(
        GovernmentBody,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("government body"),
    )
    fiscal_year = models.PositiveSmallIntegerField(
        _("fiscal year of the proposals"), null=True, blank=True
    )
    starts_at = models.DateTimeField(_("matching starts"))
    ends_at = models.DateTimeField(_("matching ends"))
    priority = models.PositiveSmallIntegerField(
        _("priority"), default=0, help_text=_("Higher numbers match first.")
    )
    leftover = models.CharField(
        _("money left at the end"),
        max_length=20,
        choices=Leftover.choices,
        default=Leftover.SPONSOR,
    )
    sponsor_consents_to_general_fund = models.BooleanField(
        _("the sponsor agreed that what is left goes to the general fund"), default=False
    )
    state = models.CharField(
        _("state"), max_length=10, choices=State.choices, default=State.ACTIVE, db_index=True
    )
    ended_at = models.DateTimeField(_("ended at"), null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        # The order in which pools match a gift: highest priority, then the one ending soonest.
        ordering = ["-priority", "ends_at", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(ends_at__gt=models.F("starts_at")),
                name="pool_window_ends_after_it_starts",
            ),
            models.CheckConstraint(
                condition=models.Q(ratio_gift__gte=1, ratio_match__gte=1),
                name="pool_ratio_positive",
            ),
            models.CheckConstraint(
                condition=(models.Q(cap_per_gift__isnull=True) | models.Q(cap_per_gift__gte=1))
                & (models.Q(cap_per_donor__isnull=True) | models.Q(cap_per_donor__gte=1)),
                name="pool_caps_positive",
            ),
            models.CheckConstraint(
                condition=~models.Q(leftover="general_fund")
                | models.Q(sponsor_consents_to_general_fund=True),
                name="pool_general_fund_needs_consent",
            ),
            models.CheckConstraint(
                condition=(~models.Q(scope="body") | models.Q(body__isnull=False))
                & (~models.Q(scope="fiscal_year") | models.Q(fiscal_year__isnull=False)),
                name="pool_scope_complete",
            ),
        ]
        verbose_name = _("match pool")
        verbose_name_plural = _("match pools")

    def __str__(self) -> str:
        return self.name

    @property
    def ratio_label(self) -> str:
        return f"{self.ratio_gift}:{self.ratio_match}"

    @property
    def account(self) -> str:
        return f"{LedgerAccount.Kind.MATCH_POOL}:{self.pk}"

    @property
    def receivable_account(self) -> str:
        return f"{LedgerAccount.Kind.PLEDGE_RECEIVABLE}:{self.pk}"


class MatchPoolEvent(models.Model):
    """History of a pool: created, topped up, paid, changed, ended — dated and attributed."""

    class Action(models.TextChoices):
        CREATED = "created", _("Pledged")
        TOPPED_UP = "topped_up", _("Pledge increased")
        PAYMENT_RECEIVED = "payment_received", _("Payment received")
        CHANGED = "changed", _("Changed")
        ENDED = "ended", _("Ended")

    pool = models.ForeignKey(
        MatchPool, on_delete=models.PROTECT, related_name="events", verbose_name=_("match pool")
    )
    action = models.CharField(_("action"), max_length=20, choices=Action.choices)
    amount = models.PositiveBigIntegerField(_("amount (yen)"), null=True, blank=True)
    # The sponsor's bank transfer reference: a payment is recorded once per reference.
    reference = models.CharField(_("reference"), max_length=100, blank=True)
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
        constraints = [
            models.UniqueConstraint(
                fields=["pool", "reference"],
                condition=models.Q(action="payment_received"),
                name="pool_payment_once_per_reference",
            ),
        ]
        verbose_name = _("match pool history entry")
        verbose_name_plural = _("match pool history")

    def __str__(self) -> str:
        return f"{self.pool_id} {self.action}"


class MatchAllocation(models.Model):
    """Money a pool added to one gift. Its ledger entry has the key ``match:<pool>:<gift>``.

    The gift is named by its payment id (``gift_key``): the fund does not know the donations app.
    The donor is kept only as an account id and a hash of the email, for the per-donor cap.
    """

    pool = models.ForeignKey(
        MatchPool, on_delete=models.PROTECT, related_name="allocations", verbose_name=_("pool")
    )
    gift_key = models.CharField(_("gift (payment)"), max_length=255, db_index=True)
    project = models.ForeignKey(
        Project,
        on_delete=models.PROTECT,
        related_name="match_allocations",
        verbose_name=_("project"),
    )
    donor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("donor account"),
    )
    donor_email_hash = models.CharField(_("donor (email hash)"), max_length=64)
    gift_amount = models.PositiveBigIntegerField(_("gift (yen)"))
    amount = models.PositiveBigIntegerField(_("matched (yen)"))
    gift_received_at = models.DateTimeField(_("gift received at"))
    created_at = models.DateTimeField(_("matched at"), auto_now_add=True)

    class Meta:
        ordering = ["created_at", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["pool", "gift_key"], name="match_once_per_pool_gift"),
            models.CheckConstraint(condition=models.Q(amount__gte=1), name="match_amount_positive"),
        ]
        indexes = [
            models.Index(fields=["pool", "donor_email_hash"], name="match_donor_email_idx"),
            models.Index(fields=["pool", "donor_user"], name="match_donor_user_idx"),
        ]
        verbose_name = _("match")
        verbose_name_plural = _("matches")

    def __str__(self) -> str:
        return f"{self.pool_id} {self.gift_key} ¥{self.amount:,}"


class MatchRelease(models.Model):
    """Match given back to its pool after a refund or a lost dispute, once per refund.

    Its ledger entry has the same ``key`` (``match-release:<pool>:<refund>``)."""

    allocation = models.ForeignKey(
        MatchAllocation, on_delete=models.PROTECT, related_name="releases", verbose_name=_("match")
    )
    key = models.CharField(_("idempotency key"), max_length=300, unique=True)
    amount = models.PositiveBigIntegerField(_("released (yen)"))
    created_at = models.DateTimeField(_("released at"), auto_now_add=True)

    class Meta:
        ordering = ["created_at", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(amount__gte=1), name="release_amount_positive"
            ),
        ]
        verbose_name = _("match release")
        verbose_name_plural = _("match releases")

    def __str__(self) -> str:
        return self.key
