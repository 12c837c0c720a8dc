"""``manage.py load_demo``: demo data for ``make run``; a second run adds only what is missing.

It lives in grants, the last app, because it loads every app's demo: the register
(proposals), the people and the sponsors (accounts), the projects and the match pools (fund),
the gifts (donations) and the grants (grants). The order matters: the pools are pledged before
the gifts are given, so the real matching service matches the gifts, and the sponsors' payments
and the end of one pool come after them; the grants come last, from the money raised.
"""

import logging
import time
from contextlib import contextmanager

from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.demo import load_people_demo, load_sponsors_demo
from donations.demo import load_donations_demo, planned_gifts
from fund.demo import finish_pools_demo, fundable_candidates, load_fund_demo, load_pools_demo
from grants.demo import load_grants_demo
from proposals.demo import MUNICIPALITIES, PREFECTURE, load_register_demo
from proposals.models import Proposal


@contextmanager
def quiet_eager_tasks():
    """Without Redis, Celery runs the demo gifts' tasks in process and logs a line for each
    (about fifty on a first load); keep the command's output to its summary."""
    logger = logging.getLogger("celery.app.trace")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


class Command(BaseCommand):
    help = (
        "Load demo data (Saga Prefecture's register, demo people, fund projects, sponsors' "
        "match pools, gifts, grants). "
        "Idempotent."
    )

    def handle(self, *args, **options):
        started = time.monotonic()
        with quiet_eager_tasks(), transaction.atomic():
            created = load_register_demo(stdout=self.stdout if options["verbosity"] > 1 else None)
            # The demo CSO proposed one of the demo projects, so its members see both a living
            # record in their area and the money raised for it.
            demo_cso = next(
                (p.organization for p in fundable_candidates() if p.organization.kind == "cso"),
                None,
            ) or (
                Proposal.objects.filter(organization__kind="cso")
                .order_by("-received_on", "reference")
                .select_related("organization")
                .first()
                .organization
            )
            created |= load_people_demo(
                cso=demo_cso,
                prefecture_code=PREFECTURE[0],
                city_code=MUNICIPALITIES[0][0],
            )
            # The match pools' sponsors: a bank (with a demo account), a foundation, the
            # prefecture's division.
            created |= load_sponsors_demo()
            # Listed by the demo programme officer, whom load_people_demo has just made.
            created |= load_fund_demo()
            # Pledged by the programme officer before the gifts, so the gifts are matched; the
            # nearly spent pool's pledge is worked out from the gifts about to be given.
            created |= load_pools_demo(planned_gifts())
            # Gifts through the payment pipeline (demo provider), one refunded in part by the
            # demo finance officer; each matched as it succeeds.
            created |= load_donations_demo()
            # Then the sponsors' payments and one pool ended (its leftover to the general fund).
            created |= finish_pools_demo()
            # Grants at every stage on the projects that raised money (closing those still
            # open but one), through the grants services: proposed, approved, paid in part,
            # reported and closed (written back to the register), and one from the general fund.
            created |= load_grants_demo()
        elapsed = time.monotonic() - started
        if options["verbosity"] == 0:
            return
        if any(created.values()):
            summary = ", ".join(f"{n} {name.replace('_', ' ')}" for name, n in created.items())
            self.stdout.write(self.style.SUCCESS(f"Demo data loaded in {elapsed:.1f}s: {summary}"))
        else:
            self.stdout.write(f"Demo data already loaded; nothing to add ({elapsed:.1f}s).")
