"""The fund's API, mounted at /api/v1/ (config/urls.py). The projects are ``donations.api_urls``."""

from django.urls import path

from . import api

app_name = "fund_api"

urlpatterns = [
    path("unfunded-proposals/", api.UnfundedProposalsView.as_view(), name="unfunded-proposals"),
]
