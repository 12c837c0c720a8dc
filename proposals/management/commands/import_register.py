"""``manage.py import_register``: load the register's spreadsheets from files on disk."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from proposals.importing import ImportErrors, import_register


class Command(BaseCommand):
    # Plain gettext: argparse needs real strings, and commands load after Django is set up.
    help = _(
        "Import the collaboration-testing register from CSV (UTF-8 or Shift_JIS) or .xlsx "
        "files: all rows are checked first, and nothing is written if any is wrong."
    )

    def add_arguments(self, parser):
        parser.add_argument("--operations", help=_("the operations catalogue"))
        parser.add_argument("--proposals", help=_("the proposals received"))
        parser.add_argument(
            "--participation",
            help=_("the municipalities taking part, by year"),
        )

    def handle(self, *args, **options):
        kinds = ("operations", "proposals", "participation")
        paths = {kind: options[kind] for kind in kinds if options[kind] is not None}
        if not paths:
            raise CommandError(
                _("Give at least one of --operations, --proposals and --participation.")
            )
        files = {}
        for kind, path in paths.items():
            try:
                files[kind] = Path(path).read_bytes()
            except OSError as exc:
                raise CommandError(
                    _("Cannot read %(path)s: %(error)s") % {"path": path, "error": exc.strerror}
                ) from exc
        try:
            summary = import_register(**files, actor=None, source="import")
        except ImportErrors as exc:
            raise CommandError("\n".join([_("Nothing was imported:"), *exc.messages])) from exc
        for line in summary.lines():
            self.stdout.write(self.style.SUCCESS(line))
