from django.urls import path

from . import views

app_name = "accounts"
urlpatterns = [
    path("me/", views.dashboard, name="dashboard"),
    path("me/token/", views.token_create, name="token-create"),
    path("me/token/revoke/", views.token_revoke, name="token-revoke"),
    path("me/data.json", views.data_export, name="data-export"),
    path("me/close/", views.close, name="close"),
    path("me/closed/", views.closed, name="closed"),
    path("privacy/", views.privacy, name="privacy"),
]
