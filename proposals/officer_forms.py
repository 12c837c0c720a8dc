"""Forms of the government officer's area (``/gov/``): they validate, the services decide.

Every form that changes something mixes in ``ServiceFormMixin``: ``submit(actor)`` validates,
calls the service and turns a ``ValidationError`` or ``PermissionDenied`` from it into form
errors, so a refused or impossible change is shown next to the fields and nothing is written.
"""

from typing import Any

from django import forms
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.models import GovernmentBody, Organization, User

from . import services
from .fiscal import fiscal_year_of
from .forms import PublicFilterForm, fiscal_year_choices
from .models import Contract, Department, Operation, Proposal

FISCAL_YEAR_MIN = 1989
FISCAL_YEAR_MAX = 2100

# Names in a model's or a service's errors that a form or the API calls differently.
SERVICE_FIELD_ALIASES = {"decision_reason": "reason"}


# --- Fields and the shared form behaviour --------------------------------------------------------


class YenField(forms.IntegerField):
    """Whole yen. Accepts "1,500,000", "¥1,500,000" and "1500000円"; refuses fractions."""

    default_error_messages = {
        "invalid": gettext_lazy("Enter the amount in whole yen, e.g. 1500000."),
    }

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("widget", forms.TextInput(attrs={"inputmode": "numeric"}))
        super().__init__(**kwargs)

    def to_python(self, value: Any) -> int | None:
        if isinstance(value, str):
            value = value.strip().replace(",", "").replace("，", "")
            value = value.removeprefix("¥").removeprefix("￥").removesuffix("円").strip()
        return super().to_python(value)

    def widget_attrs(self, widget: forms.Widget) -> dict[str, Any]:
        # A text box (for the thousands separators), so no min/max/step attributes.
        return {
            key: value
            for key, value in super().widget_attrs(widget).items()
            if key not in {"min", "max", "step"}
        }


class DateInput(forms.DateInput):
    input_type = "date"

    def __init__(self, attrs: dict | None = None) -> None:
        super().__init__(attrs, format="%Y-%m-%d")


def date_field(label: Any, *, required: bool = True, **kwargs: Any) -> forms.DateField:
    return forms.DateField(label=label, required=required, widget=DateInput(), **kwargs)


def fiscal_year_field(label: Any, *, required: bool = True, **kwargs: Any) -> forms.IntegerField:
    return forms.IntegerField(
        label=label,
        required=required,
        min_value=FISCAL_YEAR_MIN,
        max_value=FISCAL_YEAR_MAX,
        help_text=kwargs.pop(
            "help_text", gettext_lazy("The fiscal year by its starting year, e.g. 2026.")
        ),
        **kwargs,
    )


def textarea(rows: int = 4) -> forms.Textarea:
    return forms.Textarea(attrs={"rows": rows})


class ServiceFormMixin:
    """A form whose ``perform`` calls a service; ``submit`` turns its refusals into errors."""

    is_valid: Any
    add_error: Any

    def perform(self, actor: User) -> Any:
        raise NotImplementedError

    def submit(self, actor: User) -> Any | None:
        """The service's result, or None with the errors on the form (nothing written)."""
        if not self.is_valid():
            return None
        try:
            return self.perform(actor)
        except PermissionDenied as error:
            self.add_error(None, str(error) or _("You may not make this change."))
        except ValidationError as error:
            add_service_errors(self, error)
        return None


def add_service_errors(form: forms.BaseForm, error: ValidationError) -> None:
    """A service's ``ValidationError`` on the form: by field where the form has that field."""
    if not hasattr(error, "error_dict"):
        form.add_error(None, error.messages)
        return
    for name, messages in error.message_dict.items():
        field = SERVICE_FIELD_ALIASES.get(name, name)
        form.add_error(field if field in form.fields else None, messages)


# --- Operations ----------------------------------------------------------------------------------


class OperationForm(ServiceFormMixin, forms.ModelForm):
    """An operation of the officer's body: the catalogue's fields and the self-inspection."""

    budget_yen = YenField(label=gettext_lazy("Budget (yen)"), required=False, min_value=0)
    department_name = forms.CharField(
        label=gettext_lazy("Or a new department"),
        required=False,
        max_length=200,
        help_text=gettext_lazy("Type a name if the department is not in the list yet."),
    )

    class Meta:
        model = Operation
        fields = [
            "fiscal_year",
            "code",
            "title",
            "department",
            "department_name",
            "summary",
            "budget_yen",
            "current_provider",
            "collaboration_potential",
            "published_on",
        ]
        widgets = {
            "summary": textarea(5),
            "collaboration_potential": textarea(4),
            "published_on": DateInput(),
        }
        help_texts = {
            "fiscal_year": gettext_lazy("The fiscal year by its starting year, e.g. 2026."),
            "current_provider": gettext_lazy(
                "Self-inspection: who does the work now (the department itself, a contractor…)."
            ),
            "collaboration_potential": gettext_lazy(
                "Self-inspection: where a civil society organisation could take part."
            ),
            "published_on": gettext_lazy("The day the operation was announced in the catalogue."),
        }

    def __init__(self, *args: Any, body: GovernmentBody, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.body = body
        self.fields["fiscal_year"].min_value = FISCAL_YEAR_MIN
        self.fields["fiscal_year"].max_value = FISCAL_YEAR_MAX
        self.fields["department"].queryset = Department.objects.filter(body=body)
        self.fields["department"].empty_label = _("— none —")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("department") and services.normalize_name(data.get("department_name", "")):
            self.add_error("department_name", _("Choose a department or type a new one, not both."))
        year, code = data.get("fiscal_year"), data.get("code")
        if year and code:
            taken = Operation.objects.filter(body=self.body, fiscal_year=year, code=code)
            if self.instance.pk:
                taken = taken.exclude(pk=self.instance.pk)
            if taken.exists():
                self.add_error(
                    "code",
                    _("Your body already has an operation %(code)s in that fiscal year.")
                    % {"code": code},
                )
        return data

    def perform(self, actor: User) -> Operation:
        data = {name: self.cleaned_data[name] for name in services.OPERATION_FIELDS}
        return services.operation_save(
            actor=actor,
            body=self.body,
            operation=self.instance if self.instance.pk else None,
            department_name=self.cleaned_data.get("department_name", ""),
            **data,
        )


class OfficerCatalogueFilterForm(PublicFilterForm):
    """The officer's own catalogue: keyword, fiscal year, department."""

    q = forms.CharField(
        label=gettext_lazy("Keyword"),
        required=False,
        max_length=100,
        widget=forms.TextInput(attrs={"type": "search"}),
    )
    fiscal_year = forms.TypedChoiceField(
        label=gettext_lazy("Fiscal year"), required=False, coerce=int, empty_value=None
    )
    department = forms.TypedChoiceField(
        label=gettext_lazy("Department"), required=False, coerce=int, empty_value=None
    )

    def __init__(self, data: Any = None, *, body: GovernmentBody, **kwargs: Any) -> None:
        super().__init__(data, **kwargs)
        operations = Operation.objects.filter(body=body)
        self.fields["fiscal_year"].choices = fiscal_year_choices(operations)
        self.fields["department"].choices = [
            ("", _("All departments")),
            *Department.objects.filter(body=body).values_list("pk", "name"),
        ]

    def catalogue_filters(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "search": data.get("q") or "",
            "fiscal_year": data.get("fiscal_year"),
            "department_id": data.get("department"),
        }


# --- Proposals: lists and paper letters ----------------------------------------------------------


class OfficerProposalFilterForm(PublicFilterForm):
    fiscal_year = forms.TypedChoiceField(
        label=gettext_lazy("Fiscal year"), required=False, coerce=int, empty_value=None
    )
    state = forms.ChoiceField(
        label=gettext_lazy("Step"),
        required=False,
        choices=[("", gettext_lazy("Any step")), *Proposal.State.choices],
    )
    decision = forms.ChoiceField(
        label=gettext_lazy("Decision"),
        required=False,
        choices=[("", gettext_lazy("Any decision")), *Proposal.Decision.choices],
    )
    budget_provision = forms.ChoiceField(
        label=gettext_lazy("Budget provision"),
        required=False,
        choices=[("", gettext_lazy("Any")), *Proposal.BudgetProvision.choices],
    )

    field_order = ["fiscal_year", "state", "decision", "budget_provision"]

    def __init__(self, data: Any = None, *, body: GovernmentBody, **kwargs: Any) -> None:
        super().__init__(data, **kwargs)
        self.fields["fiscal_year"].choices = fiscal_year_choices(Proposal.objects.filter(body=body))

    def register_filters(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "fiscal_year": data.get("fiscal_year"),
            "decision": data.get("decision") or "",
            "state": data.get("state") or "",
            "budget_provision": data.get("budget_provision") or "",
        }


class PaperProposalForm(ServiceFormMixin, forms.Form):
    """Step 4 by the officer: a proposal letter the body received on paper."""

    reference = forms.CharField(
        label=gettext_lazy("Reference"),
        max_length=50,
        help_text=gettext_lazy("The number your body gave the letter, e.g. R8-0012."),
    )
    received_on = date_field(gettext_lazy("Received on"))
    title = forms.CharField(label=gettext_lazy("Title"), max_length=300)
    summary = forms.CharField(label=gettext_lazy("Summary"), required=False, widget=textarea(5))
    operation_code = forms.CharField(
        label=gettext_lazy("Operation code"),
        required=False,
        max_length=50,
        help_text=gettext_lazy(
            "The code of the operation in your catalogue; leave empty for a new project."
        ),
    )
    organization = forms.ModelChoiceField(
        label=gettext_lazy("Proposing organisation"),
        required=False,
        queryset=Organization.objects.all(),
        empty_label=gettext_lazy("— not registered yet —"),
    )
    organization_name = forms.CharField(
        label=gettext_lazy("Or a new organisation's name"), required=False, max_length=200
    )
    organization_kind = forms.ChoiceField(
        label=gettext_lazy("Its kind"),
        choices=Organization.Kind.choices,
        initial=Organization.Kind.CSO,
        required=False,
    )

    def __init__(self, *args: Any, body: GovernmentBody, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.body = body

    def clean_reference(self) -> str:
        reference = self.cleaned_data["reference"].strip()
        if Proposal.objects.filter(reference=reference).exists():
            raise ValidationError(_("A proposal with this reference is already recorded."))
        return reference

    def clean_organization_name(self) -> str:
        return services.normalize_name(self.cleaned_data["organization_name"])

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        organization, name = data.get("organization"), data.get("organization_name")
        if organization and name:
            self.add_error(
                "organization_name", _("Choose an organisation or type a new one, not both.")
            )
        elif not organization and not name and "organization_name" not in self.errors:
            self.add_error("organization", _("Choose the proposing organisation or type its name."))
        elif name and Organization.objects.filter(name=name).exists():
            self.add_error(
                "organization_name",
                _("“%(name)s” is already registered: choose it from the list.") % {"name": name},
            )
        elif name and not data.get("organization_kind"):
            self.add_error("organization_kind", _("Choose the kind of organisation."))
        code = data.get("operation_code", "").strip()
        received_on = data.get("received_on")
        data["operation"] = None
        if code and received_on:
            data["operation"] = self._operation(code, fiscal_year_of(received_on))
        return data

    def _operation(self, code: str, fiscal_year: int) -> Operation | None:
        # The catalogue of the year of receipt first, else the newest year with that code.
        candidates = sorted(
            Operation.objects.filter(body=self.body, code=code),
            key=lambda op: (op.fiscal_year != fiscal_year, -op.fiscal_year),
        )
        if not candidates:
            self.add_error(
                "operation_code",
                _("Your body's catalogue has no operation with the code %(code)s.")
                % {"code": code},
            )
            return None
        return candidates[0]

    @transaction.atomic
    def perform(self, actor: User) -> Proposal:
        data = self.cleaned_data
        organization = data["organization"] or services.organization_for_paper_proposal(
            name=data["organization_name"], kind=data["organization_kind"]
        )
        return services.proposal_create(
            reference=data["reference"],
            received_on=data["received_on"],
            body=self.body,
            organization=organization,
            title=data["title"],
            operation=data["operation"],
            summary=data["summary"],
            actor=actor,
        )


# --- Proposals: one form per step ----------------------------------------------------------------


class ProposalActionForm(ServiceFormMixin, forms.Form):
    """A step of ``services.TRANSITIONS`` for one proposal; its prefix is the action's name."""

    action: str = ""
    note = forms.CharField(
        label=gettext_lazy("Note for the history"), required=False, widget=textarea(2)
    )

    def __init__(self, *args: Any, proposal: Proposal, **kwargs: Any) -> None:
        kwargs.setdefault("prefix", self.action)
        super().__init__(*args, **kwargs)
        self.proposal = proposal

    @property
    def title(self) -> Any:
        return services.TRANSITIONS[self.action].label

    def details(self) -> dict[str, Any]:
        return {name: value for name, value in self.cleaned_data.items() if name != "note"}

    def perform(self, actor: User) -> Proposal:
        return services.proposal_transition(
            proposal=self.proposal,
            action=self.action,
            actor=actor,
            note=self.cleaned_data.get("note", ""),
            **self.details(),
        )


class ConsultForm(ProposalActionForm):
    action = "consult"
    held_on = date_field(gettext_lazy("Held on"))
    notes = forms.CharField(
        label=gettext_lazy("Consultation notes"),
        required=False,
        widget=textarea(4),
        help_text=gettext_lazy("Internal: seen by your body, the proposer and the foundation."),
    )
    field_order = ["held_on", "notes", "note"]


RESPONSE_DECISIONS = [
    (value, label) for value, label in Proposal.Decision.choices if value != "withdrawn"
]


class RespondForm(ProposalActionForm):
    action = "respond"
    decision = forms.ChoiceField(
        label=gettext_lazy("Decision"),
        choices=[("", gettext_lazy("— choose —")), *RESPONSE_DECISIONS],
    )
    decided_on = date_field(gettext_lazy("Decided on"))
    reason = forms.CharField(
        label=gettext_lazy("Reasons for the decision"), required=False, widget=textarea(4)
    )
    planned_implementation_year = fiscal_year_field(
        gettext_lazy("Planned implementation fiscal year"), required=False
    )
    budget_provision = forms.ChoiceField(
        label=gettext_lazy("Budget provision"), choices=Proposal.BudgetProvision.choices
    )
    field_order = [
        "decision",
        "decided_on",
        "reason",
        "planned_implementation_year",
        "budget_provision",
        "note",
    ]

    def __init__(self, *args: Any, proposal: Proposal, **kwargs: Any) -> None:
        # Amending a response starts from the one on record.
        kwargs.setdefault(
            "initial",
            {
                "decision": proposal.decision or None,
                "decided_on": proposal.decided_on,
                "reason": proposal.decision_reason,
                "planned_implementation_year": proposal.planned_implementation_year,
                "budget_provision": proposal.budget_provision,
            },
        )
        super().__init__(*args, proposal=proposal, **kwargs)


class ContractForm(ProposalActionForm):
    action = "contract"
    kind = forms.ChoiceField(label=gettext_lazy("Kind of contract"), choices=Contract.Kind.choices)
    signed_on = date_field(gettext_lazy("Signed on"))
    amount_yen = YenField(label=gettext_lazy("Amount (yen)"), required=False, min_value=1)
    field_order = ["kind", "signed_on", "amount_yen", "note"]


class AssessForm(ProposalActionForm):
    action = "assess"
    assessed_on = date_field(gettext_lazy("Assessed on"))
    summary = forms.CharField(label=gettext_lazy("Outcome"), widget=textarea(5))
    field_order = ["assessed_on", "summary", "note"]


class WithdrawForm(ProposalActionForm):
    action = "withdraw"
    withdrawn_on = date_field(gettext_lazy("Withdrawn on"), required=False)
    confirm = forms.BooleanField(
        label=gettext_lazy("The proposer has withdrawn this proposal. This cannot be undone.")
    )
    field_order = ["withdrawn_on", "note", "confirm"]

    def details(self) -> dict[str, Any]:
        return {"withdrawn_on": self.cleaned_data["withdrawn_on"]}


class BudgetProvisionForm(ProposalActionForm):
    """Not a step: whether the government budgeted the proposal, separate from the decision."""

    action = "budget-provision"
    budget_provision = forms.ChoiceField(
        label=gettext_lazy("Budget provision"), choices=Proposal.BudgetProvision.choices
    )

    def __init__(self, *args: Any, proposal: Proposal, **kwargs: Any) -> None:
        kwargs.setdefault("initial", {"budget_provision": proposal.budget_provision})
        super().__init__(*args, proposal=proposal, **kwargs)
        del self.fields["note"]  # the service records the change without a note

    @property
    def title(self) -> Any:
        return _("Set the budget provision")

    def perform(self, actor: User) -> Proposal:
        return services.proposal_set_budget_provision(
            proposal=self.proposal,
            budget_provision=self.cleaned_data["budget_provision"],
            actor=actor,
        )


ACTION_FORMS: dict[str, type[ProposalActionForm]] = {
    form.action: form for form in (ConsultForm, RespondForm, ContractForm, AssessForm, WithdrawForm)
}
ACTION_FORMS[BudgetProvisionForm.action] = BudgetProvisionForm


def action_forms(proposal: Proposal) -> dict[str, ProposalActionForm]:
    """An unbound form for each step the table allows now, and the budget provision's."""
    names = services.allowed_actions(proposal)
    if proposal.state != Proposal.State.WITHDRAWN:
        names.append(BudgetProvisionForm.action)
    return {name: ACTION_FORMS[name](proposal=proposal) for name in names}
