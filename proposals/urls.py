"""The register's public pages, included at the site's root under the ``proposals`` namespace."""

from django.urls import path

from . import cso_views, views

app_name = "proposals"
urlpatterns = [
    path("", views.home, name="home"),
    path("operations/", views.operation_list, name="operation-list"),
    path("operations/<int:pk>/", views.operation_detail, name="operation-detail"),
    path("proposals/", views.proposal_list, name="proposal-list"),
    path("proposals/<int:pk>/", views.proposal_detail, name="proposal-detail"),
    path("proposals/<int:pk>/letter/", cso_views.proposal_letter, name="proposal-letter"),
    path("stats/adoption/", views.adoption_stats, name="adoption-stats"),
    path("stats/adoption.csv", views.adoption_stats_csv, name="adoption-stats-csv"),
]
