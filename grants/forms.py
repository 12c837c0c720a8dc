"""Forms of the foundation staff's grant pages (``grants.staff_views``).

They check shape only (whole yen, dates, a row's amount and date together); the rules — the
terms, the schedule adding up, maker-checker, who may — are in ``grants.services``. Forms that
write mix in ``ServiceFormMixin``: ``submit(actor)`` calls the service and puts its
``ValidationError`` or ``PermissionDenied`` on the form, so nothing is written.
"""

import datetime as dt
from typing import Any

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import Organization, User
from fund.models import Project
from proposals.forms import PublicFilterForm
from proposals.officer_forms import DateInput, ServiceFormMixin, YenField, textarea

from . import services, zengin
from .cso_forms import BankAccountForm
from .models import BankAccount, Grant, Report, Tranche, TransferBatch, TransferLine

MAX_TRANCHES = 4


def _date_field(label: Any, *, required: bool = True, **kwargs: Any) -> forms.DateField:
    return forms.DateField(label=label, required=required, widget=DateInput(), **kwargs)


class GrantFilterForm(PublicFilterForm):
    """The pipeline's grant list: by state. A bad value is dropped and reported."""

    state = forms.ChoiceField(
        label=_("State"),
        required=False,
        choices=[("", _("Every state")), *Grant.State.choices],
        error_messages={"invalid_choice": _("Unknown state “%(value)s”; showing every state.")},
    )


def cso_choices() -> Any:
    return Organization.objects.filter(kind=Organization.Kind.CSO).order_by("name")


class GrantForm(ServiceFormMixin, forms.Form):
    """A grant proposal: for a closed project (its terms computed, shown read-only) or from the
    general fund (CSO, purpose, amount); both with the project's end, the reports' due dates and
    up to four tranches (empty rows are ignored)."""

    organization = forms.ModelChoiceField(
        label=_("CSO"), queryset=Organization.objects.none(), empty_label=_("Choose a CSO")
    )
    purpose = forms.CharField(label=_("Purpose"), widget=textarea(3), max_length=2000)
    amount_yen = YenField(label=_("Grant (yen)"), min_value=1)
    ends_on = _date_field(_("Project ends on"))
    final_report_due = _date_field(
        _("Final report due"),
        required=False,
        help_text=_("Leave empty for two months after the project ends (the latest allowed)."),
    )
    interim_report_due = _date_field(
        _("Interim report due"),
        required=False,
        help_text=_("Optional; before the final report."),
    )

    def __init__(self, data: Any = None, *, project: Project | None = None, **kwargs: Any):
        super().__init__(data, **kwargs)
        self.project = project
        if project is not None:
            # The terms come from the ledger; the purpose defaults to the project's title.
            for name in ("organization", "amount_yen"):
                del self.fields[name]
            self.fields["purpose"].required = False
            self.fields["purpose"].help_text = _("Leave empty to use the project's title.")
            self.terms = services.grant_terms(project)
        else:
            self.fields["organization"].queryset = cso_choices()
            self.terms = None
        for i in range(1, MAX_TRANCHES + 1):
            self.fields[f"tranche_{i}_amount"] = YenField(
                label=_("Tranche %(n)s: amount (yen)") % {"n": i}, required=False, min_value=1
            )
            self.fields[f"tranche_{i}_due_on"] = _date_field(
                _("Tranche %(n)s: pay on or after") % {"n": i}, required=False
            )
            self.fields[f"tranche_{i}_requires_report"] = forms.BooleanField(
                label=_("Tranche %(n)s: requires the previous report accepted") % {"n": i},
                required=False,
            )
        if self.terms is not None and not self.is_bound:
            self.initial.setdefault("tranche_1_amount", self.terms.amount_yen)
            self.initial.setdefault("tranche_1_due_on", timezone.localdate())

    @property
    def main_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.fields if not name.startswith("tranche_")]

    @property
    def tranche_rows(self) -> list[dict[str, Any]]:
        return [
            {
                "number": i,
                "amount": self[f"tranche_{i}_amount"],
                "due_on": self[f"tranche_{i}_due_on"],
                "requires_report": self[f"tranche_{i}_requires_report"],
            }
            for i in range(1, MAX_TRANCHES + 1)
        ]

    @property
    def default_final_due(self) -> dt.date | None:
        """The final report's default due date, once the end is known (shown on the page)."""
        ends_on = self.cleaned_data.get("ends_on") if hasattr(self, "cleaned_data") else None
        if ends_on is None and not self.is_bound:
            ends_on = self.initial.get("ends_on")
        return ends_on + services.FINAL_REPORT_WITHIN if ends_on else None

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        tranches = []
        for i in range(1, MAX_TRANCHES + 1):
            amount = data.get(f"tranche_{i}_amount")
            due_on = data.get(f"tranche_{i}_due_on")
            if f"tranche_{i}_amount" in self.errors or f"tranche_{i}_due_on" in self.errors:
                continue
            if amount is None and due_on is None:
                continue  # an empty row
            if amount is None:
                self.add_error(f"tranche_{i}_amount", _("Give the tranche's amount."))
                continue
            if due_on is None:
                self.add_error(f"tranche_{i}_due_on", _("Give the tranche's date."))
                continue
            tranches.append(
                services.TrancheTerms(
                    amount_yen=amount,
                    due_on=due_on,
                    requires_report=bool(data.get(f"tranche_{i}_requires_report")),
                )
            )
        data["tranches"] = tranches
        return data

    def perform(self, actor: User) -> Grant:
        data = self.cleaned_data
        return services.grant_propose(
            actor=actor,
            project=self.project,
            organization=data.get("organization"),
            purpose=data.get("purpose") or "",
            amount_yen=data.get("amount_yen"),
            ends_on=data["ends_on"],
            final_report_due=data.get("final_report_due"),
            interim_report_due=data.get("interim_report_due"),
            tranches=data["tranches"],
        )


class GrantApproveForm(ServiceFormMixin, forms.Form):
    note = forms.CharField(label=_("Note (optional)"), required=False, widget=textarea(2))

    def __init__(self, data: Any = None, *, grant: Grant, **kwargs: Any):
        super().__init__(data, **kwargs)
        self.grant = grant

    def perform(self, actor: User) -> Grant:
        return services.grant_approve(
            grant=self.grant, actor=actor, note=self.cleaned_data.get("note", "")
        )


class GrantCancelForm(ServiceFormMixin, forms.Form):
    reason = forms.CharField(label=_("Why is the grant cancelled?"), widget=textarea(3))

    def __init__(self, data: Any = None, *, grant: Grant, **kwargs: Any):
        super().__init__(data, **kwargs)
        self.grant = grant

    def perform(self, actor: User) -> Grant:
        return services.grant_cancel(
            grant=self.grant, actor=actor, reason=self.cleaned_data["reason"]
        )


class ClawbackForm(ServiceFormMixin, forms.Form):
    amount_yen = YenField(label=_("Amount to give back (yen)"), min_value=1)
    reason = forms.CharField(label=_("Reason"), widget=textarea(2))

    def __init__(self, data: Any = None, *, tranche: Tranche, **kwargs: Any):
        kwargs.setdefault("prefix", f"clawback-{tranche.pk}")
        super().__init__(data, **kwargs)
        self.tranche = tranche

    def perform(self, actor: User) -> Any:
        return services.clawback_record(
            tranche=self.tranche,
            amount_yen=self.cleaned_data["amount_yen"],
            reason=self.cleaned_data["reason"],
            actor=actor,
        )


class ReportReviewForm(ServiceFormMixin, forms.Form):
    """Accept (the note is optional) or request changes (say what should change); the button
    pressed is the decision."""

    DECISIONS = (("accept", _("Accept")), ("changes", _("Request changes")))

    decision = forms.ChoiceField(choices=DECISIONS, widget=forms.HiddenInput)
    note = forms.CharField(
        label=_("Note to the CSO"),
        required=False,
        widget=textarea(4),
        help_text=_("Optional when accepting; say what should change when asking for changes."),
    )

    def __init__(self, data: Any = None, *, report: Report, **kwargs: Any):
        super().__init__(data, **kwargs)
        self.report = report

    def perform(self, actor: User) -> Report:
        note = self.cleaned_data.get("note", "")
        if self.cleaned_data["decision"] == "accept":
            return services.report_accept(report=self.report, actor=actor, note=note)
        return services.report_request_changes(report=self.report, actor=actor, note=note)


class StaffBankAccountForm(ServiceFormMixin, BankAccountForm):
    """Finance enters a CSO's account; another staff member confirms it."""

    organization = forms.ModelChoiceField(
        label=_("Organisation"), queryset=Organization.objects.none(), empty_label=_("Choose")
    )

    field_order = ["organization"]

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.fields["organization"].queryset = cso_choices()

    def perform(self, actor: User) -> BankAccount:
        data = self.cleaned_data
        return services.bank_account_submit(
            organization=data["organization"],
            actor=actor,
            bank_code=data["bank_code"],
            branch_code=data["branch_code"],
            account_type=data["account_type"],
            account_number=data["account_number"],
            holder_kana=data["holder_kana"],
        )


class BankAccountRejectForm(ServiceFormMixin, forms.Form):
    note = forms.CharField(label=_("What is wrong with it?"), widget=textarea(2))

    def __init__(self, data: Any = None, *, account: BankAccount, **kwargs: Any):
        kwargs.setdefault("prefix", f"reject-{account.pk}")
        super().__init__(data, **kwargs)
        self.account = account

    def perform(self, actor: User) -> BankAccount:
        return services.bank_account_reject(
            account=self.account, actor=actor, note=self.cleaned_data["note"]
        )


class BatchCreateForm(ServiceFormMixin, forms.Form):
    """A transfer date (a bank business day) and the due tranches to pay on it."""

    transfer_date = _date_field(
        _("Transfer date"), help_text=_("A bank business day (not a weekend or bank holiday).")
    )
    tranches = forms.ModelMultipleChoiceField(
        label=_("Tranches"),
        queryset=Tranche.objects.all(),
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": _("Choose at least one tranche.")},
    )

    def __init__(self, data: Any = None, **kwargs: Any):
        super().__init__(data, **kwargs)
        if not self.is_bound:
            self.initial.setdefault(
                "transfer_date", zengin.next_bank_business_day(services.today())
            )

    @property
    def chosen_ids(self) -> set[str]:
        return set(self.data.getlist("tranches")) if self.is_bound else set()

    def perform(self, actor: User) -> TransferBatch:
        return services.batch_create(
            transfer_date=self.cleaned_data["transfer_date"],
            tranches=list(self.cleaned_data["tranches"]),
            actor=actor,
        )


class LineFailedForm(ServiceFormMixin, forms.Form):
    reason = forms.CharField(label=_("Why did the bank return it?"), max_length=500)

    def __init__(self, data: Any = None, *, line: TransferLine, **kwargs: Any):
        kwargs.setdefault("prefix", f"failed-{line.pk}")
        super().__init__(data, **kwargs)
        self.line = line

    def perform(self, actor: User) -> bool:
        return services.line_mark_failed(
            line=self.line, actor=actor, reason=self.cleaned_data["reason"]
        )
