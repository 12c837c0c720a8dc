"""Donors against the production stack, with and without faults.

Run from the repository root:

    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/civicfund \\
        .venv/bin/python bench/stack.py [--donors 200] [--seconds 60] [--faults]

It creates the database ``<name>_bench_stack`` next to the one named (which is never written
to) and drops it afterwards, starts a Redis server of its own on a free port (so that it may
restart it; like the machine's, it keeps nothing on disk) and then the three processes of the
``Procfile``, with the very commands ``make stack`` runs: gunicorn, a Celery worker and beat,
with DEBUG off and the offline demo payment provider.

``--donors`` donors give at once, for ``--seconds``. Each donor is a new visitor each time
(their own browser session and address, as a proxy in front of gunicorn would forward it) and
goes through what a person does: the project page, the give form (a third ask for a tax
receipt), the demo checkout page, "pay", and the thank-you page. "Pay" stores the event the
provider would send; the worker processes it (the webhook pipeline), unless the thank-you page
confirmed the gift first — either way once.

With ``--faults``, during the load (times for a 60-second run; a shorter run scales them): the
worker and beat are killed (SIGKILL) at 10 s and started again at 20 s; Redis is killed at 28 s
and started again empty (queued tasks, cache and locks gone); PostgreSQL refuses the database
from 38 s for 10 s, its open connections terminated.
Donors meet errors while PostgreSQL is away: they are counted, not failures of the run.

Afterwards it waits for the worker to settle everything (periodic jobs re-drive what a fault
lost, as in production; in the fault run the receipts' periodic re-drive is asked for every
15 s, with a 20-second grace instead of 10 minutes) and checks, failing (exit 1) if any does
not hold:

- without faults, no error response at all;
- every paid checkout has exactly one gift, every stored event was processed, none twice
  (one ``gift:<payment>`` ledger entry per gift);
- every gift that asked for a receipt has exactly one;
- ``check_ledger`` finds nothing.

It prints requests/s and the latency percentiles of each step. The site-wide card-testing
ceiling (``CHECKOUT_LIMIT_TOTAL``, 2,000 checkouts per 10 minutes) is raised for the run: 200
donors at once are far above it, by design.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import platform
import re
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.donations import (  # noqa: E402 (after the path is set)
    Server,
    answers,
    configure_django,
    cpu_seconds,
    cpu_used,
    create_database,
    database_url_of_connection,
    free_port,
)

POSTGRES_AWAY_SECONDS = 10
CSRF_FIELD = re.compile(rb'name="csrfmiddlewaretoken" value="([^"]+)"')
STEPS = ("project page", "give form", "give (POST)", "checkout page", "pay (POST)", "thank-you")


def procfile_commands() -> dict[str, str]:
    """The Procfile's processes, as ``make stack`` runs them."""
    commands = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line and not line.startswith("#"):
            name, command = line.split(":", 1)
            commands[name.strip()] = command.strip()
    return commands


# --- A donor -----------------------------------------------------------------------------------


class Browser:
    """One visitor: a keep-alive connection, cookies, the address the proxy forwards."""

    def __init__(self, port: int, address: str) -> None:
        self.port, self.address = port, address
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, body: bytes | None = None):
        headers = {"X-Forwarded-For": self.address, "Accept-Language": "ja"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            self.connection.request(method, path, body=body, headers=headers)
            response = self.connection.getresponse()
            content = response.read()
        except (OSError, http.client.HTTPException):
            self.connection.close()  # a fresh connection for the next request
            raise
        for header in response.headers.get_all("Set-Cookie") or []:
            name, _, rest = header.partition("=")
            self.cookies[name.strip()] = rest.split(";", 1)[0]
        return response.status, response.headers.get("Location", ""), content

    def close(self) -> None:
        self.connection.close()


def form_body(fields: dict[str, str]) -> bytes:
    from urllib.parse import urlencode

    return urlencode(fields).encode()


def give_once(browser: Browser, project_id: int, n: int, record) -> bool:
    """One donor's whole gift; ``record(step, status, seconds)`` for each request. False when a
    step answered other than a person would expect (the rest of the journey is skipped)."""

    def step(name: str, method: str, path: str, expect: int, body: bytes | None = None):
        started = time.perf_counter()
        try:
            status, location, content = browser.request(method, path, body)
        except (OSError, http.client.HTTPException):
            record(name, 0, time.perf_counter() - started)
            return None
        record(name, status, time.perf_counter() - started)
        return (location, content) if status == expect else None

    if not step(STEPS[0], "GET", f"/projects/{project_id}/", 200):
        return False
    page = step(STEPS[1], "GET", f"/projects/{project_id}/give/", 200)
    if not page or not (token := CSRF_FIELD.search(page[1])):
        return False
    fields = {
        "csrfmiddlewaretoken": token.group(1).decode(),
        "amount": "3000",
        "other_amount": "",
        "frequency": "once",
        "email": f"donor{n}@bench.example.jp",
        "name": "佐賀 花子",
        "postal_code": "840-0041",
        "address": "佐賀県佐賀市城内1-1-59",
        "display_name": "",
        "message": "",
    }
    if n % 3 == 0:
        fields["wants_receipt"] = "on"
    given = step(STEPS[2], "POST", f"/projects/{project_id}/give/", 302, form_body(fields))
    if not given:
        return False
    checkout_path = urlsplit(given[0]).path
    page = step(STEPS[3], "GET", checkout_path, 200)
    if not page or not (token := CSRF_FIELD.search(page[1])):
        return False
    body = form_body({"csrfmiddlewaretoken": token.group(1).decode(), "action": "pay"})
    paid = step(STEPS[4], "POST", checkout_path, 302, body)
    if not paid:
        return False
    return bool(step(STEPS[5], "GET", urlsplit(paid[0]).path, 200))


def _donor_process(port, project_ids, donors, first, deadline, results) -> None:
    """``donors`` threads, each giving again and again as a new visitor until ``deadline``."""
    samples: list[tuple[str, int, float, float]] = []  # step, status, seconds, when
    lock = threading.Lock()
    journeys = {"done": 0, "broken": 0}

    def record(step: str, status: int, seconds: float) -> None:
        with lock:
            samples.append((step, status, seconds, time.time()))

    def donor(index: int) -> None:
        n = 0
        while time.time() < deadline:
            # A distinct person each time: their own address (24 bits) and email.
            number = (first + index) * 4096 + n
            address = f"10.{number >> 16 & 255}.{number >> 8 & 255}.{number & 255}"
            browser = Browser(port, address)
            ok = give_once(browser, project_ids[number % len(project_ids)], number, record)
            browser.close()
            with lock:
                journeys["done" if ok else "broken"] += 1
            if not ok:
                time.sleep(0.2)  # a person reloads after an error, not in the same millisecond
            n += 1

    threads = [threading.Thread(target=donor, args=(i,)) for i in range(donors)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    results.put((samples, journeys))


def run_donors(port: int, project_ids: list[int], donors: int, seconds: float, first: int = 0):
    """``donors`` at once from 4 processes for ``seconds``; every request's sample. Donors are
    numbered from ``first``."""
    from django.db import connections

    connections.close_all()  # no database connection crosses a fork
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    processes = 4
    start = time.time()
    deadline = start + seconds
    workers = [
        context.Process(
            target=_donor_process,
            args=(port, project_ids, donors // processes, first + i * donors, deadline, results),
        )
        for i in range(processes)
    ]
    for worker in workers:
        worker.start()
    samples, journeys = [], {"done": 0, "broken": 0}
    for _ in workers:
        some, counts = results.get()
        samples.extend(some)
        for key in journeys:
            journeys[key] += counts[key]
    for worker in workers:
        worker.join()
    return start, samples, journeys


# --- Faults ------------------------------------------------------------------------------------


class RedisServer:
    def __init__(self, port: int, log_dir: Path) -> None:
        self.server = Server(
            "redis",
            [
                "redis-server",
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            {**os.environ},
            log_dir,
        )
        self.port = port

    def start(self) -> None:
        self.server.start().wait_for(lambda: answers(self.port))

    def kill(self) -> None:
        os.killpg(self.server.process.pid, 9)
        self.server.process.wait()


def postgres_away(database: str, seconds: float) -> None:
    """The database refuses connections for ``seconds``; those open are terminated."""
    import psycopg
    from django.db import connection

    db = connection.settings_dict
    admin = psycopg.connect(
        host=db["HOST"] or "127.0.0.1",
        port=db["PORT"] or 5432,
        user=db["USER"] or "postgres",
        password=db["PASSWORD"] or None,
        dbname="postgres",
        autocommit=True,
    )
    with admin:
        admin.execute(f'ALTER DATABASE "{database}" WITH ALLOW_CONNECTIONS false')
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
            [database],
        )
        time.sleep(seconds)
        admin.execute(f'ALTER DATABASE "{database}" WITH ALLOW_CONNECTIONS true')


def play_faults(
    worker: Server, beat: Server, redis: RedisServer, database: str, t0: float, seconds: float, log
):
    """The faults, at the same share of any run's length as at 10, 20, 28 and 38 s of 60."""

    def at(share: float) -> str:
        when = share * seconds
        time.sleep(max(0, t0 + when - time.time()))
        return f"{when:.0f} s"

    moment = at(10 / 60)
    for server in (worker, beat):
        os.killpg(server.process.pid, 9)
        server.process.wait()
    log(f"{moment}: worker and beat killed (SIGKILL)")
    moment = at(20 / 60)
    worker.start()
    beat.start()
    log(f"{moment}: worker and beat started again")
    moment = at(28 / 60)
    redis.kill()
    redis.start()
    log(f"{moment}: Redis killed and started again, empty")
    moment = at(38 / 60)
    log(f"{moment}: PostgreSQL refuses the database for {POSTGRES_AWAY_SECONDS} s")
    postgres_away(database, POSTGRES_AWAY_SECONDS)
    log("PostgreSQL back")


# --- Checks ------------------------------------------------------------------------------------


def settle(timeout: float, *, faults: bool, env: dict[str, str]) -> float:
    """Wait until every paid checkout has its gift, every event is processed and every
    receipt asked for is issued; returns how long it took."""
    from django.db import connections

    from donations.models import DemoCheckout, Gift, Receipt, WebhookEvent

    started = time.monotonic()
    asked_redrive = 0.0
    while True:
        paid = DemoCheckout.objects.filter(payment_status="paid").count()
        gifts = Gift.objects.count()
        waiting = WebhookEvent.objects.filter(processed_at__isnull=True).count()
        wanted = Gift.objects.filter(donation__wants_receipt=True).count()
        receipts = Receipt.objects.count()
        if gifts >= paid and not waiting and receipts >= wanted:
            return time.monotonic() - started
        if faults and gifts >= paid and not waiting and time.monotonic() - asked_redrive > 15:
            # Receipt tasks lost with Redis come back with the periodic re-drive (every 10
            # minutes in production); ask for it now, as beat will, once they are past the
            # grace (RECEIPT_REDRIVE_GRACE_SECONDS, shortened for the run).
            subprocess.run(
                [
                    str(ROOT / ".venv/bin/celery"),
                    "-A",
                    "config",
                    "call",
                    "donations.tasks.redrive_receipts_task",
                ],
                cwd=ROOT,
                env=env,
                check=True,
                capture_output=True,
            )
            asked_redrive = time.monotonic()
        if time.monotonic() - started > timeout:
            raise RuntimeError(
                f"not settled after {timeout:.0f} s: {gifts} gifts of {paid} paid, "
                f"{waiting} events waiting, {receipts} receipts of {wanted}"
            )
        connections.close_all()
        time.sleep(1)


def verify() -> list[str]:
    """What must hold once settled: each payment recorded once, the ledger clean."""
    from django.db.models import Count

    from donations.models import DemoCheckout, Gift, Receipt, WebhookEvent
    from fund.checks import run_checks
    from fund.models import JournalEntry

    problems = []
    paid = DemoCheckout.objects.filter(payment_status="paid")
    without_gift = paid.exclude(donation__gifts__isnull=False).count()
    if without_gift:
        problems.append(f"{without_gift} paid checkouts without a gift")
    twice = Gift.objects.values("donation").annotate(n=Count("id")).filter(n__gt=1).count()
    if twice:
        problems.append(f"{twice} donations with more than one gift")
    if Gift.objects.count() != paid.count():
        problems.append(f"{Gift.objects.count()} gifts for {paid.count()} paid checkouts")
    entries = JournalEntry.objects.filter(key__startswith="gift:").count()
    if entries != Gift.objects.count():
        problems.append(f"{entries} gift ledger entries for {Gift.objects.count()} gifts")
    if WebhookEvent.objects.filter(processed_at__isnull=True).exists():
        problems.append("events never processed")
    receipts = Receipt.objects.values("gift").annotate(n=Count("id"))
    if receipts.filter(n__gt=1).exists():
        problems.append("a gift with two receipts")
    problems.extend(str(problem) for problem in run_checks())
    return problems


# --- Report ------------------------------------------------------------------------------------


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0


def report(args, start: float, samples, journeys, settled: float, events: dict) -> bool:
    ok_statuses = {200, 302}
    errors = [s for s in samples if s[1] not in ok_statuses]
    end = max(s[3] for s in samples)
    span = end - start
    print()
    print(
        f"{platform.node()}: {os.cpu_count()} CPUs, Python {platform.python_version()}; "
        f"{args.donors} donors for {args.seconds:.0f} s{' with faults' if args.faults else ''}; "
        f"gunicorn {args.web_workers}×{args.web_threads} threads, "
        f"worker -c {args.worker_concurrency}"
    )
    print()
    print(
        f"{len(samples):,} requests in {span:.1f} s = {len(samples) / span:,.0f} requests/s; "
        f"{journeys['done']:,} gifts given ({journeys['done'] / span:,.1f}/s), "
        f"{journeys['broken']:,} journeys broken by an error"
    )
    print(f"error responses: {len(errors):,}", end="")
    if errors:
        kinds: dict[str, int] = {}
        for _step, status, _s, when in errors:
            key = f"{status or 'no answer'} at {int(when - start) // 5 * 5}–"
            key += f"{int(when - start) // 5 * 5 + 5} s"
            kinds[key] = kinds.get(key, 0) + 1
        print(" — " + ", ".join(f"{k}: {v}" for k, v in sorted(kinds.items())), end="")
    print()
    print(
        f"settled {settled:.1f} s after the load: {events['events']:,} events stored and "
        f"processed ({events['retried']:,} after a failed attempt); gifts recorded by the "
        f"worker {events['by_worker']:,}, by the thank-you page {events['by_page']:,}"
    )
    print()
    print("| step | requests | p50 ms | p95 ms | p99 ms |")
    print("|---|---:|---:|---:|---:|")
    good = [s for s in samples if s[1] in ok_statuses]
    for step in (*STEPS, "all"):
        times = [s[2] * 1000 for s in good if step in ("all", s[0])]
        print(
            f"| {step} | {len(times):,} | {percentile(times, 0.5):,.0f} | "
            f"{percentile(times, 0.95):,.0f} | {percentile(times, 0.99):,.0f} |"
        )
    return args.faults or not errors


def event_figures() -> dict[str, int]:
    from donations.models import DonationEvent, WebhookEvent

    gift_events = DonationEvent.objects.filter(action="gift_received")
    return {
        "events": WebhookEvent.objects.count(),
        "retried": WebhookEvent.objects.filter(attempts__gt=1).count(),
        "by_page": gift_events.filter(source="return-page").count(),
        "by_worker": gift_events.exclude(source="return-page").count(),
    }


# --- The run -----------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--donors", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--faults", action="store_true")
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--web-threads", type=int, default=8)
    parser.add_argument("--worker-concurrency", type=int, default=4)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()

    database_url = os.environ.get("BENCH_DATABASE_URL", "")
    if urlsplit(database_url).scheme not in ("postgres", "postgresql"):
        print(
            "bench/stack.py: skipped — set BENCH_DATABASE_URL=postgres://… (the stack runs on it)"
        )
        return 0
    warnings.filterwarnings("ignore", message="No directory at", category=UserWarning)
    log_dir = Path(tempfile.mkdtemp(prefix="stack-bench-", dir="/tmp"))
    redis_port = free_port()
    redis = RedisServer(redis_port, log_dir)
    redis.start()
    redis_url = f"redis://127.0.0.1:{redis_port}/0"
    configure_django(database_url, redis_url)
    drop = create_database("bench_stack")

    def log(message: str) -> None:
        print(f"  {message}", flush=True)

    from django.utils import timezone

    from tests.factories import ProjectFactory

    now = timezone.now()
    project_ids = [
        ProjectFactory(
            opens_at=now - timezone.timedelta(days=1),
            closes_at=now + timezone.timedelta(days=30),
            goal_yen=1_000_000_000,
        ).pk
        for _ in range(4)
    ]
    from django.db import connection

    database = connection.settings_dict["NAME"]
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": database_url_of_connection(),
        "REDIS_URL": redis_url,
        "DEBUG": "0",
        "SECRET_KEY": "bench-only-secret-key-0123456789abcdefghijklmnopqrstuvwxyz",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        # Plain HTTP on one machine; a proxy in front, forwarding each donor's address.
        "SECURE_SSL_REDIRECT": "0",
        "SECURE_COOKIES": "0",
        "TRUSTED_PROXY_COUNT": "1",
        "CHECKOUT_LIMIT_TOTAL": "1000000",
        "DB_CONN_MAX_AGE": "60",  # as .env.example sets it for production
        "RECEIPT_REDRIVE_GRACE_SECONDS": "20",
        "STRIPE_SECRET_KEY": "",
        "EMAIL_URL": f"file://{log_dir / 'mail'}",
        "LOG_LEVEL": "WARNING",
        "PORT": str(port),
        "WEB_WORKERS": str(args.web_workers),
        "WEB_THREADS": str(args.web_threads),
        "WORKER_CONCURRENCY": str(args.worker_concurrency),
        "BEAT_SCHEDULE": str(log_dir / "celerybeat-schedule"),
    }
    env.pop("CELERY_TASK_ALWAYS_EAGER", None)
    commands = procfile_commands()

    def process(name: str) -> Server:
        return Server(name, ["bash", "-c", f"exec {commands[name]}"], env, log_dir)

    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--no-input", "-v", "0"],
        cwd=ROOT,
        env={**env, "STATIC_ROOT": str(log_dir / "static")},
        check=True,
    )
    env["STATIC_ROOT"] = str(log_dir / "static")
    web, worker, beat = process("web"), process("worker"), process("beat")
    try:
        web.start().wait_for(lambda: answers(port))
        worker.start().wait_for(lambda: b" ready." in worker.log_path.read_bytes())
        beat.start()
        print(
            f"{args.donors} donors for {args.seconds:.0f} s against {commands['web']!r} "
            f"(logs: {log_dir})",
            flush=True,
        )
        # Warm up (each gunicorn thread's first request loads templates and catalogues).
        run_donors(port, project_ids, 8, 5, first=4000)
        faults = None
        if args.faults:
            faults = threading.Thread(
                target=play_faults,
                args=(worker, beat, redis, database, time.time(), args.seconds, log),
            )
            faults.start()
        cpu_before = cpu_seconds()
        start, samples, journeys = run_donors(port, project_ids, args.donors, args.seconds)
        cpu = cpu_used(cpu_before, cpu_seconds())
        if faults:
            faults.join()
        settled = settle(600, faults=args.faults, env=env)
        problems = verify()
        figures = event_figures()
    except Exception:
        print(f"failed; the servers' logs are in {log_dir}", file=sys.stderr)
        raise
    finally:
        for server in (beat, worker, web):
            server.stop()
        from django.db import connections

        connections.close_all()
        drop()
        redis.server.stop()
    passed = report(args, start, samples, journeys, settled, figures)
    print("\nCPU milliseconds per request during the load:")
    for kind, seconds in sorted(cpu.items(), key=lambda item: -item[1]):
        if seconds > 0.01 * len(samples) / 1000:
            print(f"  {kind:34} {seconds / len(samples) * 1000:6.1f}")
    if args.json:
        statuses: dict[str, int] = {}
        for _step, status, _seconds, _when in samples:
            statuses[str(status)] = statuses.get(str(status), 0) + 1
        args.json.write_text(
            json.dumps({**figures, **journeys, "statuses": statuses, "problems": problems})
        )
    for problem in problems:
        print(f"PROBLEM: {problem}")
    print("checks: " + ("every payment recorded once, ledger clean" if not problems else "FAILED"))
    return 0 if passed and not problems else 1


if __name__ == "__main__":
    sys.exit(main())
