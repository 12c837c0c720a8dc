"""Settings for every environment, driven by environment variables.

Local defaults need nothing outside the repository: SQLite, tasks run eagerly in-process, the
local-memory cache and the offline demo payment provider. Production differs only by environment
(see README, "Configuration").
"""

from pathlib import Path

import dj_database_url
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent


def env(name: str, default: str = "") -> str:
    import os

    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    value = env(name)
    if not value:
        return default
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {value!r}")


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", True)
SECRET_KEY = env("SECRET_KEY") or (
    "local-development-only-key-not-for-production-use-0123456789abcdefghijklmnop"
)
if not DEBUG and not env("SECRET_KEY"):
    raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

# HTTPS and the browser's protections. With DEBUG off every default is the strict one
# (`manage.py check --deploy` passes); a plain-HTTP stack on one machine (docker compose) turns
# SECURE_SSL_REDIRECT and SECURE_COOKIES off in its environment.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
# A load balancer probes /healthz over plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
if env_bool("BEHIND_PROXY", False):
    # Only behind a proxy that sets this header itself (and strips a client's).
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# How many proxies (load balancer, nginx…) stand in front of gunicorn, each appending to
# X-Forwarded-For: the client's address for the rate limits (accounts.middleware). 0 trusts none.
TRUSTED_PROXY_COUNT = int(env("TRUSTED_PROXY_COUNT", "0"))
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SESSION_COOKIE_HTTPONLY = True
# No script reads the CSRF cookie: forms carry the token, and the API browser and Swagger UI
# receive it in the page.
CSRF_COOKIE_HTTPONLY = True
SECURE_HSTS_SECONDS = int(env("SECURE_HSTS_SECONDS", "0" if DEBUG else "31536000"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
# Preloading is the owner's deliberate decision for a whole registrable domain (hard to undo, and
# the header alone lets anyone submit that domain to the browsers' list), so it is off unless set;
# check --deploy's reminder (security.W021) is then silenced, not left as noise.
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# The Content Security Policy (config/middleware.py) lets forms post to the site and to Stripe
# Checkout (a gift's POST is answered by a redirect there, which browsers check as form-action).
CSP_FORM_ACTION = ["'self'", "https://checkout.stripe.com"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and Redoc served from our static files
    "accounts",
    "proposals",
    "fund",
    "donations",
    "grants",
]

MIDDLEWARE = [
    "accounts.middleware.ClientAddressMiddleware",
    "config.middleware.RequestLogMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "config.middleware.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "accounts.middleware.JapaneseFirstLocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "accounts.access.StaffMFAMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Database: SQLite by default; DATABASE_URL=postgres://user@host:5432/name for PostgreSQL.
DATABASES = {
    "default": dj_database_url.parse(
        env("DATABASE_URL") or f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=int(env("DB_CONN_MAX_AGE", "0")),
        # A kept connection the server has dropped (a restart, a failover) is replaced before
        # the next request uses it, instead of failing that request.
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # An unreachable server fails a request (and /healthz) in seconds, not minutes of TCP retries.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault(
        "connect_timeout", int(env("DB_CONNECT_TIMEOUT", "2"))
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "accounts:dashboard"

# django-allauth: email is the login; a new address must be verified before it is used.
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_EMAIL_VERIFICATION = "mandatory"
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_CHANGE_EMAIL = True
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[Civic Fund] "
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
# Failed sign-ins are counted in the cache (Redis when configured): per IP and per account.
ACCOUNT_RATE_LIMITS = {
    "login_failed": env("LOGIN_RATE_LIMIT", "10/m/ip,5/5m/key"),
    "signup": "20/m/ip",
    "reset_password": "20/m/ip,5/m/key",
    "confirm_email": "1/3m/key",
}
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = "Civic Fund"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Redis (when REDIS_URL is set) is both the cache and the Celery broker.
REDIS_URL = env("REDIS_URL")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

CELERY_BROKER_URL = REDIS_URL or "memory://localhost/"
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", not REDIS_URL)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TIMEZONE = "Asia/Tokyo"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# An unacknowledged task (its worker died) goes back to the queue after this many seconds.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": int(env("CELERY_VISIBILITY_TIMEOUT", "3600")),
}
# Stored provider events are processed by the drain, woken by each new event; the periodic run
# catches those whose retry time has come (and any whose wake-up was lost).
# A receipt whose task was lost (the broker restarted) is queued again by the periodic
# re-drive once it is this old.
RECEIPT_REDRIVE_GRACE_SECONDS = int(env("RECEIPT_REDRIVE_GRACE_SECONDS", "600"))
CELERY_BEAT_SCHEDULE = {
    "drain-provider-events": {"task": "donations.tasks.drain_events_task", "schedule": 60.0},
    "redrive-receipts": {"task": "donations.tasks.redrive_receipts_task", "schedule": 600.0},
    "end-expired-match-pools": {"task": "fund.tasks.end_expired_pools_task", "schedule": 300.0},
    # Reminders are sent once per report and moment, so an hourly run mails each only once.
    "grant-report-reminders": {
        "task": "grants.tasks.send_report_reminders_task",
        "schedule": 3600.0,
    },
    # Stripe's payouts and balance against the ledger, each morning (Japan time).
    "reconcile-stripe": {
        "task": "donations.tasks.reconcile_stripe_task",
        "schedule": crontab(hour=6, minute=0),
    },
}

# Japanese first, English second; every date and time is shown in Japan time.
LANGUAGE_CODE = "ja"
LANGUAGES = [("ja", _("Japanese")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Asia/Tokyo"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env("STATIC_ROOT")) if env("STATIC_ROOT") else BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "config.storage.StaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
MEDIA_ROOT = BASE_DIR / env("MEDIA_DIR", "media")
MEDIA_URL = "media/"

REST_FRAMEWORK = {
    # drf-spectacular's, with the errors every operation answers (400/403/404/415) documented.
    "DEFAULT_SCHEMA_CLASS": "proposals.api.ApiSchema",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    # Each view adds its own policy checks; staff without two-factor authentication get nothing.
    "DEFAULT_PERMISSION_CLASSES": ["accounts.access.StaffMFARequired"],
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",  # the site, with CSRF
        "rest_framework.authentication.TokenAuthentication",  # scripts
    ],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Civic Fund API",
    "DESCRIPTION": "The collaboration-testing register and the civic fund.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # Pinned with the drf-spectacular-sidecar package and served from our own static files:
    # the docs page keeps the site's policy (config/middleware.py), no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Swagger UI would otherwise send the schema's address to validator.swagger.io for a badge.
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
}


# Mail: EMAIL_URL=smtp://user:password@host:587?tls=1, console:// or file:///path/to/dir.
# Locally (no EMAIL_URL) mail is written to the console.
def email_settings(url: str) -> dict:
    from urllib.parse import parse_qs, unquote, urlparse

    if not url or url.startswith("console:"):
        return {"EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend"}
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return {
            "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "EMAIL_FILE_PATH": parsed.path,
        }
    if parsed.scheme in {"smtp", "smtps"}:
        query = parse_qs(parsed.query)
        return {
            "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "EMAIL_HOST": parsed.hostname or "localhost",
            "EMAIL_PORT": parsed.port or (465 if parsed.scheme == "smtps" else 25),
            "EMAIL_HOST_USER": unquote(parsed.username or ""),
            "EMAIL_HOST_PASSWORD": unquote(parsed.password or ""),
            "EMAIL_USE_TLS": query.get("tls", ["0"])[0] in {"1", "true"},
            "EMAIL_USE_SSL": parsed.scheme == "smtps",
        }
    raise ImproperlyConfigured(f"EMAIL_URL: unsupported scheme {parsed.scheme!r}")


globals().update(email_settings(env("EMAIL_URL")))
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", "Civic Fund <noreply@civicfund.localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# Payments. With STRIPE_SECRET_KEY set, gifts go through Stripe Checkout; without it, through
# the offline demo provider (a local checkout page; no real money). STRIPE_API_BASE points the
# SDK at another server (the tests' local fake Stripe).
STRIPE_SECRET_KEY = env("STRIPE_SECRET_KEY")
STRIPE_WEBHOOK_SECRET = env("STRIPE_WEBHOOK_SECRET")
STRIPE_API_BASE = env("STRIPE_API_BASE")
# Card-testing defence: checkouts started per IP, per donor (email or browser session) and in
# total, within each window of CHECKOUT_RATE_WINDOW seconds.
CHECKOUT_RATE_WINDOW = int(env("CHECKOUT_RATE_WINDOW", "600"))
CHECKOUT_LIMIT_PER_IP = int(env("CHECKOUT_LIMIT_PER_IP", "10"))
CHECKOUT_LIMIT_PER_DONOR = int(env("CHECKOUT_LIMIT_PER_DONOR", "5"))
CHECKOUT_LIMIT_TOTAL = int(env("CHECKOUT_LIMIT_TOTAL", "2000"))

# The site's public address, for links in emails (there is no request to build them from).
SITE_URL = env("SITE_URL", "http://127.0.0.1:8000").rstrip("/")

# The foundation, as printed on tax receipts (寄附金受領証明書).
FOUNDATION_NAME = env("FOUNDATION_NAME", "公益財団法人 佐賀未来創造基金（デモ）")
FOUNDATION_ADDRESS = env("FOUNDATION_ADDRESS", "〒840-0000 佐賀県佐賀市（デモ住所）")
FOUNDATION_CERTIFICATION = env(
    "FOUNDATION_CERTIFICATION",
    "公益社団法人及び公益財団法人の認定等に関する法律に基づく公益財団法人（デモ：認定番号なし）",
)
FOUNDATION_REPRESENTATIVE = env("FOUNDATION_REPRESENTATIVE", "理事長 山田 太郎（デモ）")

# The foundation's own account, as the header of every Zengin transfer file (総合振込): the
# requester code the bank assigned (委託者コード) and the account grants are paid from. The
# defaults are a demo, not an account.
ZENGIN_ORIGINATOR = {
    "requester_code": env("ZENGIN_REQUESTER_CODE", "0000000001"),
    "name_kana": env("ZENGIN_NAME_KANA", "ｻｶﾞﾐﾗｲｿｳｿﾞｳｷｷﾝ"),
    "bank_code": env("ZENGIN_BANK_CODE", "0179"),
    "bank_name_kana": env("ZENGIN_BANK_NAME_KANA", "ｻｶﾞ"),
    "branch_code": env("ZENGIN_BRANCH_CODE", "500"),
    "branch_name_kana": env("ZENGIN_BRANCH_NAME_KANA", "ﾎﾝﾃﾝ"),
    "account_type": env("ZENGIN_ACCOUNT_TYPE", "1"),
    "account_number": env("ZENGIN_ACCOUNT_NUMBER", "0000001"),
}

# Logs go to stdout: JSON lines (config/logging.py) in production, plain text with DEBUG. With
# LOG_REQUESTS, each request is logged once (method, path, status, duration); runserver logs its
# own, so it is off with DEBUG.
LOG_FORMAT = env("LOG_FORMAT", "text" if DEBUG else "json")
if LOG_FORMAT not in {"json", "text"}:
    raise ImproperlyConfigured(f"LOG_FORMAT must be json or text, not {LOG_FORMAT!r}")
LOG_REQUESTS = env_bool("LOG_REQUESTS", not DEBUG)
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {"()": "config.logging.JsonFormatter"},
        "text": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "formatter": LOG_FORMAT,
        }
    },
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    "loggers": {
        # The Stripe SDK logs every request at INFO.
        "stripe": {"level": "WARNING"},
        # Django's own handlers would print a second, unformatted line.
        "django": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO"), "propagate": False},
        "django.server": {
            "handlers": ["console"],
            "level": env("LOG_LEVEL", "INFO"),
            "propagate": False,
        },
    },
}
