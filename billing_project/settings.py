"""Settings for the billing project: one module, every value from the environment.

Unset variables fall back to an embedded, harmless local setup (SQLite, local file storage,
a file-based email outbox). Setting the production variables switches each part to its
real service: PostgreSQL, Cloudflare R2, Mailgun, Stripe.
"""

from datetime import timedelta
from pathlib import Path

import environ
import stripe

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"
VAR_DIR.mkdir(exist_ok=True)

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DJANGO_DEBUG", default=True)


def _secret(name: str, dev_default: str) -> str:
    """A secret from the environment; the harmless development default only while DEBUG."""
    return env.str(name) if not DEBUG else env.str(name, default=dev_default)


SECRET_KEY = _secret(
    "DJANGO_SECRET_KEY", "django-insecure-local-development-key-not-for-production-use-0123456789"
)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "djstripe",
    "django_q",
    "anymail",
    "storages",
    "axes",
    "csp",
    "billing_project.apps.CoreConfig",
    "metering",
    "cohorts",
    "invoices",
    "reconciliation",
    "exports",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # The admin's static files, served by the app itself (no separate web server needed).
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    # Last, as django-axes asks: turns a locked-out login into its 429 answer.
    "axes.middleware.AxesMiddleware",
]

# --- Sign-in throttling: django-axes ----------------------------------------------------------
# After AXES_FAILURE_LIMIT wrong passwords for one username from one address, that pair is
# refused (429) for AXES_COOLOFF_TIME, even with the right password; a success resets the count.
# `manage.py axes_reset_username NAME` lifts a lockout early.
# https://django-axes.readthedocs.io/en/latest/4_configuration.html
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_ENABLE_ADMIN = False
# The client address: REMOTE_ADDR, unless the app runs behind that many trusted proxies, whose
# X-Forwarded-For is read then (a client-sent header is never trusted otherwise).
AXES_IPWARE_PROXY_COUNT = env.int("AXES_IPWARE_PROXY_COUNT", default=0) or None
AXES_IPWARE_META_PRECEDENCE_ORDER = (
    ["HTTP_X_FORWARDED_FOR", "REMOTE_ADDR"] if AXES_IPWARE_PROXY_COUNT else ["REMOTE_ADDR"]
)

# --- Content-Security-Policy: django-csp ------------------------------------------------------
# Scripts only from our own static files (no inline script, no eval); styles may be inline
# (the admin's badges and charts use style attributes); nothing framed, no plugins, forms post
# only to us. https://django-csp.readthedocs.io/en/latest/configuration.html
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:", "https:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

ROOT_URLCONF = "billing_project.urls"
WSGI_APPLICATION = "billing_project.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Databases -------------------------------------------------------------------------------
# SQLite is the no-setup default. WAL lets the web process, the worker and webhook requests
# read while one writes; IMMEDIATE transactions plus a busy timeout make writers queue instead
# of failing with "database is locked".
# https://docs.djangoproject.com/en/5.2/ref/databases/#sqlite-notes
SQLITE_OPTIONS = {
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    "transaction_mode": "IMMEDIATE",
    "timeout": 20,
}


def _database(url_var: str, sqlite_name: str) -> dict:
    if env.str(url_var, default=""):
        config = env.db_url(url_var)
    else:
        config = {"ENGINE": "django.db.backends.sqlite3", "NAME": str(VAR_DIR / sqlite_name)}
    if config["ENGINE"] == "django.db.backends.sqlite3":
        config["OPTIONS"] = {**SQLITE_OPTIONS, **config.get("OPTIONS", {})}
    return config


DATABASES = {
    "default": _database("DATABASE_URL", "billing.sqlite3"),
    "legacy": _database("LEGACY_DATABASE_URL", "legacy.sqlite3"),
}
# Nothing of ours is migrated into the legacy database (the router refuses it); skipping the
# migration run there saves rendering every migration's state when test databases are made.
DATABASES["legacy"]["TEST"] = {"MIGRATE": False}
# Persistent connections: a new PostgreSQL connection per request or task costs more than the
# webhook itself; health checks drop a connection the server closed (restart, failover).
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DATABASE_ROUTERS = ["reconciliation.routers.LegacyRouter"]

# The legacy billing database is read-only for this application. Writes are refused by the
# router unless explicitly allowed: the embedded local default (a SQLite file the demo fills)
# allows them; a configured LEGACY_DATABASE_URL does not. On PostgreSQL every legacy session
# is also opened read-only, in addition to the read-only role production uses.
LEGACY_DATABASE_WRITABLE = env.bool(
    "LEGACY_DATABASE_WRITABLE", default=not env.str("LEGACY_DATABASE_URL", default="")
)
if DATABASES["legacy"]["ENGINE"].startswith("django.db.backends.postgresql") and not (
    LEGACY_DATABASE_WRITABLE
):
    DATABASES["legacy"].setdefault("OPTIONS", {})["options"] = "-c default_transaction_read_only=on"

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
# Datetimes the admin shows by default end in the zone ("2026-12-04 18:05 UTC").
FORMAT_MODULE_PATH = ["billing_project.formats"]
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)  # WhiteNoise reads it at start (collectstatic fills it)
MEDIA_ROOT = VAR_DIR / "media"
MEDIA_URL = "media/"

# --- Object storage: Cloudflare R2 through the S3 API -----------------------------------------
# R2 has no ACLs (objects are private; access is by presigned URL) and rejects the checksum
# headers boto3 >= 1.36 sends by default, so checksums are only computed when an operation
# requires them. https://developers.cloudflare.com/r2/examples/aws/boto3/
R2_INVOICE_BUCKET = env.str("R2_INVOICE_BUCKET", default="")
R2_PRESIGNED_URL_SECONDS = env.int("R2_PRESIGNED_URL_SECONDS", default=3600)
if R2_INVOICE_BUCKET:
    from botocore.config import Config as BotoConfig

    DEFAULT_STORAGE_BACKEND = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": R2_INVOICE_BUCKET,
            "endpoint_url": env.str("R2_ENDPOINT_URL"),
            "access_key": env.str("R2_ACCESS_KEY_ID"),
            "secret_key": env.str("R2_SECRET_ACCESS_KEY"),
            "region_name": "auto",
            "default_acl": None,
            "querystring_auth": True,
            "querystring_expire": R2_PRESIGNED_URL_SECONDS,
            "file_overwrite": False,
            # With a client_config, django-storages ignores its own signature_version and
            # addressing_style options: they belong inside the boto Config.
            "client_config": BotoConfig(
                signature_version="s3v4",
                s3={"addressing_style": "path"},
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
                retries={"max_attempts": 5, "mode": "standard"},
            ),
        },
    }
else:
    DEFAULT_STORAGE_BACKEND = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(MEDIA_ROOT)},
    }
STORAGES = {
    "default": DEFAULT_STORAGE_BACKEND,
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# --- Email: Mailgun through Anymail, or a readable local outbox -------------------------------
MAILGUN_API_KEY = env.str("MAILGUN_API_KEY", default="")
MAILGUN_DOMAIN = env.str("MAILGUN_DOMAIN", default="notify.adventive.com")
BILLING_FROM_EMAIL = env.str("BILLING_FROM_EMAIL", default="billing-noreply@notify.adventive.com")
BILLING_BCC_ADDRESS = env.str("BILLING_BCC_ADDRESS", default="2658568@bcc.hubspot.com")
DEFAULT_FROM_EMAIL = BILLING_FROM_EMAIL
SERVER_EMAIL = BILLING_FROM_EMAIL
ANYMAIL = {
    "MAILGUN_API_KEY": MAILGUN_API_KEY,
    "MAILGUN_SENDER_DOMAIN": MAILGUN_DOMAIN,
    "MAILGUN_WEBHOOK_SIGNING_KEY": env.str("MAILGUN_WEBHOOK_SIGNING_KEY", default=""),
    # Tracking webhooks are authenticated by Mailgun's signature, not basic auth.
    "WEBHOOK_SECRET": env.str("ANYMAIL_WEBHOOK_SECRET", default="") or None,
}
if env.str("MAILGUN_API_URL", default=""):
    # https://anymail.dev/en/stable/esps/mailgun/#std-setting-ANYMAIL_MAILGUN_API_URL
    ANYMAIL["MAILGUN_API_URL"] = env.str("MAILGUN_API_URL")
if MAILGUN_API_KEY:
    EMAIL_BACKEND = "anymail.backends.mailgun.EmailBackend"
else:
    # Each message is written as a readable .log file under var/outbox.
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    EMAIL_FILE_PATH = str(VAR_DIR / "outbox")

# Invoice emails: Mailgun stored template per collection method (pay by link vs. charged).
BILLING_EMAIL_TEMPLATES = {
    "send_invoice": env.str("BILLING_TEMPLATE_SEND_INVOICE", default="invoice_new"),
    "charge_automatically": env.str(
        "BILLING_TEMPLATE_CHARGE_AUTOMATICALLY", default="invoice_notify"
    ),
}
# A delivery step that fails for a passing reason is retried by the sweeper after these waits;
# after the last attempt the delivery is marked failed and billing is alerted.
BILLING_DELIVERY_MAX_ATTEMPTS = env.int("BILLING_DELIVERY_MAX_ATTEMPTS", default=6)
BILLING_DELIVERY_BACKOFF_SECONDS = [60, 300, 900, 3600, 3600 * 4]
# An email sent this long ago without a delivered/bounced/complained outcome is looked up in
# Mailgun's events (the `invoice-delivery-outcomes` schedule runs every 10 minutes), and the
# lookup also reads this far back for permanent failures and complaints the webhook missed.
BILLING_OUTCOME_LOOKUP_AFTER_SECONDS = env.int("BILLING_OUTCOME_LOOKUP_AFTER_SECONDS", default=1800)
BILLING_OUTCOME_RECENT_SECONDS = env.int("BILLING_OUTCOME_RECENT_SECONDS", default=6 * 3600)
# How many emails one lookup run asks about, least recently asked first.
BILLING_OUTCOME_LOOKUP_BATCH = env.int("BILLING_OUTCOME_LOOKUP_BATCH", default=200)

# --- Stripe (dj-stripe) ------------------------------------------------------------------------
STRIPE_SECRET_KEY = _secret("STRIPE_SECRET_KEY", "sk_test_LocalDevelopment0000000000000000")
STRIPE_LIVE_MODE = STRIPE_SECRET_KEY.startswith(("sk_live_", "rk_live_"))
if not STRIPE_LIVE_MODE and not STRIPE_SECRET_KEY.startswith(("sk_test_", "rk_test_")):
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(
        "STRIPE_SECRET_KEY must start with sk_test_, rk_test_, sk_live_ or rk_live_."
    )
STRIPE_LIVE_SECRET_KEY = STRIPE_SECRET_KEY if STRIPE_LIVE_MODE else ""
STRIPE_TEST_SECRET_KEY = "" if STRIPE_LIVE_MODE else STRIPE_SECRET_KEY
STRIPE_WEBHOOK_SECRET = _secret("STRIPE_WEBHOOK_SECRET", "whsec_local_development_secret")
# The signing secret of the event destination that receives Stripe's thin (v2) events, such
# as meter error reports. https://docs.stripe.com/event-destinations
STRIPE_EVENT_DESTINATION_SECRET = _secret(
    "STRIPE_EVENT_DESTINATION_SECRET", "whsec_local_event_destination_secret"
)
# The API version is the one this stripe-python release is generated for; object shapes
# (invoice.parent, line pricing) depend on it.
STRIPE_API_VERSION = stripe.api_version
STRIPE_API_BASE = env.str("STRIPE_API_BASE", default="")
if STRIPE_API_BASE:
    STRIPE_API_HOST = STRIPE_API_BASE
# This process's share of Stripe's rate limit (100 requests/s in live mode, 25 in test mode,
# per account); 0 = unpaced (the default against a local STRIPE_API_BASE). A 429 is still
# honoured (Retry-After) whatever the share. https://docs.stripe.com/rate-limits
STRIPE_REQUESTS_PER_SECOND = env.float(
    "STRIPE_REQUESTS_PER_SECOND",
    default=0.0 if STRIPE_API_BASE else (40.0 if STRIPE_LIVE_MODE else 10.0),
)
# A Stripe call never waits inside a database transaction (it would hold row locks and a
# connection for a round trip): "refuse" raises (the test suite), "log" records an error.
STRIPE_CALLS_IN_TRANSACTION = env.str("STRIPE_CALLS_IN_TRANSACTION", default="log")
# A fixed UUID keeps the endpoint URL stable across deploys (Stripe is configured with it).
STRIPE_WEBHOOK_UUID = env.str("STRIPE_WEBHOOK_UUID", default="7b1f3c52-4d0e-4a8e-9b59-1c2d3e4f5a6b")
DJSTRIPE_FOREIGN_KEY_TO_FIELD = "id"
DJSTRIPE_USE_NATIVE_JSONFIELD = True
DJSTRIPE_WEBHOOK_VALIDATION = "verify_signature"

# --- Task queue: django-q2 on the ORM broker (acknowledged; Redis would lose killed tasks) ----
# retry must exceed timeout, and failing tasks must not retry forever (max_attempts 0).
# https://django-q2.readthedocs.io/en/master/configure.html
Q_CLUSTER = {
    "name": "billing",
    "orm": "default",
    # Three processes per core: a delivery spends most of its time waiting on Stripe (~200 ms a
    # call), R2 and Mailgun (bench/README.md, "Invoice delivery").
    "workers": env.int("Q_WORKERS", default=6),
    "timeout": 300,
    "retry": 360,
    "max_attempts": 5,
    "ack_failures": True,
    # 0 = keep every result, pruned by the `task-results-prune` schedule. A positive limit
    # makes the monitor lock and read that many result rows after every task.
    "save_limit": 0,
    "catch_up": False,
    "poll": 0.2,
    "sync": env.bool("Q_SYNC", default=False),
    "label": "Task queue",
}
TASK_RESULTS_KEEP_DAYS = env.int("TASK_RESULTS_KEEP_DAYS", default=14)
RETENTION_WEBHOOK_TRIGGER_DAYS = env.int("RETENTION_WEBHOOK_TRIGGER_DAYS", default=90)
RETENTION_DATAPOINT_DAYS = env.int("RETENTION_DATAPOINT_DAYS", default=800)
WORKER_HEARTBEAT_STALE_SECONDS = env.int("WORKER_HEARTBEAT_STALE_SECONDS", default=180)

# --- Reconciliation ----------------------------------------------------------------------------
# Days after a service month's end during which a side not there yet is pending (the legacy
# run is operator-triggered); from then on a missing side is drift.
RECONCILE_LEGACY_DEADLINE_DAYS = env.int("RECONCILE_LEGACY_DEADLINE_DAYS", default=10)

# --- Exports ---------------------------------------------------------------------------------
# The only folder `month_end_report --output` writes to (docs/security.md).
REPORTS_OUTPUT_DIR = Path(env.str("REPORTS_OUTPUT_DIR", default=str(VAR_DIR / "reports")))
if REPORTS_OUTPUT_DIR == VAR_DIR / "reports":
    REPORTS_OUTPUT_DIR.mkdir(exist_ok=True)

# --- Alerts ------------------------------------------------------------------------------------
SLACK_ALERTS_WEBHOOK_URL = env.str("SLACK_ALERTS_WEBHOOK_URL", default="")
SLACK_BILLING_ALERTS_WEBHOOK_URL = env.str("SLACK_BILLING_ALERTS_WEBHOOK_URL", default="")
BILLING_ALERT_EMAILS = env.list("BILLING_ALERT_EMAILS", default=[])

# --- API -----------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "UNAUTHENTICATED_USER": None,
}
# Requests per producer token per minute on POST /usage (a batch holds up to 1,000 items);
# 0 turns the limit off.
USAGE_REQUESTS_PER_MINUTE = env.int("USAGE_REQUESTS_PER_MINUTE", default=600)
SPECTACULAR_SETTINGS = {"TITLE": "Billing API", "VERSION": "1.0.0"}

# --- Security: strict when DEBUG is off ------------------------------------------------------
if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_CONTENT_TYPE_NOSNIFF = True
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

# --- Logging: one JSON object per line --------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "billing_project.logging.JsonFormatter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "json"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "stripe": {"level": "WARNING"},
    },
}
