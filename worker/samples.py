"""Sample data for checking, previewing and test-sending emails.

Built with the same `template_context` a real send uses, so a template that passes with
sample data gets exactly the variables it will get in production. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, timedelta

from .compose import compose, template_context
from .events import Member
from .incentives import NO_OFFER, Offer
from .mail.message import OutgoingEmail
from .playbook import Playbook, Step
from .reasons import Reason
from .render import RenderedEmail, Renderer
from .settings import Settings
from .store import Sequence

SAMPLE_SEQUENCE_ID = "sample"
SAMPLE_EMAIL = "maria.silva@example.com"
SAMPLE_MEMBERSHIP_TITLE = "Gold Club"
SAMPLE_COUPON = "COMEBACK20"
SAMPLE_OFFER = "20% off your first three months"
SAMPLE_REJOIN_URL = "https://example.com/r/sample-rejoin-link"  # stands in for the redirect
SAMPLE_POOL_CODE = "SAMPLE-CODE-0001"  # stands in for a single-use code from a pool
# Links in samples must look real, so they are signed even without a configured secret.
_SAMPLE_SECRET = "sample-secret-for-template-previews"  # noqa: S105 - not a real secret
_SAMPLE_POSTAL_ADDRESS = "1 Sample Street, Springfield"


@dataclass(frozen=True)
class Variant:
    """One set of sample member data: templates are checked with each, so both sides of
    an `{% if first_name %}` or `{% if coupon %}` are exercised."""

    name: str
    first_name: str
    last_name: str
    access_ends_at: str
    # Context values to set, where the context has that variable (incentives, answers...).
    overrides: tuple[tuple[str, object], ...] = ()


FULL = Variant(
    "full",
    "Maria",
    "Silva",
    "2026-12-31T23:59:59+00:00",
    (
        ("coupon", SAMPLE_COUPON),
        ("coupon_offer", SAMPLE_OFFER),
        ("coupon_valid_until", date(2027, 1, 31)),
        ("rejoin_url", SAMPLE_REJOIN_URL),
        ("feedback_given", False),
    ),
)
SPARSE = Variant(
    "sparse",
    "",
    "",
    "",
    (
        ("coupon", None),
        ("coupon_valid_until", None),
        ("rejoin_url", None),
        ("feedback_given", True),
    ),
)
VARIANTS = (FULL, SPARSE)


def template_names(playbook: Playbook) -> dict[str, set[str]]:
    """Every template the playbook sends, with the streams it is sent on."""
    names: dict[str, set[str]] = {}
    for steps in (playbook.default, *playbook.memberships.values()):
        for step in steps:
            for name in step.templates:  # every A/B variant too
                names.setdefault(name, set()).add(step.stream)
    return names


def sample_step(playbook: Playbook, name: str, membership_id: str | None) -> Step:
    """The playbook's step for this template (the membership's own, else the default's)."""
    for steps in (playbook.steps_for(membership_id), playbook.default):
        for step in steps:
            if name in step.templates:
                return step
    streams = template_names(playbook).get(name, {"transactional"})
    stream = "marketing" if "marketing" in streams else "transactional"
    return Step(template=name, delay=timedelta(0), stream=stream)


def sample_offer(
    playbook: Playbook, step: Step, membership_id: str | None, locale: str, default_locale: str
) -> Offer:
    """What the playbook really offers with this step (a pool shows a stand-in code, since
    a preview must not use up a real one); nothing when no incentive is configured."""
    incentive = playbook.incentive_for(membership_id, step)
    if incentive is None:
        return NO_OFFER
    code = incentive.code or SAMPLE_POOL_CODE
    return Offer(coupon=code, text=incentive.offer_text(locale, default_locale))


def _sample_settings(settings: Settings) -> Settings:
    if len(settings.secret_key) < 16:
        settings = replace(settings, secret_key=_SAMPLE_SECRET)
    if not settings.postal_address:
        settings = replace(settings, postal_address=_SAMPLE_POSTAL_ADDRESS)
    return settings


def sample_sequence(locale: str, membership_id: str | None, variant: Variant = FULL) -> Sequence:
    return Sequence(
        id=SAMPLE_SEQUENCE_ID,
        member_key="sample",
        event_id=SAMPLE_SEQUENCE_ID,
        membership_id=membership_id or "",
        membership_title=SAMPLE_MEMBERSHIP_TITLE,
        locale=locale,
        started_at=0.0,
        access_ends_at=variant.access_ends_at,
    )


def sample_member(locale: str, variant: Variant = FULL, email: str = SAMPLE_EMAIL) -> Member:
    return Member(
        email=email,
        id="sample",
        first_name=variant.first_name,
        last_name=variant.last_name,
        locale=locale,
    )


def sample_context(
    settings: Settings,
    step: Step,
    reasons: list[Reason],
    *,
    locale: str,
    membership_id: str | None,
    variant: Variant = FULL,
) -> dict[str, object]:
    context = template_context(
        _sample_settings(settings),
        sample_sequence(locale, membership_id, variant),
        sample_member(locale, variant),
        step,
        reasons,
    )
    for key, value in variant.overrides:
        if key in context:
            context[key] = value
    return context


@dataclass(frozen=True)
class _SampleSend:
    """Everything a real send of `name` would be given, with sample data (FULL variant)."""

    settings: Settings
    sequence: Sequence
    member: Member
    step: Step
    offer: Offer


def _sample_send(
    settings: Settings,
    playbook: Playbook,
    name: str,
    locale: str,
    membership_id: str | None,
    to: str = SAMPLE_EMAIL,
) -> _SampleSend:
    step = sample_step(playbook, name, membership_id)
    return _SampleSend(
        settings=_sample_settings(settings),
        sequence=sample_sequence(locale, membership_id),
        member=sample_member(locale, email=to),
        step=step,
        offer=sample_offer(playbook, step, membership_id, locale, settings.default_locale),
    )


def sample_email(
    settings: Settings,
    renderer: Renderer,
    playbook: Playbook,
    reasons: list[Reason],
    name: str,
    *,
    locale: str,
    membership_id: str | None,
    to: str = SAMPLE_EMAIL,
) -> OutgoingEmail:
    """The whole email a member would get, rendered with sample data (FULL variant)."""
    s = _sample_send(settings, playbook, name, locale, membership_id, to)
    return compose(s.settings, renderer, s.sequence, s.member, s.step, reasons, offer=s.offer)


def preview_email(
    settings: Settings,
    renderer: Renderer,
    playbook: Playbook,
    reasons: list[Reason],
    name: str,
    *,
    locale: str,
    membership_id: str | None,
) -> RenderedEmail:
    """Subject, preheader, HTML and text of one email with sample data, found by the same
    lookup order a real send uses."""
    s = _sample_send(settings, playbook, name, locale, membership_id)
    context = template_context(s.settings, s.sequence, s.member, s.step, reasons, s.offer)
    return renderer.render(name, context, locale=locale, membership_id=membership_id)
