"""``manage.py load_demo``: demo data for ``make run``; a second run adds only what is missing."""

import time

from django.core.management.base import BaseCommand

from proposals.demo import load_register_demo


class Command(BaseCommand):
    help = "Load demo data (Saga Prefecture's collaboration-testing register). Idempotent."

    def handle(self, *args, **options):
        started = time.monotonic()
        created = load_register_demo(stdout=self.stdout if options["verbosity"] > 1 else None)
        elapsed = time.monotonic() - started
        if options["verbosity"] == 0:
            return
        if any(created.values()):
            summary = ", ".join(f"{n} {name.replace('_', ' ')}" for name, n in created.items())
            self.stdout.write(
                self.style.SUCCESS(f"Demo register loaded in {elapsed:.1f}s: {summary}")
            )
        else:
            self.stdout.write(f"Demo register already loaded; nothing to add ({elapsed:.1f}s).")
