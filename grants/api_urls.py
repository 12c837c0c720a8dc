"""The grants' API, mounted at /api/v1/ (config/urls.py): see ``grants.api``."""

from rest_framework.routers import SimpleRouter

from . import api

app_name = "grants_api"

router = SimpleRouter()
router.register("grants", api.GrantViewSet, basename="grant")
router.register("tranches", api.TrancheViewSet, basename="tranche")
router.register("transfer-batches", api.TransferBatchViewSet, basename="transfer-batch")
router.register("transfer-lines", api.TransferLineViewSet, basename="transfer-line")
router.register("reports", api.ReportViewSet, basename="report")

urlpatterns = router.urls
