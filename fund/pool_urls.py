"""The sponsors' match pool statements, mounted at /pools/ under the ``pools`` namespace.

The foundation's pool pages are staff pages: ``fund.urls`` (/projects/staff/pools/).
"""

from django.urls import path

from . import views

app_name = "pools"
urlpatterns = [
    path("", views.sponsor_pools, name="list"),
    path("<int:pk>/statement/", views.pool_statement, name="statement"),
    path("<int:pk>/statement.csv", views.pool_statement_csv, name="statement-csv"),
]
