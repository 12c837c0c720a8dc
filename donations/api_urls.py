"""The donations API, mounted at /api/v1/ (config/urls.py): projects and giving."""

from rest_framework.routers import SimpleRouter

from . import api

app_name = "donations_api"

router = SimpleRouter()
router.register("projects", api.ProjectViewSet, basename="project")
router.register("donations", api.DonationViewSet, basename="donation")

urlpatterns = router.urls
