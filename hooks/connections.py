"""Connections: for each source, whether it is on, what to paste into the plugin, and what
it delivered (`/admin/connections`, and `./farewell connections` for the terminal).

Also where a source's secret comes from: its FAREWELL_ setting, or, for MemberPress only,
the key an owner pasted on this page (kept in Redis; the environment wins when both are
set). MemberPress's Developer Tools add-on generates its own key and shows it read-only,
so the owner copies it into Farewell, never the reverse.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from types import ModuleType

import click
from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.cli import with_appcontext
from flask.typing import ResponseReturnValue
from redis.exceptions import RedisError

from worker.settings import Settings, env_name
from worker.store import METRICS_KEY, ping_key
from worker.webhook_log import (
    MEMBERPRESS_KEY,
    Recorder,
    Refusal,
    Result,
    SourceActivity,
    activity,
)

from .admin import TEMPLATES_ENDPOINT
from .admin_auth import admin_required
from .security import verify_csrf
from .services import Services, get_services
from .sources import SOURCES

log = logging.getLogger(__name__)
bp = Blueprint("connections", __name__, url_prefix="/admin")
STORED_KEY_SOURCE = "memberpress"  # the one source whose key the owner may set here
MIN_KEY_LENGTH = 8  # MemberPress generates 10 characters
KEY_CACHE_SECONDS = 5.0  # how soon other web processes see a key set on the page


@dataclass(frozen=True)
class Guide:
    """What the owner does in the plugin."""

    where: str
    events: tuple[str, ...]
    secret_hint: str


GUIDES = {
    "memberpress": Guide(
        "MemberPress → Developer Tools → Webhooks: add a webhook with this URL",
        (
            "Subscription Stopped",
            "Subscription Expired",
            "Subscription Paused",
            "Subscription Resumed",
            "Subscription Created",
            "Member Deleted",
            "Transaction Completed",
            "Recurring Transaction Completed",
        ),
        "copy the key MemberPress shows into Farewell (below, or {var})",
    ),
    "woocommerce": Guide(
        "WooCommerce → Settings → Advanced → Webhooks: one webhook per topic, API v3",
        ("Subscription updated", "Subscription created"),
        "paste the value of {var} as the webhook's Secret",
    ),
    "pmpro": Guide(
        "Memberships → Settings → Zapier: the “Changed Membership Level” webhook URL",
        ("Changed Membership Level",),
        "the URL carries the key: append ?key=<the value of {var}>",
    ),
    "stripe": Guide(
        "Stripe Dashboard → Developers → Webhooks: add an endpoint with this URL",
        (
            "customer.subscription.updated",
            "customer.subscription.deleted",
            "customer.subscription.created",
            "customer.subscription.paused",
            "customer.subscription.resumed",
        ),
        "put the endpoint's signing secret (whsec_…) in {var}",
    ),
    "standard": Guide(
        "your sender (Restrict Content Pro snippet, Zapier, Make...): POST to this URL",
        (
            "membership.cancelled",
            "membership.expired",
            "membership.paused",
            "membership.resumed",
            "membership.reactivated",
            "member.erased",
        ),
        "sign with the whsec_… secret in {var} (docs/sources/standard.md)",
    ),
}


DEFAULT_GUIDE = Guide("the plugin's webhook settings", (), "put the secret in {var}")


class _KeyCache:
    """The MemberPress key set on the page, read from Redis at most every few seconds per
    process: the receiver's hot path must not pay a round trip for it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._value = ""
        self._until = 0.0

    def get(self, services: Services) -> str:
        now = time.monotonic()
        if now < self._until:
            return self._value
        with self._lock:
            if now >= self._until:
                try:
                    self._value = services.store.redis.get(MEMBERPRESS_KEY) or ""
                except RedisError:
                    pass  # keep the last known key: a hiccup must not refuse deliveries
                self._until = now + KEY_CACHE_SECONDS
            return self._value

    def forget(self) -> None:
        self._until = 0.0


def _cache() -> _KeyCache:
    return current_app.extensions["farewell.connection_keys"]


def source_secret(services: Services, source: str, module: ModuleType) -> str:
    """The secret a source checks deliveries against ("" = the source is off)."""
    secret = getattr(services.settings, module.SECRET_SETTING, "")
    if secret or source != STORED_KEY_SOURCE:
        return secret
    return _cache().get(services)


@dataclass(frozen=True)
class Connection:
    name: str
    setting: str  # the FAREWELL_ variable that enables it
    enabled: bool
    secret_from: str  # "the environment (…)", "this page" or ""
    url: str
    guide: Guide
    activity: SourceActivity | None


def connections(services: Services) -> list[Connection]:
    """Every source, with its record (two round trips)."""
    settings: Settings = services.settings
    stored = services.store.redis.get(MEMBERPRESS_KEY) or ""
    records = activity(services.store.redis, SOURCES, {name: ping_key(name) for name in SOURCES})
    base = settings.base_url.rstrip("/")
    result = []
    for name, module in SOURCES.items():
        from_env = bool(getattr(settings, module.SECRET_SETTING, ""))
        from_page = name == STORED_KEY_SOURCE and bool(stored)
        variable = env_name(module.SECRET_SETTING)
        result.append(
            Connection(
                name=name,
                setting=variable,
                enabled=from_env or from_page,
                # make run loads var/local.env into the environment: name both places.
                secret_from="the environment (or var/local.env with make run)"
                if from_env
                else "this page"
                if from_page
                else "",
                url=f"{base}/hooks/{name}" + (f"?key=<{variable}>" if name == "pmpro" else ""),
                guide=GUIDES.get(name, DEFAULT_GUIDE),
                activity=records.get(name),
            )
        )
    return result


# Sources whose credential is a shared key; the others sign each delivery.
KEYED_SOURCES = ("memberpress", "pmpro")


def recorder() -> Recorder:
    return current_app.extensions["farewell.recorder"]


def note(action: Callable[[Recorder], None], source: str) -> None:
    """Record one delivery for the page, best effort: a record must never fail a reply."""
    try:
        action(recorder())
    except RedisError as exc:
        log.warning("hooks/%s: delivery not recorded, Redis unavailable (%s)", source, exc)


def refusal_for(source: str) -> Refusal:
    return Refusal.WRONG_KEY if source in KEYED_SOURCES else Refusal.BAD_SIGNATURE


def disabled_message(source: str) -> str:
    """The 404 reply for a source that exists but has no secret: which setting enables it."""
    variable = env_name(SOURCES[source].SECRET_SETTING)
    extra = " (or paste MemberPress's key on /admin/connections)" if source == "memberpress" else ""
    return f"source {source!r} is disabled: set {variable} to enable it{extra}"


def _when(at: float | str | None) -> str:
    if not at:
        return ""
    return datetime.fromtimestamp(float(at), UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


# --- the page ---------------------------------------------------------------------------


@bp.errorhandler(RedisError)
def _redis_down(exc: RedisError) -> ResponseReturnValue:
    message = f"Redis is not answering ({type(exc).__name__}); try again in a moment.\n"
    return Response(message, 503, mimetype="text/plain")


@bp.get("/connections")
@admin_required
def page() -> ResponseReturnValue:
    services = get_services()
    return render_template(
        "connections.html",
        lang="en",
        connections=connections(services),
        results=[r.value for r in Result],
        when=_when,
        min_key=MIN_KEY_LENGTH,
        templates_url=url_for(TEMPLATES_ENDPOINT)
        if TEMPLATES_ENDPOINT in current_app.view_functions
        else None,
    )


@bp.post("/connections/memberpress-key")
@admin_required
def set_memberpress_key() -> ResponseReturnValue:
    verify_csrf()
    services = get_services()
    key = request.form.get("key", "").strip()
    if request.form.get("action") == "remove":
        services.store.redis.delete(MEMBERPRESS_KEY)
        flash("The MemberPress key set on this page was removed.", "ok")
    elif len(key) < MIN_KEY_LENGTH or any(c.isspace() for c in key):
        flash(
            f"That is not a MemberPress key: paste the one MemberPress shows "
            f"(at least {MIN_KEY_LENGTH} characters, no spaces).",
            "error",
        )
    else:
        services.store.redis.set(MEMBERPRESS_KEY, key)
        flash("MemberPress key saved: deliveries are checked against it from now on.", "ok")
        if services.settings.memberpress_key:
            flash("FAREWELL_MEMBERPRESS_KEY is set too, and it wins: unset it to use this one.")
    _cache().forget()
    return redirect(url_for(".page"), 303)


# --- the CLI ----------------------------------------------------------------------------


@click.command("connections")
@with_appcontext
@click.option("--last", default=5, show_default=True, help="Deliveries and refusals shown.")
def connections_command(last: int) -> None:
    """Each source: enabled or not (and the setting that enables it), the URL to paste,
    the events to tick, the last deliveries and refusals, counts for 24 h and 7 days."""
    for c in connections(get_services()):
        state = f"enabled ({c.setting} from {c.secret_from})" if c.enabled else "off"
        click.echo(f"{c.name}: {state}")
        if not c.enabled:
            click.echo(f"  enable: set {c.setting}" + _page_hint(c.name))
        click.echo(f"  URL: {c.url}")
        click.echo(f"  in the plugin: {c.guide.where}")
        click.echo(f"  events: {', '.join(c.guide.events)}")
        a = c.activity
        if a is None:
            continue
        for label, counts in (("24 h", a.last_24h), ("7 days", a.last_7d)):
            click.echo(f"  {label}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
        if a.last_ping:
            click.echo(f"  last ping: {_when(a.last_ping.get('at'))} {a.last_ping.get('detail')}")
        for e in a.deliveries[:last]:
            reason = f" ({e.reason})" if e.reason else ""
            click.echo(f"  {_when(e.at)}  {e.result}{reason}  {e.event}  {e.event_id}".rstrip())
        for e in a.refusals[:last]:
            detail = f": {e.detail}" if e.detail and e.detail != e.reason else ""
            click.echo(f"  {_when(e.at)}  refused, {e.reason}{detail}  from {e.client}")


def _page_hint(name: str) -> str:
    if name != STORED_KEY_SOURCE:
        return ""
    return " (or paste the key MemberPress shows on /admin/connections)"


def init_app(app: Flask, services: Services) -> None:
    app.extensions["farewell.connection_keys"] = _KeyCache()
    app.extensions["farewell.recorder"] = Recorder(services.store.redis, METRICS_KEY)
    app.register_blueprint(bp)
    app.cli.add_command(connections_command)
