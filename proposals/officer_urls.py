"""The government officer's area, mounted at /gov/ under the ``officer`` namespace."""

from django.urls import path

from . import officer_views as views

app_name = "officer"
urlpatterns = [
    path("", views.home, name="home"),
    path("operations/", views.operation_list, name="operation-list"),
    path("operations/new/", views.operation_create, name="operation-create"),
    path("operations/<int:pk>/edit/", views.operation_edit, name="operation-edit"),
    path("proposals/", views.proposal_list, name="proposal-list"),
    path("proposals/new/", views.proposal_create, name="proposal-create"),
    path("proposals/<int:pk>/", views.proposal_detail, name="proposal-detail"),
    # action: consult, respond, contract, assess, withdraw or budget-provision (POST only).
    path("proposals/<int:pk>/<slug:action>/", views.proposal_action, name="proposal-action"),
]
