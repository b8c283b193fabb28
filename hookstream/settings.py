"""Settings for hookstream.

Everything comes from the environment through the typed readers in ``hookstream.env``.
With no environment at all the project runs on embedded defaults: SQLite and a filesystem
Celery broker under ``var/``, so a fresh checkout delivers events with nothing installed.
"""

import os
import secrets
from pathlib import Path
from urllib.parse import unquote, urlsplit

import dj_database_url
from cryptography.fernet import Fernet

from hookstream.env import (
    ImproperlyConfiguredEnv,
    env_base_url,
    env_bool,
    env_choice,
    env_float,
    env_int,
    env_list,
    env_networks_and_hosts,
    env_pem_file,
    env_str,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("HOOKSTREAM_VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env_bool("DEBUG", False)
TESTING = env_bool("HOOKSTREAM_TESTING", False)


def _generated_secret(filename: str, factory) -> str:
    """A secret kept in var/ for the embedded default (DEBUG or tests only)."""
    path = VAR_DIR / filename
    if not path.exists():
        path.write_text(factory())
        path.chmod(0o600)
    return path.read_text().strip()


def _required_secret(name: str, filename: str, factory) -> str:
    value = env_str(name)
    if value:
        return value
    if DEBUG or TESTING:
        return _generated_secret(filename, factory)
    raise ImproperlyConfiguredEnv(f"{name} is required when DEBUG is off")


def _fernet_key() -> str:
    return Fernet.generate_key().decode()


SECRET_KEY = _required_secret("SECRET_KEY", "secret_key", lambda: secrets.token_urlsafe(50))
HOOKSTREAM_ENCRYPTION_KEY = _required_secret("HOOKSTREAM_ENCRYPTION_KEY", "encryption.key", _fernet_key)

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["*"] if DEBUG or TESTING else ["localhost", "127.0.0.1"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
# The public base URL of ingest and publish URLs shown to users; unset, each request's own
# scheme and host are used (hookstream.public_url), so the URLs work on any port.
HOOKSTREAM_PUBLIC_URL = env_base_url("HOOKSTREAM_PUBLIC_URL")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "hookstream",
    "destinations",
    "intake",
    "deliveries",
    "monitoring",
    "templates_catalog",
    "console",
    "stream",
]

MIDDLEWARE = [
    "monitoring.prometheus.MetricsMiddleware",
    "hookstream.api.middleware.RequestIdMiddleware",
    "hookstream.api.middleware.RequestInputMiddleware",
    "monitoring.logs.LogContextMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "hookstream.login_throttle.LoginThrottleMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "hookstream.urls"
WSGI_APPLICATION = "hookstream.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "console.context_processors.console",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL", "")
if DATABASE_URL:
    try:
        DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60))}
    except Exception as exc:  # dj_database_url raises several types for bad URLs
        raise ImproperlyConfiguredEnv(f"DATABASE_URL is not a usable database URL: {exc}") from None
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = env_int("DB_CONNECT_TIMEOUT", 5)
        # No JIT: it compiles any plan the planner costs high, e.g. a filtered list page deep in a
        # big table, spending ~100 ms to save microseconds on a query that reads a few hundred rows.
        DATABASES["default"]["OPTIONS"]["options"] = "-c jit=off"
        DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(VAR_DIR / "hookstream.sqlite3"),
            # WAL and IMMEDIATE transactions let web, worker and beat share the file.
            "OPTIONS": {
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                "transaction_mode": "IMMEDIATE",
                "timeout": 30,
            },
        }
    }
IS_POSTGRES = DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache (rate limits) ---------------------------------------------------------------
REDIS_URL = env_str("REDIS_URL", "")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Live stream (/v1/ws) -------------------------------------------------------------
# Frames buffered per WebSocket connection before a client that does not read is dropped.
HOOKSTREAM_STREAM_BUFFER_FRAMES = env_int("HOOKSTREAM_STREAM_BUFFER_FRAMES", 1000, minimum=1)
# Where browsers open the stream; empty: the console's host on HOOKSTREAM_STREAM_PORT.
HOOKSTREAM_STREAM_URL = env_str("HOOKSTREAM_STREAM_URL", "")
HOOKSTREAM_STREAM_PORT = env_int("HOOKSTREAM_STREAM_PORT", 8001, minimum=1, maximum=65535)

# --- Celery ---------------------------------------------------------------------------
_FS_BROKER = VAR_DIR / "broker"
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL == "filesystem://":
    for sub in ("queue", "processed", "control"):
        (_FS_BROKER / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_FS_BROKER / "queue"),
        "data_folder_out": str(_FS_BROKER / "queue"),
        "processed_folder": str(_FS_BROKER / "processed"),
        "store_processed": False,
        # Broadcast (pidbox) messages; kombu's default is ./control in the working directory.
        "control_folder": str(_FS_BROKER / "control"),
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3600)}
    if CELERY_BROKER_URL.startswith("redis://"):
        # kombu's Redis transport, made to survive a Redis restart (see hookstream/broker.py).
        CELERY_BROKER_TRANSPORT = "hookstream.broker:Transport"
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = env_int("CELERY_WORKER_PREFETCH_MULTIPLIER", 1, minimum=1)
CELERY_TASK_ALWAYS_EAGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

# --- Auth, i18n, static -----------------------------------------------------------------
if TESTING:
    # Every test creates users; the production hasher would make each one take ~0.2 s.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "console:login"
# Login throttling (console and admin, hookstream/login_throttle.py): after this many failed
# log-ins from one client address, or for one username, every attempt from it / for it is
# answered 429 until HOOKSTREAM_LOGIN_LOCKOUT_SECONDS after the first failure (0 = no limit).
HOOKSTREAM_LOGIN_FAILURES_PER_ADDRESS = env_int("HOOKSTREAM_LOGIN_FAILURES_PER_ADDRESS", 30, minimum=0)
HOOKSTREAM_LOGIN_FAILURES_PER_USERNAME = env_int("HOOKSTREAM_LOGIN_FAILURES_PER_USERNAME", 10, minimum=0)
HOOKSTREAM_LOGIN_LOCKOUT_SECONDS = env_int("HOOKSTREAM_LOGIN_LOCKOUT_SECONDS", 900, minimum=1)
LOGIN_REDIRECT_URL = "console:dashboard"
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True
STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)  # whitenoise warns on every request when it is missing
# Serve the apps' static files (console, admin, the API docs' pinned assets) straight from the
# installed apps, so that no process depends on a collectstatic having been run.
WHITENOISE_USE_FINDERS = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG and not TESTING)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE

# --- REST API baseline ----------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "hookstream.api.authentication.APIKeyAuthentication",
        "hookstream.api.authentication.CsrfSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["hookstream.api.permissions.HasOrganization"],
    "DEFAULT_PAGINATION_CLASS": "hookstream.api.pagination.CreatedCursorPagination",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_THROTTLE_CLASSES": ["hookstream.api.ratelimit.OrganizationRateThrottle"],
    "EXCEPTION_HANDLER": "hookstream.api.exceptions.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "hookstream.api.schema.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["hookstream.api.parsers.StorableJSONParser"],
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "PAGE_SIZE": 20,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "hookstream API",
    "DESCRIPTION": "Webhook and event delivery: sources, destinations, connections, topics, events.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI and Redoc from pinned local assets (drf-spectacular-sidecar): no CDN needed.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "PREPROCESSING_HOOKS": ["hookstream.api.schema.preprocess_optional_slash"],
    # The error body on every error response, the X-Request-Id and RateLimit-* headers.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "hookstream.api.schema.postprocess_errors",
    ],
    # Enums shared by several fields; named here so that their names stay stable.
    "ENUM_NAME_OVERRIDES": {
        "DestinationTypeEnum": "destinations.models.DestinationType",
        "DestinationStatusEnum": "destinations.models.DestinationStatus",
        "RetryBackoffTypeEnum": "destinations.models.BackoffType",
        "CircuitStateEnum": "destinations.models.CircuitStateValue",
        "HttpMethodEnum": "destinations.models.HttpMethod",
        "SourceStatusEnum": "intake.models.SourceStatus",
        "IssueStatusEnum": "monitoring.models.IssueStatus",
    },
}

# Requests per minute per organization on the API (0 disables the limit).
HOOKSTREAM_RATE_LIMIT_PER_MINUTE = env_int("HOOKSTREAM_RATE_LIMIT_PER_MINUTE", 6000, minimum=0)
# Requests per minute per client IP on unauthenticated endpoints such as ingest (0 disables).
HOOKSTREAM_INGEST_RATE_LIMIT_PER_MINUTE = env_int("HOOKSTREAM_INGEST_RATE_LIMIT_PER_MINUTE", 60000, minimum=0)

# --- Intake ---------------------------------------------------------------------------
HOOKSTREAM_MAX_BODY_BYTES = env_int("HOOKSTREAM_MAX_BODY_BYTES", 1024 * 1024, minimum=1)
DATA_UPLOAD_MAX_MEMORY_SIZE = HOOKSTREAM_MAX_BODY_BYTES + 1024
# Proxy headers trusted for the client address, in order (e.g. "X-Forwarded-For"); empty
# means the socket peer address (REMOTE_ADDR) is the client address.
HOOKSTREAM_TRUSTED_PROXY_HEADERS = env_list("HOOKSTREAM_TRUSTED_PROXY_HEADERS", [])
# Transforms (tenant JSONata) run in sandbox child processes (hookstream.sandbox), killed at
# the time limit; the memory limit is what one evaluation may allocate. Each web or worker
# process starts up to HOOKSTREAM_TRANSFORM_WORKERS children, when first needed.
HOOKSTREAM_TRANSFORM_TIMEOUT_MS = env_int("HOOKSTREAM_TRANSFORM_TIMEOUT_MS", 1000, minimum=10, maximum=60_000)
HOOKSTREAM_TRANSFORM_MEMORY_MB = env_int("HOOKSTREAM_TRANSFORM_MEMORY_MB", 256, minimum=16, maximum=16_384)
HOOKSTREAM_TRANSFORM_WORKERS = env_int("HOOKSTREAM_TRANSFORM_WORKERS", 2, minimum=1, maximum=64)

# --- Delivery engine ------------------------------------------------------------------
# Waits longer than this are parked in the database and woken by beat rather than held
# as broker countdowns.
HOOKSTREAM_MAX_BROKER_COUNTDOWN_SECONDS = env_int("HOOKSTREAM_MAX_BROKER_COUNTDOWN_SECONDS", 300, minimum=0)
HOOKSTREAM_LEASE_SECONDS = env_int("HOOKSTREAM_LEASE_SECONDS", 120, minimum=5)
HOOKSTREAM_BEAT_INTERVAL_SECONDS = env_float("HOOKSTREAM_BEAT_INTERVAL_SECONDS", 1.0, minimum=0.1)
HOOKSTREAM_RETRY_AFTER_CAP_SECONDS = env_int("HOOKSTREAM_RETRY_AFTER_CAP_SECONDS", 3600, minimum=0)
HOOKSTREAM_RESPONSE_BODY_LIMIT = env_int("HOOKSTREAM_RESPONSE_BODY_LIMIT", 4096, minimum=0)
# A due delivery whose last wake-up (broker message) is older than this gets a new one from
# beat: the delay a lost broker message (Redis flushed) costs at most.
HOOKSTREAM_WAKE_GRACE_SECONDS = env_float("HOOKSTREAM_WAKE_GRACE_SECONDS", 30.0, minimum=0.5)
# A destination whose last attempt failed may have at most this many attempts in flight
# (0 = no cap), so one that times out on every request cannot take every worker thread.
HOOKSTREAM_FAILING_DESTINATION_MAX_IN_FLIGHT = env_int("HOOKSTREAM_FAILING_DESTINATION_MAX_IN_FLIGHT", 2, minimum=0)
# Batches (deliveries.engine): a worker claims at most this many due deliveries of one
# destination at a time (fewer when the destination is slow or failing), ...
HOOKSTREAM_BATCH_SIZE = env_int("HOOKSTREAM_BATCH_SIZE", 100, minimum=1, maximum=10_000)
# ... runs at most this many batches per wake-up, then re-queues the destination's wake-up
# behind the others' so that one busy destination cannot starve the rest.
HOOKSTREAM_DESTINATION_BATCHES = env_int("HOOKSTREAM_DESTINATION_BATCHES", 5, minimum=1)
# A wake-up of a destination waiting in the broker makes further ones for it redundant for
# this long (0: no de-duplication); beat's wake-ups are always sent. The mark lives in the
# cache and must be shared by web and workers: without Redis (the embedded defaults, a cache
# per process) the worker could not clear the web's mark, so there is no de-duplication.
HOOKSTREAM_WAKE_DEDUP_SECONDS = env_float("HOOKSTREAM_WAKE_DEDUP_SECONDS", 10.0 if REDIS_URL else 0.0, minimum=0.0)
CELERY_BEAT_SCHEDULE = {
    "deliveries-beat": {
        "task": "deliveries.beat_tick",
        "schedule": HOOKSTREAM_BEAT_INTERVAL_SECONDS,
        "options": {"expires": max(HOOKSTREAM_BEAT_INTERVAL_SECONDS * 5, 5)},
    },
    # Retention: hourly, deletes events older than HOOKSTREAM_RETENTION_DAYS (0 = off).
    "deliveries-purge-old-events": {"task": "deliveries.purge_old_events", "schedule": 3600.0},
    # Per-destination delivery counts: fold the rows the triggers append (PostgreSQL).
    "deliveries-fold-delivery-counts": {
        "task": "deliveries.fold_delivery_counts",
        "schedule": 10.0,
        "options": {"expires": 60},
    },
    # Monitoring: resolve quiet issues, roll metrics up, evaluate alert rules.
    "monitoring-minute": {"task": "monitoring.minute", "schedule": 60.0, "options": {"expires": 55}},
}
# Outbound requests to private, loopback, link-local and metadata addresses. Off in
# production; the embedded default (DEBUG) and the tests (HOOKSTREAM_TESTING) turn it on.
HOOKSTREAM_ALLOW_PRIVATE_NETWORKS = env_bool("HOOKSTREAM_ALLOW_PRIVATE_NETWORKS", DEBUG or TESTING)
# Pub/Sub destinations without a service account publish with this server's own Google
# credentials (google.auth.default) only when the operator lends them explicitly.
HOOKSTREAM_PUBSUB_AMBIENT_CREDENTIALS = env_bool("HOOKSTREAM_PUBSUB_AMBIENT_CREDENTIALS", False)
# Internal targets deliveries may reach with the guard on: CIDRs and host names
# (".corp.example" covers every name under it). Metadata endpoints stay refused.
HOOKSTREAM_EGRESS_ALLOW = env_networks_and_hosts("HOOKSTREAM_EGRESS_ALLOW", [])
# Extra certificate authorities (a PEM file) every outbound TLS connection trusts besides the
# usual ones (certifi and the system's): for targets behind a private PKI.
HOOKSTREAM_CA_BUNDLE = env_pem_file("HOOKSTREAM_CA_BUNDLE")

# --- Operations -----------------------------------------------------------------------
# Prometheus counters are shared by every process (gunicorn workers, Celery workers, beat)
# through prometheus_client's multiprocess mode: each process writes its own files here and a
# scrape sums them. It must be set before prometheus_client is first imported, hence here.
PROMETHEUS_MULTIPROC_DIR = env_str("PROMETHEUS_MULTIPROC_DIR", str(VAR_DIR / "prometheus"))
Path(PROMETHEUS_MULTIPROC_DIR).mkdir(parents=True, exist_ok=True)
os.environ["PROMETHEUS_MULTIPROC_DIR"] = PROMETHEUS_MULTIPROC_DIR
# /readyz: the longest one check (database statement, broker connect) may take.
HOOKSTREAM_READY_TIMEOUT_SECONDS = env_float("HOOKSTREAM_READY_TIMEOUT_SECONDS", 2.0, minimum=0.1)
# An issue without a new failure for this long is resolved by beat.
HOOKSTREAM_ISSUE_RESOLVE_MINUTES = env_float("HOOKSTREAM_ISSUE_RESOLVE_MINUTES", 30.0, minimum=0.01)
HOOKSTREAM_METRICS_TOKEN = env_str("HOOKSTREAM_METRICS_TOKEN", "")
HOOKSTREAM_RETENTION_DAYS = env_int("HOOKSTREAM_RETENTION_DAYS", 30, minimum=0)
# Adds POST /bench/noop, the baseline of bench/ingest_throughput.py (never on in production).
HOOKSTREAM_BENCH_NOOP = env_bool("HOOKSTREAM_BENCH_NOOP", False)

# --- Email (alert notifications) ------------------------------------------------------------
# EMAIL_URL: smtp://user:password@host:587 (STARTTLS with smtp+tls://, implicit TLS with
# smtps://), or console:// to print messages. Without it the EMAIL_HOST, EMAIL_PORT,
# EMAIL_HOST_USER, EMAIL_HOST_PASSWORD, EMAIL_USE_TLS and EMAIL_USE_SSL variables apply; with
# neither, messages are printed (console backend), so a fresh checkout needs no mail server.
EMAIL_URL = env_str("EMAIL_URL", "")
EMAIL_HOST = env_str("EMAIL_HOST", "")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1, maximum=65535)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10, minimum=1)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "hookstream@localhost")
EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
if EMAIL_URL:
    _email = urlsplit(EMAIL_URL)
    if _email.scheme == "console":
        EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
    elif _email.scheme in ("smtp", "smtp+tls", "smtps") and _email.hostname:
        EMAIL_HOST = _email.hostname
        EMAIL_PORT = _email.port or {"smtp": 25, "smtp+tls": 587, "smtps": 465}[_email.scheme]
        EMAIL_HOST_USER = unquote(_email.username or "")
        EMAIL_HOST_PASSWORD = unquote(_email.password or "")
        EMAIL_USE_TLS = _email.scheme == "smtp+tls"
        EMAIL_USE_SSL = _email.scheme == "smtps"
    else:
        raise ImproperlyConfiguredEnv("EMAIL_URL must be smtp://, smtp+tls://, smtps:// (with a host) or console://")
elif not EMAIL_HOST:
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
if EMAIL_USE_TLS and EMAIL_USE_SSL:
    raise ImproperlyConfiguredEnv("EMAIL_USE_TLS and EMAIL_USE_SSL cannot both be on")

# Logs: text or one JSON object per line, each with the request / organization / destination /
# delivery it is about (monitoring.logs). Celery's processes use this too (hookstream.celery).
LOG_LEVEL = env_choice("LOG_LEVEL", "INFO", {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"})
LOG_FORMAT = env_choice("LOG_FORMAT", "text", {"text", "json"})
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "context": {"()": "monitoring.logs.ContextFilter"},
        "quiet": {"()": "monitoring.logs.QuietFilter"},
    },
    "formatters": {
        "text": {"()": "monitoring.logs.TextFormatter", "format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "monitoring.logs.JSONFormatter"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["quiet", "context"]},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        # A worker says "<name> ready." (and when it shuts down) whatever LOG_LEVEL is:
        # operators and supervisors wait for that line.
        "celery.apps.worker": {"level": "INFO"},
    },
}
