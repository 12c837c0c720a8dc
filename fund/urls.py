"""The fund's pages, mounted at /projects/ under the ``fund`` namespace.

The public project list and pages (/projects/, /projects/<pk>/) are ``donations`` URLs, matched
first (config/urls.py). The sponsors' statements are at /pools/ (``fund.pool_urls``).
"""

from django.urls import path

from . import views

app_name = "fund"
urlpatterns = [
    path("unfunded/", views.unfunded, name="unfunded"),
    # The foundation's staff pages.
    path("staff/", views.staff_projects, name="staff-projects"),
    # Match pools (before the projects' own <pk>/<action>/ pattern).
    path("staff/pools/", views.staff_pools, name="staff-pools"),
    path("staff/pools/new/", views.pool_create, name="pool-create"),
    path("staff/pools/<int:pk>/", views.staff_pool, name="staff-pool"),
    path("staff/pools/<int:pk>/end/", views.pool_end, name="pool-end"),
    # action: top-up, payment or change (POST only).
    path("staff/pools/<int:pk>/<slug:action>/", views.pool_action, name="pool-action"),
    path("staff/new/<int:proposal_pk>/", views.project_create, name="project-create"),
    path("staff/<int:pk>/", views.staff_project, name="staff-project"),
    path("staff/<int:pk>/edit/", views.project_edit, name="project-edit"),
    # action: open, close or cancel (POST only).
    path("staff/<int:pk>/<slug:action>/", views.project_transition, name="project-transition"),
]
