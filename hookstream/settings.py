"""Settings for hookstream.

Everything comes from the environment through the typed readers in ``hookstream.env``.
With no environment at all the project runs on embedded defaults: SQLite and a filesystem
Celery broker under ``var/``, so a fresh checkout delivers events with nothing installed.
"""

import secrets
from pathlib import Path

import dj_database_url

from hookstream.env import (
    ImproperlyConfiguredEnv,
    env_bool,
    env_choice,
    env_float,
    env_int,
    env_list,
    env_networks_and_hosts,
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
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


SECRET_KEY = _required_secret("SECRET_KEY", "secret_key", lambda: secrets.token_urlsafe(50))
HOOKSTREAM_ENCRYPTION_KEY = _required_secret("HOOKSTREAM_ENCRYPTION_KEY", "encryption.key", _fernet_key)

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["*"] if DEBUG or TESTING else ["localhost", "127.0.0.1"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
# The public base URL used to build ingest and publish URLs shown to users.
HOOKSTREAM_PUBLIC_URL = env_str("HOOKSTREAM_PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/")

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
    "hookstream",
    "destinations",
    "intake",
    "deliveries",
    "templates_catalog",
    "console",
]

MIDDLEWARE = [
    "hookstream.api.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
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
LOGIN_REDIRECT_URL = "console:dashboard"
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True
STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)  # whitenoise warns on every request when it is missing
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
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "PAGE_SIZE": 20,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "hookstream API",
    "DESCRIPTION": "Webhook and event delivery: sources, destinations, connections, topics, events.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
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
}
# Outbound requests to private, loopback, link-local and metadata addresses. Off in
# production; the embedded default (DEBUG) and the tests (HOOKSTREAM_TESTING) turn it on.
HOOKSTREAM_ALLOW_PRIVATE_NETWORKS = env_bool("HOOKSTREAM_ALLOW_PRIVATE_NETWORKS", DEBUG or TESTING)
# Internal targets deliveries may reach with the guard on: CIDRs and host names
# (".corp.example" covers every name under it). Metadata endpoints stay refused.
HOOKSTREAM_EGRESS_ALLOW = env_networks_and_hosts("HOOKSTREAM_EGRESS_ALLOW", [])

# --- Operations -----------------------------------------------------------------------
HOOKSTREAM_METRICS_TOKEN = env_str("HOOKSTREAM_METRICS_TOKEN", "")
HOOKSTREAM_RETENTION_DAYS = env_int("HOOKSTREAM_RETENTION_DAYS", 30, minimum=0)
# Adds POST /bench/noop, the baseline of bench/ingest_throughput.py (never on in production).
HOOKSTREAM_BENCH_NOOP = env_bool("HOOKSTREAM_BENCH_NOOP", False)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {
        "handlers": ["console"],
        "level": env_choice("LOG_LEVEL", "INFO", {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}),
    },
    "loggers": {"django.db.backends": {"level": "INFO"}},
}
