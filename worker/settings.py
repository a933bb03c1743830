"""Typed settings, read from the environment in one place.

Every variable is documented in docs/configuration.md. Defaults are chosen so
that `make run` works on a fresh machine; production sets the secrets.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# Events are remembered for dedupe longer than any sender retries (Stripe: 3 days).
DEFAULT_DEDUPE_TTL = 7 * 24 * 3600
# MemberPress payloads are a few KB; anything near this limit is not a webhook.
DEFAULT_MAX_BODY_BYTES = 256 * 1024
DEFAULT_QUEUE = "farewell"
# Generous: a cancellation wave from one WordPress site (one IP) is ~tens per second at worst.
DEFAULT_RATE_LIMIT = "300/60"
SUPPORTED_LOCALES = ("en", "pt_BR")
DIGEST_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
# Guessable secrets have floors (README "Security"): MemberPress generates 10-character keys;
# the Standard Webhooks spec asks for a 24-byte key at least.
MIN_ADMIN_PASSWORD = 12
MIN_WEBHOOK_KEY = 8
MIN_STANDARD_SECRET_BYTES = 24
MIN_METRICS_TOKEN = 16
# Secrets a sender presents (or signs with), checked against MIN_WEBHOOK_KEY.
WEBHOOK_KEYS = (
    "memberpress_key",
    "woocommerce_secret",
    "pmpro_key",
    "stripe_secret",
    "postmark_webhook_key",
    "mailgun_webhook_signing_key",
)
# Guardrails no playbook can switch off: one sequence per member per cooldown, at most this
# many emails per sequence; a comeback this soon after a win-back email counts as won back.
DEFAULT_SEQUENCE_COOLDOWN_DAYS = 180
DEFAULT_MAX_EMAILS_PER_SEQUENCE = 3
DEFAULT_WON_BACK_DAYS = 30
# Catch-up (a late cron, a replay, a backfill): never two emails of one sequence closer
# than this, and no feedback request for a cancellation older than this (0: any age).
DEFAULT_MIN_EMAIL_GAP_HOURS = 24
DEFAULT_MAX_CANCELLATION_AGE_DAYS = 30
# Two years: long enough to see a member come back a year later and for year-on-year
# insights, short enough not to keep who left forever (docs/privacy.md).
DEFAULT_RETENTION_DAYS = 730


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


# Variables whose name is not FAREWELL_ + the field's name in capitals.
_ENV_NAMES = {"redis_url": "REDIS_URL", "playbook_path": "FAREWELL_PLAYBOOK"}


def env_name(field_name: str) -> str:
    return _ENV_NAMES.get(field_name, f"FAREWELL_{field_name.upper()}")


# The words for "the site" while FAREWELL_SITE_NAME is unset, per language.
UNNAMED_SITE = {"en": "our community", "pt_BR": "nossa comunidade"}


@dataclass(frozen=True)
class Settings:
    redis_url: str = "redis://localhost:6379/0"
    secret_key: str = ""
    base_url: str = "http://localhost:5000"
    site_name: str = ""  # empty: a neutral phrase in each language (site_name_in)
    # The sender's postal address, shown in every marketing email's footer (CAN-SPAM);
    # required while the playbook has a marketing step (worker/compliance.py).
    postal_address: str = ""
    # Revenue of sources that send no currency (MemberPress, PMPro), ISO 4217.
    currency: str = "USD"
    # The owner's weekly digest (worker/digest.py): off while digest_to is empty.
    digest_to: str = ""
    digest_day: str = "monday"
    digest_hour: int = 8
    digest_locale: str = ""  # the digest's language; "" = default_locale
    timezone: str = "UTC"  # IANA name, e.g. America/Sao_Paulo
    default_locale: str = "en"
    queue_name: str = DEFAULT_QUEUE

    # Sources: a source whose secret is empty is disabled (404), never open.
    memberpress_key: str = ""
    woocommerce_secret: str = ""
    pmpro_key: str = ""
    stripe_secret: str = ""  # the endpoint's signing secret, whsec_...
    stripe_api_key: str = ""  # a restricted key that can read customers
    stripe_api_base: str = "https://api.stripe.com"
    stripe_timeout: float = 10.0
    standard_secret: str = ""  # whsec_<base64>

    # Mail
    mail_transport: str = "outbox"
    mail_from: str = "Farewell <farewell@localhost>"
    outbox_dir: Path = PROJECT_ROOT / "var" / "outbox"
    smtp_url: str = "smtp://localhost:25"
    smtp_timeout: float = 10.0
    # HTTP API transports (postmark, mailgun, sendgrid): seconds, never unbounded.
    mail_connect_timeout: float = 5.0
    mail_read_timeout: float = 20.0
    postmark_token: str = ""
    postmark_api_base: str = "https://api.postmarkapp.com"
    postmark_transactional_stream: str = "outbound"
    postmark_marketing_stream: str = "broadcast"
    mailgun_api_key: str = ""
    mailgun_domain: str = ""
    mailgun_region: str = "us"  # us | eu
    mailgun_api_base: str = ""  # empty: the region's API host
    sendgrid_api_key: str = ""
    sendgrid_api_base: str = "https://api.sendgrid.com"
    # Bounce and complaint webhooks: each is disabled (404) while its secret is empty.
    postmark_webhook_key: str = ""
    mailgun_webhook_signing_key: str = ""
    sendgrid_webhook_public_key: str = ""

    # Files
    templates_dir: Path = PROJECT_ROOT / "email_templates"
    playbook_path: Path = PROJECT_ROOT / "email_templates" / "playbook.toml"
    spool_dir: Path = PROJECT_ROOT / "var" / "spool"

    # Receiver
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    dedupe_ttl: int = DEFAULT_DEDUPE_TTL
    spool_replay_interval: float = 5.0

    admin_password: str = ""
    admin_email: str = ""  # where "send me a test" in /admin/templates delivers
    # Slack incoming webhook (or any URL taking {"text": ...}) told of each cancellation
    # and survey answer; empty: no notifications.
    notify_url: str = field(default="", repr=False)  # a secret, like the key

    # Operations (docs/guarantees.md, docs/operations.md)
    log_format: str = "text"  # text | json
    # Refused webhooks (bad credentials) per source and client IP per window:
    # "<count>/<seconds>"; "0" switches it off. Authenticated ones are never limited.
    rate_limit: str = DEFAULT_RATE_LIMIT
    # Bearer token for /metrics and /healthz's details; empty: both public.
    metrics_token: str = ""
    # Reverse proxies in front of the web process whose X-Forwarded-For may be trusted.
    trusted_proxies: int = 0
    # Sequences (guardrails)
    sequence_cooldown_days: int = DEFAULT_SEQUENCE_COOLDOWN_DAYS
    max_emails_per_sequence: int = DEFAULT_MAX_EMAILS_PER_SEQUENCE
    won_back_days: int = DEFAULT_WON_BACK_DAYS
    min_email_gap_hours: int = DEFAULT_MIN_EMAIL_GAP_HOURS
    max_cancellation_age_days: int = DEFAULT_MAX_CANCELLATION_AGE_DAYS

    # Worker: how much lower than the web process its CPU priority is (nice increment), so
    # on a shared box webhook replies stay fast during a wave; 0 leaves it as started.
    worker_nice: int = 10
    # `python -m worker` runs this many worker processes (worker/pool.py); 0: one per CPU.
    worker_processes: int = 0
    # An event job also handles up to this many - 1 event jobs queued right behind it
    # (worker/batch.py); 1 turns batching off.
    event_batch: int = 50

    # Redis (worker/redis_policy.py): start even though its maxmemory-policy evicts any key.
    allow_evicting_redis: bool = False
    # Personal data (worker/retention.py): erased this many days after a member's last
    # event, aggregate counts kept; 0 keeps it forever.
    retention_days: int = DEFAULT_RETENTION_DAYS

    extra: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    def site_name_in(self, locale: str) -> str:
        """FAREWELL_SITE_NAME, or a neutral phrase in the member's language when unset (an
        English default inside Portuguese sentences read as a mistake)."""
        return self.site_name or UNNAMED_SITE.get(locale, UNNAMED_SITE["en"])

    @property
    def reasons_path(self) -> Path:
        """The survey's reasons: stable ids with a label per language."""
        return self.templates_dir / "reasons.toml"

    @classmethod
    def env_names(cls) -> dict[str, str]:
        """Every setting's environment variable, by field name."""
        return {f.name: env_name(f.name) for f in fields(cls) if f.name != "extra"}

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from `REDIS_URL` and the `FAREWELL_*` variables."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for f in fields(cls):
            if f.name == "extra":
                continue
            var = env_name(f.name)
            raw = env.get(var)
            if raw is None or raw == "":
                continue
            values[f.name] = _coerce(var, raw, f.type)
        settings = cls(**values, extra={k: v for k, v in env.items() if k.startswith("FAREWELL_")})
        settings.validate()
        return settings

    def validate(self) -> None:
        if self.default_locale not in SUPPORTED_LOCALES:
            raise SettingsError(
                f"FAREWELL_DEFAULT_LOCALE must be one of {', '.join(SUPPORTED_LOCALES)}, "
                f"not {self.default_locale!r}"
            )
        if not self.base_url.startswith(("http://", "https://")):
            raise SettingsError("FAREWELL_BASE_URL must start with https:// (or http:// locally)")
        if not (len(self.currency) == 3 and self.currency.isalpha()):
            raise SettingsError(
                f"FAREWELL_CURRENCY must be a 3-letter ISO 4217 code like USD, "
                f"not {self.currency!r}"
            )
        if self.digest_day not in DIGEST_DAYS:
            raise SettingsError(
                f"FAREWELL_DIGEST_DAY must be one of {', '.join(DIGEST_DAYS)}, "
                f"not {self.digest_day!r}"
            )
        if not 0 <= self.digest_hour <= 23:
            raise SettingsError("FAREWELL_DIGEST_HOUR must be an hour from 0 to 23")
        if self.digest_locale and self.digest_locale not in SUPPORTED_LOCALES:
            raise SettingsError(
                f"FAREWELL_DIGEST_LOCALE must be one of {', '.join(SUPPORTED_LOCALES)}, "
                f"not {self.digest_locale!r}"
            )
        if self.digest_to and (
            "@" not in self.digest_to or any(c.isspace() for c in self.digest_to)
        ):
            raise SettingsError(
                f"FAREWELL_DIGEST_TO must be one email address, not {self.digest_to!r}"
            )
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise SettingsError(
                f"FAREWELL_TIMEZONE must be an IANA time zone like America/Sao_Paulo, "
                f"not {self.timezone!r}"
            ) from None
        if self.max_body_bytes <= 0:
            raise SettingsError("FAREWELL_MAX_BODY_BYTES must be positive")
        if self.stripe_secret and not self.stripe_api_key:
            raise SettingsError(
                "FAREWELL_STRIPE_API_KEY is required when FAREWELL_STRIPE_SECRET is set: "
                "Stripe events carry only a customer id, and the worker looks up the email"
            )
        if self.standard_secret and not _is_whsec(self.standard_secret):
            raise SettingsError("FAREWELL_STANDARD_SECRET must look like whsec_<base64>")
        if self.standard_secret and _whsec_bytes(self.standard_secret) < MIN_STANDARD_SECRET_BYTES:
            raise SettingsError(
                f"FAREWELL_STANDARD_SECRET is {_whsec_bytes(self.standard_secret)} bytes after "
                f"base64; the Standard Webhooks spec asks for {MIN_STANDARD_SECRET_BYTES} at "
                "least. Generate one with: python -c 'import base64, secrets; "
                'print("whsec_" + base64.b64encode(secrets.token_bytes(32)).decode())\''
            )
        for name in WEBHOOK_KEYS:
            value = getattr(self, name)
            if value and len(value) < MIN_WEBHOOK_KEY:
                raise SettingsError(
                    f"{env_name(name)} is shorter than {MIN_WEBHOOK_KEY} characters: anyone "
                    "could guess it. Use the key the plugin generated, or a long random one."
                )
        if self.metrics_token and len(self.metrics_token) < MIN_METRICS_TOKEN:
            raise SettingsError(
                f"FAREWELL_METRICS_TOKEN is shorter than {MIN_METRICS_TOKEN} characters. "
                "Generate one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )
        if self.admin_password and len(self.admin_password) < MIN_ADMIN_PASSWORD:
            raise SettingsError(
                f"FAREWELL_ADMIN_PASSWORD is shorter than {MIN_ADMIN_PASSWORD} characters; "
                "the admin is on the internet. Generate one with: python -c 'import secrets; "
                "print(secrets.token_urlsafe(18))'"
            )
        if self.notify_url and not self.notify_url.startswith(("http://", "https://")):
            raise SettingsError("FAREWELL_NOTIFY_URL must be an http:// or https:// URL")
        if self.log_format not in ("text", "json"):
            raise SettingsError(
                f"FAREWELL_LOG_FORMAT must be text or json, not {self.log_format!r}"
            )
        for name in (
            "sequence_cooldown_days",
            "max_emails_per_sequence",
            "won_back_days",
            "event_batch",
        ):
            if getattr(self, name) < 1:
                raise SettingsError(f"{env_name(name)} must be 1 or more")
        for name in ("min_email_gap_hours", "max_cancellation_age_days"):
            if getattr(self, name) < 0:
                raise SettingsError(f"{env_name(name)} must be 0 or more")
        if self.retention_days < 0:
            raise SettingsError("FAREWELL_RETENTION_DAYS must be 0 (keep forever) or more")
        if self.worker_processes < 0:
            raise SettingsError("FAREWELL_WORKER_PROCESSES must be 0 (one per CPU) or more")
        self.rate_limit_rule()

    def rate_limit_rule(self) -> tuple[int, int] | None:
        """FAREWELL_RATE_LIMIT as (count, seconds), or None when switched off."""
        text = self.rate_limit.strip()
        if text in ("0", "off", ""):
            return None
        count, _, seconds = text.partition("/")
        try:
            rule = (int(count), int(seconds or "60"))
        except ValueError:
            rule = (0, 0)
        if rule[0] <= 0 or rule[1] <= 0:
            raise SettingsError(
                f"FAREWELL_RATE_LIMIT must look like 300/60 (requests/seconds) or 0, "
                f"not {self.rate_limit!r}"
            )
        return rule

    def require_secret_key(self) -> str:
        if len(self.secret_key) < 16:
            raise SettingsError(
                "FAREWELL_SECRET_KEY is not set (or shorter than 16 characters); it signs the "
                "links in every email. Generate one with: python -c 'import secrets; "
                "print(secrets.token_urlsafe(32))'"
            )
        return self.secret_key


def _whsec_bytes(secret: str) -> int:
    key = secret.removeprefix("whsec_")
    return len(base64.b64decode(key + "=" * (-len(key) % 4)))


def _is_whsec(secret: str) -> bool:
    try:
        key = secret.removeprefix("whsec_")
        return bool(base64.b64decode(key + "=" * (-len(key) % 4), validate=True))
    except ValueError:
        return False


def _coerce(var: str, raw: str, annotation: object) -> object:
    kind = str(annotation)
    if kind == "bool":
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off"):
            return False
        raise SettingsError(f"{var} must be 1 or 0, not {raw!r}")
    try:
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
        if kind == "Path":
            return Path(raw)
    except ValueError as exc:
        raise SettingsError(f"{var} must be a number, not {raw!r}") from exc
    return raw
