"""The fund's API, mounted at /api/v1/ (config/urls.py). The projects are ``donations.api_urls``."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from . import api

app_name = "fund_api"

router = SimpleRouter()
router.register("match-pools", api.MatchPoolViewSet, basename="match-pool")

urlpatterns = [
    path("unfunded-proposals/", api.UnfundedProposalsView.as_view(), name="unfunded-proposals"),
    *router.urls,
]
