"""Grants in the Django admin: for looking, not for changing — every change goes through
``grants.services`` (the staff pages under /grants/staff/), which writes the history and the
ledger. Bank account numbers are shown masked."""

from django.contrib import admin

from fund.admin import ReadOnlyMixin

from .models import BankAccount, Grant, GrantEvent, Report, Tranche, TransferBatch, TransferLine


class TrancheInline(ReadOnlyMixin, admin.TabularInline):
    model = Tranche
    extra = 0
    fields = ["number", "amount_yen", "due_on", "requires_report", "state", "paid_on"]
    readonly_fields = fields


class ReportInline(ReadOnlyMixin, admin.TabularInline):
    model = Report
    extra = 0
    fields = ["kind", "due_on", "state", "submitted_at", "reviewed_at"]
    readonly_fields = fields


class GrantEventInline(ReadOnlyMixin, admin.TabularInline):
    model = GrantEvent
    extra = 0
    fields = [
        "occurred_at",
        "action",
        "from_state",
        "to_state",
        "tranche",
        "report",
        "actor",
        "note",
    ]
    readonly_fields = fields


@admin.register(Grant)
class GrantAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["__str__", "source", "project", "organization", "amount_yen", "state"]
    list_filter = ["state", "source"]
    list_select_related = ["project", "organization"]
    search_fields = ["purpose", "project__title", "organization__name"]
    inlines = [TrancheInline, ReportInline, GrantEventInline]


@admin.register(BankAccount)
class BankAccountAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["organization", "bank_name", "branch_name", "masked_number", "state"]
    list_filter = ["state"]
    exclude = ["account_number"]


class TransferLineInline(ReadOnlyMixin, admin.TabularInline):
    model = TransferLine
    extra = 0
    fields = ["tranche", "amount_yen", "state", "failure_reason"]
    readonly_fields = fields


@admin.register(TransferBatch)
class TransferBatchAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["__str__", "transfer_date", "state", "created_by", "created_at"]
    list_filter = ["state"]
    exclude = ["file"]
    inlines = [TransferLineInline]
