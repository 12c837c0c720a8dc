"""``manage.py check_ledger``: every invariant of the ledger; exits non-zero on any violation."""

from django.core.management.base import BaseCommand, CommandError

from fund.checks import run_checks


class Command(BaseCommand):
    help = "Check the ledger's invariants (balanced entries, no fund below zero, whole yen …)."

    def handle(self, *args, **options):
        problems = run_checks()
        if problems:
            lines = [f"{name}: {problem}" for name, found in problems.items() for problem in found]
            raise CommandError("The ledger has problems:\n" + "\n".join(lines))
        self.stdout.write(self.style.SUCCESS("The ledger is consistent."))
