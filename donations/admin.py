"""Gifts in the Django admin: for looking, not for changing.

Money rows change only through ``donations.services`` (the pipeline, and refunds on the
foundation's gift pages), so that every change has its ledger entry and its history row; a
receipt is never edited, only voided by a refund. Every model here is read-only in the admin:
no add, change or delete.
"""

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from accounts.formatting import format_yen
from fund.admin import ReadOnlyMixin

from .models import Donation, DonationEvent, Gift, Receipt, Refund, WebhookEvent


class DonationEventInline(ReadOnlyMixin, admin.TabularInline):
    model = DonationEvent
    extra = 0
    fields = ["occurred_at", "action", "from_status", "to_status", "actor", "source", "note"]
    readonly_fields = fields
    ordering = ["occurred_at", "pk"]


class GiftInline(ReadOnlyMixin, admin.TabularInline):
    model = Gift
    extra = 0
    fields = ["payment_id", "amount", "refunded_amount", "state", "disputed", "received_at"]
    readonly_fields = fields
    show_change_link = True


@admin.register(Donation)
class DonationAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["created_at", "email", "amount_display", "frequency", "status", "project"]
    list_filter = ["status", "frequency", "provider"]
    list_select_related = ["project"]
    search_fields = ["=id", "email", "name", "checkout_session_id", "subscription_id"]
    date_hierarchy = "created_at"
    inlines = [GiftInline, DonationEventInline]

    @admin.display(description=_("amount"), ordering="amount")
    def amount_display(self, obj: Donation) -> str:
        return format_yen(obj.amount)


class RefundInline(ReadOnlyMixin, admin.TabularInline):
    model = Refund
    extra = 0
    fields = ["provider_refund_id", "amount", "reason", "created_by", "created_at"]
    readonly_fields = fields


@admin.register(Gift)
class GiftAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["received_at", "payment_id", "amount_display", "state", "disputed", "project"]
    list_filter = ["state", "disputed"]
    list_select_related = ["project"]
    search_fields = ["payment_id", "payment_intent_id", "donation__email"]
    date_hierarchy = "received_at"
    readonly_fields = ["staff_page"]
    inlines = [RefundInline]

    @admin.display(description=_("amount"), ordering="amount")
    def amount_display(self, obj: Gift) -> str:
        return format_yen(obj.amount)

    @admin.display(description=_("staff page"))
    def staff_page(self, obj: Gift) -> str:
        url = reverse("donations:staff-gift", args=[obj.pk])
        return format_html('<a href="{}">{}</a>', url, _("Refund it on its staff page"))


@admin.register(Refund)
class RefundAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["created_at", "provider_refund_id", "amount", "reason", "gift", "created_by"]
    list_filter = ["reason"]
    list_select_related = ["gift", "created_by"]
    search_fields = ["provider_refund_id", "gift__payment_id"]


@admin.register(Receipt)
class ReceiptAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["display_number", "kind", "donor_name", "amount", "received_on", "voided_at"]
    list_filter = ["kind", "year"]
    search_fields = ["email", "donor_name"]
    ordering = ["-year", "-number"]


@admin.register(WebhookEvent)
class WebhookEventAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["id", "type", "provider", "received_at", "processed_at", "attempts"]
    list_filter = ["provider", "type"]
    search_fields = ["=id"]
    date_hierarchy = "received_at"
