"""Organisations, their members and invitations; included under ``organizations/``."""

from django.urls import path

from . import organization_views as views

app_name = "organizations"
urlpatterns = [
    path("", views.organization_list, name="list"),
    path("<int:pk>/", views.organization_detail, name="detail"),
    path("<int:pk>/invitations/", views.invitation_create, name="invite"),
    path(
        "<int:pk>/invitations/<int:invitation_pk>/revoke/",
        views.invitation_revoke,
        name="invitation-revoke",
    ),
    path(
        "<int:pk>/members/<int:membership_pk>/role/",
        views.membership_set_role,
        name="member-role",
    ),
    path(
        "<int:pk>/members/<int:membership_pk>/remove/",
        views.membership_remove,
        name="member-remove",
    ),
    path("<int:pk>/leave/", views.organization_leave, name="leave"),
    # The link in the invitation email (accounts.services reverses this name).
    path("invitations/<slug:token>/", views.invitation_accept, name="invitation-accept"),
]
