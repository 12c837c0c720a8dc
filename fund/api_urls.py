"""The fund's API, mounted at /api/v1/ (config/urls.py)."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from . import api

app_name = "fund_api"

router = SimpleRouter()
router.register("projects", api.ProjectViewSet, basename="project")

urlpatterns = [
    path("unfunded-proposals/", api.UnfundedProposalsView.as_view(), name="unfunded-proposals"),
    *router.urls,
]
