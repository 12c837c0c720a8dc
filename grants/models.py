"""Grants and how they reach the CSO (DOMAIN.md §4): the grant, its tranches, the CSO's bank
account, transfer batches (Zengin files), and the reports that go back to the register.

Every write is in ``grants.services``; each writes a ``GrantEvent`` (or a ``BankAccountEvent``
or ``TransferBatchEvent``) saying who did what, when. Money moves only through
``fund.ledger.post_entry``; the figures kept here are the terms of a grant, not balances.
"""

from django.conf import settings
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.db.models import F, Q
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from accounts.models import Organization
from fund.models import Project

USER = settings.AUTH_USER_MODEL


class Grant(models.Model):
    """Money the foundation gives a CSO: a closed project's designated money less the fee, plus
    its matches — or an amount from the general fund for a stated purpose."""

    class Source(models.TextChoices):
        DESIGNATED = "designated", _("The project's designated money")
        GENERAL_FUND = "general_fund", _("The general fund")

    class State(models.TextChoices):
        PROPOSED = "proposed", _("Proposed")
        APPROVED = "approved", _("Approved")
        PAID = "paid", _("Paid")
        CLOSED = "closed", _("Closed")
        CANCELLED = "cancelled", _("Cancelled")

    source = models.CharField(_("paid from"), max_length=20, choices=Source.choices)
    project = models.ForeignKey(
        Project,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="grants",
        verbose_name=_("project"),
    )
    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="grants", verbose_name=_("CSO")
    )
    purpose = models.TextField(_("what the grant is for"))
    # The terms, fixed when proposed and checked again at approval. For a project grant:
    # amount = gifts − fee + matched; the fee is rounded down (in the CSO's favour).
    gifts_yen = models.PositiveBigIntegerField(_("gifts (yen)"), default=0)
    fee_rate_bp = models.PositiveIntegerField(_("fee rate (basis points)"), default=0)
    fee_yen = models.PositiveBigIntegerField(_("fee (yen)"), default=0)
    matched_yen = models.PositiveBigIntegerField(_("matches (yen)"), default=0)
    amount_yen = models.PositiveBigIntegerField(_("grant (yen)"), validators=[MinValueValidator(1)])
    ends_on = models.DateField(
        _("project ends on"), help_text=_("The final report is due within two months of it.")
    )
    state = models.CharField(
        _("state"), max_length=20, choices=State.choices, default=State.PROPOSED, db_index=True
    )
    proposed_by = models.ForeignKey(
        USER, on_delete=models.PROTECT, related_name="+", verbose_name=_("proposed by")
    )
    proposed_at = models.DateTimeField(_("proposed at"), auto_now_add=True)
    approved_by = models.ForeignKey(
        USER,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("approved by"),
    )
    approved_at = models.DateTimeField(_("approved at"), null=True, blank=True)

    class Meta:
        ordering = ["-proposed_at", "-pk"]
        constraints = [
            # Maker-checker, in the database too: the approver is never the proposer.
            models.CheckConstraint(
                condition=Q(approved_by__isnull=True) | ~Q(approved_by=F("proposed_by")),
                name="grant_approver_is_not_proposer",
            ),
            models.CheckConstraint(
                condition=(
                    Q(source="general_fund", project__isnull=True, fee_yen=0, gifts_yen=0)
                    | Q(
                        source="designated",
                        project__isnull=False,
                        amount_yen=F("gifts_yen") - F("fee_yen") + F("matched_yen"),
                    )
                ),
                name="grant_terms_add_up",
            ),
            models.CheckConstraint(condition=Q(amount_yen__gte=1), name="grant_amount_positive"),
            # One live grant per project: its designated money can be granted once.
            models.UniqueConstraint(
                fields=["project"],
                condition=Q(project__isnull=False) & ~Q(state="cancelled"),
                name="one_live_grant_per_project",
            ),
        ]
        verbose_name = _("grant")
        verbose_name_plural = _("grants")

    def __str__(self) -> str:
        return f"G-{self.pk:05d}" if self.pk else "G-new"

    def get_absolute_url(self) -> str:
        return reverse("grants:staff-grant", args=[self.pk])

    @property
    def reference(self) -> str:
        return str(self)

    @property
    def payable_account(self) -> str:
        return f"grant_payable:{self.pk}"


class Tranche(models.Model):
    """One payment of a grant, on or after its date, by bank transfer."""

    class State(models.TextChoices):
        SCHEDULED = "scheduled", _("Scheduled")
        IN_BATCH = "in_batch", _("In a transfer batch")
        PAID = "paid", _("Paid")
        CANCELLED = "cancelled", _("Cancelled")

    grant = models.ForeignKey(
        Grant, on_delete=models.CASCADE, related_name="tranches", verbose_name=_("grant")
    )
    number = models.PositiveSmallIntegerField(_("tranche"))
    amount_yen = models.PositiveBigIntegerField(
        _("amount (yen)"), validators=[MinValueValidator(1)]
    )
    due_on = models.DateField(_("pay on or after"))
    requires_report = models.BooleanField(
        _("requires the previous report accepted"),
        default=False,
        help_text=_("Not paid until every report due before this date has been accepted."),
    )
    state = models.CharField(
        _("state"), max_length=20, choices=State.choices, default=State.SCHEDULED, db_index=True
    )
    paid_on = models.DateField(_("paid on"), null=True, blank=True)

    class Meta:
        ordering = ["grant", "number"]
        constraints = [
            models.UniqueConstraint(fields=["grant", "number"], name="tranche_number_per_grant"),
            models.CheckConstraint(condition=Q(amount_yen__gte=1), name="tranche_amount_positive"),
        ]
        verbose_name = _("tranche")
        verbose_name_plural = _("tranches")

    def __str__(self) -> str:
        return f"{self.grant} #{self.number}"


class Clawback(models.Model):
    """Money the CSO must give back from a paid tranche (a cancelled grant, misuse)."""

    tranche = models.ForeignKey(
        Tranche, on_delete=models.PROTECT, related_name="clawbacks", verbose_name=_("tranche")
    )
    amount_yen = models.PositiveBigIntegerField(
        _("amount (yen)"), validators=[MinValueValidator(1)]
    )
    reason = models.TextField(_("reason"))
    recorded_by = models.ForeignKey(
        USER, on_delete=models.PROTECT, related_name="+", verbose_name=_("recorded by")
    )
    recorded_at = models.DateTimeField(_("recorded at"), auto_now_add=True)

    class Meta:
        ordering = ["recorded_at", "pk"]
        constraints = [
            models.CheckConstraint(condition=Q(amount_yen__gte=1), name="clawback_amount_positive")
        ]
        verbose_name = _("clawback")
        verbose_name_plural = _("clawbacks")

    def __str__(self) -> str:
        return f"{self.tranche} −¥{self.amount_yen:,}"


class Report(models.Model):
    """A report the CSO owes on its grant: interim or final."""

    class Kind(models.TextChoices):
        INTERIM = "interim", _("Interim report")
        FINAL = "final", _("Final report")

    class State(models.TextChoices):
        DUE = "due", _("Due")
        SUBMITTED = "submitted", _("Submitted")
        CHANGES_REQUESTED = "changes_requested", _("Changes requested")
        ACCEPTED = "accepted", _("Accepted")

    grant = models.ForeignKey(
        Grant, on_delete=models.CASCADE, related_name="reports", verbose_name=_("grant")
    )
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    due_on = models.DateField(_("due on"))
    state = models.CharField(
        _("state"), max_length=20, choices=State.choices, default=State.DUE, db_index=True
    )
    narrative = models.TextField(_("what was done"), blank=True)
    outcomes = models.TextField(_("outcomes"), blank=True)
    spent_yen = models.PositiveBigIntegerField(_("money spent (yen)"), null=True, blank=True)
    submitted_by = models.ForeignKey(
        USER,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("submitted by"),
    )
    submitted_at = models.DateTimeField(_("submitted at"), null=True, blank=True)
    reviewed_by = models.ForeignKey(
        USER,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("reviewed by"),
    )
    reviewed_at = models.DateTimeField(_("reviewed at"), null=True, blank=True)
    review_note = models.TextField(_("officer's note"), blank=True)

    class Meta:
        ordering = ["due_on", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["grant"], condition=Q(kind="final"), name="one_final_report_per_grant"
            )
        ]
        verbose_name = _("report")
        verbose_name_plural = _("reports")

    def __str__(self) -> str:
        return f"{self.grant} {self.get_kind_display()}"


def _attachment_path(instance: "ReportAttachment", filename: str) -> str:
    # Under the grant, never served as a public file: a view checks who may read it.
    return f"grants/{instance.report.grant_id}/reports/{instance.report_id}/{filename}"


class ReportAttachment(models.Model):
    report = models.ForeignKey(
        Report, on_delete=models.CASCADE, related_name="attachments", verbose_name=_("report")
    )
    file = models.FileField(_("file"), upload_to=_attachment_path)
    name = models.CharField(_("file name"), max_length=200)
    uploaded_by = models.ForeignKey(
        USER, on_delete=models.PROTECT, related_name="+", verbose_name=_("uploaded by")
    )
    uploaded_at = models.DateTimeField(_("uploaded at"), auto_now_add=True)

    class Meta:
        ordering = ["uploaded_at", "pk"]
        verbose_name = _("attachment")
        verbose_name_plural = _("attachments")

    def __str__(self) -> str:
        return self.name


class ReportReminder(models.Model):
    """A reminder sent about a report — one per report and moment, so the beat job can run
    twice without mailing twice."""

    report = models.ForeignKey(
        Report, on_delete=models.CASCADE, related_name="reminders", verbose_name=_("report")
    )
    moment = models.CharField(_("moment"), max_length=20)  # e.g. "before_14", "after_7"
    sent_at = models.DateTimeField(_("sent at"), auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["report", "moment"], name="one_reminder_per_moment")
        ]
        verbose_name = _("report reminder")
        verbose_name_plural = _("report reminders")

    def __str__(self) -> str:
        return f"{self.report} {self.moment}"


class GrantEvent(models.Model):
    """History of a grant, its tranches and its reports: dated and attributed."""

    grant = models.ForeignKey(
        Grant, on_delete=models.CASCADE, related_name="events", verbose_name=_("grant")
    )
    action = models.CharField(_("action"), max_length=40)
    from_state = models.CharField(_("from state"), max_length=20, blank=True)
    to_state = models.CharField(_("to state"), max_length=20, blank=True)
    tranche = models.ForeignKey(
        Tranche, on_delete=models.CASCADE, null=True, blank=True, related_name="events"
    )
    report = models.ForeignKey(
        Report, on_delete=models.CASCADE, null=True, blank=True, related_name="events"
    )
    actor = models.ForeignKey(
        USER,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("by"),
    )
    source = models.CharField(_("source"), max_length=50, blank=True)
    note = models.TextField(_("note"), blank=True)
    occurred_at = models.DateTimeField(_("recorded at"), auto_now_add=True)

    class Meta:
        ordering = ["occurred_at", "pk"]
        verbose_name = _("grant history entry")
        verbose_name_plural = _("grant history")

    def __str__(self) -> str:
        return f"{self.grant} {self.action}"


digits = {
    4: RegexValidator(r"^\d{4}$", _("Four digits.")),
    3: RegexValidator(r"^\d{3}$", _("Three digits.")),
    7: RegexValidator(r"^\d{7}$", _("Seven digits.")),
}


class BankAccount(models.Model):
    """Where a CSO's grants are paid. A new or changed account is used only once a second
    member of the foundation's staff (not whoever entered it) has confirmed it."""

    class AccountType(models.TextChoices):
        ORDINARY = "1", _("Ordinary (普通)")
        CURRENT = "2", _("Current (当座)")
        SAVINGS = "4", _("Savings (貯蓄)")

    class State(models.TextChoices):
        PENDING = "pending", _("Awaiting confirmation")
        CONFIRMED = "confirmed", _("Confirmed")
        REPLACED = "replaced", _("Replaced")
        REJECTED = "rejected", _("Rejected")

    organization = models.ForeignKey(
        Organization,
        on_delete=models.PROTECT,
        related_name="bank_accounts",
        verbose_name=_("organisation"),
    )
    bank_code = models.CharField(_("bank code"), max_length=4, validators=[digits[4]])
    branch_code = models.CharField(_("branch code"), max_length=3, validators=[digits[3]])
    account_type = models.CharField(
        _("account type"), max_length=1, choices=AccountType.choices, default="1"
    )
    account_number = models.CharField(_("account number"), max_length=7, validators=[digits[7]])
    # Normalised to the half-width kana the banks accept (grants.zengin.normalize_kana).
    holder_kana = models.CharField(_("account holder (kana)"), max_length=30)
    bank_name_kana = models.CharField(_("bank (kana)"), max_length=15)
    branch_name_kana = models.CharField(_("branch (kana)"), max_length=15)
    bank_name = models.CharField(_("bank"), max_length=60)
    branch_name = models.CharField(_("branch"), max_length=60)
    state = models.CharField(
        _("state"), max_length=20, choices=State.choices, default=State.PENDING, db_index=True
    )
    submitted_by = models.ForeignKey(
        USER, on_delete=models.PROTECT, related_name="+", verbose_name=_("entered by")
    )
    submitted_at = models.DateTimeField(_("entered at"), auto_now_add=True)
    confirmed_by = models.ForeignKey(
        USER,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("confirmed by"),
    )
    confirmed_at = models.DateTimeField(_("confirmed at"), null=True, blank=True)

    class Meta:
        ordering = ["organization", "-submitted_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization"],
                condition=Q(state="confirmed"),
                name="one_confirmed_account_per_organization",
            ),
            models.CheckConstraint(
                condition=Q(confirmed_by__isnull=True) | ~Q(confirmed_by=F("submitted_by")),
                name="bank_account_confirmed_by_someone_else",
            ),
        ]
        verbose_name = _("bank account")
        verbose_name_plural = _("bank accounts")

    def __str__(self) -> str:
        return f"{self.bank_name} {self.branch_name} {self.get_account_type_display()} " + (
            f"***{self.account_number[-4:]}"
        )

    @property
    def masked_number(self) -> str:
        return "***" + self.account_number[-4:]


class BankAccountEvent(models.Model):
    account = models.ForeignKey(
        BankAccount, on_delete=models.CASCADE, related_name="events", verbose_name=_("account")
    )
    action = models.CharField(_("action"), max_length=30)
    actor = models.ForeignKey(
        USER, on_delete=models.PROTECT, related_name="+", verbose_name=_("by")
    )
    note = models.TextField(_("note"), blank=True)
    occurred_at = models.DateTimeField(_("recorded at"), auto_now_add=True)

    class Meta:
        ordering = ["occurred_at", "pk"]
        verbose_name = _("bank account history entry")
        verbose_name_plural = _("bank account history")

    def __str__(self) -> str:
        return f"{self.account_id} {self.action}"


class TransferBatch(models.Model):
    """Due tranches collected for one transfer date; its Zengin file is made once, when the
    batch is exported, and kept as it was handed to the bank."""

    class State(models.TextChoices):
        DRAFT = "draft", _("Draft")
        EXPORTED = "exported", _("File downloaded")
        SETTLED = "settled", _("Settled")

    transfer_date = models.DateField(_("transfer date"))
    state = models.CharField(
        _("state"), max_length=20, choices=State.choices, default=State.DRAFT, db_index=True
    )
    file = models.BinaryField(_("Zengin file"), null=True, blank=True, editable=False)
    created_by = models.ForeignKey(
        USER, on_delete=models.PROTECT, related_name="+", verbose_name=_("created by")
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["-transfer_date", "-pk"]
        verbose_name = _("transfer batch")
        verbose_name_plural = _("transfer batches")

    def __str__(self) -> str:
        return f"B-{self.pk:05d}" if self.pk else "B-new"

    @property
    def filename(self) -> str:
        return f"zengin-{self.transfer_date:%Y%m%d}-{self}.txt"


class TransferLine(models.Model):
    """One tranche in one batch, to the bank account confirmed when the batch was made."""

    class State(models.TextChoices):
        PENDING = "pending", _("Awaiting the bank")
        PAID = "paid", _("Paid")
        FAILED = "failed", _("Failed")

    batch = models.ForeignKey(
        TransferBatch, on_delete=models.PROTECT, related_name="lines", verbose_name=_("batch")
    )
    tranche = models.ForeignKey(
        Tranche, on_delete=models.PROTECT, related_name="transfer_lines", verbose_name=_("tranche")
    )
    bank_account = models.ForeignKey(
        BankAccount, on_delete=models.PROTECT, related_name="+", verbose_name=_("bank account")
    )
    amount_yen = models.PositiveBigIntegerField(_("amount (yen)"))
    state = models.CharField(
        _("state"), max_length=20, choices=State.choices, default=State.PENDING, db_index=True
    )
    failure_reason = models.TextField(_("why it failed"), blank=True)

    class Meta:
        ordering = ["batch", "pk"]
        constraints = [
            # A tranche is in at most one batch that has not failed it: never paid twice.
            models.UniqueConstraint(
                fields=["tranche"],
                condition=~Q(state="failed"),
                name="one_live_transfer_per_tranche",
            ),
        ]
        verbose_name = _("transfer line")
        verbose_name_plural = _("transfer lines")

    def __str__(self) -> str:
        return f"{self.batch} {self.tranche}"


class TransferBatchEvent(models.Model):
    batch = models.ForeignKey(
        TransferBatch, on_delete=models.CASCADE, related_name="events", verbose_name=_("batch")
    )
    action = models.CharField(_("action"), max_length=30)
    actor = models.ForeignKey(
        USER, on_delete=models.PROTECT, related_name="+", verbose_name=_("by")
    )
    note = models.TextField(_("note"), blank=True)
    occurred_at = models.DateTimeField(_("recorded at"), auto_now_add=True)

    class Meta:
        ordering = ["occurred_at", "pk"]
        verbose_name = _("transfer batch history entry")
        verbose_name_plural = _("transfer batch history")

    def __str__(self) -> str:
        return f"{self.batch} {self.action}"
