"""Settings for ``bench/donations.py``'s servers: the project's, plus a trivial view's URL."""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "bench.bench_urls"
