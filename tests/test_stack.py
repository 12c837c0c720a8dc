"""`make stack`'s Procfile really starts the production stack: gunicorn answers `/healthz` with
the database and Redis up, a Celery worker answers a ping over Redis, and beat starts — all
three under honcho, against the tests' PostgreSQL database and Redis."""

import os
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parents[1]

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _database_url() -> str:
    db = settings.DATABASES["default"]
    user = db.get("USER") or "postgres"
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    return f"postgres://{user}@{host}:{port}/{db['NAME']}"


@pytest.fixture
def stack(tmp_path):
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "DEBUG": "false",
        "SECRET_KEY": "stack-test-" + "x" * 60,
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "false",
        "SECURE_COOKIES": "false",
        "PORT": str(port),
        "WEB_WORKERS": "1",
        "WEB_THREADS": "2",
        "WORKER_CONCURRENCY": "1",
        "BEAT_SCHEDULE": str(tmp_path / "beat-schedule"),
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)  # the browser tests' setting, not a deployment's
    process = subprocess.Popen(
        [str(ROOT / ".venv" / "bin" / "honcho"), "start", "-f", "Procfile"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True)
    reader.start()
    try:
        yield port, lines
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _healthz(port: int, deadline: float) -> dict:
    import json

    last = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=3) as answer:
                return {"status_code": answer.status, **json.loads(answer.read())}
        except Exception as error:  # not up yet
            last = error
            time.sleep(0.5)
    raise AssertionError(f"/healthz never answered: {last}")


def test_the_procfile_starts_web_worker_and_beat(stack):
    from config.celery import app

    port, lines = stack
    deadline = time.monotonic() + 60
    health = _healthz(port, deadline)
    assert health == {"status_code": 200, "status": "ok", "database": "ok", "redis": "ok"}

    replies = []
    while not replies and time.monotonic() < deadline:
        replies = app.control.ping(timeout=2)
    assert replies, "no Celery worker answered: " + "".join(lines[-20:])

    while time.monotonic() < deadline and not any(
        "beat" in line and "Starting" in line for line in lines
    ):
        time.sleep(0.5)
    assert any("beat" in line and "Starting" in line for line in lines), "".join(lines[-20:])


@pytest.mark.django_db  # only for the server's address; the run makes its own database
def test_no_gift_lost_or_doubled_when_worker_redis_and_database_fail(tmp_path):
    """``bench/stack.py --faults``, shortened: donors give through the real stack (gunicorn, a
    worker and beat from the Procfile, PostgreSQL, a Redis of its own) while the worker and
    beat are killed, Redis is restarted empty and PostgreSQL refuses the database for 10 s.
    Afterwards every paid checkout has exactly one gift, every stored event was processed once,
    every receipt asked for was issued once, and the ledger checks find nothing."""
    import json

    figures_path = tmp_path / "figures.json"
    env = {**os.environ, "BENCH_DATABASE_URL": _database_url()}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    run = subprocess.run(
        [
            str(ROOT / ".venv" / "bin" / "python"),
            "bench/stack.py",
            "--faults",
            "--donors=16",
            "--seconds=36",
            f"--json={figures_path}",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    figures = json.loads(figures_path.read_text())
    assert figures["problems"] == []
    # The faults did hurt: donors met 503s (try again) while PostgreSQL was away …
    assert figures["statuses"].get("503", 0) > 0
    # … yet nothing was a server error, and gifts were given before, between and after.
    assert figures["statuses"].get("500", 0) == 0
    assert figures["done"] > 50
    assert figures["events"] >= figures["done"]
