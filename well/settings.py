"""Well's one settings module, driven by environment variables (see .env.example)."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path

import dj_database_url
from csp.constants import NONCE, NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from well.env import (
    DEVELOPMENT_MASTER_KEY,
    env_bool,
    env_float,
    env_int,
    env_int_list,
    env_list,
    env_str,
    is_development_master_key,
    origin_of,
)

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(env_str("WELL_DATA_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", True)
# Production is anything that is not a debug run; it must be configured explicitly.
PRODUCTION = not DEBUG

_DEV_SECRET_KEY = "dev-only-insecure-secret-key-do-not-use-in-production"
# The development master key (well.env), usable only while DEBUG is on (never in production).
_DEV_MASTER_KEY = DEVELOPMENT_MASTER_KEY

SECRET_KEY = env_str("SECRET_KEY", "" if PRODUCTION else _DEV_SECRET_KEY)
# "id:base64url(32 bytes)" entries, comma separated; the first wraps new data keys,
# the others stay readable during a rotation (see docs/security.md).
WELL_MASTER_KEYS = env_list("WELL_MASTER_KEYS", [] if PRODUCTION else [_DEV_MASTER_KEY])

if PRODUCTION:
    if not SECRET_KEY or SECRET_KEY == _DEV_SECRET_KEY:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    if not WELL_MASTER_KEYS:
        raise ImproperlyConfigured("WELL_MASTER_KEYS must be set when DEBUG is off.")
    # By its bytes, whatever ID it is listed under: the development key is public (it is in
    # this file), so data wrapped by it is readable by anyone.
    if any(is_development_master_key(entry) for entry in WELL_MASTER_KEYS):
        raise ImproperlyConfigured(
            "WELL_MASTER_KEYS holds the development master key (under any ID it is refused "
            "when DEBUG is off); generate one with `manage.py rotate_master_key --generate`."
        )

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
SITE_URL = env_str("SITE_URL", "http://127.0.0.1:8000")

INSTALLED_APPS = [
    "well.apps.WellAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "django_q",
    "django_htmx",
    "django_filters",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "csp",
    "well",
    "connectors",
    "matching",
    "review",
    # The sandboxes, the demo and the soak (their `manage.py` commands); no app imports it.
    "sandbox",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "well.middleware.RequestIdMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The language: the person's choice (the switcher's cookie), else the browser's; pages of a
    # workspace fall back to the workspace's language (well.i18n, in workspace_view).
    "django.middleware.locale.LocaleMiddleware",
    # Times in the workspace's zone (Europe/Paris until a workspace says otherwise).
    "well.middleware.TimeZoneMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "csp.middleware.CSPMiddleware",
]

ROOT_URLCONF = "well.urls"
WSGI_APPLICATION = "well.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.template.context_processors.tz",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "csp.context_processors.nonce",
                "well.context_processors.workspaces",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{DATA_DIR / 'well.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 0),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    # The demo runs the web server and the worker on one SQLite file. A transaction takes the
    # write lock when it begins (IMMEDIATE), so a second writer waits for it (timeout) instead
    # of failing with "database is locked" when its read lock cannot be upgraded; WAL lets
    # pages read while the worker writes.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
if env_str("REDIS_URL"):
    CACHES["default"] = {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": env_str("REDIS_URL"),
    }

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]

# English and French (docs/i18n.md). LANGUAGE_CODE is the last fallback only: a workspace's
# language comes before it, the browser's before that, the person's choice first of all.
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("fr", "Français")]
LOCALE_PATHS = [BASE_DIR / "locale"]
# Stored and computed in UTC; shown in the workspace's zone (Workspace.time_zone), and in this
# one on pages outside a workspace.
TIME_ZONE = "UTC"
WELL_DEFAULT_TIME_ZONE = env_str("WELL_DEFAULT_TIME_ZONE", "Europe/Paris")
USE_I18N = True
USE_TZ = True
# The language chosen with the switcher is remembered for a year, for this site only.
LANGUAGE_COOKIE_AGE = 365 * 24 * 3600
LANGUAGE_COOKIE_SAMESITE = "Lax"
LANGUAGE_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", PRODUCTION)
LANGUAGE_COOKIE_HTTPONLY = True

STATIC_URL = "/static/"
STATIC_ROOT = DATA_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_ROOT = DATA_DIR / "media"

# --- Sign-in (django-allauth) ------------------------------------------------------------
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "/"
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
# Mandatory: a sign-up with an address already registered gets the same page as a new one (the
# owner of the address gets a mail instead), so sign-up does not tell which addresses exist.
ACCOUNT_EMAIL_VERIFICATION = env_str("ACCOUNT_EMAIL_VERIFICATION", "mandatory")
if ACCOUNT_EMAIL_VERIFICATION not in {"mandatory", "optional", "none"}:
    raise ImproperlyConfigured("ACCOUNT_EMAIL_VERIFICATION must be mandatory, optional or none.")
ACCOUNT_PREVENT_ENUMERATION = True
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_ADAPTER = "well.auth.AccountAdapter"
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_USER_MODEL_USERNAME_FIELD = "username"
ACCOUNT_RATE_LIMITS = {
    "login": "30/m/ip",
    "login_failed": "10/m/ip,5/5m/key",
    "signup": "20/m/ip",
    "reset_password": "20/m/ip,5/m/key",
}
ACCOUNT_SESSION_REMEMBER = None
MFA_ADAPTER = "well.auth.MFAAdapter"
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = "Well"
# Backends that deliver nothing: mail (password-reset and verification links) ends up in the
# logs, a file or memory. Development uses the console; production refuses them unless
# WELL_ALLOW_CONSOLE_EMAIL says so explicitly (and `check --deploy` still warns).
LOG_EMAIL_BACKENDS = frozenset(
    f"django.core.mail.backends.{name}.EmailBackend"
    for name in ("console", "dummy", "locmem", "filebased")
)
EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend"
    if PRODUCTION
    else "django.core.mail.backends.console.EmailBackend",
)
WELL_ALLOW_CONSOLE_EMAIL = env_bool("WELL_ALLOW_CONSOLE_EMAIL", False)
if PRODUCTION and EMAIL_BACKEND in LOG_EMAIL_BACKENDS and not WELL_ALLOW_CONSOLE_EMAIL:
    raise ImproperlyConfigured(
        f"EMAIL_BACKEND is {EMAIL_BACKEND}, which writes password-reset links to the logs; "
        "configure SMTP (EMAIL_HOST, ...) or set WELL_ALLOW_CONSOLE_EMAIL=true explicitly."
    )
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "well@localhost")

# --- Background work (django-q2, ORM broker on the main database) ---------------------------
Q_CLUSTER = {
    "name": "well",
    "orm": "default",
    "workers": env_int("WELL_WORKERS", 2),
    "timeout": env_int("WELL_TASK_TIMEOUT", 600),
    "retry": env_int("WELL_TASK_RETRY", 720),
    "max_attempts": 3,
    "ack_failures": True,
    "catch_up": False,
    "save_limit": 1000,
    "poll": 1,
    "label": "Tasks",
}

# --- Providers: production URLs unless the environment points elsewhere ------------------
QUICKBOOKS_CLIENT_ID = env_str("QUICKBOOKS_CLIENT_ID")
QUICKBOOKS_CLIENT_SECRET = env_str("QUICKBOOKS_CLIENT_SECRET")
QUICKBOOKS_AUTHORIZE_URL = env_str(
    "QUICKBOOKS_AUTHORIZE_URL", "https://appcenter.intuit.com/connect/oauth2"
)
QUICKBOOKS_TOKEN_URL = env_str(
    "QUICKBOOKS_TOKEN_URL", "https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer"
)
QUICKBOOKS_REVOKE_URL = env_str(
    "QUICKBOOKS_REVOKE_URL", "https://developer.api.intuit.com/v2/oauth2/tokens/revoke"
)
QUICKBOOKS_API_URL = env_str("QUICKBOOKS_API_URL", "https://quickbooks.api.intuit.com")
# Hosts attachment downloads may reach (Intuit's pre-signed links); see reliability.md #22.
QUICKBOOKS_DOWNLOAD_HOSTS = env_list(
    "QUICKBOOKS_DOWNLOAD_HOSTS", [".intuit.com", ".intuitcdn.net", ".amazonaws.com"]
)

QONTO_CLIENT_ID = env_str("QONTO_CLIENT_ID")
QONTO_CLIENT_SECRET = env_str("QONTO_CLIENT_SECRET")
QONTO_AUTHORIZE_URL = env_str("QONTO_AUTHORIZE_URL", "https://oauth.qonto.com/oauth2/auth")
QONTO_TOKEN_URL = env_str("QONTO_TOKEN_URL", "https://oauth.qonto.com/oauth2/token")
QONTO_REVOKE_URL = env_str("QONTO_REVOKE_URL", "https://oauth.qonto.com/oauth2/revoke")
QONTO_API_URL = env_str("QONTO_API_URL", "https://thirdparty.qonto.com")
QONTO_APP_URL = env_str("QONTO_APP_URL", "https://app.qonto.com")
QONTO_STAGING_TOKEN = env_str("QONTO_STAGING_TOKEN")

HTTP_TIMEOUT_SECONDS = env_float("WELL_HTTP_TIMEOUT", 30.0)
SYNC_BACKFILL_DAYS = env_int("WELL_SYNC_BACKFILL_DAYS", 365)

# --- Security ------------------------------------------------------------------------------
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", PRODUCTION)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", PRODUCTION)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", PRODUCTION)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000 if PRODUCTION else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = PRODUCTION
SECURE_HSTS_PRELOAD = PRODUCTION
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("BEHIND_TLS_PROXY", False) else None
)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SILENCED_SYSTEM_CHECKS: list[str] = []
# Forms post to Well itself; "Connect" forms answer with a redirect to the provider's consent
# page, which Chromium checks against form-action too: those origins, and in development
# (the demo's sandboxes on loopback ports) any local port.
_FORM_ACTION = [
    "'self'",
    *dict.fromkeys(origin_of(url) for url in (QUICKBOOKS_AUTHORIZE_URL, QONTO_AUTHORIZE_URL)),
]
if not PRODUCTION:
    _FORM_ACTION += ["127.0.0.1:*", "localhost:*"]
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        # django-csp's NONCE constant: replaced by the request's nonce in each header.
        "script-src": [SELF, NONCE],
        "style-src": [SELF, "'unsafe-inline'"],
        "img-src": [SELF, "data:"],
        "frame-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": _FORM_ACTION,
        "frame-ancestors": [NONE],
    }
}
# Form and JSON bodies above 2.5 MB get a 413 (well.request_limits.bad_request, the API's
# handler). No endpoint takes files: a file sent anyway is kept in memory up to 2.5 MB and
# above that read and dropped, never written to a temporary file on disk.
DATA_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
FILE_UPLOAD_HANDLERS = ["django.core.files.uploadhandler.MemoryFileUploadHandler"]
# Error mails and reports hide secrets held in local variables too (tests/security/).
DEFAULT_EXCEPTION_REPORTER_FILTER = "well.error_reports.SecretsHiddenReporterFilter"

# --- REST API ------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    # DRF's three parsers; the JSON one refuses bodies nested too deeply with a 400.
    "DEFAULT_PARSER_CLASSES": [
        "well.request_limits.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    # Requests per partner API key (api.base.PerKeyThrottle); 429 with Retry-After beyond it.
    "DEFAULT_THROTTLE_RATES": {"api_key": env_str("WELL_API_RATE", "600/min")},
}
# Wrong, revoked or expired API keys allowed per client address before 429 (per window).
WELL_API_AUTH_FAILURE_RATE = env_str("WELL_API_AUTH_FAILURE_RATE", "10/min")
if not re.fullmatch(r"\d+/(s|sec|m|min|h|hour)", WELL_API_AUTH_FAILURE_RATE):
    raise ImproperlyConfigured("WELL_API_AUTH_FAILURE_RATE looks like 10/min.")
# Addresses (or networks) of the reverse proxies in front of Well: from them, the client's
# address is read from X-Forwarded-For; from anyone else that header is ignored.
WELL_TRUSTED_PROXIES = env_list("WELL_TRUSTED_PROXIES", [])
for _proxy in WELL_TRUSTED_PROXIES:
    try:
        ipaddress.ip_network(_proxy, strict=False)
    except ValueError as exc:
        raise ImproperlyConfigured(f"WELL_TRUSTED_PROXIES: {_proxy!r} is not an address") from exc
SPECTACULAR_SETTINGS = {"TITLE": "Well partner API", "VERSION": "1.0.0"}

# --- Logging -------------------------------------------------------------------------------
LOG_FORMAT = env_str("LOG_FORMAT", "text")
if LOG_FORMAT not in {"text", "json"}:
    raise ImproperlyConfigured("LOG_FORMAT must be 'text' or 'json'.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "well.logging.RequestIdFilter"}},
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["request_id"],
        }
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# Attachment downloads may reach loopback only in tests and the demo, whose sandboxes
# serve files on 127.0.0.1; production never sets this.
WELL_ALLOW_LOOPBACK_DOWNLOADS = env_bool("WELL_ALLOW_LOOPBACK_DOWNLOADS", False)
# Ports partners' webhook endpoints may use (a name resolving to loopback, where allowed, may
# use any: the tests' and the demo's receivers).
WELL_WEBHOOK_PORTS = env_int_list("WELL_WEBHOOK_PORTS", [443, 80])
