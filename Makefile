# Two commands do all the set-up on a fresh machine: `make run` and `make test` (see README).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1:8000

.PHONY: run test install messages lint format bench clean stack

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed

# Compiled catalogues are build output; Django's compilemessages needs GNU gettext's msgfmt.
messages: install
	@command -v msgfmt >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get install -y -qq gettext >/dev/null; } \
	  || { echo "msgfmt not found: install GNU gettext (apt-get install gettext)"; exit 1; }
	$(PY) manage.py compilemessages --ignore '.venv/*' -v 0

run: messages
	$(PY) manage.py migrate --no-input -v 0
	$(PY) manage.py load_demo
	$(PY) manage.py runserver $(HOST)

test: messages
	$(PY) -m pytest $(PYTEST_ARGS)

# gunicorn, a Celery worker and beat (Procfile) on the PostgreSQL and Redis the environment names.
stack: messages
	@test -n "$$DATABASE_URL" -a -n "$$REDIS_URL" \
	  || { echo "set DATABASE_URL=postgres://… and REDIS_URL=redis://… first"; exit 1; }
	$(PY) manage.py migrate --no-input -v 0
	$(PY) manage.py collectstatic --no-input -v 0
	$(VENV)/bin/honcho start -f Procfile

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: messages
	$(PY) bench/register.py
	$(PY) bench/donations.py
	$(PY) bench/matching.py

clean:
	rm -rf $(VENV) db.sqlite3 staticfiles
