from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class GrantsConfig(AppConfig):
    name = "grants"
    verbose_name = _("Grants")

    def ready(self) -> None:
        # Adds the grants' checks to manage.py check_ledger.
        from . import checks  # noqa: F401
