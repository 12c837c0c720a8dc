from django.contrib import admin
from django.contrib.auth.decorators import login_required
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from config.health import healthz

# A 503 (try again shortly) instead of a 500 while the database or Redis is away; JSON under
# /api/.
handler404 = "config.errors.page_not_found"
handler500 = "config.errors.server_error"

# The admin signs in through allauth too, so its rate limits and two-factor step apply there.
admin.site.login = login_required(admin.site.login)

# Uploaded files (proposal letters) are private: no public media URL; views serve them after a
# permission check.
urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves Swagger UI's own script as a file: no inline script (CSP).
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/v1/", include("proposals.api_urls")),
    path("api/v1/", include("fund.api_urls")),
    path("api/v1/", include("donations.api_urls")),
    path("api/v1/", include("grants.api_urls")),
    path("organizations/", include("accounts.organization_urls")),
    path("gov/", include("proposals.officer_urls")),
    path("cso/", include("proposals.cso_urls")),
    # The public project pages (/projects/, /projects/<pk>/…) are donations' gift pages, so
    # donations comes before fund's staff pages under /projects/.
    path("", include("donations.urls")),
    path("projects/", include("fund.urls")),
    path("pools/", include("fund.pool_urls")),
    path("grants/", include("grants.urls")),
    path("", include("accounts.urls")),
    path("", include("proposals.urls")),
]
