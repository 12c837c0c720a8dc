"""The register in the Django admin: the catalogue, proposals, and the spreadsheet import.

Proposals are changed here only through ``proposals.services`` (the admin form saves through
``proposal_create`` / ``proposal_update``; decisions and budget provision go through their own
form and actions), so every change leaves a history row. State and decision are read-only in
the change form for that reason.
"""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.admin.widgets import AdminDateWidget
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from accounts.formatting import format_yen

from .importing import COLUMNS, FILE_KINDS, ImportErrors, import_register
from .models import (
    Assessment,
    Consultation,
    Contract,
    Department,
    Operation,
    OrientationSession,
    Participation,
    Proposal,
    ProposalEvent,
)
from .services import (
    EDITABLE_FIELDS,
    proposal_create,
    proposal_set_budget_provision,
    proposal_transition,
    proposal_update,
)

Decision = Proposal.Decision
BudgetProvision = Proposal.BudgetProvision

IMPORT_CHANGE_LIST = "admin/proposals/change_list_import.html"
MAX_UPLOAD_BYTES = 20 * 1024 * 1024  # a year's catalogue (~2,000 rows) is well under 1 MB


def _error_text(exc: ValidationError | PermissionDenied) -> str:
    if isinstance(exc, ValidationError):
        return " ".join(exc.messages)
    return str(exc) or _("You may not change this proposal.")


@admin.register(Department)
class DepartmentAdmin(admin.ModelAdmin):
    list_display = ["name", "body"]
    list_filter = ["body"]
    list_select_related = ["body"]
    search_fields = ["name", "body__name"]
    autocomplete_fields = ["body"]


@admin.register(Participation)
class ParticipationAdmin(admin.ModelAdmin):
    list_display = ["fiscal_year", "body"]
    list_filter = ["fiscal_year", "body"]
    list_select_related = ["body"]
    search_fields = ["body__name", "body__code"]
    autocomplete_fields = ["body"]


@admin.register(Operation)
class OperationAdmin(admin.ModelAdmin):
    change_list_template = IMPORT_CHANGE_LIST
    list_display = ["code", "title", "fiscal_year", "body", "department", "budget"]
    list_filter = ["fiscal_year", "body"]
    list_select_related = ["body", "department"]
    search_fields = ["code", "title", "summary"]
    autocomplete_fields = ["body", "department"]

    @admin.display(description=gettext_lazy("budget"), ordering="budget_yen")
    def budget(self, operation: Operation) -> str:
        return format_yen(operation.budget_yen)


@admin.register(OrientationSession)
class OrientationSessionAdmin(admin.ModelAdmin):
    list_display = ["held_on", "body", "fiscal_year", "venue", "attendance"]
    list_filter = ["fiscal_year", "body"]
    list_select_related = ["body"]
    date_hierarchy = "held_on"
    autocomplete_fields = ["body"]


class _ReadOnlyInline:
    """Shown for the record; written only by the transitions that own them."""

    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class ProposalEventInline(_ReadOnlyInline, admin.TabularInline):
    model = ProposalEvent
    fields = ["occurred_at", "action", "from_state", "to_state", "actor", "source", "note"]
    readonly_fields = fields
    verbose_name_plural = gettext_lazy("history")


class ConsultationInline(_ReadOnlyInline, admin.TabularInline):
    model = Consultation
    fields = ["held_on", "notes"]
    readonly_fields = fields


class ContractInline(_ReadOnlyInline, admin.StackedInline):
    model = Contract
    fields = ["kind", "signed_on", "amount_yen"]
    readonly_fields = fields


class AssessmentInline(_ReadOnlyInline, admin.StackedInline):
    model = Assessment
    fields = ["assessed_on", "summary"]
    readonly_fields = fields


class ProposalAdminForm(forms.ModelForm):
    class Meta:
        model = Proposal
        fields = [
            "reference",
            "received_on",
            "body",
            "operation",
            "organization",
            "title",
            "summary",
        ]

    def clean(self):
        cleaned = super().clean()
        operation, body = cleaned.get("operation"), cleaned.get("body")
        if operation is not None and body is not None and operation.body_id != body.pk:
            self.add_error("operation", _("The operation belongs to another government body."))
        return cleaned


class DecisionForm(forms.Form):
    """Step 6 and the budget provision, recorded through the transition services."""

    decision = forms.ChoiceField(
        label=gettext_lazy("decision"),
        choices=[("", gettext_lazy("— leave as it is —")), *Decision.choices],
        required=False,
    )
    decided_on = forms.DateField(
        label=gettext_lazy("decided on"), required=False, widget=AdminDateWidget
    )
    reason = forms.CharField(
        label=gettext_lazy("reasons for the decision"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    planned_implementation_year = forms.IntegerField(
        label=gettext_lazy("planned implementation fiscal year"), required=False, min_value=1989
    )
    budget_provision = forms.ChoiceField(
        label=gettext_lazy("budget provision"), choices=BudgetProvision.choices
    )

    def clean(self):
        cleaned = super().clean()
        decision = cleaned.get("decision")
        if decision and decision != Decision.WITHDRAWN and not cleaned.get("decided_on"):
            self.add_error("decided_on", _("A response needs the date it was decided."))
        return cleaned


class RegisterImportForm(forms.Form):
    operations = forms.FileField(label=gettext_lazy("Operations"), required=False)
    participation = forms.FileField(label=gettext_lazy("Participation"), required=False)
    proposals = forms.FileField(label=gettext_lazy("Proposals"), required=False)

    def clean(self):
        cleaned = super().clean()
        if not any(cleaned.get(kind) for kind in FILE_KINDS):
            raise ValidationError(_("Choose at least one file to import."))
        for kind in FILE_KINDS:
            upload = cleaned.get(kind)
            if upload and upload.size > MAX_UPLOAD_BYTES:
                self.add_error(
                    kind,
                    _("The file is larger than %(size)d MB.")
                    % {"size": MAX_UPLOAD_BYTES // (1024 * 1024)},
                )
        return cleaned

    def file_contents(self) -> dict[str, bytes]:
        return {kind: upload.read() for kind in FILE_KINDS if (upload := self.cleaned_data[kind])}


def _budget_provision_action(value: str, description):
    def action(modeladmin: "ProposalAdmin", request: HttpRequest, queryset) -> None:
        modeladmin.set_budget_provision(request, queryset, value)

    action.__name__ = f"budget_provision_{value}"
    return admin.action(description=description)(action)


@admin.register(Proposal)
class ProposalAdmin(admin.ModelAdmin):
    form = ProposalAdminForm
    change_list_template = IMPORT_CHANGE_LIST
    change_form_template = "admin/proposals/proposal_change_form.html"
    list_display = [
        "reference",
        "title",
        "body",
        "organization",
        "fiscal_year",
        "state",
        "decision",
        "budget_provision",
        "received_on",
    ]
    list_filter = ["state", "decision", "budget_provision", "fiscal_year", "body__kind", "body"]
    list_select_related = ["body", "organization"]
    search_fields = ["reference", "title", "organization__name"]
    date_hierarchy = "received_on"
    autocomplete_fields = ["body", "operation", "organization"]
    inlines = [ProposalEventInline, ConsultationInline, ContractInline, AssessmentInline]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "reference",
                    "received_on",
                    "fiscal_year",
                    "body",
                    "operation",
                    "organization",
                    "title",
                    "summary",
                ]
            },
        ),
        (
            gettext_lazy("Decision"),
            {
                "fields": [
                    "state",
                    "decision",
                    "decided_on",
                    "decision_reason",
                    "planned_implementation_year",
                    "budget_provision",
                ]
            },
        ),
    ]
    # Changed only through the transitions (see the "Record decision" page and the actions).
    readonly_fields = [
        "fiscal_year",
        "state",
        "decision",
        "decided_on",
        "decision_reason",
        "planned_implementation_year",
        "budget_provision",
    ]
    actions = [
        _budget_provision_action("yes", gettext_lazy("Record budget provision: budgeted")),
        _budget_provision_action("no", gettext_lazy("Record budget provision: not budgeted")),
        _budget_provision_action("pending", gettext_lazy("Record budget provision: pending")),
    ]

    def get_readonly_fields(self, request, obj=None):
        # The reference is the register's natural key: fixed once the proposal exists.
        if obj is not None:
            return ["reference", *self.readonly_fields]
        return self.readonly_fields

    def has_delete_permission(self, request, obj=None) -> bool:
        # A proposal leaves the register by withdrawal, which keeps its history.
        return False

    def save_model(self, request, obj, form, change):
        who = {"actor": request.user, "source": "admin"}
        if change:
            fields = {
                name: form.cleaned_data[name]
                for name in form.changed_data
                if name in EDITABLE_FIELDS
            }
            if fields:
                proposal_update(proposal=obj, **fields, **who)
        else:
            obj.pk = proposal_create(
                **{name: form.cleaned_data[name] for name in ProposalAdminForm.Meta.fields},
                **who,
            ).pk
        obj.refresh_from_db()

    def get_urls(self):
        return [
            path(
                "import/",
                self.admin_site.admin_view(self.import_view),
                name="proposals_proposal_import",
            ),
            path(
                "<path:object_id>/decision/",
                self.admin_site.admin_view(self.decision_view),
                name="proposals_proposal_decision",
            ),
            *super().get_urls(),
        ]

    def import_view(self, request: HttpRequest) -> HttpResponse:
        """Upload the register's files; the same service as ``manage.py import_register``.

        Staff only (``admin_view``), like the services themselves until roles exist.
        """
        problems: list[str] = []
        bound = request.method == "POST"
        form = RegisterImportForm(*([request.POST, request.FILES] if bound else []))
        if bound and form.is_valid():
            try:
                summary = import_register(
                    **form.file_contents(), actor=request.user, source="admin-import"
                )
            except ImportErrors as exc:
                problems = exc.messages
                messages.error(
                    request,
                    ngettext(
                        "Nothing was imported: %(count)d problem, listed below.",
                        "Nothing was imported: %(count)d problems, listed below.",
                        len(problems),
                    )
                    % {"count": len(problems)},
                )
            except PermissionDenied as exc:
                messages.error(request, _error_text(exc))
            else:
                messages.success(request, " ".join(summary.lines()))
                return HttpResponseRedirect(request.path)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": _("Import register"),
            "form": form,
            "problems": problems,
            "columns": [(form[kind].label, COLUMNS[kind]) for kind in FILE_KINDS],
        }
        return TemplateResponse(request, "admin/proposals/import_register.html", context)

    def decision_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        proposal = self.get_object(request, unquote(object_id))
        if proposal is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_change_permission(request, proposal):
            raise PermissionDenied
        change_url = reverse("admin:proposals_proposal_change", args=[proposal.pk])
        bound = request.method == "POST"
        form = DecisionForm(
            request.POST if bound else None,
            initial={
                "decided_on": proposal.decided_on,
                "reason": proposal.decision_reason,
                "planned_implementation_year": proposal.planned_implementation_year,
                "budget_provision": proposal.budget_provision,
            },
        )
        if bound and form.is_valid():
            try:
                self._record_decision(request, proposal, form.cleaned_data)
            except (ValidationError, PermissionDenied) as exc:
                messages.error(request, _error_text(exc))
            else:
                messages.success(request, _("The decision and budget provision were recorded."))
                return HttpResponseRedirect(change_url)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "original": proposal,
            "title": _("Record decision and budget provision"),
            "form": form,
            "media": self.media + form.media,
            "change_url": change_url,
        }
        return TemplateResponse(request, "admin/proposals/proposal_decision.html", context)

    @transaction.atomic
    def _record_decision(self, request: HttpRequest, proposal: Proposal, data: dict) -> None:
        """The decision first, then the budget provision; both or neither."""
        who = {"actor": request.user, "source": "admin"}
        if data["decision"] == Decision.WITHDRAWN:
            proposal = proposal_transition(
                proposal=proposal, action="withdraw", note=data["reason"], **who
            )
        elif data["decision"]:
            proposal = proposal_transition(
                proposal=proposal,
                action="respond",
                decision=data["decision"],
                decided_on=data["decided_on"],
                reason=data["reason"],
                planned_implementation_year=data["planned_implementation_year"],
                **who,
            )
        if data["budget_provision"] != proposal.budget_provision:
            proposal_set_budget_provision(
                proposal=proposal, budget_provision=data["budget_provision"], **who
            )

    def set_budget_provision(self, request: HttpRequest, queryset, value: str) -> None:
        done = 0
        for proposal in queryset:
            try:
                proposal_set_budget_provision(
                    proposal=proposal, budget_provision=value, actor=request.user, source="admin"
                )
            except (ValidationError, PermissionDenied) as exc:
                messages.error(request, f"{proposal.reference}: {_error_text(exc)}")
            else:
                done += 1
        if done:
            messages.success(
                request,
                ngettext(
                    "Budget provision recorded for %(count)d proposal.",
                    "Budget provision recorded for %(count)d proposals.",
                    done,
                )
                % {"count": done},
            )
