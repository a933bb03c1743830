"""Stripe's API, as the worker needs it: who is this customer, and what did they tell Stripe.

Stripe's subscription events carry a customer id, not an email, so before `handle_event`
acts on a Stripe event the worker fetches `GET /v1/customers/{id}` (one `requests.Session`
per process, connect/read timeouts, a couple of quick retries). A failure that may pass
(network, 429, 5xx) raises `StripeUnavailable`, the job fails and RQ retries it with
backoff (`EVENT_RETRY`); nothing was sent, so a retry is safe.

Stripe's Customer Portal asks the member why they cancel (`cancellation_details.feedback`);
that answer is stored as the sequence's Feedback, so Farewell does not ask again.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from . import rq_seam
from .addresses import is_email
from .events import Event, EventKind, Member, MemberToResolve
from .locales import normalize_locale
from .settings import Settings
from .store import Feedback, Store

if TYPE_CHECKING:
    from .runtime import Runtime

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 3.05
# Quick in-process retries for a blip; longer outages are RQ's job (EVENT_RETRY).
HTTP_RETRY = Retry(
    total=2,
    backoff_factor=0.2,
    status_forcelist=(429, 500, 502, 503, 504),
    allowed_methods=frozenset({"GET"}),
    respect_retry_after_header=False,
    raise_on_status=False,
)

# Stripe's cancellation_details.feedback -> our reason ids (email_templates/reasons.toml).
FEEDBACK_REASONS = {
    "too_expensive": "too_expensive",
    "unused": "not_using",
    "missing_features": "missing_features",
    "switched_service": "switched_service",
    "too_complex": "technical_issues",
    "low_quality": "other",
    "customer_service": "customer_service",
    "other": "other",
}


class StripeUnavailable(RuntimeError):
    """Stripe did not answer usefully this time; the job should be retried later."""


class StripeConfigError(RuntimeError):
    """Our key is missing or refused: retrying will not help until an operator acts."""


class CustomerGone(LookupError):
    """The customer was deleted at Stripe, or never existed: nobody to write to."""


class StripeClient:
    def __init__(self, settings: Settings) -> None:
        self.base = settings.stripe_api_base.rstrip("/")
        self.api_key = settings.stripe_api_key
        self.timeout = (CONNECT_TIMEOUT, settings.stripe_timeout)
        self.session = requests.Session()
        self.session.mount(self.base, HTTPAdapter(max_retries=HTTP_RETRY))

    def customer(self, customer_id: str) -> dict[str, Any]:
        if not self.api_key:
            raise StripeConfigError("FAREWELL_STRIPE_API_KEY is not set")
        url = f"{self.base}/v1/customers/{requests.utils.quote(customer_id, safe='')}"
        try:
            reply = self.session.get(
                url, headers={"Authorization": f"Bearer {self.api_key}"}, timeout=self.timeout
            )
        except requests.RequestException as exc:
            raise StripeUnavailable(f"customer lookup failed: {type(exc).__name__}") from exc
        if reply.status_code == 404:
            raise CustomerGone(customer_id)
        if reply.status_code in (401, 403):
            raise StripeConfigError(f"Stripe refused our API key ({reply.status_code})")
        if reply.status_code != 200:
            raise StripeUnavailable(f"customer lookup answered {reply.status_code}")
        try:
            data = reply.json()
        except ValueError as exc:
            raise StripeUnavailable("customer lookup answered something that is not JSON") from exc
        if not isinstance(data, dict) or data.get("deleted"):
            raise CustomerGone(customer_id)
        return data

    def close(self) -> None:
        self.session.close()


def member_from_customer(customer: Mapping[str, Any]) -> Member | None:
    """Our Member from a Stripe customer; None when it has no email to write to. The
    address is checked exactly like one from a webhook: an API reply is untrusted input
    too (a customer's email is whatever they typed into a form)."""
    email = customer.get("email")
    if not isinstance(email, str) or not is_email(email.strip()):
        return None
    name = customer.get("name") if isinstance(customer.get("name"), str) else ""
    first, _, last = (name or "").strip().partition(" ")
    locales = customer.get("preferred_locales") or []
    return Member(
        email=email.strip(),
        id=str(customer.get("id", "")),
        first_name=first,
        last_name=last.strip(),
        locale=normalize_locale(locales[0]) if locales and isinstance(locales[0], str) else None,
    )


def feedback_for(event: Event) -> Feedback | None:
    """The member's answer in Stripe's cancellation flow, as our Feedback for the sequence
    this cancellation starts (sequence id == event id)."""
    if event.kind is not EventKind.CANCELLED:
        return None
    sub = (event.raw.get("data") or {}).get("object") or {}
    details = sub.get("cancellation_details") if isinstance(sub, dict) else None
    if not isinstance(details, dict):
        return None
    reason = FEEDBACK_REASONS.get(details.get("feedback") or "")
    if reason is None:
        return None
    comment = details.get("comment")
    return Feedback(
        sequence_id=event.event_id,
        reason=reason,
        comment=comment.strip()[:2000] if isinstance(comment, str) else "",
        no_email=False,
        at=event.occurred_at.timestamp(),
    )


def prepare_event(event: Event, client: StripeClient, store: Store) -> Event | None:
    """Give a Stripe event its member (email, names, locale) and keep Stripe's feedback.

    Returns None when there is nobody to write to (customer deleted, or no email).
    Events from other sources pass through unchanged.
    """
    if event.source != "stripe" or event.member.email:
        return event
    try:
        customer = client.customer(event.member.id)
    except CustomerGone:
        log.warning("event %s: Stripe customer is gone, nothing to do", event.event_id)
        return None
    member = member_from_customer(customer)
    if member is None:
        log.warning("event %s: Stripe customer has no valid email, nothing to do", event.event_id)
        return None
    store.clear_stripe_error()  # the key works (again)
    event = replace(event, member=member)
    store.update_event(event)  # whoever reads the event record later sees the member
    feedback = feedback_for(event)
    # Saved before the sequence is planned, so its feedback step sees the answer. A
    # member's own later answer on our page is never overwritten by a retried job.
    if feedback and store.load_feedback(feedback.sequence_id) is None:
        store.save_feedback(feedback)
    return event


def enrich(event: Event, rt: Runtime) -> Event | None:
    """The Stripe source's enrichment step (worker/enrichment.py): its events name a
    customer, so the worker looks the member up before acting. A refused or missing API key
    cannot be fixed by retrying: the job goes straight to the failed registry (the event
    stays pending) and /healthz says why."""
    if not isinstance(event.member, MemberToResolve):
        return event  # looked up by an earlier attempt (the event record was updated)
    try:
        return prepare_event(event, rt.stripe, rt.store)
    except StripeConfigError as exc:
        rt.store.record_stripe_error(str(exc), event.event_id)
        rq_seam.no_retry()
        log.error(
            "STRIPE CONFIGURATION ERROR, event %s kept for `flask --app hooks jobs "
            "retry-failed` once FAREWELL_STRIPE_API_KEY is fixed: %s",
            event.event_id,
            exc,
        )
        raise
