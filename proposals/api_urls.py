"""The register's API, mounted at /api/v1/ (config/urls.py)."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from . import api

app_name = "proposals_api"

router = SimpleRouter()
router.register("operations", api.OperationViewSet, basename="operation")
router.register("proposals", api.ProposalViewSet, basename="proposal")

urlpatterns = [
    path("stats/adoption/", api.AdoptionStatisticsView.as_view(), name="adoption-statistics"),
    *router.urls,
]
