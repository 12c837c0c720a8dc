"""The CSO area, included under ``cso/``: an organisation's proposals, submitting and following."""

from django.urls import path

from . import cso_views as views

app_name = "cso"
urlpatterns = [
    path("", views.home, name="home"),
    path("proposals/new/", views.proposal_submit, name="proposal-submit"),
    path("proposals/<int:pk>/", views.proposal_detail, name="proposal-detail"),
    path("proposals/<int:pk>/withdraw/", views.proposal_withdraw, name="proposal-withdraw"),
]
