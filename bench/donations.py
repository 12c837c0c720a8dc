"""Benchmark of the gift pipeline: Stripe's webhook and the worker, on PostgreSQL and Redis.

Run from the repository root:

    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/civicfund \\
    BENCH_REDIS_URL=redis://127.0.0.1:6379/0 .venv/bin/python bench/donations.py

It creates the database ``test_<name>_bench_donations`` next to the one named (which is never
written to) and drops it afterwards, uses the Redis database named as the broker (its Celery
queue is emptied first), and starts real servers as production runs them:

- gunicorn (``config.wsgi`` with ``bench.bench_settings``: the project's URLs plus a trivial
  view), ``--workers`` processes × ``--threads`` threads, DEBUG off;
- a Celery worker (``prefork``, ``--concurrency`` processes);
- the tests' fake Stripe (``tests/donations/fake_stripe.py``), which the worker asks for each
  checkout's state as it would ask Stripe.

Load comes from separate processes (keep-alive connections, ``--clients`` in all). It measures:

(a) requests per second of the trivial view, and webhook events accepted per second (signed
    ``checkout.session.completed`` events: verified, stored, queued) with no worker running —
    goal: the webhook at least half the trivial view's rate;
(b) gifts processed per second: the worker drains the events stored in (a) (each: the
    session fetched from "Stripe", the gift, its ledger entry, the history), and end to end —
    events posted to the webhook while the worker runs, from the first post to the last gift
    recorded — goal: ≥ 200 gifts/s.

Donors here want no receipt: receipts (numbered under a per-year lock, a PDF, an email) are a
later stage with its own pace; ``--receipts`` adds a run that waits for them to be issued.
``--stripe-latency 0.2`` makes the fake answer as slowly as Stripe does, ``--pool threads``
runs the worker's tasks in threads; ``BENCH_KEEP_LOGS=1`` keeps the servers' logs.

It prints a table and exits 1 if a goal is missed. Without ``BENCH_DATABASE_URL`` (PostgreSQL)
and ``BENCH_REDIS_URL`` it says so and exits 0: the figures mean nothing on SQLite.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote, urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

VENV_BIN = Path(sys.executable).parent
WEBHOOK_PATH = "/stripe/webhook/"
TRIVIAL_PATH = "/bench/trivial/"
ACCEPT_GOAL = 0.5  # webhook rate ≥ half the trivial view's
PROCESSED_GOAL = 200  # gifts per second


# --- Set-up ------------------------------------------------------------------------------------


def configure_django(database_url: str, redis_url: str) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    os.environ["DATABASE_URL"] = database_url
    os.environ["REDIS_URL"] = redis_url
    import django

    django.setup()


def create_database(suffix: str = "bench_donations") -> Callable[[], None]:
    """``test_<name>_<suffix>``, migrated; returns how to drop it."""
    from django.db import connection

    name = f"{connection.settings_dict['NAME']}_{suffix}"
    connection.settings_dict["NAME"] = name
    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    return lambda: connection.creation.destroy_test_db(name, verbosity=0)


def database_url_of_connection() -> str:
    from django.db import connection

    db = connection.settings_dict
    password = f":{quote(db['PASSWORD'])}" if db["PASSWORD"] else ""
    host = db["HOST"] or "127.0.0.1"
    return (
        f"postgres://{quote(db['USER'] or '')}{password}@{host}:{db['PORT'] or 5432}/{db['NAME']}"
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """A subprocess in its own process group, its output in a log file."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name, self.command, self.env = name, command, env
        self.log_path = log_dir / f"{name}.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> Server:
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                self.command,
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def wait_for(self, ready: Callable[[], bool], timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not start:\n{self.log()}")
            time.sleep(0.05)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


# --- Data --------------------------------------------------------------------------------------


def create_paid_checkouts(fake, count: int, *, wants_receipt: bool) -> list[dict]:
    """``count`` donations with a Stripe checkout (opened through ``StripeProvider``, as the
    site does) that the donor has paid; returns each one's ``checkout.session.completed``."""
    from django.db import close_old_connections

    from donations.models import Donation
    from donations.providers import get_provider
    from fund.models import Project

    projects = [*Project.objects.all(), None]
    donations = Donation.objects.bulk_create(
        Donation(
            project=projects[n % len(projects)],
            amount=3000,
            provider=Donation.Provider.STRIPE,
            email=f"bench{time.monotonic_ns()}-{n}@example.jp",
            name="佐賀 花子",
            postal_code="840-0041",
            address="佐賀県佐賀市城内1-1-59",
            wants_receipt=wants_receipt,
        )
        for n in range(count)
    )
    provider = get_provider(Donation.Provider.STRIPE)

    def open_checkout(donation: Donation) -> Donation:
        try:
            donation.checkout_session_id, donation.checkout_url = provider.create_checkout(
                donation,
                success_url=f"https://bench.example/donations/{donation.id}/thanks/",
                cancel_url="https://bench.example/projects/",
            )
        finally:
            close_old_connections()
        return donation

    with ThreadPoolExecutor(8) as pool:
        donations = list(pool.map(open_checkout, donations))
    Donation.objects.bulk_update(donations, ["checkout_session_id", "checkout_url"])
    return [fake.pay(d.checkout_session_id)[-1] for d in donations]


def signed(events: list[dict]) -> list[tuple[bytes, str]]:
    from tests.donations.fake_stripe import sign

    bodies = [json.dumps(event).encode() for event in events]
    return [(body, sign(body)) for body in bodies]


# --- Load --------------------------------------------------------------------------------------


def _client_process(port, path, requests, threads, start_at, results) -> None:
    import http.client

    def run(share):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        failures = 0
        for body, signature in share:
            connection.request(
                "POST",
                path,
                body=body,
                headers={"Content-Type": "application/json", "Stripe-Signature": signature},
            )
            response = connection.getresponse()
            response.read()
            failures += response.status != 200
        connection.close()
        return failures

    time.sleep(max(0, start_at - time.time()))
    with ThreadPoolExecutor(threads) as pool:
        failures = sum(pool.map(run, [requests[i::threads] for i in range(threads)]))
    results.put((time.time(), failures))


def post_all(
    port: int, path: str, requests: list[tuple[bytes, str]], clients: int
) -> tuple[float, float]:
    """POST every request from ``clients`` keep-alive connections (in 2 processes); returns
    the common start time and the time of the last answer."""
    from django.db import connections

    connections.close_all()  # no database connection crosses a fork
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    processes = 2
    start_at = time.time() + 0.5
    workers = [
        context.Process(
            target=_client_process,
            args=(port, path, requests[i::processes], clients // processes, start_at, results),
        )
        for i in range(processes)
    ]
    for worker in workers:
        worker.start()
    ends, failures = zip(*(results.get() for _ in workers), strict=True)
    for worker in workers:
        worker.join()
    if sum(failures):
        raise RuntimeError(f"{sum(failures)} requests to {path} failed")
    return start_at, max(ends)


def rate(count: int, span: tuple[float, float]) -> float:
    return count / (span[1] - span[0])


def cpu_seconds() -> dict[str, float]:
    """CPU time used so far by each kind of process on the machine (from /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    totals: dict[str, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        used = (int(fields[11]) + int(fields[12])) / ticks  # utime + stime
        if int(entry.name) == os.getpid():
            kind = "this script (fake Stripe, load)"
        elif "celery" in command:
            kind = "celery worker"
        elif "gunicorn" in command:
            kind = "gunicorn"
        elif command.startswith("postgres") or "postgres:" in command:
            kind = "postgres"
        elif "redis-server" in command:
            kind = "redis"
        elif "multiprocessing" in command or "donations.py" in command:
            kind = "this script (fake Stripe, load)"
        else:
            kind = "other"
        totals[kind] = totals.get(kind, 0) + used
    return totals


def cpu_used(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {k: after.get(k, 0) - before.get(k, 0) for k in after}


def wait_until(count: Callable[[], int], target: int, timeout: float = 600) -> float:
    """Poll until ``count()`` reaches ``target``; returns the time it did."""
    deadline = time.monotonic() + timeout
    while (done := count()) < target:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {done} of {target} after {timeout:.0f} s")
        time.sleep(0.02)
    return time.time()


# --- The benchmark -----------------------------------------------------------------------------


def run(args, log_dir: Path) -> dict[str, float]:
    from donations.models import Gift, Receipt, WebhookEvent
    from tests.donations.fake_stripe import SECRET_KEY, WEBHOOK_SECRET, FakeStripe
    from tests.factories import ProjectFactory

    fake = FakeStripe().start()  # no latency while the data is set up
    from django.conf import settings

    settings.STRIPE_SECRET_KEY, settings.STRIPE_API_BASE = SECRET_KEY, fake.url
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.bench_settings",
        "DATABASE_URL": database_url_of_connection(),
        "DB_CONN_MAX_AGE": "60",
        "REDIS_URL": os.environ["REDIS_URL"],
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "DEBUG": "0",
        "SECRET_KEY": "bench-only-secret-key-0123456789abcdefghijklmnopqrstuvwxyz",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "STRIPE_SECRET_KEY": SECRET_KEY,
        "STRIPE_API_BASE": fake.url,
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "EMAIL_URL": f"file://{log_dir / 'mail'}",
        "LOG_LEVEL": "WARNING",
    }
    port = free_port()
    web = Server(
        "gunicorn",
        [
            str(VENV_BIN / "gunicorn"),
            "config.wsgi:application",
            f"--bind=127.0.0.1:{port}",
            f"--workers={args.web_workers}",
            "--worker-class=gthread",
            f"--threads={args.threads}",
            "--keep-alive=30",
            "--log-level=warning",
        ],
        env,
        log_dir,
    )
    worker = Server(
        "celery",
        [
            str(VENV_BIN / "celery"),
            "-A",
            "config",
            "worker",
            "-l",
            "info",
            "-c",
            str(args.concurrency),
            "--pool",
            args.pool,
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ],
        env,
        log_dir,
    )
    results: dict[str, float] = {}
    try:
        for _ in range(4):
            ProjectFactory(goal_yen=1_000_000_000)
        print(f"setting up {args.events + args.e2e_events} paid checkouts…", flush=True)
        stored_batch = create_paid_checkouts(fake, args.events, wants_receipt=False)
        e2e_batch = create_paid_checkouts(fake, args.e2e_events, wants_receipt=False)
        receipt_batch = (
            create_paid_checkouts(fake, args.e2e_events, wants_receipt=True)
            if args.receipts
            else []
        )

        fake.latency = args.stripe_latency
        web.start().wait_for(lambda: answers(port))
        # The trivial view gets the same signed bodies (and ignores them).
        stored_requests = signed(stored_batch)
        warmup = signed(
            [{**e, "id": f"{e['id']}_warmup", "type": "bench.warmup"} for e in stored_batch[:100]]
        )
        post_all(port, TRIVIAL_PATH, stored_requests[:500], args.clients)
        post_all(port, WEBHOOK_PATH, warmup, args.clients)

        # (a) Accepted per second, no worker running.
        span = post_all(port, TRIVIAL_PATH, stored_requests, args.clients)
        results["trivial"] = rate(len(stored_requests), span)
        span = post_all(port, WEBHOOK_PATH, stored_requests, args.clients)
        results["accepted"] = rate(len(stored_batch), span)

        # (b) The worker drains what was stored… (each paid checkout is one gift: counting
        # gifts is a cheap poll that does not slow down what it measures)
        gifts = Gift.objects.count
        worker.start().wait_for(lambda: b" ready." in worker.log_path.read_bytes())
        started, cpu_before = time.time(), cpu_seconds()
        done = wait_until(gifts, len(stored_batch))
        results["drained"] = rate(len(stored_batch), (started, done))
        drain_cpu = cpu_used(cpu_before, cpu_seconds())

        # …and end to end, while Stripe keeps posting.
        requests = signed(e2e_batch)
        posted: list[tuple[float, float]] = []
        thread = threading.Thread(
            target=lambda: posted.append(post_all(port, WEBHOOK_PATH, requests, args.clients))
        )
        thread.start()
        done = wait_until(gifts, len(stored_batch) + len(e2e_batch))
        thread.join()
        results["accepted_busy"] = rate(len(requests), posted[0])
        results["end_to_end"] = rate(len(e2e_batch), (posted[0][0], done))

        if receipt_batch:
            started, _ = post_all(port, WEBHOOK_PATH, signed(receipt_batch), args.clients)
            done = wait_until(Receipt.objects.count, len(receipt_batch))
            results["with_receipts"] = rate(len(receipt_batch), (started, done))
        assert not WebhookEvent.objects.filter(processed_at__isnull=True).exists()

        from fund.checks import run_checks

        problems = run_checks()
        if problems:
            raise RuntimeError(f"ledger checks failed: {problems}")
    finally:
        worker.stop()
        web.stop()
        fake.stop()
    print("\nCPU seconds per gift while the worker drained the stored events:")
    for kind, seconds in sorted(drain_cpu.items(), key=lambda item: -item[1]):
        if seconds > 0.05 * len(stored_batch) / 1000:
            print(f"  {kind:34} {seconds / len(stored_batch) * 1000:6.1f} ms")
    return results


def report(results: dict[str, float], args) -> bool:
    accept_ratio = results["accepted"] / results["trivial"]
    rows = [
        ("trivial view (same server, same middleware)", results["trivial"], "requests/s", ""),
        (
            "webhook: events accepted (no worker running)",
            results["accepted"],
            "events/s",
            f"{accept_ratio:.0%} of trivial (goal ≥ {ACCEPT_GOAL:.0%})",
        ),
        (
            "webhook: events accepted (worker busy alongside)",
            results["accepted_busy"],
            "events/s",
            "",
        ),
        (
            "gifts processed: worker draining stored events",
            results["drained"],
            "gifts/s",
            f"goal ≥ {PROCESSED_GOAL}",
        ),
        (
            "gifts processed: end to end (post → gift recorded)",
            results["end_to_end"],
            "gifts/s",
            f"goal ≥ {PROCESSED_GOAL}",
        ),
    ]
    if "with_receipts" in results:
        rows.append(
            (
                "end to end with the receipt issued",
                results["with_receipts"],
                "gifts/s",
                "",
            )
        )
    print()
    print(
        f"{platform.node()}: {os.cpu_count()} CPUs, Python {platform.python_version()}; "
        f"gunicorn {args.web_workers}×{args.threads} threads, celery {args.pool} "
        f"-c {args.concurrency}, {args.clients} clients; {args.events} + {args.e2e_events} events; "
        f"Stripe answers in {args.stripe_latency * 1000:.0f} ms"
    )
    print()
    print("| measure | rate | unit | |")
    print("|---|---:|---|---|")
    for label, rate, unit, note in rows:
        print(f"| {label} | {rate:,.0f} | {unit} | {note} |")
    processed = min(results["drained"], results["end_to_end"])
    return accept_ratio >= ACCEPT_GOAL and processed >= PROCESSED_GOAL


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--events", type=int, default=3000, help="events stored, then drained")
    parser.add_argument("--e2e-events", type=int, default=2000, help="events end to end")
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8, help="threads per web worker")
    parser.add_argument("--concurrency", type=int, default=4, help="celery worker processes")
    parser.add_argument("--pool", default="prefork", help="celery pool: prefork or threads")
    parser.add_argument(
        "--stripe-latency", type=float, default=0, help="seconds the fake Stripe takes to answer"
    )
    parser.add_argument("--clients", type=int, default=16, help="concurrent connections")
    parser.add_argument("--receipts", action="store_true", help="also time receipts")
    args = parser.parse_args()

    database_url = os.environ.get("BENCH_DATABASE_URL", "")
    redis_url = os.environ.get("BENCH_REDIS_URL", "")
    if urlsplit(database_url).scheme not in ("postgres", "postgresql") or not redis_url:
        print(
            "bench/donations.py: skipped — set BENCH_DATABASE_URL=postgres://… and "
            "BENCH_REDIS_URL=redis://… (the webhook and worker figures need PostgreSQL and Redis)"
        )
        return 0
    warnings.filterwarnings("ignore", message="No directory at", category=UserWarning)
    configure_django(database_url, redis_url)
    import redis

    broker = redis.Redis.from_url(redis_url)
    broker.delete("celery", "unacked", "unacked_index")
    drop = create_database()
    log_dir = Path(tempfile.mkdtemp(prefix="donations-bench-", dir="/tmp"))
    try:
        results = run(args, log_dir)
    except Exception:
        print(f"failed; the servers' logs are in {log_dir}", file=sys.stderr)
        raise
    finally:
        from django.db import connections

        connections.close_all()
        drop()
        broker.delete("celery", "unacked", "unacked_index")
    goal_met = report(results, args)
    if os.environ.get("BENCH_KEEP_LOGS"):
        print(f"the servers' logs: {log_dir}")
    else:
        shutil.rmtree(log_dir, ignore_errors=True)
    return 0 if goal_met else 1


if __name__ == "__main__":
    sys.exit(main())
