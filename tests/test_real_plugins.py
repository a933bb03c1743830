"""Issue 18's stories, end to end on the real stack pieces (Flask app, real Redis, RQ jobs
run in-process), with bodies and headers shaped as MemberPress Developer Tools,
WooCommerce Subscriptions and PMPro's Zapier add-on really send them."""

from __future__ import annotations

import email
import email.policy
import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from hooks import create_app
from hooks.sources import memberpress, woocommerce
from tests import payloads, plugin_payloads, source_payloads
from tests.conftest import BASE_URL, MEMBERPRESS_KEY, json_of, parts
from tests.fixtures_sources import woocommerce_headers
from tests.source_secrets import PMPRO_KEY
from worker import jobs, subscription_state
from worker.events import member_key
from worker.intake import Outcome, submit
from worker.store.keys import CANCELLATIONS_KEY

mp = plugin_payloads


def post_mp(client, payload, key: str = MEMBERPRESS_KEY):
    """As the add-on's job sends it: its header key, its user agent, and the full webhook
    URL as Referer."""
    return client.post(
        "/hooks/memberpress",
        data=mp.body(payload),
        headers={
            "Content-Type": "application/json",
            "User-Agent": mp.MP_USER_AGENT,
            "MEMBERPRESS-WEBHOOK-KEY": key,
            "Referer": f"{BASE_URL}/hooks/memberpress",
        },
    )


def post_pmpro(client, payload):
    """As the Zapier add-on pushes it: the key in the URL (repeated in the Referer) and its
    malformed `Content-Type: : application/json`."""
    url = f"/hooks/pmpro?key={PMPRO_KEY}"
    return client.post(
        url,
        data=mp.body(payload),
        headers={"Content-Type": ": application/json", "Referer": BASE_URL + url},
    )


def subjects(messages) -> list[str]:
    return [m["Subject"] for m in messages]


# --- MemberPress --------------------------------------------------------------------------


def test_bobs_pause_resume_cancel_resume_leaves_no_win_back(client, clock, outbox, runtime):
    """The last resume is byte-identical to the first: it is still a comeback."""
    replies = [
        post_mp(client, mp.mp_subscription(name, status=status))
        for name, status in [
            ("subscription-paused", "suspended"),
            ("subscription-resumed", "active"),
            ("subscription-stopped", "cancelled"),
        ]
    ]
    assert [r.status_code for r in replies] == [202, 202, 202]
    seq_id = json_of(replies[2])["event_id"]
    clock.advance(seconds=0)
    assert clock.scheduled() == [f"step-{seq_id}-winback"]
    resumed_again = post_mp(client, mp.mp_subscription("subscription-resumed", status="active"))
    assert resumed_again.status_code == 202, resumed_again.json
    clock.advance(seconds=0)
    assert clock.scheduled() == []
    assert runtime.store.load_sequence(seq_id).outcome == "came_back"
    clock.advance(days=30)
    assert subjects(outbox()) == ["Thank you, Bob — may we ask one thing?"]


def test_pause_resume_pause_resume_acts_four_times_and_a_resend_once(client, runtime):
    paused = mp.mp_subscription("subscription-paused", status="suspended")
    resumed = mp.mp_subscription("subscription-resumed", status="active")
    codes = [post_mp(client, p).status_code for p in (paused, resumed, paused, resumed)]
    assert codes == [202, 202, 202, 202]
    resend = post_mp(client, resumed)
    assert (resend.status_code, json_of(resend)["status"]) == (200, "duplicate")
    assert len(runtime.queue) == 4
    state = subscription_state.load(runtime.store, "memberpress", "1")
    assert (state.state, state.revision) == ("active", 4)


def _cancellations(runtime) -> int:
    return runtime.store.redis.zcard(CANCELLATIONS_KEY)


def test_a_cancellation_without_a_subscription_id_is_deduplicated_by_its_member(
    client, clock, runtime
):
    stopped = mp.mp_subscription("subscription-stopped", status="cancelled")
    del stopped["data"]["id"]
    first = post_mp(client, stopped)
    resend = post_mp(client, stopped)  # byte-identical
    assert first.status_code == 202
    assert (resend.status_code, json_of(resend)["status"]) == (200, "duplicate")
    clock.advance(seconds=0)
    assert _cancellations(runtime) == 1


def test_a_duplicate_names_the_event_that_holds_the_state(client, runtime):
    stopped = mp.mp_subscription("subscription-stopped", status="cancelled")
    first = json_of(post_mp(client, stopped))["event_id"]
    resend = post_mp(client, stopped)
    assert json_of(resend) == {"status": "duplicate", "event_id": first}
    assert runtime.store.load_event(first) is not None


def test_stopped_expired_then_the_same_stopped_is_one_cancellation(client, clock, runtime):
    stopped = mp.mp_subscription("subscription-stopped", status="cancelled")
    expired = mp.mp_subscription("subscription-expired", status="expired")
    first = json_of(post_mp(client, stopped))["event_id"]
    assert post_mp(client, expired).status_code == 202
    late = post_mp(client, stopped)  # e.g. WP-Cron sending an old job after the expiry
    assert json_of(late) == {"status": "duplicate", "event_id": first}
    clock.advance(seconds=0)
    assert _cancellations(runtime) == 1
    # A return to active re-arms it: the next cancellation is a new one.
    assert post_mp(client, mp.mp_subscription("subscription-resumed")).status_code == 202
    assert post_mp(client, stopped).status_code == 202
    clock.advance(seconds=0)
    assert _cancellations(runtime) == 2


def test_erins_cancellation_of_a_deleted_membership_gets_her_feedback_email(
    client, work, outbox, runtime
):
    payload = mp.mp_subscription(
        "subscription-stopped", email="erin@example.com", first_name="Erin", status="cancelled"
    )
    payload["data"]["membership"] = False
    response = post_mp(client, payload)
    assert response.status_code == 202, response.json
    work()
    [message] = outbox()
    assert message["To"].addresses[0].addr_spec == "erin@example.com"
    text, _ = parts(message)
    assert "Erin" in text and "Your membership has been cancelled" in text
    oddities = [labels for name, labels in runtime.store.counters() if "oddities" in name]
    assert (("field", "data.membership"), ("source", "memberpress")) in oddities


def test_janes_email_says_until_when_after_her_transaction_webhook(client, work, outbox):
    paid = post_mp(client, mp.mp_transaction(expires_at="2027-01-01 23:59:59"))
    assert (paid.status_code, json_of(paid)["status"]) == (200, "recorded")
    again = post_mp(client, mp.mp_transaction(expires_at="2027-01-01 23:59:59"))
    assert json_of(again)["status"] == "duplicate"
    cancel = mp.mp_subscription(
        "subscription-stopped",
        email="jane@example.com",
        first_name="Jane",
        member_id=9,
        subscription_id="3",
        status="cancelled",
    )
    assert post_mp(client, cancel).status_code == 202
    work()
    [message] = outbox()
    text, html = parts(message)
    assert "until January 1, 2027" in text and "January 1, 2027</strong>" in html


def test_a_created_that_arrives_cancelled_is_a_cancellation_not_a_comeback(client, work, outbox):
    """The job re-read the subscription at send time: she cancelled before WP-Cron ran."""
    created = mp.mp_subscription("subscription-created", status="cancelled")
    assert post_mp(client, created).status_code == 202
    stopped = post_mp(client, mp.mp_subscription("subscription-stopped", status="cancelled"))
    assert json_of(stopped)["status"] == "duplicate"
    work()
    assert len(outbox()) == 1


def test_concurrent_identical_deliveries_act_once(runtime):
    """Eight web workers receiving the same byte-identical delivery at once."""
    body = mp.body(mp.mp_subscription("subscription-stopped", status="cancelled"))
    events = [memberpress.parse(body) for _ in range(8)]
    assert len({e.event_id for e in events}) == 8  # each its own delivery time
    start = threading.Barrier(len(events))
    outcomes: list[Outcome] = []

    def deliver(event) -> None:
        start.wait()
        outcomes.append(submit(runtime.store, runtime.queue, event, 3600))

    threads = [threading.Thread(target=deliver, args=(e,)) for e in events]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == [Outcome.DUPLICATE] * 7 + [Outcome.QUEUED]
    assert len(runtime.queue) == 1


def test_a_spooled_delivery_replayed_twice_acts_once_and_a_stale_one_not_at_all(runtime):
    """The spool replays events with their receipt time: a second replay is the same
    event, and one overtaken by a newer delivery changes nothing."""
    cancel = memberpress.parse(mp.body(mp.mp_subscription("subscription-stopped")))
    resume = memberpress.parse(mp.body(mp.mp_subscription("subscription-resumed")))
    assert submit(runtime.store, runtime.queue, resume, 3600) is Outcome.QUEUED
    assert submit(runtime.store, runtime.queue, cancel, 3600) is Outcome.DUPLICATE  # stale
    later = memberpress.parse(mp.body(mp.mp_subscription("subscription-stopped")))
    assert submit(runtime.store, runtime.queue, later, 3600) is Outcome.QUEUED
    assert submit(runtime.store, runtime.queue, later, 3600) is Outcome.DUPLICATE


def test_a_comeback_handled_after_a_later_cancellation_does_not_stop_it(runtime, clock):
    """Two worker processes may take one member's events out of order: the resume that
    came before the cancellation must not stop the cancellation's follow-ups."""
    resume = memberpress.parse(mp.body(mp.mp_subscription("subscription-resumed")))
    cancel = memberpress.parse(mp.body(mp.mp_subscription("subscription-stopped")))
    for event in (resume, cancel):
        assert submit(runtime.store, runtime.queue, event, 3600) is Outcome.QUEUED
    assert jobs.process_event(cancel.event_id).startswith("sequence started")
    assert jobs.process_event(resume.event_id) == "recorded resumed (no active sequence)"
    assert runtime.store.load_sequence(cancel.event_id).status == "active"
    assert clock.scheduled() == [f"step-{cancel.event_id}-winback"]


def test_the_membership_locale_in_the_playbook_writes_in_portuguese(
    client, work, outbox, use_playbook
):
    use_playbook(
        """
[default]
steps = [{ template = "feedback_request", delay = "0", stream = "transactional" }]

[memberships.3006]
locale = "pt_BR"
"""
    )
    post_mp(client, mp.mp_subscription("subscription-stopped", status="cancelled"))
    work()
    [message] = outbox()
    assert "Obrigado por ter estado conosco, Bob." in parts(message)[0]


def test_the_add_ons_ten_character_key_is_accepted(settings, runtime):
    app = create_app({"TESTING": True, "SETTINGS": replace(settings, memberpress_key="aB3dE6gH9j")})
    payload = mp.mp_subscription("subscription-stopped", status="cancelled")
    assert post_mp(app.test_client(), payload, key="aB3dE6gH9j").status_code == 202


def test_an_address_with_a_control_character_is_recorded_unsendable_not_retried(
    client, work, outbox, runtime, clock
):
    payload = mp.mp_subscription("subscription-stopped", email="a\x01b@example.com")
    assert post_mp(client, payload).status_code == 202
    clock.advance(days=30)
    assert outbox() == []
    entry = runtime.store.suppression("a\x01b@example.com")
    assert entry is not None and entry.reason.startswith("unsendable: control character")
    assert clock.scheduled() == [] and len(runtime.queue) == 0


def test_a_non_ascii_address_on_smtp_is_recorded_unsendable(
    client, smtp_runtime, smtp_server, clock
):
    payload = mp.mp_subscription("subscription-stopped", email="josé@example.com")
    assert post_mp(client, payload).status_code == 202
    clock.advance(days=30)
    assert smtp_server.sink.envelopes == []
    entry = smtp_runtime.store.suppression("josé@example.com")
    assert entry is not None and "SMTPUTF8" in entry.reason


def test_a_non_ascii_address_on_the_outbox_is_written_as_it_is(client, settings, runtime, clock):
    payload = mp.mp_subscription("subscription-stopped", email="josé@exemplo.com.br")
    assert post_mp(client, payload).status_code == 202
    clock.advance(seconds=0)
    [path] = settings.outbox_dir.glob("*.eml")
    # SMTPUTF8-style: the address as it is, in a UTF-8 message.
    message = email.message_from_string(
        path.read_bytes().decode("utf-8"), policy=email.policy.default
    )
    assert message["To"].addresses[0].addr_spec == "josé@exemplo.com.br"
    assert runtime.store.suppression("josé@exemplo.com.br") is None
    assert len(runtime.queue) == 0  # sent, not waiting for a retry


# --- WooCommerce Subscriptions ------------------------------------------------------------


def _wc(client, payload, topic="subscription.updated"):
    data = payloads.body(payload)
    return client.post("/hooks/woocommerce", data=data, headers=woocommerce_headers(data, topic))


def test_a_woocommerce_cancellation_after_expiry_acts_only_after_a_comeback(client, runtime):
    start = datetime.now(UTC) - timedelta(minutes=10)

    def at(minutes: int, status: str):
        modified = (start + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%S")
        return _wc(client, source_payloads.woocommerce(status=status, modified_gmt=modified))

    first = json_of(at(0, "cancelled"))["event_id"]
    assert at(1, "expired").status_code == 202
    # A later save of the ended subscription shows it cancelled again: not a new one.
    assert json_of(at(2, "cancelled")) == {"status": "duplicate", "event_id": first}
    assert at(3, "active").status_code == 202
    assert at(4, "cancelled").status_code == 202
    assert len(runtime.queue) == 4


def test_carols_late_created_does_not_stop_her_follow_ups(client, clock, runtime):
    """WooCommerce built the created body when it sent it, after she had cancelled."""
    modified = (datetime.now(UTC) - timedelta(minutes=3)).strftime("%Y-%m-%dT%H:%M:%S")
    carol = {"email": "carol@example.com", "first_name": "Carol", "modified_gmt": modified}
    cancelled = _wc(client, source_payloads.woocommerce(status="pending-cancel", **carol))
    seq_id = json_of(cancelled)["event_id"]
    clock.advance(seconds=0)
    late = _wc(
        client,
        source_payloads.woocommerce(status="pending-cancel", **carol),
        "subscription.created",
    )
    assert (late.status_code, json_of(late)["status"]) == (200, "duplicate")
    unpaid = source_payloads.woocommerce(status="pending", subscription_id=4800, **carol)
    assert _wc(client, unpaid, "subscription.created").status_code == 202
    clock.advance(seconds=0)
    assert runtime.store.load_sequence(seq_id).status == "active"
    assert clock.scheduled() == [f"step-{seq_id}-winback"]


def test_a_forty_day_old_cancellation_sends_no_email_now(client, clock, outbox, runtime):
    old = (datetime.now(UTC) - timedelta(days=40)).strftime("%Y-%m-%dT%H:%M:%S")
    response = _wc(client, source_payloads.woocommerce(status="cancelled", modified_gmt=old))
    seq_id = json_of(response)["event_id"]
    clock.advance(seconds=0)
    assert outbox() == []
    seq = runtime.store.load_sequence(seq_id)
    assert "feedback_request" in seq.note and "40 days old" in seq.note
    # The win-back keeps its 14 days, counted from now, not from 40 days ago.
    clock.advance(days=13)
    assert outbox() == []
    clock.advance(days=2)
    assert len(outbox()) == 1


def test_a_signed_empty_array_gets_200_with_the_reason(client, runtime):
    """A subscription created through the REST API v3 fires subscription.updated: []."""
    response = _wc_raw(client, b"[]")
    assert response.status_code == 200
    assert json_of(response)["status"] == "ignored" and "[]" in json_of(response)["reason"]
    assert runtime.store.pending_count() == 0


def _wc_raw(client, data: bytes, secret: str | None = None):
    headers = woocommerce_headers(
        data, "subscription.updated", **({"secret": secret} if secret else {})
    )
    return client.post("/hooks/woocommerce", data=data, headers=headers)


@pytest.mark.parametrize(
    ("typed", "signed_with"),
    [
        ("p%41ss&amp;word <b>x</b>", "pss&word x"),
        ("  two   spaces\tand tab ", "two spaces and tab"),
        ("quote&#039;s &lt;ok&gt;", "quote's <ok>"),
    ],
)
def test_the_secret_is_normalised_as_wordpress_saves_and_signs_it(
    settings, runtime, typed, signed_with
):
    assert woocommerce.signing_secret(typed) == signed_with
    app = create_app({"TESTING": True, "SETTINGS": replace(settings, woocommerce_secret=typed)})
    data = payloads.body(source_payloads.woocommerce())
    assert _wc_raw(app.test_client(), data, secret=signed_with).status_code == 202


# --- PMPro --------------------------------------------------------------------------------


def test_erins_same_day_rejoin_stops_her_win_back(client, clock, outbox, runtime):
    joined = post_pmpro(client, mp.pmpro_push(level_id="1"))
    cancelled = post_pmpro(client, mp.pmpro_push(level_id="0"))
    assert (joined.status_code, cancelled.status_code) == (202, 202)
    seq_id = json_of(cancelled)["event_id"]
    clock.advance(seconds=0)
    assert clock.scheduled() == [f"step-{seq_id}-winback"]
    rejoined = post_pmpro(client, mp.pmpro_push(level_id="1"))  # same level, same day
    assert rejoined.status_code == 202, rejoined.json
    clock.advance(seconds=0)
    assert clock.scheduled() == []
    assert runtime.store.load_sequence(seq_id).outcome == "came_back"
    clock.advance(days=30)
    assert len(outbox()) == 1
    assert runtime.store.member_field(member_key("erin@example.com"), "last_event") == (
        "reactivated"
    )


def test_a_pmpro_removal_pushed_twice_is_one_cancellation_until_a_rejoin(client, runtime):
    # PMPro has no expired state: removing the level is the end; a rejoin re-arms it.
    removed = json_of(post_pmpro(client, mp.pmpro_push(level_id="0")))["event_id"]
    again = post_pmpro(client, mp.pmpro_push(level_id="0"))
    assert json_of(again) == {"status": "duplicate", "event_id": removed}
    assert post_pmpro(client, mp.pmpro_push(level_id="2")).status_code == 202
    assert post_pmpro(client, mp.pmpro_push(level_id="0")).status_code == 202
    assert len(runtime.queue) == 3
