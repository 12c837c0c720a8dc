"""The fund in the Django admin: for looking, not for changing.

Projects change only through ``fund.services`` (the staff pages under /projects/staff/), so that
every change leaves a history row; match pools only through ``fund.matching`` (the staff pool
pages; matches and releases are made by the gift pipeline); money moves only through
``fund.ledger.post_entry``. Every model here is therefore read-only in the admin: no add, change
or delete.
"""

from django.contrib import admin
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from accounts.formatting import format_yen

from .models import (
    JournalEntry,
    LedgerAccount,
    MatchAllocation,
    MatchPool,
    MatchPoolEvent,
    MatchRelease,
    Posting,
    Project,
    ProjectEvent,
)
from .selectors import pool_figures


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


# --- Match pools ---------------------------------------------------------------------------------


def _yen(amount: int | None) -> str:
    return "" if amount is None else format_yen(amount)


def _changelist_link(model: str, pool_id: int, label: str) -> str:
    url = reverse(f"admin:fund_{model}_changelist")
    return format_html('<a href="{}?pool__id__exact={}">{}</a>', url, pool_id, label)


class MatchPoolEventInline(ReadOnlyMixin, admin.TabularInline):
    model = MatchPoolEvent
    extra = 0
    fields = ["occurred_at", "action", "amount", "reference", "actor", "source", "note"]
    readonly_fields = fields
    ordering = ["occurred_at", "pk"]


@admin.register(MatchPool)
class MatchPoolAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["name", "sponsor", "ratio", "state", "priority", "window", "scope"]
    list_filter = ["state", "scope", "leftover"]
    list_select_related = ["sponsor"]
    search_fields = ["name", "sponsor__name"]
    readonly_fields = ["figures", "matches", "staff_page"]
    inlines = [MatchPoolEventInline]

    @admin.display(description=_("ratio"), ordering="ratio_match")
    def ratio(self, obj: MatchPool) -> str:
        return obj.ratio_label

    @admin.display(description=_("window"), ordering="ends_at")
    def window(self, obj: MatchPool) -> str:
        starts = timezone.localtime(obj.starts_at).strftime("%Y-%m-%d %H:%M")
        ends = timezone.localtime(obj.ends_at).strftime("%Y-%m-%d %H:%M")
        return f"{starts} – {ends}"

    @admin.display(description=_("figures (from the ledger)"))
    def figures(self, obj: MatchPool) -> str:
        if obj.pk is None:
            return ""
        f = pool_figures([obj])[obj.pk]
        return format_html(
            "{}: {} · {}: {} · {}: {} · {}: {} · {}: {} · {}: {} · {}: {}",
            _("pledged"),
            _yen(f.pledged),
            _("paid"),
            _yen(f.paid),
            _("unpaid"),
            _yen(f.unpaid),
            _("matched"),
            _yen(f.matched),
            _("released"),
            _yen(f.released),
            _("returned at the end"),
            _yen(f.returned),
            _("left"),
            _yen(f.left),
        )

    @admin.display(description=_("matches"))
    def matches(self, obj: MatchPool) -> str:
        if obj.pk is None:
            return ""
        return format_html(
            "{} · {}",
            _changelist_link("matchallocation", obj.pk, _("Matches")),
            _changelist_link("matchpoolevent", obj.pk, _("History")),
        )

    @admin.display(description=_("staff page"))
    def staff_page(self, obj: MatchPool) -> str:
        try:
            url = reverse("fund:staff-pool", args=[obj.pk])
        except NoReverseMatch:
            return ""
        return format_html('<a href="{}">{}</a>', url, _("Change it on its staff page"))


@admin.register(MatchPoolEvent)
class MatchPoolEventAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["occurred_at", "pool", "action", "amount_display", "reference", "actor"]
    list_filter = ["action", "pool"]
    list_select_related = ["pool", "actor"]
    search_fields = ["pool__name", "reference", "note"]
    date_hierarchy = "occurred_at"

    @admin.display(description=_("amount"), ordering="amount")
    def amount_display(self, obj: MatchPoolEvent) -> str:
        return _yen(obj.amount)


class MatchReleaseInline(ReadOnlyMixin, admin.TabularInline):
    model = MatchRelease
    extra = 0
    fields = ["created_at", "amount", "key"]
    readonly_fields = fields
    ordering = ["created_at", "pk"]


@admin.register(MatchAllocation)
class MatchAllocationAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = [
        "created_at",
        "pool",
        "project",
        "gift_key",
        "gift_display",
        "amount_display",
        "gift_received_at",
    ]
    list_filter = ["pool"]
    list_select_related = ["pool", "project"]
    search_fields = ["gift_key", "pool__name", "project__title"]
    date_hierarchy = "created_at"
    inlines = [MatchReleaseInline]

    @admin.display(description=_("gift"), ordering="gift_amount")
    def gift_display(self, obj: MatchAllocation) -> str:
        return _yen(obj.gift_amount)

    @admin.display(description=_("matched"), ordering="amount")
    def amount_display(self, obj: MatchAllocation) -> str:
        return _yen(obj.amount)


@admin.register(MatchRelease)
class MatchReleaseAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["created_at", "pool", "gift_key", "amount_display", "key"]
    list_select_related = ["allocation__pool"]
    search_fields = ["key", "allocation__gift_key", "allocation__pool__name"]
    date_hierarchy = "created_at"

    @admin.display(description=_("pool"), ordering="allocation__pool")
    def pool(self, obj: MatchRelease) -> MatchPool:
        return obj.allocation.pool

    @admin.display(description=_("gift (payment)"), ordering="allocation__gift_key")
    def gift_key(self, obj: MatchRelease) -> str:
        return obj.allocation.gift_key

    @admin.display(description=_("released"), ordering="amount")
    def amount_display(self, obj: MatchRelease) -> str:
        return _yen(obj.amount)
