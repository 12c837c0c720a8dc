from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.utils.translation import gettext_lazy as _

from . import services
from .models import (
    AccountEvent,
    FoundationRole,
    GovernmentBody,
    GovernmentStaff,
    Invitation,
    Membership,
    Organization,
    User,
)


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    ordering = ["email"]
    list_display = ["email", "first_name", "last_name", "is_staff", "is_active"]
    search_fields = ["email", "first_name", "last_name"]
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        (_("Personal info"), {"fields": ("first_name", "last_name")}),
        (
            _("Permissions"),
            {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")},
        ),
        (_("Important dates"), {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)


class MembershipInline(admin.TabularInline):
    """Read-only: members join by invitation and leave through accounts.services."""

    model = Membership
    extra = 0
    fields = ["user", "role", "created_at"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "created_at"]
    list_filter = ["kind"]
    search_fields = ["name"]
    inlines = [MembershipInline]


@admin.register(GovernmentBody)
class GovernmentBodyAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "kind"]
    list_filter = ["kind"]
    search_fields = ["code", "name"]


class RoleAdmin(admin.ModelAdmin):
    """Staff roles change through accounts.services, so each change is checked and recorded."""

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # a bulk delete would skip the service
        return actions

    def get_readonly_fields(self, request, obj=None):
        return ["user"] if obj else []


@admin.register(GovernmentStaff)
class GovernmentStaffAdmin(RoleAdmin):
    list_display = ["user", "body", "created_at"]
    list_filter = ["body"]
    list_select_related = ["user", "body"]
    search_fields = ["user__email", "body__name"]
    autocomplete_fields = ["user", "body"]

    def save_model(self, request, obj, form, change):
        saved = services.government_staff_assign(user=obj.user, body=obj.body, actor=request.user)
        obj.pk = saved.pk

    def delete_model(self, request, obj):
        services.government_staff_assign(user=obj.user, body=None, actor=request.user)


@admin.register(FoundationRole)
class FoundationRoleAdmin(RoleAdmin):
    list_display = ["user", "role", "created_at"]
    list_filter = ["role"]
    list_select_related = ["user"]
    search_fields = ["user__email"]
    autocomplete_fields = ["user"]

    def has_change_permission(self, request, obj=None):
        return obj is None and super().has_change_permission(request, obj)

    def save_model(self, request, obj, form, change):
        services.foundation_role_set(user=obj.user, role=obj.role, granted=True, actor=request.user)

    def delete_model(self, request, obj):
        services.foundation_role_set(
            user=obj.user, role=obj.role, granted=False, actor=request.user
        )


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    list_display = ["email", "organization", "role", "created_at", "accepted_at", "revoked_at"]
    list_select_related = ["organization"]
    search_fields = ["email", "organization__name"]
    readonly_fields = ["token", "invited_by", "accepted_by", "accepted_at", "revoked_at"]


@admin.register(AccountEvent)
class AccountEventAdmin(admin.ModelAdmin):
    list_display = ["occurred_at", "action", "actor", "subject", "organization"]
    list_filter = ["action"]
    list_select_related = ["actor", "subject", "organization"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
