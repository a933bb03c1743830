"""`/unsubscribe/<token>`: leave the marketing list, from a link or from the mail client.

- GET shows a confirmation page with one button: link scanners and previews fetch URLs,
  and a fetch must never unsubscribe anyone.
- POST with the body `List-Unsubscribe=One-Click` is RFC 8058's one-click request, sent by
  mail clients from the `List-Unsubscribe-Post` header. No CSRF token is possible there:
  the signed token in the URL is the authority. It answers 200, with no redirect.
- POST from our own form carries the CSRF token and shows a confirmation page.

Either POST adds the address to the suppression list and cancels the member's pending
marketing steps. A tampered or foreign token gets 400 and records nothing.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, render_template, request
from flask.typing import ResponseReturnValue
from redis.exceptions import RedisError

from worker.privacy import mask_email
from worker.samples import SAMPLE_SEQUENCE_ID
from worker.sequences import suppress_member
from worker.settings import SUPPORTED_LOCALES, SettingsError
from worker.tokens import InvalidToken, Scope, read_token

from .security import verify_csrf
from .services import get_services

log = logging.getLogger(__name__)
bp = Blueprint("unsubscribe", __name__)
ONE_CLICK = ("List-Unsubscribe", "One-Click")

TEXT = {
    "en": {
        "title": "Unsubscribe",
        "confirm_heading": "Stop these emails?",
        "confirm_body": (
            "Press the button and {site} will not send you any more follow-up emails "
            "about your membership."
        ),
        "button": "Unsubscribe",
        "done_heading": "You are unsubscribed.",
        "done_body": (
            "We will not write to you again about your membership. Thank you for the time "
            "you spent with {site}."
        ),
        "already_heading": "You are already unsubscribed.",
        "already_body": (
            "{site} will not send you any more follow-up emails about your membership. "
            "There is nothing more to do."
        ),
        "gone_heading": "You will not hear from us.",
        "gone_body": "We no longer hold your address, so there is nothing to unsubscribe.",
        "busy_heading": "We could not do that just now.",
        "busy_body": "Nothing went wrong on your side. Please try again in a few minutes.",
        "sample_heading": "This is a sample unsubscribe page.",
        "sample_body": (
            "It was linked from a test email, so there is nothing to unsubscribe. A member's "
            "own link asks them to confirm, then stops every follow-up email from {site}."
        ),
        "bad_heading": "This link does not work.",
        "bad_body": (
            "It may have been shortened or changed on the way. Please use the unsubscribe "
            "link in the email exactly as it came, or simply reply to the email and ask."
        ),
    },
    "pt_BR": {
        "title": "Cancelar o recebimento",
        "confirm_heading": "Parar de receber estes emails?",
        "confirm_body": (
            "Clique no botão e {site} não enviará mais nenhum email de acompanhamento "
            "sobre a sua assinatura."
        ),
        "button": "Cancelar o recebimento",
        "done_heading": "Pronto, você não receberá mais estes emails.",
        "done_body": (
            "Não escreveremos mais sobre a sua assinatura. Obrigado pelo tempo que você "
            "passou com {site}."
        ),
        "already_heading": "Você já cancelou o recebimento.",
        "already_body": (
            "{site} não enviará mais nenhum email de acompanhamento sobre a sua assinatura. "
            "Não há mais nada a fazer."
        ),
        "gone_heading": "Você não receberá nada de nós.",
        "gone_body": "Não guardamos mais o seu endereço, então não há nada a cancelar.",
        "busy_heading": "Não conseguimos fazer isso agora.",
        "busy_body": "Não há nada de errado do seu lado. Tente de novo em alguns minutos.",
        "sample_heading": "Esta é uma página de exemplo.",
        "sample_body": (
            "Ela veio de um email de teste, então não há nada a cancelar. O link de cada "
            "assinante pede uma confirmação e então encerra os emails de {site}."
        ),
        "bad_heading": "Este link não funciona.",
        "bad_body": (
            "Talvez ele tenha sido cortado ou alterado no caminho. Use o link do email "
            "exatamente como chegou, ou simplesmente responda ao email e peça."
        ),
    },
}


def _page(kind: str, lang: str, status: int = 200, **extra: object) -> ResponseReturnValue:
    site = get_services().settings.site_name_in(lang)
    text = {k: v.format(site=site) for k, v in TEXT[lang].items()}
    html = render_template("unsubscribe.html", kind=kind, lang=lang, t=text, **extra)
    return html, status


def _lang(locale: str | None) -> str:
    if locale in SUPPORTED_LOCALES:
        return locale
    return get_services().settings.default_locale


@bp.route("/unsubscribe/<token>", methods=["GET", "POST"])
def unsubscribe(token: str) -> ResponseReturnValue:
    one_click = request.method == "POST" and request.form.get(ONE_CLICK[0]) == ONE_CLICK[1]
    try:
        return _unsubscribe(token, one_click)
    except RedisError as exc:
        log.warning("unsubscribe: Redis unavailable (%s)", type(exc).__name__)
        if one_click:
            return Response("try again later\n", 503, mimetype="text/plain")
        return _page("busy", _lang(None), 503)


def _unsubscribe(token: str, one_click: bool) -> ResponseReturnValue:
    services = get_services()
    try:
        sequence_id = read_token(services.settings.require_secret_key(), Scope.UNSUBSCRIBE, token)
    except (InvalidToken, SettingsError):
        if one_click:
            return Response("invalid unsubscribe link\n", 400, mimetype="text/plain")
        return _page("bad", _lang(None), 400)

    if sequence_id == SAMPLE_SEQUENCE_ID:  # a test email's link: nothing to unsubscribe
        if one_click:
            return Response("sample link from a test email: nothing done\n", mimetype="text/plain")
        return _page("sample", _lang(None))
    seq = services.store.load_sequence(sequence_id)
    member = services.store.load_member(seq.member_key) if seq else None
    lang = _lang(seq.locale if seq else None)
    if request.method == "GET":
        if member is None:
            return _page("gone", lang)
        # Asking again after the member said no would be one question too many.
        return _page("already" if services.store.is_suppressed(member.email) else "confirm", lang)
    if not one_click:
        verify_csrf()
    if member is not None:
        added, cancelled = suppress_member(
            services.store,
            services.queue,
            member.email,
            "unsubscribed",
            seq.membership_id if seq else "",
        )
        log.info(
            "unsubscribed %s (%s, %s pending marketing step(s) cancelled)",
            mask_email(member.email),
            "one-click" if one_click else "form",
            cancelled,
        )
        if not added:
            log.info("%s was suppressed already", mask_email(member.email))
    if one_click:
        return Response("unsubscribed\n", 200, mimetype="text/plain")
    return _page("done" if member else "gone", lang)
