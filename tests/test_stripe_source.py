"""Stripe: signatures (cross-checked with the official SDK), one cancellation for
`cancel_at_period_end` + `deleted`, the customer lookup against a real local HTTP server,
Stripe's own feedback, and retries while Stripe's API is down."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import stripe as stripe_sdk
from rq.job import Job

from hooks import create_app
from hooks.sources import AuthError, Ignored, PayloadError
from hooks.sources import stripe as source
from tests import payloads
from tests import source_payloads as sp
from tests.conftest import json_of
from tests.fixtures_sources import STRIPE_API_KEY, STRIPE_SECRET, stripe_header
from tests.rq_helpers import run_queued
from worker import jobs
from worker.events import Event, EventKind
from worker.queues import EVENT_RETRY, event_job_id
from worker.reasons import load_reasons
from worker.settings import Settings, SettingsError
from worker.stripe_api import FEEDBACK_REASONS

CANCEL_REQUESTED_AT = 1714644000


def parse(payload) -> Event | Ignored:
    return source.parse(payloads.body(payload))


def period_end_cancel(**kw):
    sub = sp.stripe_subscription(cancel_at_period_end=True, canceled_at=CANCEL_REQUESTED_AT, **kw)
    return sp.stripe_event(
        "customer.subscription.updated", sub, previous={"cancel_at_period_end": False}
    )


def deleted(canceled_at=CANCEL_REQUESTED_AT, **kw):
    sub = sp.stripe_subscription(
        status="canceled", canceled_at=canceled_at, ended_at=1906538400, **kw
    )
    return sp.stripe_event("customer.subscription.deleted", sub, event_id="evt_2Del")


@pytest.fixture
def settings(settings, stripe_api):
    return replace(settings, stripe_api_base=stripe_api.base)


@pytest.fixture(autouse=True)
def _close_stripe_session(runtime):
    yield
    client = runtime.__dict__.get("stripe")
    if client is not None:
        client.close()


@pytest.fixture
def api(stripe_api):
    stripe_api.customers["cus_PqR5tUv"] = sp.stripe_customer(locales=["pt-BR"])
    return stripe_api.start()


# --- signatures (pure) --------------------------------------------------------------------


def test_our_signature_is_accepted_by_the_official_sdk():
    payload = payloads.body(deleted())
    now = int(time.time())
    header = f"t={now},v1={source.sign(payload, STRIPE_SECRET, now)}"
    event = stripe_sdk.Webhook.construct_event(payload.decode(), header, STRIPE_SECRET)
    assert event["type"] == "customer.subscription.deleted"


def test_any_of_several_v1_signatures_may_match():
    payload = payloads.body(deleted())
    now = int(time.time())
    good = source.sign(payload, STRIPE_SECRET, now)
    old_secret = source.sign(payload, "whsec_rolled_away", now)
    header = f"t={now},v1={old_secret},v1={good},v0=ignored"
    source.verify(header, payload, STRIPE_SECRET)
    stripe_sdk.Webhook.construct_event(payload.decode(), header, STRIPE_SECRET)


@pytest.mark.parametrize("age", [301, -301, 3600])
def test_a_timestamp_outside_300_seconds_is_refused_like_the_sdk_does(age):
    payload = payloads.body(deleted())
    now = 1_800_000_000
    header = f"t={now - age},v1={source.sign(payload, STRIPE_SECRET, now - age)}"
    with pytest.raises(AuthError, match="tolerance 300"):
        source.verify(header, payload, STRIPE_SECRET, now=now)
    source.verify(header, payload, STRIPE_SECRET, now=now - age + 299)  # fresh then


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("", "missing Stripe-Signature"),
        ("v1=abc", "no timestamp"),
        ("t=1714644600", "no v1 signature"),
        ("t=1714644600,v0=abc", "no v1 signature"),
        ("t=soon,v1=abc", "no timestamp"),
    ],
)
def test_malformed_signature_headers_are_refused(header, message):
    with pytest.raises(AuthError, match=message):
        source.verify(header, b"{}", STRIPE_SECRET)


# --- parsing (pure) -----------------------------------------------------------------------


def test_deleted_is_a_cancellation_waiting_for_its_member():
    payload = deleted()
    payload["created"] = 1906538405
    event = parse(payload)
    assert isinstance(event, Event)
    assert event.source == "stripe"
    assert event.kind is EventKind.CANCELLED
    assert event.name == "subscription.cancelled"
    assert event.member.email == ""  # looked up by the worker
    assert event.member.id == "cus_PqR5tUv"
    assert event.subscription_id == "sub_1PabcDEF"
    assert event.membership is not None
    assert (event.membership.id, event.membership.title) == ("prod_Gold", "Gold Club")
    assert event.occurred_at == datetime.fromtimestamp(1906538405, UTC)
    assert event.access_ends_at == datetime.fromtimestamp(1906538400, UTC)
    assert event.raw["type"] == "customer.subscription.deleted"


def test_cancel_at_period_end_is_the_cancellation_and_deleted_later_is_the_same_one():
    early = parse(period_end_cancel())
    late = parse(deleted())
    assert early.kind is EventKind.CANCELLED
    assert early.access_ends_at == datetime.fromtimestamp(1906538400, UTC)  # period end
    assert early.event_id == late.event_id


def test_a_second_cancellation_after_undoing_the_first_is_new():
    assert parse(deleted(canceled_at=CANCEL_REQUESTED_AT + 86400)).event_id != (
        parse(period_end_cancel()).event_id
    )


def test_undoing_a_period_end_cancellation_is_a_comeback():
    sub = sp.stripe_subscription(cancel_at_period_end=False)
    event = parse(
        sp.stripe_event(
            "customer.subscription.updated", sub, previous={"cancel_at_period_end": True}
        )
    )
    assert event.kind is EventKind.RESUMED
    assert event.kind.is_comeback


@pytest.mark.parametrize(
    ("event_type", "kind"),
    [
        ("customer.subscription.created", EventKind.REACTIVATED),
        ("customer.subscription.resumed", EventKind.RESUMED),
        ("customer.subscription.paused", EventKind.PAUSED),
    ],
)
def test_created_resumed_and_paused_are_parsed_into_their_kinds(event_type, kind):
    event = parse(sp.stripe_event(event_type, sp.stripe_subscription(), created=1714644600))
    assert event.kind is kind
    assert event.status == "active@1714644600"  # the event's creation time


def test_a_second_undo_is_a_new_comeback_and_a_redelivery_is_not():
    def undo(created):
        sub = sp.stripe_subscription(cancel_at_period_end=False)
        previous = {"cancel_at_period_end": True}
        event = sp.stripe_event(
            "customer.subscription.updated", sub, previous=previous, created=created
        )
        return parse(event)

    assert undo(1714644600).event_id == undo(1714644600).event_id
    assert undo(1714644600).event_id != undo(1714731000).event_id


@pytest.mark.parametrize(
    "payload",
    [
        sp.stripe_event("customer.subscription.updated", sp.stripe_subscription(), previous={}),
        sp.stripe_event("customer.subscription.trial_will_end", sp.stripe_subscription()),
        {"id": "evt_1", "type": "invoice.paid", "created": 1, "data": {"object": {}}},
    ],
)
def test_other_events_are_ignored_with_a_reason(payload):
    result = parse(payload)
    assert isinstance(result, Ignored)
    assert payload["type"] in result.reason


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda e: e.pop("data"), "data is missing"),
        (lambda e: e["data"].pop("object"), "data.object is missing"),
        (lambda e: e["data"]["object"].pop("customer"), "data.object.customer is missing"),
        (lambda e: e["data"]["object"].pop("id"), "data.object.id is missing"),
        (lambda e: e.pop("created"), "created must be a Unix timestamp"),
    ],
)
def test_malformed_events_say_what_is_wrong(mutate, message):
    payload = deleted()
    mutate(payload)
    with pytest.raises(PayloadError, match=message):
        parse(payload)


def test_an_expanded_customer_object_is_refused_with_a_clear_message():
    payload = deleted()
    payload["data"]["object"]["customer"] = {"id": "cus_1", "object": "customer"}
    with pytest.raises(
        PayloadError, match=r"data\.object\.customer must be a string, not an object"
    ):
        parse(payload)


def test_the_signing_secret_without_an_api_key_is_a_settings_error():
    with pytest.raises(SettingsError, match="FAREWELL_STRIPE_API_KEY is required"):
        Settings.from_env({"FAREWELL_STRIPE_SECRET": "whsec_abc"})
    Settings.from_env({"FAREWELL_STRIPE_SECRET": "whsec_abc", "FAREWELL_STRIPE_API_KEY": "rk_1"})


def test_every_stripe_feedback_value_maps_to_a_survey_reason(settings):
    documented = {
        "too_expensive",
        "unused",
        "missing_features",
        "switched_service",
        "too_complex",
        "low_quality",
        "customer_service",
        "other",
    }
    assert set(FEEDBACK_REASONS) == documented
    ours = {r.id for r in load_reasons(settings.templates_dir / "reasons.toml")}
    assert set(FEEDBACK_REASONS.values()) <= ours


# --- over HTTP, with the customer lookup --------------------------------------------------


def test_a_cancellation_looks_the_customer_up_and_sends_one_feedback_request(
    post_source, work, outbox, api, runtime
):
    response = post_source.stripe(deleted())
    assert response.status_code == 202
    event_id = json_of(response)["event_id"]
    work()
    [message] = outbox()
    assert message["To"].addresses[0].addr_spec == "ana.costa@example.com"
    assert "Ana" in message.get_body(preferencelist=("plain",)).get_content()
    assert api.requests == [("/v1/customers/cus_PqR5tUv", f"Bearer {STRIPE_API_KEY}")]
    assert runtime.store.load_sequence(event_id).locale == "pt_BR"  # preferred_locales
    recorded = runtime.store.load_event(event_id).member
    assert (recorded.email, recorded.first_name, recorded.last_name) == (
        "ana.costa@example.com",
        "Ana",
        "Costa",
    )


def test_period_end_cancellation_then_deletion_sends_one_email(post_source, work, outbox, api):
    first = post_source.stripe(period_end_cancel())
    work()
    later = post_source.stripe(deleted())
    assert first.status_code == 202
    assert json_of(later) == {"status": "duplicate", "event_id": json_of(first)["event_id"]}
    work()
    assert len(outbox()) == 1


def test_a_replayed_delivery_is_a_duplicate(post_source, work, outbox, api):
    payload = deleted()
    first = post_source.stripe(payload)
    second = post_source.stripe(payload)
    assert first.status_code == 202
    assert json_of(second)["status"] == "duplicate"
    work()
    assert len(outbox()) == 1


def test_stripes_own_feedback_is_stored_and_the_member_is_not_asked_again(
    post_source, work, outbox, api, runtime
):
    payload = period_end_cancel(feedback="unused", comment="Busy with a new job")
    event_id = json_of(post_source.stripe(payload))["event_id"]
    work()
    feedback = runtime.store.load_feedback(event_id)
    assert feedback is not None
    assert (feedback.reason, feedback.comment, feedback.no_email) == (
        "not_using",
        "Busy with a new job",
        False,
    )
    assert outbox() == []
    assert jobs.send_step(event_id, "feedback_request") == ("skipped: member already told us why")


def test_a_member_answer_on_our_page_is_not_overwritten_by_a_rerun(post_source, work, api, runtime):
    from worker.store import Feedback

    event_id = json_of(post_source.stripe(period_end_cancel(feedback="too_expensive")))["event_id"]
    work()
    runtime.store.save_feedback(Feedback(event_id, "switched_service", "", False, 1.0))
    assert jobs.handle_event(event_id).startswith("sequence exists")
    assert runtime.store.load_feedback(event_id).reason == "switched_service"


def test_undoing_the_cancellation_stops_the_follow_up(post_source, clock, outbox, api, runtime):
    seq_id = json_of(post_source.stripe(period_end_cancel()))["event_id"]
    clock.advance(seconds=0)
    assert clock.scheduled() == [f"step-{seq_id}-winback"]
    undo = sp.stripe_event(
        "customer.subscription.updated",
        sp.stripe_subscription(cancel_at_period_end=False),
        previous={"cancel_at_period_end": True, "canceled_at": CANCEL_REQUESTED_AT},
        created=int(time.time()) + 60,
    )
    assert post_source.stripe(undo).status_code == 202
    clock.advance(seconds=0)
    assert clock.scheduled() == []
    assert runtime.store.load_sequence(seq_id).outcome == "came_back"
    clock.advance(days=30)
    assert len(outbox()) == 1


def test_a_comeback_is_recorded_for_the_looked_up_member(post_source, work, api, runtime):
    payload = sp.stripe_event("customer.subscription.created", sp.stripe_subscription())
    response = post_source.stripe(payload)
    work()
    key = runtime.store.load_event(json_of(response)["event_id"]).member.id
    assert key == "cus_PqR5tUv"
    from worker.events import member_key

    assert runtime.store.member_field(member_key("ana.costa@example.com"), "last_event") == (
        "reactivated"
    )


def test_a_deleted_customer_means_nobody_to_write_to(post_source, work, outbox, stripe_api):
    stripe_api.start()  # knows no customers: 404
    event_id = json_of(post_source.stripe(deleted()))["event_id"]
    work()
    assert outbox() == []
    assert jobs.handle_event(event_id) == "no member to write to"


@pytest.mark.parametrize(
    "email",
    [
        "victim@example.com\r\nReply-To: attacker@evil.test",
        "victim@example.com\nBcc: attacker@evil.test",
        "victim@example.com>, attacker@evil.test",
        "not an address",
    ],
)
def test_an_email_from_stripes_api_is_validated_like_one_from_a_webhook(
    post_source, smtp_runtime, smtp_server, stripe_api, email
):
    stripe_api.customers["cus_PqR5tUv"] = sp.stripe_customer(email=email)
    stripe_api.start()
    event_id = json_of(post_source.stripe(deleted()))["event_id"]
    run_queued(smtp_runtime.queue)
    assert smtp_server.sink.messages == []  # over real SMTP: no injected Reply-To or Bcc
    assert smtp_server.sink.envelopes == []
    assert jobs.handle_event(event_id) == "no member to write to"


def test_stripe_api_down_retries_with_backoff_and_sends_once_when_back(
    post_source, work, outbox, stripe_api, runtime
):
    stripe_api.customers["cus_PqR5tUv"] = sp.stripe_customer()
    event_id = json_of(post_source.stripe(deleted()))["event_id"]
    queue = runtime.queue
    work()  # connection refused: the job fails and RQ schedules a retry
    job = Job.fetch(
        event_job_id(event_id), connection=queue.connection, serializer=queue.serializer
    )
    assert job.get_status() == "scheduled"
    assert job.retries_left == len(EVENT_RETRY.intervals) - 1
    registry = queue.scheduled_job_registry
    backoff = registry.get_scheduled_time(job) - job.ended_at.replace(tzinfo=UTC)
    assert backoff >= timedelta(seconds=EVENT_RETRY.intervals[0] - 1)
    assert outbox() == []

    stripe_api.start()
    _release(queue, job.id)  # what the worker's scheduler does once the pause is over
    work()
    assert len(outbox()) == 1  # the feedback request; the win-back waits its 14 days
    assert jobs.handle_event(event_id).startswith("sequence exists")  # RQ ran it twice
    work()
    assert len(outbox()) == 1


def test_a_refused_api_key_fails_at_once_shows_on_healthz_and_retries_once_fixed(
    post_source, work, outbox, stripe_api, runtime, client, runner
):
    stripe_api.customers["cus_PqR5tUv"] = sp.stripe_customer()
    stripe_api.api_key = "rk_live_another_key"  # Stripe no longer accepts ours: 401
    stripe_api.start()
    event_id = json_of(post_source.stripe(deleted()))["event_id"]
    queue = runtime.queue
    work()
    job = Job.fetch(
        event_job_id(event_id), connection=queue.connection, serializer=queue.serializer
    )
    assert job.get_status() == "failed"  # no retries wasted on a key that will not work
    assert len(stripe_api.requests) == 1
    health = json_of(client.get("/healthz"))
    assert health["stripe_error"]["event"] == event_id
    assert "401" in health["stripe_error"]["error"]
    assert any(w.startswith("Stripe events wait") for w in health["warnings"])
    assert outbox() == []

    stripe_api.api_key = STRIPE_API_KEY  # the operator fixes the key at Stripe's end
    result = runner.invoke(args=["jobs", "retry-failed"])
    assert "requeued 1 job(s)" in result.output
    work()
    assert len(outbox()) == 1
    assert json_of(client.get("/healthz"))["stripe_error"] is None


def _release(queue, job_id: str) -> None:
    registry = queue.scheduled_job_registry
    assert job_id in registry.get_job_ids()
    job = Job.fetch(job_id, connection=queue.connection, serializer=queue.serializer)
    registry.remove(job)
    queue.enqueue_job(job)


def test_wrong_signature_is_401(post_source):
    payload = payloads.body(deleted())
    header = stripe_header(payload, secret="whsec_someone_else")
    assert post_source.stripe(None, raw=payload, header=header).status_code == 401


def test_a_stale_delivery_is_401_here_and_in_the_sdk(post_source):
    payload = payloads.body(deleted())
    header = stripe_header(payload, timestamp=int(time.time()) - 301)
    with pytest.raises(stripe_sdk.SignatureVerificationError):
        stripe_sdk.Webhook.construct_event(payload.decode(), header, STRIPE_SECRET)
    response = post_source.stripe(None, raw=payload, header=header)
    assert response.status_code == 401
    assert "tolerance" in json_of(response)["error"]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", "body is empty"),
        (b"{", "not valid JSON"),
        (b"\xff\xfe", "not UTF-8"),
        (
            payloads.body({"type": "customer.subscription.deleted", "data": {}}),
            "data.object is missing",
        ),
    ],
)
def test_malformed_signed_bodies_are_400_with_a_message(post_source, raw, message):
    response = post_source.stripe(None, raw=raw, header=_sign_any(raw))
    assert response.status_code == 400
    assert message in json_of(response)["error"]


def _sign_any(raw: bytes) -> str:
    now = int(time.time())
    return f"t={now},v1={source.sign(raw, STRIPE_SECRET, now)}"


def test_disabled_without_a_signing_secret(settings, runtime):
    app = create_app({"TESTING": True, "SETTINGS": replace(settings, stripe_secret="")})
    payload = payloads.body(deleted())
    response = app.test_client().post(
        "/hooks/stripe", data=payload, headers={"Stripe-Signature": stripe_header(payload)}
    )
    assert response.status_code == 404
