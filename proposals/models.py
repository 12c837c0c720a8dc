"""The collaboration-testing register: government bodies, their operations, and proposals.

The eight steps of collaboration testing (DOMAIN.md §1): steps 1–3 belong to the catalogue
(self-inspection and publication of operations, orientation sessions); steps 4–8 are the life of
a proposal, held in ``Proposal.state`` and changed only by ``proposals.services``.
"""

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from accounts.models import GovernmentBody, Organization

from .fiscal import era_label, fiscal_year_of

fiscal_year_validators = [MinValueValidator(1989)]


class Department(models.Model):
    body = models.ForeignKey(
        GovernmentBody, on_delete=models.PROTECT, related_name="departments", verbose_name=_("body")
    )
    name = models.CharField(_("name"), max_length=200)

    class Meta:
        ordering = ["body__code", "name"]
        constraints = [
            models.UniqueConstraint(fields=["body", "name"], name="department_unique_per_body")
        ]
        verbose_name = _("department")
        verbose_name_plural = _("departments")

    def __str__(self) -> str:
        return self.name


class Participation(models.Model):
    """A municipality registered as taking part in collaboration testing in a fiscal year."""

    fiscal_year = models.PositiveSmallIntegerField(
        _("fiscal year"), validators=fiscal_year_validators
    )
    body = models.ForeignKey(
        GovernmentBody,
        on_delete=models.PROTECT,
        related_name="participations",
        verbose_name=_("body"),
    )

    class Meta:
        ordering = ["fiscal_year", "body__code"]
        constraints = [
            models.UniqueConstraint(
                fields=["fiscal_year", "body"], name="participation_unique_per_year"
            )
        ]
        verbose_name = _("participation")
        verbose_name_plural = _("participations")

    def __str__(self) -> str:
        return f"FY{self.fiscal_year} {self.body}"


class Operation(models.Model):
    """One operation of a body's catalogue for a fiscal year (steps 1 and 2)."""

    fiscal_year = models.PositiveSmallIntegerField(
        _("fiscal year"), validators=fiscal_year_validators
    )
    body = models.ForeignKey(
        GovernmentBody, on_delete=models.PROTECT, related_name="operations", verbose_name=_("body")
    )
    department = models.ForeignKey(
        Department,
        on_delete=models.PROTECT,
        related_name="operations",
        null=True,
        blank=True,
        verbose_name=_("department"),
    )
    code = models.CharField(_("operation code"), max_length=50)
    title = models.CharField(_("title"), max_length=300)
    summary = models.TextField(_("summary"), blank=True)
    budget_yen = models.PositiveBigIntegerField(_("budget (yen)"), null=True, blank=True)
    # Step 1, self-inspection: who does the work now and where a CSO could come in.
    current_provider = models.CharField(_("current provider"), max_length=200, blank=True)
    collaboration_potential = models.TextField(_("room for collaboration"), blank=True)
    published_on = models.DateField(_("published on"), null=True, blank=True)

    class Meta:
        ordering = ["-fiscal_year", "body_id", "code"]
        constraints = [
            models.UniqueConstraint(
                fields=["fiscal_year", "body", "code"], name="operation_unique_code_per_year"
            )
        ]
        indexes = [
            # The catalogue's default order, so a page is an index range scan at any size.
            models.Index(fields=["-fiscal_year", "body", "code"], name="operation_catalogue_idx")
        ]
        verbose_name = _("operation")
        verbose_name_plural = _("operations")

    def __str__(self) -> str:
        return f"{self.code} {self.title}"

    @property
    def era_label(self) -> str:
        return era_label(self.fiscal_year)


class OrientationSession(models.Model):
    """Step 3: a session where citizens and CSOs learn the catalogue."""

    body = models.ForeignKey(
        GovernmentBody,
        on_delete=models.PROTECT,
        related_name="orientation_sessions",
        verbose_name=_("body"),
    )
    fiscal_year = models.PositiveSmallIntegerField(
        _("fiscal year"), validators=fiscal_year_validators
    )
    held_on = models.DateField(_("held on"))
    venue = models.CharField(_("venue"), max_length=200, blank=True)
    attendance = models.PositiveIntegerField(_("attendance"), null=True, blank=True)

    class Meta:
        ordering = ["-held_on"]
        verbose_name = _("orientation session")
        verbose_name_plural = _("orientation sessions")

    def __str__(self) -> str:
        return f"{self.body} {self.held_on}"


class Proposal(models.Model):
    """A proposal letter from an organisation to one body (steps 4–8)."""

    class State(models.TextChoices):
        RECEIVED = "received", _("4. Proposal received")
        CONSULTATION = "consultation", _("5. In consultation")
        RESPONDED = "responded", _("6. Response given")
        CONTRACTED = "contracted", _("7. Contracted")
        ASSESSED = "assessed", _("8. Assessed")
        WITHDRAWN = "withdrawn", _("Withdrawn")

    class Decision(models.TextChoices):
        ADOPTED = "adopted", _("Adopted")
        PARTIALLY_ADOPTED = "partially_adopted", _("Partially adopted")
        NOT_ADOPTED = "not_adopted", _("Not adopted")
        NOTED = "noted", _("Noted as an opinion")
        WITHDRAWN = "withdrawn", _("Withdrawn")

    ADOPTED_DECISIONS = (Decision.ADOPTED, Decision.PARTIALLY_ADOPTED)

    class BudgetProvision(models.TextChoices):
        YES = "yes", _("Budgeted")
        NO = "no", _("Not budgeted")
        PENDING = "pending", _("Pending")

    reference = models.CharField(_("reference"), max_length=50, unique=True)
    received_on = models.DateField(_("received on"))
    # Derived from received_on in save(); stored so statistics can group on it.
    fiscal_year = models.PositiveSmallIntegerField(_("fiscal year"), editable=False, db_index=True)
    body = models.ForeignKey(
        GovernmentBody, on_delete=models.PROTECT, related_name="proposals", verbose_name=_("body")
    )
    operation = models.ForeignKey(
        Operation,
        on_delete=models.PROTECT,
        related_name="proposals",
        null=True,
        blank=True,
        verbose_name=_("operation"),
        help_text=_("Empty for a proposal of a new project."),
    )
    organization = models.ForeignKey(
        Organization,
        on_delete=models.PROTECT,
        related_name="proposals",
        verbose_name=_("proposing organisation"),
    )
    title = models.CharField(_("title"), max_length=300)
    summary = models.TextField(_("summary"), blank=True)
    # The proposal letter as submitted (PDF). Private: served only through a view that asks
    # accounts.policy ("proposal.view_private"), never from a public media URL.
    letter = models.FileField(_("proposal letter (PDF)"), upload_to="letters/%Y/", blank=True)
    state = models.CharField(
        _("state"), max_length=20, choices=State.choices, default=State.RECEIVED, db_index=True
    )
    decision = models.CharField(_("decision"), max_length=20, choices=Decision.choices, blank=True)
    decided_on = models.DateField(_("decided on"), null=True, blank=True)
    decision_reason = models.TextField(_("reasons for the decision"), blank=True)
    planned_implementation_year = models.PositiveSmallIntegerField(
        _("planned implementation fiscal year"), null=True, blank=True
    )
    budget_provision = models.CharField(
        _("budget provision"),
        max_length=10,
        choices=BudgetProvision.choices,
        default=BudgetProvision.PENDING,
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["-received_on", "reference"]
        constraints = [
            # A decision of "withdrawn" and the withdrawn state always go together.
            models.CheckConstraint(
                condition=(models.Q(state="withdrawn") & models.Q(decision="withdrawn"))
                | (~models.Q(state="withdrawn") & ~models.Q(decision="withdrawn")),
                name="proposal_withdrawn_state_matches_decision",
            ),
        ]
        indexes = [
            models.Index(fields=["fiscal_year", "body"], name="proposal_year_body_idx"),
            # The register's default order, so a list page does not sort every proposal.
            models.Index(fields=["-received_on", "reference"], name="proposal_register_idx"),
        ]
        verbose_name = _("proposal")
        verbose_name_plural = _("proposals")

    def __str__(self) -> str:
        return f"{self.reference} {self.title}"

    def save(self, *args, **kwargs):
        self.fiscal_year = fiscal_year_of(self.received_on)
        super().save(*args, **kwargs)

    def get_absolute_url(self) -> str:
        return reverse("proposals:proposal-detail", args=[self.pk])

    @property
    def is_adopted(self) -> bool:
        return self.decision in self.ADOPTED_DECISIONS

    @property
    def era_label(self) -> str:
        return era_label(self.fiscal_year)


class ProposalEvent(models.Model):
    """History: one row for every change to a proposal, dated and attributed."""

    proposal = models.ForeignKey(
        Proposal, on_delete=models.CASCADE, related_name="events", verbose_name=_("proposal")
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
        help_text=_("Empty when the change came from an import or the system."),
    )
    source = models.CharField(_("source"), max_length=50, blank=True)
    occurred_at = models.DateTimeField(_("recorded at"), auto_now_add=True, db_index=True)
    # The day the step itself happened (received, met, decided, signed, assessed). For records
    # imported later it differs from occurred_at, which is when the row was written.
    effective_on = models.DateField(_("date of the step"), null=True, blank=True)
    note = models.TextField(_("note"), blank=True)
    changes = models.JSONField(_("changes"), default=dict, blank=True)

    class Meta:
        ordering = ["occurred_at", "pk"]
        verbose_name = _("proposal history entry")
        verbose_name_plural = _("proposal history")

    def __str__(self) -> str:
        return f"{self.proposal.reference} {self.action}"


class Consultation(models.Model):
    """Step 5: a dated meeting between the government and the proposer."""

    proposal = models.ForeignKey(
        Proposal,
        on_delete=models.CASCADE,
        related_name="consultations",
        verbose_name=_("proposal"),
    )
    held_on = models.DateField(_("held on"))
    notes = models.TextField(_("notes"), blank=True)

    class Meta:
        ordering = ["held_on", "pk"]
        verbose_name = _("consultation")
        verbose_name_plural = _("consultations")

    def __str__(self) -> str:
        return f"{self.proposal.reference} {self.held_on}"


class Contract(models.Model):
    """Step 7: how an adopted proposal is carried out."""

    class Kind(models.TextChoices):
        COMMISSION = "commission", _("Commission")
        SUBSIDY = "subsidy", _("Subsidy")
        JOINT = "joint", _("Joint project")
        OTHER = "other", _("Other")

    proposal = models.OneToOneField(
        Proposal, on_delete=models.CASCADE, related_name="contract", verbose_name=_("proposal")
    )
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    signed_on = models.DateField(_("signed on"))
    amount_yen = models.PositiveBigIntegerField(_("amount (yen)"), null=True, blank=True)

    class Meta:
        verbose_name = _("contract")
        verbose_name_plural = _("contracts")

    def __str__(self) -> str:
        return f"{self.proposal.reference} {self.get_kind_display()}"


class Assessment(models.Model):
    """Step 8: the evaluation after implementation."""

    proposal = models.OneToOneField(
        Proposal, on_delete=models.CASCADE, related_name="assessment", verbose_name=_("proposal")
    )
    assessed_on = models.DateField(_("assessed on"))
    summary = models.TextField(_("outcome"))
    # Where the civic fund paid for it: the grant's figures and the CSO's final report, written
    # by the fund when the report is accepted (``record_fund_outcome``). Empty otherwise.
    fund_grant = models.CharField(_("civic fund grant"), max_length=20, blank=True)
    fund_raised_yen = models.PositiveBigIntegerField(_("raised (yen)"), null=True, blank=True)
    fund_matched_yen = models.PositiveBigIntegerField(_("matched (yen)"), null=True, blank=True)
    fund_granted_yen = models.PositiveBigIntegerField(_("granted (yen)"), null=True, blank=True)
    fund_fee_yen = models.PositiveBigIntegerField(_("fee (yen)"), null=True, blank=True)
    fund_paid_yen = models.PositiveBigIntegerField(_("paid (yen)"), null=True, blank=True)
    fund_report = models.TextField(_("the CSO's final report"), blank=True)
    fund_recorded_at = models.DateTimeField(_("written by the fund at"), null=True, blank=True)

    class Meta:
        verbose_name = _("assessment")
        verbose_name_plural = _("assessments")

    def __str__(self) -> str:
        return f"{self.proposal.reference} {self.assessed_on}"

    @property
    def has_fund_outcome(self) -> bool:
        return self.fund_recorded_at is not None
