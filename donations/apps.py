from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DonationsConfig(AppConfig):
    name = "donations"
    verbose_name = _("Donations")

    def ready(self) -> None:
        # Adds "one payment = one gift = one ledger group" to manage.py check_ledger.
        from . import checks  # noqa: F401
