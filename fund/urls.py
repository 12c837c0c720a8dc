"""The fund's pages, mounted at /projects/ under the ``fund`` namespace.

The public project list and pages (/projects/, /projects/<pk>/) are ``donations`` URLs, matched
first (config/urls.py).
"""

from django.urls import path

from . import views

app_name = "fund"
urlpatterns = [
    path("unfunded/", views.unfunded, name="unfunded"),
    # The foundation's staff pages.
    path("staff/", views.staff_projects, name="staff-projects"),
    path("staff/new/<int:proposal_pk>/", views.project_create, name="project-create"),
    path("staff/<int:pk>/", views.staff_project, name="staff-project"),
    path("staff/<int:pk>/edit/", views.project_edit, name="project-edit"),
    # action: open, close or cancel (POST only).
    path("staff/<int:pk>/<slug:action>/", views.project_transition, name="project-transition"),
]
