"""Filled in by the roles issue."""

app_name = "organizations"
urlpatterns: list = []
