"""Filled in by the roles issue."""

app_name = "officer"
urlpatterns: list = []
