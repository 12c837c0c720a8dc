"""Benchmark of match funding under load: 16 clients on ONE pool against 16 clients on 16 pools.

Run from the repository root:

    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/civicfund \\
    .venv/bin/python bench/matching.py

It creates the database ``test_<name>_bench_matching`` next to the one named (which is never
written to) and drops it afterwards. ``--clients`` processes (16), each with its own database
connection, record paid one-time gifts through the pipeline's own step (``apply_checkout_state``
— the donation locked, the gift, its ledger entry, its match and the history, one transaction
per gift, as the worker does for a settled checkout event) as fast as they can:

- **one pool**: every client gives to its own project, and all 16 projects are matched by the
  same pool — every match waits for the pool's lock;
- **16 pools**: each client's project is matched by its own pool only — no contention.

Each pool holds far more than is given, so every gift is matched once (one allocation). The two
set-ups alternate ``--rounds`` times (load from anything else on the machine falls on both
alike); it reports each set-up's median allocations per second and the ratio one pool / 16 pools
(goal ≥ 0.5), checks the ledger afterwards, and exits 1 if the goal is missed. Without
``BENCH_DATABASE_URL`` (PostgreSQL) it says so and exits 0: the figures mean nothing on SQLite,
which has no row locks.

It also times, per gift, how long the pool's lock was waited for and held (acquired → committed).
Gifts to one pool take turns in that section, so one pool can never take more than about
1 / held allocations per second, however many cores serve it; with few cores the 16 pools are
bound by the CPU instead, and the ratio alone flatters the lock.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import random
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RATIO_GOAL = 0.5
PLEDGE = 10**12  # never runs out: every gift is matched in full


# --- Set-up ------------------------------------------------------------------------------------


def configure_django(database_url: str) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("CELERY_TASK_ALWAYS_EAGER", "1")
    import django

    django.setup()


def create_database() -> Callable[[], None]:
    """``test_<name>_bench_matching``, migrated; returns how to drop it."""
    from django.db import connection

    old_name = connection.settings_dict["NAME"]
    connection.settings_dict["NAME"] = f"{old_name}_bench_matching"
    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    return lambda: connection.creation.destroy_test_db(f"{old_name}_bench_matching", verbosity=0)


def create_pools(clients: int, cap_per_donor: int | None) -> dict[str, list]:
    """Two sets of ``clients`` projects: one set matched by one shared pool, the other each by
    a pool of its own. Returns the projects by set-up."""
    from tests.factories import OrganizationFactory, ProjectFactory, SiteAdminFactory, pledge_pool

    admin = SiteAdminFactory()
    sponsor = OrganizationFactory(name="佐賀未来銀行")
    shared = [ProjectFactory(goal_yen=10**12) for _ in range(clients)]
    own = [ProjectFactory(goal_yen=10**12) for _ in range(clients)]
    rules = dict(actor=admin, sponsor=sponsor, scope="projects", cap_per_donor=cap_per_donor)
    pledge_pool(PLEDGE, projects=shared, name="one pool for all", **rules)
    for n, project in enumerate(own):
        pledge_pool(PLEDGE, projects=[project], name=f"pool {n}", **rules)
    return {"one pool": shared, "own pools": own}


def create_donations(projects: list, per_client: int, rng: random.Random) -> list[list]:
    """Per client: ``per_client`` pending donations to its project (no receipt wanted)."""
    from donations.models import Donation

    batches = []
    for client, project in enumerate(projects):
        batches.append(
            Donation.objects.bulk_create(
                Donation(
                    project=project,
                    amount=rng.randint(1000, 50_000),
                    provider=Donation.Provider.DEMO,
                    email=f"bench-{project.pk}-{client}-{n}-{rng.random()}@example.jp",
                    name="佐賀 花子",
                    wants_receipt=False,
                )
                for n in range(per_client)
            )
        )
    return batches


# --- Load --------------------------------------------------------------------------------------


def _time_the_pool_lock(waited: list[float], held: list[float]) -> None:
    """Record, per gift, how long the pool's lock was waited for and how long it was held (from
    acquired to committed: the part of a gift that one pool serialises)."""
    from django.db import transaction

    from fund import matching

    lock_pools = matching._lock_pools

    def timed(pools):
        asked = time.perf_counter()
        locked = lock_pools(pools)
        got = time.perf_counter()
        waited.append(got - asked)
        transaction.on_commit(lambda: held.append(time.perf_counter() - got))
        return locked

    matching._lock_pools = timed


def _client(donations: list, start_at: float, results) -> None:
    """One client process: each gift paid and recorded, one transaction each."""
    from django.db import connection
    from django.utils import timezone

    from donations.providers import CheckoutState, Payment
    from donations.services import apply_checkout_state

    failures = 0
    waited: list[float] = []
    held: list[float] = []
    _time_the_pool_lock(waited, held)
    try:
        connection.ensure_connection()
        time.sleep(max(0, start_at - time.time()))
        for donation in donations:
            payment_id = f"pi_bench_{donation.pk.hex}"
            try:
                apply_checkout_state(
                    CheckoutState(
                        session_id=f"cs_bench_{donation.pk.hex}",
                        donation_id=str(donation.pk),
                        status="complete",
                        payment_status="paid",
                        payment=Payment(
                            payment_id=payment_id,
                            payment_intent_id=payment_id,
                            amount=donation.amount,
                            received_at=timezone.now(),
                        ),
                    ),
                    source="bench",
                )
            except Exception as error:  # reported, and fails the run
                failures += 1
                print(f"gift failed: {type(error).__name__}: {error}", file=sys.stderr)
    finally:
        connection.close()
        results.put((time.time(), failures, waited, held))


@dataclass
class Round:
    rate: float  # allocations per second, from the start line to the last commit
    waited: float  # median seconds a gift waited for the pool's lock
    held: float  # median seconds a gift held it (acquired → committed)


def run_round(batches: list[list]) -> Round:
    """All clients at once, each with its share of the gifts."""
    from django.db import connections

    from fund.models import MatchAllocation

    before = MatchAllocation.objects.count()
    connections.close_all()  # no database connection crosses a fork
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    start_at = time.time() + 0.5
    workers = [
        context.Process(target=_client, args=(batch, start_at, results)) for batch in batches
    ]
    for worker in workers:
        worker.start()
    ends, failures, waited, held = zip(*(results.get() for _ in workers), strict=True)
    for worker in workers:
        worker.join()
    if sum(failures):
        raise RuntimeError(f"{sum(failures)} gifts failed")
    made = MatchAllocation.objects.count() - before
    expected = sum(len(batch) for batch in batches)
    if made != expected:
        raise RuntimeError(f"{made} allocations for {expected} gifts")
    return Round(
        rate=made / (max(ends) - start_at),
        waited=statistics.median(t for times in waited for t in times),
        held=statistics.median(t for times in held for t in times),
    )


def run(args) -> dict[str, list[Round]]:
    from fund.checks import run_checks

    rng = random.Random(args.seed)
    setups = create_pools(args.clients, args.cap_per_donor)
    rounds: dict[str, list[Round]] = {name: [] for name in setups}
    # A warm-up round each: connections, the projects' ledger accounts, PostgreSQL's caches.
    for projects in setups.values():
        run_round(create_donations(projects, max(args.gifts // 5, 1), rng))
    for n in range(args.rounds):
        # Alternate which goes first, so neither set-up always follows the other.
        order = list(setups.items()) if n % 2 == 0 else list(setups.items())[::-1]
        for name, projects in order:
            result = run_round(create_donations(projects, args.gifts, rng))
            rounds[name].append(result)
            print(
                f"  round {n + 1}: {name:9} {result.rate:7,.0f} allocations/s; pool lock "
                f"waited {result.waited * 1000:.1f} ms, held {result.held * 1000:.1f} ms",
                flush=True,
            )
    problems = run_checks()
    if problems:
        raise RuntimeError(f"ledger checks failed: {problems}")
    return rounds


def report(rounds: dict[str, list[Round]], args) -> bool:
    def median(name: str, field: str) -> float:
        return statistics.median(getattr(r, field) for r in rounds[name])

    one, many = median("one pool", "rate"), median("own pools", "rate")
    ratio = one / many
    print()
    print(
        f"{platform.node()}: {os.cpu_count()} CPUs, Python {platform.python_version()}; "
        f"{args.clients} client processes × {args.gifts} gifts per round, {args.rounds} rounds "
        f"each; cap per donor: {args.cap_per_donor or 'none'}"
    )
    print()
    print("| set-up | allocations/s (median) | each round | pool lock waited | held |")
    print("|---|---:|---|---:|---:|")
    n = args.clients
    labels = {"one pool": f"{n} clients, one pool", "own pools": f"{n} clients, {n} pools"}
    for name, label in labels.items():
        print(
            f"| {label} | {median(name, 'rate'):,.0f} | "
            f"{', '.join(f'{r.rate:,.0f}' for r in rounds[name])} | "
            f"{median(name, 'waited') * 1000:.1f} ms | {median(name, 'held') * 1000:.1f} ms |"
        )
    print(f"| ratio one pool / {n} pools | {ratio:.2f} | goal ≥ {RATIO_GOAL} | | |")
    print()
    print(
        "Held: from the pool's lock acquired to the commit (medians per gift). One pool can "
        f"take at most about {1 / median('one pool', 'held'):,.0f} allocations/s however many "
        "cores serve it."
    )
    return ratio >= RATIO_GOAL


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--clients", type=int, default=16, help="client processes")
    parser.add_argument("--gifts", type=int, default=60, help="gifts per client per round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each set-up")
    parser.add_argument("--cap-per-donor", type=int, default=None, help="the pools' donor cap")
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()

    database_url = os.environ.get("BENCH_DATABASE_URL", "")
    if urlsplit(database_url).scheme not in ("postgres", "postgresql"):
        print(
            "bench/matching.py: skipped — set BENCH_DATABASE_URL=postgres://… (the pool's lock "
            "is a PostgreSQL row lock; SQLite locks the whole database)"
        )
        return 0
    warnings.filterwarnings("ignore", message="No directory at", category=UserWarning)
    configure_django(database_url)
    drop = create_database()
    try:
        rounds = run(args)
    finally:
        from django.db import connections

        connections.close_all()
        drop()
    return 0 if report(rounds, args) else 1


if __name__ == "__main__":
    sys.exit(main())
