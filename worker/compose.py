"""Build the email for one sequence step: template context, links and headers. Pure."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from urllib.parse import urlencode, urlsplit

from .events import Member
from .incentives import NO_OFFER, Offer
from .mail.message import OutgoingEmail, split_address
from .playbook import Step
from .reasons import Reason
from .render import RenderedEmail, Renderer
from .settings import Settings
from .store import Sequence
from .tokens import RejoinLink, Scope, make_rejoin_token, make_token
from .variants import assign


def links(settings: Settings, sequence_id: str) -> dict[str, str]:
    secret = settings.require_secret_key()
    base = settings.base_url.rstrip("/")
    return {
        "feedback_url": f"{base}/feedback/{make_token(secret, Scope.FEEDBACK, sequence_id)}",
        "unsubscribe_url": (
            f"{base}/unsubscribe/{make_token(secret, Scope.UNSUBSCRIBE, sequence_id)}"
        ),
    }


def rejoin_link(settings: Settings, sequence_id: str, step_id: str, code: str | None) -> str:
    """The win-back's button: Farewell's signed redirect, which records the click and
    forwards to the playbook's rejoin page (hooks/rejoin.py)."""
    token = make_rejoin_token(
        settings.require_secret_key(), RejoinLink(sequence_id, step_id, code or "")
    )
    return f"{settings.base_url.rstrip('/')}/r/{token}"


class UnsubscribeMissing(ValueError):
    """A marketing email without both unsubscribe mechanisms is never sent."""


def template_context(
    settings: Settings,
    seq: Sequence,
    member: Member,
    step: Step,
    reasons: list[Reason],
    offer: Offer = NO_OFFER,
    feedback_given: bool = False,
    today: date | None = None,
) -> dict[str, object]:
    """Only plain values: templates never see settings, Redis or Python objects.

    `coupon` is the incentive's code (None: no incentive, or the pool ran out) and
    `coupon_offer` its one-line description if the playbook gives one; `coupon_valid_until`
    the last day it holds (the incentive's valid_days from `today`, the sending day);
    `rejoin_url` the button to the membership's rejoin page (marketing steps whose
    membership has one); `feedback_given` says whether the member already answered."""
    urls = links(settings, seq.id)
    sender_name = split_address(settings.mail_from)[0] or settings.site_name_in(seq.locale)
    return {
        "first_name": member.first_name,
        "last_name": member.last_name,
        "membership_title": seq.membership_title,
        "access_ends_on": seq.access_ends_at or None,
        "site_name": settings.site_name_in(seq.locale),
        "sender_name": sender_name,
        "feedback_url": urls["feedback_url"],
        "unsubscribe_url": urls["unsubscribe_url"] if step.stream == "marketing" else None,
        # CAN-SPAM: commercial mail shows the sender's postal address (worker/compliance.py).
        "postal_address": settings.postal_address if step.stream == "marketing" else None,
        "reasons": [
            {
                "id": r.id,
                "label": r.label(seq.locale, settings.default_locale),
                "url": f"{urls['feedback_url']}?{urlencode({'reason': r.id})}",
            }
            for r in reasons
        ],
        "coupon": offer.coupon,
        "coupon_offer": offer.text if offer.coupon else None,
        "coupon_valid_until": (
            (today or datetime.now(UTC).date()) + timedelta(days=offer.valid_days)
            if offer.coupon and offer.valid_days
            else None
        ),
        "rejoin_url": (
            rejoin_link(settings, seq.id, step.id, offer.coupon)
            if offer.rejoin_url and step.stream == "marketing"
            else None
        ),
        "feedback_given": feedback_given,
    }


def compose(
    settings: Settings,
    renderer: Renderer,
    seq: Sequence,
    member: Member,
    step: Step,
    reasons: list[Reason],
    *,
    offer: Offer = NO_OFFER,
    feedback_given: bool = False,
) -> OutgoingEmail:
    context = template_context(settings, seq, member, step, reasons, offer, feedback_given)
    template = assign(step, seq.member_key, seq.id)  # an A/B variant, or the step's own
    rendered = renderer.render(
        template, context, locale=seq.locale, membership_id=seq.membership_id
    )
    if step.stream == "marketing":
        check_unsubscribe_link(template, str(context["unsubscribe_url"]), rendered)
    host = urlsplit(settings.base_url).hostname or "localhost"
    headers = {
        "List-Id": f"{settings.site_name_in(settings.default_locale)} farewell <farewell.{host}>"
    }
    if step.stream == "marketing":
        headers["List-Unsubscribe"] = f"<{context['unsubscribe_url']}>"
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    return OutgoingEmail(
        sender=settings.mail_from,
        to=member.email,
        to_name=" ".join(p for p in (member.first_name, member.last_name) if p),
        subject=rendered.subject,
        html=rendered.html,
        text=rendered.text,
        message_id=f"<{seq.id}.{step.id}@{host}>",
        stream=step.stream,
        headers=headers,
        tags={
            "sequence": seq.id,
            "step": step.id,
            **({"variant": template} if step.variants else {}),
        },
    )


def missing_unsubscribe_parts(url: str, rendered: RenderedEmail) -> list[str]:
    """The parts ("html", "text") that do not show the unsubscribe link (HTML may escape
    the `&` in it)."""
    parts = (("html", rendered.html), ("text", rendered.text))
    return [part for part, body in parts if url not in body.replace("&amp;", "&")]


def check_unsubscribe_link(template: str, url: str, rendered: RenderedEmail) -> None:
    """Guardrail: a marketing email shows the unsubscribe link in both parts (the
    List-Unsubscribe headers are added by compose itself)."""
    missing = missing_unsubscribe_parts(url, rendered)
    if missing:
        raise UnsubscribeMissing(
            f"template {template!r} is marketing but its {' and '.join(missing)} part does not "
            "show unsubscribe_url; refusing to send it"
        )
