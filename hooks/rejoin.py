"""`/r/<token>`: the win-back's rejoin button. It records the click (for the win-back
funnel) and forwards at once to the membership's `rejoin_url` from the playbook, with the
code the email offered filled in for `{code}`.

The target always comes from the playbook, never from the request: a tampered, truncated
or expired token forwards to the site's plain rejoin page (`[default] rejoin_url`), so the
redirect can never be pointed elsewhere (no open redirect).

Every request forwards at once, but only a browser navigation a person started counts as a
click: a GET with the Fetch Metadata headers browsers send for it (`Sec-Fetch-Mode:
navigate`, `Sec-Fetch-Dest: document`, `Sec-Fetch-User: ?1`) and no prefetch marker. Link
scanners (curl-like fetchers, HEAD, prefetch, embedded frames) send none of that, so they
forward without counting. Why this rather than the survey's visible-page technique: see
docs/insights.md.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from urllib.parse import quote

from flask import Blueprint, redirect, render_template, request
from flask.typing import ResponseReturnValue
from redis.exceptions import RedisError

from worker.playbook import CODE_PLACEHOLDER, Playbook, PlaybookError, load_playbook
from worker.settings import SettingsError
from worker.tokens import InvalidToken, RejoinLink, read_rejoin_token

from .feedback_text import locale_from, text_for
from .security import no_store
from .services import get_services

log = logging.getLogger(__name__)
bp = Blueprint("rejoin", __name__)


def fill_code(url: str, code: str) -> str:
    """The rejoin URL with the code in place of {code} (percent-encoded; empty if none)."""
    return url.replace(CODE_PLACEHOLDER, quote(code, safe=""))


def is_person_navigation(method: str, headers: Mapping[str, str]) -> bool:
    """A top-level navigation a person started (a click, a typed or pasted link), as
    browsers label it; not a HEAD, a script's fetch, a frame or a prefetch. Pure."""
    prefetch = headers.get("Sec-Purpose", "") + headers.get("Purpose", "")
    return (
        method == "GET"
        and headers.get("Sec-Fetch-Mode") == "navigate"
        and headers.get("Sec-Fetch-Dest") == "document"
        and headers.get("Sec-Fetch-User") == "?1"
        and "prefetch" not in prefetch.lower()
    )


def _page(key: str, status: int) -> ResponseReturnValue:
    settings = get_services().settings
    locale = locale_from(request.accept_languages, settings.default_locale)
    t = {
        k: v.format(site=settings.site_name_in(locale), max=0, reason="")
        for k, v in text_for(locale).items()
    }
    return render_template("feedback_error.html", lang=locale, t=t, message=t[key]), status


def _forward(url: str) -> ResponseReturnValue:
    return no_store(redirect(url, 302))


def _read(token: str) -> RejoinLink | None:
    try:
        return read_rejoin_token(get_services().settings.require_secret_key(), token)
    except (InvalidToken, SettingsError):
        return None


@bp.get("/r/<token>")
def rejoin(token: str) -> ResponseReturnValue:
    services = get_services()
    try:
        playbook: Playbook = load_playbook(services.settings.playbook_path)
    except PlaybookError:
        log.error("rejoin link: the playbook cannot be read")
        return _page("unavailable", 503)
    link = _read(token)
    membership_id = None
    if link is not None:
        try:
            seq = services.store.load_sequence(link.sequence_id)
            if seq is not None:
                membership_id = seq.membership_id
                if is_person_navigation(request.method, request.headers):
                    services.store.record_rejoin_click(link.sequence_id, link.step_id, time.time())
        except RedisError as exc:  # forward all the same: the member matters more
            log.warning(
                "rejoin link: click not recorded, Redis unavailable (%s)", type(exc).__name__
            )
    url = playbook.rejoin_url_for(membership_id)
    if url is None:
        return _page("bad_link", 404)
    return _forward(fill_code(url, link.code if link else ""))
