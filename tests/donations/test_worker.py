"""A real Celery worker processes Stripe's events, and survives being killed mid-batch.

The webhook stores ~300 signed events (each delivered twice, in random order) and queues their
processing in Redis; a real worker (``prefork``, two processes, on the test database) works
through them until it is killed with SIGKILL — as an out-of-memory kill or a lost machine
would — while holding messages it had not acknowledged. Stripe keeps delivering meanwhile:
the webhook does not need the worker. A new worker then gets the stranded messages again
(tasks are ``acks_late``; Redis hands an unacknowledged message out again after the
visibility timeout) and the test waits until everything is processed: each payment is one
gift with one ledger entry, whatever ran twice.
"""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
import redis
from django.conf import settings
from django.db import connection

from donations.models import Donation, Gift, WebhookEvent
from fund.checks import run_checks
from fund.ledger import EntryKind
from fund.models import JournalEntry
from tests.donations.fake_stripe import (
    SECRET_KEY,
    WEBHOOK_SECRET,
    deliver,
    fake_stripe_fixture,  # noqa: F401
)
from tests.donations.test_stripe import start
from tests.factories import ProjectFactory

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
]

ROOT = Path(__file__).resolve().parents[2]
# Redis gives an unacknowledged message to another consumer after this many seconds. The
# default (an hour) is right in production; the test waits for it, so it is short here.
VISIBILITY_TIMEOUT = 5


def database_url() -> str:
    """The test database pytest-django created, as a URL for the worker."""
    db = connection.settings_dict
    user = quote(db["USER"] or "")
    password = f":{quote(db['PASSWORD'])}" if db["PASSWORD"] else ""
    host = db["HOST"] or "127.0.0.1"
    return f"postgres://{user}{password}@{host}:{db['PORT'] or 5432}/{db['NAME']}"


class Worker:
    def __init__(self, name: str, env: dict[str, str], log_path: Path) -> None:
        self.name, self.env, self.log_path = name, env, log_path
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 60) -> None:
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "config",
                    "worker",
                    "-l",
                    "info",
                    "-c",
                    "2",
                    "--pool",
                    "prefork",
                    "-n",
                    f"{self.name}@%h",
                    "--without-gossip",
                    "--without-mingle",
                    "--without-heartbeat",
                ],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: the pool dies with it
            )
        deadline = time.monotonic() + timeout
        while b" ready." not in self.log_path.read_bytes():
            assert self.process.poll() is None, f"worker exited:\n{self.log()}"
            assert time.monotonic() < deadline, f"worker not ready:\n{self.log()}"
            time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL the worker and its pool processes: no clean shutdown, no acknowledgements."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        if self.process is not None:
            self.process.wait(timeout=30)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]


@pytest.fixture
def broker(settings):
    """Tasks go to Redis (not run in-process); the queue starts empty."""
    from config.celery import app

    settings.CELERY_TASK_ALWAYS_EAGER = False
    before = app.conf.task_always_eager
    app.conf.task_always_eager = False
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.delete("celery", "unacked", "unacked_index")
    yield client
    app.conf.task_always_eager = before
    client.delete("celery", "unacked", "unacked_index")


@pytest.fixture
def workers(fake_stripe, broker, tmp_path):
    """Starts workers on the test database and kills every one of them at the end."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "STRIPE_SECRET_KEY": SECRET_KEY,
        "STRIPE_API_BASE": fake_stripe.url,
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "LOG_LEVEL": "WARNING",
        "CELERY_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT),
        "PYTHONUNBUFFERED": "1",
    }
    started: list[Worker] = []

    def start_worker() -> Worker:
        name = f"stripe-test-{len(started) + 1}"
        worker = Worker(name, env, tmp_path / f"{name}.log")
        started.append(worker)
        worker.start()
        return worker

    yield start_worker
    for worker in started:
        worker.kill()


def processed() -> int:
    return WebhookEvent.objects.filter(processed_at__isnull=False).count()


def stranded_tasks(broker) -> list[str]:
    """The names of the tasks a worker took and never acknowledged."""
    return [json.loads(raw)[0]["headers"]["task"] for raw in broker.hvals("unacked")]


def test_a_killed_worker_loses_nothing_and_a_new_one_does_nothing_twice(
    fake_stripe, client, broker, workers
):
    rng = random.Random(7)
    projects = [ProjectFactory(goal_yen=100_000_000) for _ in range(3)] + [None]
    events, one_time, monthly = [], [], []
    for n in range(150):
        donation = start(rng.choice(projects), email=f"card{n}@example.jp", wants_receipt=False)
        events.append(fake_stripe.pay(donation.checkout_session_id)[-1])
        one_time.append(donation)
    for n in range(10):
        donation = start(
            rng.choice(projects), amount=5000, email=f"konbini{n}@example.jp", wants_receipt=False
        )
        events += fake_stripe.pay(donation.checkout_session_id, method="konbini")
        events += fake_stripe.store_paid(donation.checkout_session_id)
        one_time.append(donation)
    for n in range(25):
        donation = start(
            rng.choice(projects),
            amount=1000,
            frequency="monthly",
            email=f"monthly{n}@example.jp",
            wants_receipt=False,
        )
        events += fake_stripe.pay(donation.checkout_session_id)
        events += fake_stripe.next_invoice(
            fake_stripe.subscription_of(donation.checkout_session_id)
        )
        monthly.append(donation)
    assert len(events) == 300
    deliveries = events * 2  # Stripe delivers at least once
    rng.shuffle(deliveries)
    half = len(deliveries) // 2

    first = workers()
    for event in deliveries[:half]:
        assert deliver(client, event).status_code == 200
    deadline = time.monotonic() + 60
    while processed() < 30:
        assert time.monotonic() < deadline, f"nothing processed:\n{first.log()}"
        time.sleep(0.01)
    first.kill()
    at_kill = processed()
    stranded = stranded_tasks(broker)
    assert at_kill < len(events)
    # The killed worker was draining: the drain's message, not acknowledged, is still in Redis.
    assert "donations.tasks.drain_events_task" in stranded, stranded

    # Stripe goes on delivering while no worker runs: the webhook only stores and queues.
    for event in deliveries[half:]:
        assert deliver(client, event).status_code == 200
    assert processed() == at_kill

    time.sleep(VISIBILITY_TIMEOUT + 1)  # the stranded messages become visible again
    second = workers()
    deadline = time.monotonic() + 180
    while processed() < len(events) or broker.llen("celery") or broker.hlen("unacked"):
        assert time.monotonic() < deadline, (
            f"{processed()} of {len(events)} processed:\n{second.log()}"
        )
        time.sleep(0.2)

    # What the killed worker held was handed out again (and acknowledged this time)…
    assert broker.hlen("unacked") == 0
    # …and every event was processed, once, without errors: an attempt cut off by the kill was
    # rolled back with its transaction.
    assert WebhookEvent.objects.count() == len(events)
    attempts = list(WebhookEvent.objects.values_list("attempts", flat=True))
    assert set(attempts) == {1}
    assert not WebhookEvent.objects.exclude(last_error="").exists()
    # One gift per payment, one ledger entry per gift.
    paid_intents = {fake_stripe.intent_of(d.checkout_session_id)["id"] for d in one_time}
    paid_invoices = {o["id"] for o in fake_stripe._of_type("invoice", status="paid")}
    assert set(Gift.objects.values_list("payment_id", flat=True)) == paid_intents | paid_invoices
    assert Gift.objects.count() == 160 + 50
    assert JournalEntry.objects.filter(kind=EntryKind.GIFT_SUCCEEDED).count() == 210
    assert set(Donation.objects.filter(frequency="once").values_list("status", flat=True)) == {
        Donation.Status.SUCCEEDED
    }
    assert set(Donation.objects.filter(frequency="monthly").values_list("status", flat=True)) == {
        Donation.Status.ACTIVE
    }
    assert fake_stripe.refusals == []
    assert run_checks() == {}
