"""Filled in by the roles issue."""

app_name = "cso"
urlpatterns: list = []
