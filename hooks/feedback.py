"""`/feedback/<token>`: the one-page exit survey the feedback email links to.

GET only shows the form (link scanners and mail previews fetch it; nothing is recorded).
A reason clicked in the email is recorded by the page itself: static/feedback.js POSTs it
to `/feedback/<token>/choice` with the session's CSRF token, only in a visible page after a
person interacts with it or has had it in view for a moment (docs/http.md says why); without
scripts the page's Confirm button sends the same answer. POST `/feedback/<token>` records
one answer per sequence (resubmitting replaces it), suppresses the address if the member
asked for no more email, and redirects to a thank-you page.
"""

from __future__ import annotations

import logging
import time

from flask import (
    Blueprint,
    abort,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from itsdangerous import SignatureExpired
from redis.exceptions import RedisError
from werkzeug.exceptions import BadRequest

from worker.notify import enqueue_answer
from worker.samples import SAMPLE_SEQUENCE_ID, sample_sequence
from worker.sequences import stop_marketing, suppress_member
from worker.settings import SettingsError
from worker.store import Feedback, Sequence
from worker.tokens import InvalidToken, Scope, read_token

from .feedback_text import COMMENT_MAX, clean_comment, locale_from, text_for
from .security import SURVEY_CSP, verify_csrf
from .services import get_services

log = logging.getLogger(__name__)
bp = Blueprint("feedback", __name__)
NO_EMAIL_REASON = "asked_no_email"


def _text(locale: str) -> dict[str, str]:
    site = get_services().settings.site_name_in(locale)
    return {
        k: v.format(site=site, max=COMMENT_MAX, reason="{reason}")
        for k, v in text_for(locale).items()
    }


def _error_page(key: str, status: int, locale: str | None = None) -> ResponseReturnValue:
    settings = get_services().settings
    locale = locale or locale_from(request.accept_languages, settings.default_locale)
    t = _text(locale)
    return render_template("feedback_error.html", lang=locale, t=t, message=t[key]), status


def _open(token: str) -> Sequence:
    """The sequence the token names; otherwise the request ends with the error page."""
    services = get_services()
    try:
        sequence_id = read_token(services.settings.require_secret_key(), Scope.FEEDBACK, token)
    except InvalidToken as exc:
        expired = isinstance(exc.__cause__, SignatureExpired)
        abort(make_response(_error_page("expired_link" if expired else "bad_link", 404)))
    except SettingsError:
        abort(make_response(_error_page("bad_link", 404)))  # no secret: no link was issued
    if sequence_id == SAMPLE_SEQUENCE_ID:  # a test email's link: a page that says so
        return sample_sequence(services.settings.default_locale, None)
    seq = services.store.load_sequence(sequence_id)
    if seq is None or not seq.member_key:  # erased, or anonymized past retention
        abort(make_response(_error_page("gone", 404)))
    return seq


def _is_sample(seq: Sequence) -> bool:
    return seq.id == SAMPLE_SEQUENCE_ID


def _sample_thanks(seq: Sequence) -> ResponseReturnValue:
    t = _text(seq.locale)
    return render_template("feedback_thanks.html", lang=seq.locale, t=t, sample=True)


def _labels(locale: str) -> dict[str, str]:
    services = get_services()
    return {r.id: r.label(locale, services.settings.default_locale) for r in services.reasons}


def _form(
    token: str,
    seq: Sequence,
    *,
    selected: str,
    comment: str = "",
    no_email: bool = False,
    recorded: str = "",
    error: str | None = None,
    status: int = 200,
) -> ResponseReturnValue:
    labels = _labels(seq.locale)
    t = _text(seq.locale)
    # A reason clicked in the email and not yet on record: the page's script records it,
    # and without scripts the button says Confirm.
    clicked = selected if selected and selected != recorded and not error else ""
    page = render_template(
        "feedback.html",
        lang=seq.locale,
        t=t,
        token=token,
        choices=[{"id": k, "label": v} for k, v in labels.items()],
        selected=selected,
        clicked=clicked,
        clicked_text=t["clicked"].replace("{reason}", labels[clicked]) if clicked else "",
        noted_text=t["noted"].replace("{reason}", labels[recorded]) if recorded else "",
        comment=comment,
        no_email=no_email,
        comment_max=COMMENT_MAX,
        error=t[error] if error else None,
        sample=_is_sample(seq),
    )
    return page, status, {"Content-Security-Policy": SURVEY_CSP}


@bp.errorhandler(RedisError)
def _redis_down(exc: RedisError) -> ResponseReturnValue:
    log.warning("feedback page: Redis unavailable (%s)", type(exc).__name__)
    return _error_page("unavailable", 503)


@bp.get("/feedback/<token>")
def survey(token: str) -> ResponseReturnValue:
    seq = _open(token)
    known = {r.id for r in get_services().reasons}
    existing = None if _is_sample(seq) else get_services().store.load_feedback(seq.id)
    previous = existing.reason if existing else ""
    asked = request.args.get("reason", "").strip()
    prefill = {
        "comment": existing.comment if existing else "",
        "no_email": bool(existing and existing.no_email),
        "recorded": previous,
    }
    if asked and asked not in known:
        return _form(token, seq, selected=previous, error="unknown_reason", status=400, **prefill)
    return _form(token, seq, selected=asked or previous, **prefill)


@bp.post("/feedback/<token>")
def answer(token: str) -> ResponseReturnValue:
    seq = _open(token)
    try:
        verify_csrf()
    except BadRequest:
        return _error_page("expired_form", 400, seq.locale)

    reason = request.form.get("reason", "").strip()
    comment = clean_comment(request.form.get("comment", ""))
    no_email = request.form.get("no_email") == "1"
    kept = {"selected": reason, "comment": comment[: COMMENT_MAX * 2], "no_email": no_email}
    if reason and reason not in {r.id for r in get_services().reasons}:
        return _form(token, seq, **{**kept, "selected": ""}, error="unknown_reason", status=400)
    if len(comment) > COMMENT_MAX:
        return _form(token, seq, **kept, error="too_long", status=400)
    if not (reason or comment or no_email):
        return _form(token, seq, **kept, error="empty", status=400)

    if _is_sample(seq):
        return _sample_thanks(seq)  # recorded nowhere
    services = get_services()
    feedback = Feedback(seq.id, reason, comment, no_email, time.time())
    first = services.store.save_feedback(feedback)
    if no_email:
        # Like an unsubscribe: suppressed, and pending marketing steps cancelled now.
        member = services.store.load_member(seq.member_key)
        if member is not None:
            suppress_member(services.store, services.queue, member.email, NO_EMAIL_REASON)
        else:
            stop_marketing(services.store, services.queue, seq.member_key)
    enqueue_answer(services.queue, services.settings, seq.id, feedback.at, updated=not first)
    log.info(
        "feedback %s for sequence %s: %s%s",
        "recorded" if first else "updated",
        seq.id,
        reason or "no reason",
        ", asked for no more email" if no_email else "",
    )
    return redirect(url_for("feedback.thanks", token=token), 303)


@bp.post("/feedback/<token>/choice")
def choice(token: str) -> ResponseReturnValue:
    """The reason a person clicked, recorded by the page's script (never by a GET): it
    replaces the reason on record and keeps the comment and the no-email box as they are."""
    seq = _open(token)
    t = _text(seq.locale)
    try:
        verify_csrf()
    except BadRequest:
        return jsonify(error=t["expired_form"]), 400
    reason = request.form.get("reason", "").strip()
    labels = _labels(seq.locale)
    if reason not in labels:
        return jsonify(error=t["unknown_reason"]), 400
    noted = t["noted"].replace("{reason}", labels[reason])
    if _is_sample(seq):
        return jsonify(reason=reason, noted=noted)  # a test email's page: recorded nowhere
    services = get_services()
    existing = services.store.load_feedback(seq.id)
    if existing is None or existing.reason != reason:
        feedback = Feedback(
            seq.id,
            reason,
            existing.comment if existing else "",
            bool(existing and existing.no_email),
            time.time(),
        )
        first = services.store.save_feedback(feedback)
        enqueue_answer(services.queue, services.settings, seq.id, feedback.at, updated=not first)
        log.info(
            "feedback %s for sequence %s by click: %s",
            "recorded" if first else "updated",
            seq.id,
            reason,
        )
    return jsonify(reason=reason, noted=noted)


@bp.get("/feedback/<token>/thanks")
def thanks(token: str) -> ResponseReturnValue:
    seq = _open(token)
    if _is_sample(seq):
        return _sample_thanks(seq)
    feedback = get_services().store.load_feedback(seq.id)
    if feedback is None:  # nothing sent yet: the form, not a thank-you for nothing
        return redirect(url_for("feedback.survey", token=token), 303)
    return render_template(
        "feedback_thanks.html",
        lang=seq.locale,
        t=_text(seq.locale),
        no_email=bool(feedback and feedback.no_email),
    )
