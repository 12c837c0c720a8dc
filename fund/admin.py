"""The fund in the Django admin: for looking, not for changing.

Projects change only through ``fund.services`` (the staff pages under /projects/staff/), so that
every change leaves a history row; money moves only through ``fund.ledger.post_entry``. Every
model here is therefore read-only in the admin: no add, change or delete.
"""

from django.contrib import admin
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from accounts.formatting import format_yen

from .models import JournalEntry, LedgerAccount, Posting, Project, ProjectEvent


class ReadOnlyMixin:
    """View permission only: the records are written by the services and the ledger."""

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


class ProjectEventInline(ReadOnlyMixin, admin.TabularInline):
    model = ProjectEvent
    extra = 0
    fields = ["occurred_at", "action", "from_state", "to_state", "actor", "source", "note"]
    readonly_fields = fields
    ordering = ["occurred_at", "pk"]


@admin.register(Project)
class ProjectAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["title", "state", "goal_display", "opens_at", "closes_at", "proposal"]
    list_filter = ["state"]
    list_select_related = ["proposal"]
    search_fields = ["title", "proposal__reference", "proposal__title"]
    readonly_fields = ["staff_page"]
    inlines = [ProjectEventInline]

    @admin.display(description=_("goal"), ordering="goal_yen")
    def goal_display(self, obj: Project) -> str:
        return format_yen(obj.goal_yen)

    @admin.display(description=_("staff page"))
    def staff_page(self, obj: Project) -> str:
        url = reverse("fund:staff-project", args=[obj.pk])
        return format_html('<a href="{}">{}</a>', url, _("Change it on its staff page"))


@admin.register(LedgerAccount)
class LedgerAccountAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["code", "kind", "project"]
    list_filter = ["kind"]
    search_fields = ["code"]


class PostingInline(ReadOnlyMixin, admin.TabularInline):
    model = Posting
    extra = 0
    fields = ["account", "amount"]
    readonly_fields = fields


@admin.register(JournalEntry)
class JournalEntryAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["key", "kind", "memo", "created_at", "created_by"]
    list_filter = ["kind"]
    search_fields = ["key", "memo"]
    date_hierarchy = "created_at"
    inlines = [PostingInline]
