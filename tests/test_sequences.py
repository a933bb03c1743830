"""Follow-up sequences end to end: real webhooks in, a real Redis, RQ's scheduled registry
driven by an injected clock, emails read back from the outbox or a real SMTP server."""

from __future__ import annotations

import re

import pytest
from rq.registry import ScheduledJobRegistry
from rq.scheduler import RQScheduler

from tests import payloads
from tests.conftest import json_of, parts
from worker import jobs
from worker.events import member_key
from worker.sequences import record_comeback
from worker.tokens import Scope, make_token

JANE = "jane.doe@example.com"
RESUMED = "subscription-resumed"
CREATED = "subscription-created"


def _subjects(messages):
    return sorted(m["Subject"] for m in messages)


def _step(messages, step: str):
    """The one message sent for a step (outbox files are not in sending order)."""
    [message] = [m for m in messages if f".{step}@" in m["Message-ID"]]
    return message


def _cancel(post_hook, **kw) -> str:
    reply = post_hook.memberpress(payloads.memberpress(**kw))
    assert reply.status_code == 202, reply.data
    return json_of(reply)["event_id"]


# --- the default playbook -----------------------------------------------------------------


def test_full_default_sequence_over_smtp(
    smtp_runtime, post_hook, clock, smtp_server, client, settings
):
    seq_id = _cancel(post_hook)
    clock.advance(seconds=0)
    assert _subjects(smtp_server.sink.messages) == ["Thank you, Jane — may we ask one thing?"]
    assert clock.scheduled() == [f"step-{seq_id}-winback"]

    clock.advance(days=13)
    assert len(smtp_server.sink.messages) == 1  # not due yet
    clock.advance(days=1, minutes=1)
    _feedback, winback = smtp_server.sink.messages
    assert winback["Subject"] == "Jane, we hope you are well"
    assert winback["Message-ID"].strip() == f"<{seq_id}.winback@members.example.com>"
    # Both unsubscribe mechanisms: RFC 8058 headers and a visible link in each part.
    url = winback["List-Unsubscribe"].strip("<>")
    assert url.startswith(f"{settings.base_url}/unsubscribe/")
    assert winback["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text, html = parts(winback)
    assert url in text and f'href="{url}"' in html
    assert "Gold Club" in text and "reply to this email" in text
    assert "code is yours" not in text  # no incentive configured in the default playbook
    assert f"{settings.base_url}/feedback/" in text  # no feedback yet: invited, once
    # Nothing more: no job left, and a year later still two emails.
    assert clock.scheduled() == []
    clock.advance(days=365)
    assert len(smtp_server.sink.messages) == 2
    # The one-click POST from the header unsubscribes.
    path = url.removeprefix(settings.base_url)
    reply = client.post(path, data={"List-Unsubscribe": "One-Click"})
    assert reply.status_code == 200 and "Location" not in reply.headers
    assert smtp_runtime.store.suppression(JANE).reason == "unsubscribed"


def test_winback_in_portuguese_for_brazilian_members(post_hook, clock, outbox):
    _cancel(post_hook, first_name="João", locale="pt_BR")
    clock.advance(days=14, minutes=1)
    winback = _step(outbox(), "winback")
    assert winback["Subject"] == "João, esperamos que você esteja bem"
    text, _ = parts(winback)
    assert "Cancelar o recebimento: https://members.example.com/unsubscribe/" in text


def test_feedback_already_given_is_not_asked_again(post_hook, clock, outbox, runtime):
    from worker.store import Feedback

    seq_id = _cancel(post_hook)
    clock.advance(seconds=0)
    runtime.store.save_feedback(Feedback(seq_id, "temporary", "", no_email=False, at=1.0))
    clock.advance(days=15)
    text, _ = parts(_step(outbox(), "winback"))
    assert "/feedback/" not in text


# --- comeback -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "membership_id"),
    [(RESUMED, "3006"), (CREATED, "9999")],  # resumed, or a new membership of another kind
)
def test_comeback_before_the_winback_cancels_it(
    post_hook, clock, outbox, runtime, event, membership_id
):
    seq_id = _cancel(post_hook)
    clock.advance(seconds=0)
    assert clock.scheduled() == [f"step-{seq_id}-winback"]
    reply = post_hook.memberpress(
        payloads.memberpress(
            event, status="active", subscription_id="777", membership_id=membership_id
        )
    )
    assert reply.status_code == 202
    clock.advance(seconds=0)
    assert clock.scheduled() == []  # the registry no longer holds the step
    seq = runtime.store.load_sequence(seq_id)
    assert (seq.status, seq.outcome) == ("stopped", "came_back")
    assert seq.came_back_at is not None
    clock.advance(days=30)
    assert _subjects(outbox()) == ["Thank you, Jane — may we ask one thing?"]


def test_comeback_keys_on_the_address_not_the_plugin_member_id(post_hook, clock, runtime):
    seq_id = _cancel(post_hook)
    clock.advance(seconds=0)
    post_hook.memberpress(
        payloads.memberpress(
            CREATED, email="Jane.Doe@Example.com", member_id=999, subscription_id="5"
        )
    )
    clock.advance(seconds=0)
    assert runtime.store.load_sequence(seq_id).outcome == "came_back"


def test_comeback_after_the_winback_is_won_back(post_hook, clock, outbox, runtime):
    seq_id = _cancel(post_hook)
    clock.advance(days=14, minutes=1)
    assert len(outbox()) == 2
    post_hook.memberpress(payloads.memberpress(CREATED, status="active", subscription_id="900"))
    clock.advance(seconds=0)
    seq = runtime.store.load_sequence(seq_id)
    assert (seq.status, seq.outcome) == ("stopped", "won_back")
    assert seq.came_back_at >= seq.marketing_sent_at


def test_comeback_long_after_the_winback_is_a_plain_comeback(post_hook, clock, runtime):
    seq_id = _cancel(post_hook)
    clock.advance(days=14, minutes=1)
    sent_at = runtime.store.load_sequence(seq_id).marketing_sent_at
    later = sent_at + 31 * 24 * 3600  # past the 30-day window
    [stopped] = record_comeback(runtime.store, runtime.queue, member_key(JANE), later, 30)
    assert stopped.outcome == "came_back"


def test_reactivation_of_a_member_who_never_cancelled_is_just_recorded(post_hook, work, runtime):
    event_id = json_of(post_hook.memberpress(payloads.memberpress(CREATED, status="active")))[
        "event_id"
    ]
    work()
    assert jobs.handle_event(event_id) == "recorded reactivated (no active sequence)"
    assert runtime.store.member_sequence_ids(member_key(JANE)) == []


def test_member_resume_command_stops_everything(post_hook, clock, runner, runtime, outbox):
    seq_id = _cancel(post_hook)
    clock.advance(seconds=0)
    result = runner.invoke(args=["member", "resume", JANE])
    assert result.exit_code == 0, result.output
    assert f"sequence {seq_id} stopped, came_back, 1 pending step(s) cancelled" in result.output
    assert JANE not in result.output  # masked
    assert clock.scheduled() == []
    clock.advance(days=20)
    assert len(outbox()) == 1
    again = runner.invoke(args=["member", "resume", JANE])
    assert "no active follow-up sequence" in again.output


# --- unsubscribe --------------------------------------------------------------------------


def _unsub_path(seq_id: str, settings) -> str:
    return f"/unsubscribe/{make_token(settings.secret_key, Scope.UNSUBSCRIBE, seq_id)}"


def test_one_click_post_unsubscribes_and_no_marketing_follows(
    post_hook, clock, outbox, client, runtime, settings
):
    seq_id = _cancel(post_hook)
    clock.advance(seconds=0)
    reply = client.post(
        _unsub_path(seq_id, settings),
        data=b"List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    assert reply.status_code == 200
    assert "Location" not in reply.headers
    assert runtime.store.is_suppressed(JANE)
    assert clock.scheduled() == []  # the pending win-back is cancelled at once
    clock.advance(days=30)
    assert len(outbox()) == 1
    # The send-time re-check holds too, even if a step job still runs.
    assert jobs.send_step(seq_id, "winback") == "skipped: address suppressed"


def test_get_only_confirms_and_the_form_needs_its_csrf_token(
    post_hook, clock, client, runtime, settings
):
    seq_id = _cancel(post_hook, locale="pt_BR")
    clock.advance(seconds=0)
    path = _unsub_path(seq_id, settings)
    page = client.get(path)
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    assert 'lang="pt-BR"' in body and "Parar de receber estes emails?" in body
    assert 'name="csrf_token"' in body
    assert not runtime.store.is_suppressed(JANE)  # a link scanner's GET does nothing
    assert client.post(path, data={"csrf_token": "forged"}).status_code == 400
    assert not runtime.store.is_suppressed(JANE)
    token = re.search(r'name="csrf_token" value="([^"]+)"', body).group(1)
    done = client.post(path, data={"csrf_token": token})
    assert done.status_code == 200
    assert "Pronto, você não receberá mais estes emails." in done.get_data(as_text=True)
    assert runtime.store.suppression(JANE).reason == "unsubscribed"
    assert clock.scheduled() == []


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_tampered_or_foreign_tokens_record_nothing(
    post_hook, clock, client, runtime, settings, method
):
    seq_id = _cancel(post_hook)
    clock.advance(seconds=0)
    good = make_token(settings.secret_key, Scope.UNSUBSCRIBE, seq_id)
    feedback_token = make_token(settings.secret_key, Scope.FEEDBACK, seq_id)
    other_secret = make_token("another-secret-0123456789", Scope.UNSUBSCRIBE, seq_id)
    for token in (good[:-2] + "xx", feedback_token, other_secret, "nonsense"):
        reply = client.open(
            f"/unsubscribe/{token}", method=method, data={"List-Unsubscribe": "One-Click"}
        )
        assert reply.status_code == 400
    assert not runtime.store.is_suppressed(JANE)
    assert clock.scheduled() == [f"step-{seq_id}-winback"]


def test_suppress_commands(runner, runtime, post_hook, clock):
    _cancel(post_hook)
    clock.advance(seconds=0)
    added = runner.invoke(args=["suppress", "add", JANE, "--reason", "complained"])
    assert added.exit_code == 0 and "j***@example.com suppressed" in added.output
    assert "1 pending step(s) cancelled" in added.output
    listed = runner.invoke(args=["suppress", "list"])
    assert "j***@example.com" in listed.output and "complained" in listed.output
    assert JANE not in listed.output
    removed = runner.invoke(args=["suppress", "remove", JANE])
    assert "removed" in removed.output
    assert not runtime.store.is_suppressed(JANE)


# --- guardrails ---------------------------------------------------------------------------


def test_replayed_cancellation_makes_one_sequence(post_hook, clock, outbox, runtime):
    payload = payloads.memberpress()
    seq_id = json_of(post_hook.memberpress(payload))["event_id"]
    assert json_of(post_hook.memberpress(payload))["status"] == "duplicate"
    clock.advance(seconds=0)
    # Past the dedupe window the same event is accepted again: still one sequence.
    runtime.store.redis.delete(f"farewell:dedupe:{seq_id}")
    assert json_of(post_hook.memberpress(payload))["status"] == "queued"
    clock.advance(seconds=0)
    assert jobs.handle_event(seq_id).startswith("sequence exists")
    assert runtime.store.member_sequence_ids(member_key(JANE)) == [seq_id]
    assert clock.scheduled() == [f"step-{seq_id}-winback"]
    clock.advance(days=15)
    assert len(outbox()) == 2


def test_second_cancellation_inside_the_cooldown_starts_nothing(post_hook, clock, outbox, runtime):
    first = _cancel(post_hook, subscription_id="128")
    clock.advance(seconds=0)
    # She rejoins (a comeback), then cancels the new subscription a month later.
    post_hook.memberpress(payloads.memberpress(CREATED, status="active", subscription_id="200"))
    clock.advance(days=30)
    second = _cancel(post_hook, subscription_id="200")
    clock.advance(seconds=0)
    assert runtime.store.member_sequence_ids(member_key(JANE)) == [first]
    assert runtime.store.load_sequence(second) is None
    assert clock.scheduled() == []
    clock.advance(days=60)
    assert len(outbox()) == 1
    ttl = runtime.store.redis.ttl(f"farewell:cooldown:{member_key(JANE)}")
    assert 179 * 86400 < ttl <= 180 * 86400


def test_emails_per_sequence_are_capped_whatever_the_playbook(
    use_playbook, post_hook, clock, outbox
):
    use_playbook(
        """
[default]
steps = [
  { template = "feedback_request", delay = "0", stream = "transactional" },
  { template = "winback", delay = "1d", stream = "marketing" },
]
""",
        max_emails_per_sequence=1,
    )
    seq_id = _cancel(post_hook)
    clock.advance(days=2)
    assert len(outbox()) == 1
    assert jobs.send_step(seq_id, "winback") == "skipped: at most 1 emails per sequence"


def test_marketing_template_without_unsubscribe_link_is_refused(
    use_playbook, settings, post_hook, work, outbox, tmp_path
):
    from worker.compose import UnsubscribeMissing

    templates = tmp_path / "tpl"
    (templates / "en").mkdir(parents=True)
    (templates / "reasons.toml").write_text('[other]\nen = "Other"\n')
    (templates / "en" / "promo.html").write_text(
        "{% block subject %}Hi{% endblock %}{% block preheader %}{% endblock %}<p>Buy!</p>"
    )
    (templates / "en" / "promo.txt").write_text("Buy!")
    use_playbook(
        '[default]\nsteps = [{ template = "promo", stream = "marketing" }]\n',
        templates_dir=templates,
    )
    seq_id = _cancel(post_hook)
    work()
    assert outbox() == []
    with pytest.raises(UnsubscribeMissing, match="html and text part"):
        jobs.send_step(seq_id, "promo")


# --- send-time conditions -----------------------------------------------------------------

CONDITIONS = """
[default]
steps = [
  { template = "feedback_request", delay = "0", stream = "transactional" },
  { template = "winback", delay = "1d", stream = "marketing", %s },
]
"""


@pytest.mark.parametrize(
    ("condition", "feedback", "sent"),
    [
        ("only_if_no_feedback = true", None, True),
        ("only_if_no_feedback = true", ("not_using", False), False),
        ('only_if_reason = ["too_expensive", "temporary"]', ("temporary", False), True),
        ('only_if_reason = ["too_expensive", "temporary"]', ("not_using", False), False),
        ('only_if_reason = ["too_expensive"]', None, False),
        ("stream = 'marketing'", ("too_expensive", True), False),  # "don't email me"
    ],
)
def test_step_conditions_at_send_time(
    use_playbook, post_hook, clock, outbox, condition, feedback, sent
):
    from worker.store import Feedback

    stream_dup = condition.startswith("stream")
    rt = use_playbook(CONDITIONS % ("incentive = ''" if stream_dup else condition))
    seq_id = _cancel(post_hook)
    clock.advance(seconds=0)
    if feedback:
        reason, no_email = feedback
        rt.store.save_feedback(Feedback(seq_id, reason, "", no_email=no_email, at=1.0))
    clock.advance(days=2)
    assert len(outbox()) == (2 if sent else 1)


def test_no_winback_while_paused(post_hook, clock, outbox, runtime):
    seq_id = _cancel(post_hook, subscription_id="128")
    clock.advance(seconds=0)
    post_hook.memberpress(
        payloads.memberpress("subscription-paused", status="suspended", subscription_id="300")
    )
    clock.advance(days=15)
    assert len(outbox()) == 1  # the win-back came due while paused: dropped
    assert clock.scheduled() == []
    assert runtime.store.load_sequence(seq_id).status == "active"


def test_a_pause_that_ends_in_cancellation_lets_the_winback_go(post_hook, clock, outbox):
    post_hook.memberpress(
        payloads.memberpress("subscription-paused", status="suspended", subscription_id="128")
    )
    clock.advance(seconds=0)
    _cancel(post_hook, subscription_id="128")
    clock.advance(days=15)
    assert len(outbox()) == 2


# --- incentives ---------------------------------------------------------------------------

POOL_PLAYBOOK = """
[default]
steps = [
  { template = "winback", delay = "1d", stream = "marketing", incentive = "membership" },
]

[incentives.codes]
pool = "coupons.txt"
when_exhausted = "%s"
offer = { en = "a free month" }

[memberships.3006]
incentive = "codes"
"""


def _winback_codes(messages):
    found = {}
    for m in messages:
        text, _ = parts(m)
        match = re.search(r"^    (\S+)$", text, re.M)
        found[m["To"].addresses[0].addr_spec] = match.group(1) if match else None
    return found


@pytest.mark.parametrize("when_exhausted", ["send_without", "skip_step"])
def test_coupon_pool_single_use_codes(
    use_playbook, post_hook, clock, outbox, runtime, when_exhausted
):
    rt = use_playbook(
        POOL_PLAYBOOK % when_exhausted, files={"coupons.txt": "# codes\nAAA-111\n\nBBB-222\n"}
    )
    members = ["a@example.com", "b@example.com", "c@example.com"]
    for n, address in enumerate(members):
        _cancel(post_hook, email=address, subscription_id=str(n))
    clock.advance(days=2)
    codes = _winback_codes(outbox())
    given = {m: c for m, c in codes.items() if c}
    assert sorted(given.values()) == ["AAA-111", "BBB-222"]  # two members, two codes
    [unlucky] = set(members) - set(given)
    if when_exhausted == "send_without":
        assert codes[unlucky] is None
        text, _ = parts(next(m for m in outbox() if unlucky in str(m["To"])))
        assert "code is yours" not in text and "reply to this email" in text
    else:
        assert unlucky not in codes  # the step was skipped
        assert len(outbox()) == 2
    # A member keeps their code; a retried step never takes a second one.
    lucky = sorted(given)[0]
    assert rt.store.claim_pool_code("codes", member_key(lucky)) == given[lucky]
    assert rt.store.pool_remaining("codes") == 0


def test_codes_added_to_the_pool_file_are_used_and_old_ones_never_return(
    use_playbook, post_hook, clock, outbox
):
    rt = use_playbook(POOL_PLAYBOOK % "send_without", files={"coupons.txt": "AAA-111\n"})
    _cancel(post_hook, email="a@example.com", subscription_id="1")
    clock.advance(days=2)
    pool_file = rt.settings.playbook_path.parent / "coupons.txt"
    pool_file.write_text("AAA-111\nCCC-333\n")  # the marketer appends a code
    _cancel(post_hook, email="b@example.com", subscription_id="2")
    clock.advance(days=2)
    assert _winback_codes(outbox()) == {"a@example.com": "AAA-111", "b@example.com": "CCC-333"}


def test_fixed_code_for_one_membership_only(use_playbook, post_hook, clock, outbox):
    use_playbook(
        """
[default]
steps = [{ template = "winback", delay = "1d", stream = "marketing", incentive = "membership" }]

[incentives.gold]
code = "WELCOMEBACK20"
offer = { en = "20% off your first three months", pt_BR = "20% de desconto" }

[memberships.3006]
incentive = "gold"
"""
    )
    _cancel(post_hook, email="gold@example.com", subscription_id="1")
    _cancel(post_hook, email="silver@example.com", subscription_id="2", membership_id="42")
    clock.advance(days=2)
    codes = _winback_codes(outbox())
    assert codes == {"gold@example.com": "WELCOMEBACK20", "silver@example.com": None}
    text, html = parts(next(m for m in outbox() if "gold@" in str(m["To"])))
    assert "this code is yours: 20% off your first three months." in text
    assert "WELCOMEBACK20" in html


# --- erasure ------------------------------------------------------------------------------


def _everything_in_redis(url: str) -> str:
    """Every key and value in Redis as text, RQ's (bytes, some zlib-compressed) included."""
    import zlib

    from redis import Redis

    raw = Redis.from_url(url)
    dump = []
    for key in raw.scan_iter(count=1000):
        kind = raw.type(key).decode()
        if kind == "string":
            values = [raw.get(key)]
        elif kind == "hash":
            values = [v for pair in raw.hgetall(key).items() for v in pair]
        elif kind == "set":
            values = list(raw.smembers(key))
        elif kind == "zset":
            values = raw.zrange(key, 0, -1)
        elif kind == "list":
            values = raw.lrange(key, 0, -1)
        else:  # stream
            values = [v for _id, fields in raw.xrange(key) for pair in fields.items() for v in pair]
        for value in values:
            try:
                value = zlib.decompress(value)
            except zlib.error:
                pass
            dump.append(f"{key.decode()} {value.decode(errors='replace')}")
    raw.close()
    return "\n".join(dump)


def test_member_deleted_erases_everything_but_the_suppression(
    use_playbook, post_hook, clock, outbox, client, settings
):
    from worker.store import Feedback, member_hash_key

    rt = use_playbook(
        POOL_PLAYBOOK.replace('"1d"', '"14d"') % "send_without", files={"coupons.txt": "AAA-111\n"}
    )
    seq_id = _cancel(post_hook)
    clock.advance(seconds=0)
    rt.store.claim_pool_code("codes", member_key(JANE))
    [step] = rt.store.planned_steps(seq_id)
    assert rt.store.claim_send(seq_id, step) is None  # as a send that went out earlier
    rt.store.save_feedback(Feedback(seq_id, "temporary", "back in spring", False, 1.0))
    client.post(_unsub_path(seq_id, settings), data={"List-Unsubscribe": "One-Click"})
    rt.store.unsuppress(JANE)
    rt.store.suppress(JANE, "unsubscribed")
    assert JANE in _everything_in_redis(settings.redis_url)

    reply = post_hook.memberpress(payloads.memberpress_member_deleted())
    assert reply.status_code == 202
    clock.advance(seconds=0)

    everything = _everything_in_redis(settings.redis_url)
    assert "jane" not in everything.lower()
    assert "back in spring" not in everything
    key = member_key(JANE)
    assert rt.store.redis.exists(member_hash_key(key)) == 0
    assert rt.store.load_sequence(seq_id) is None
    assert rt.store.load_feedback(seq_id) is None
    assert clock.scheduled() == []
    # Still unsubscribed, by a hash of the address only.
    entry = rt.store.suppression(JANE)
    assert entry.reason == "unsubscribed" and entry.hint == ""
    assert [k for k in rt.store.redis.scan_iter() if key in k] == []
    assert list(rt.store.redis.scan_iter(match=f"farewell:send:{seq_id}:*")) == []
    clock.advance(days=30)
    assert len(outbox()) == 0  # the pool playbook had no immediate step


def test_member_deleted_cancels_pending_steps(post_hook, clock, outbox):
    _cancel(post_hook)
    clock.advance(seconds=0)
    post_hook.memberpress(payloads.memberpress_member_deleted())
    clock.advance(seconds=0)
    assert clock.scheduled() == []
    clock.advance(days=30)
    assert len(outbox()) == 1


def test_worker_run_twice_for_a_step_after_comeback_sends_nothing(post_hook, clock, runtime):
    seq_id = _cancel(post_hook)
    clock.advance(seconds=0)
    post_hook.memberpress(payloads.memberpress(RESUMED, status="active"))
    clock.advance(seconds=0)
    assert jobs.send_step(seq_id, "winback") == "skipped: sequence stopped"


def test_the_worker_scheduler_enqueues_due_steps(post_hook, work, runtime, outbox, use_playbook):
    """The path production takes: RQ's own scheduler (run by `python -m worker`) moves a
    step whose time has come to the queue. The step's time is moved, not the clock."""
    use_playbook(
        '[default]\nsteps = [{ template = "feedback_request", delay = "1m" }]\n',
    )
    _cancel(post_hook)
    work()
    assert outbox() == []  # planned a minute ahead: waiting in RQ's scheduled registry
    queue = runtime.queue
    registry = ScheduledJobRegistry(queue=queue, serializer=queue.serializer)
    [job_id] = registry.get_job_ids()
    queue.connection.zadd(registry.key, {job_id: 1})  # its time has come
    scheduler = RQScheduler([queue], connection=queue.connection, serializer=queue.serializer)
    assert scheduler.acquire_locks()
    scheduler.enqueue_scheduled_jobs()
    scheduler.release_locks()
    work()
    assert len(outbox()) == 1
    assert registry.get_job_ids() == []


# --- the unsubscribe page in a real browser -----------------------------------------------


@pytest.mark.browser
def test_unsubscribe_link_from_a_real_winback_in_chromium(
    browser, live_server, post_hook, clock, outbox, runtime, settings, tmp_path
):
    _cancel(post_hook)
    clock.advance(days=14, minutes=1)
    text, _ = parts(_step(outbox(), "winback"))
    link = re.search(r"Unsubscribe: (\S+)", text).group(1)
    page = browser.new_page()
    page.goto(link.replace(settings.base_url, live_server.url))
    assert page.locator("h1").inner_text() == "Stop these emails?"
    assert not runtime.store.is_suppressed(JANE)  # opening the page changes nothing
    page.screenshot(path=str(tmp_path / "unsubscribe-confirm.png"))
    page.get_by_role("button", name="Unsubscribe").click()
    page.wait_for_selector("text=You are unsubscribed.")
    page.screenshot(path=str(tmp_path / "unsubscribe-done.png"))
    assert runtime.store.suppression(JANE).reason == "unsubscribed"


def test_a_comeback_delivered_before_its_cancellation_starts_nothing(runtime, work, outbox):
    from datetime import timedelta

    from worker.events import Event, EventKind, Member, Membership, utcnow
    from worker.intake import submit

    member = Member(email=JANE, first_name="Jane")
    now = utcnow()

    def event(kind, name, at):
        return Event(
            source="stripe",
            name=name,
            kind=kind,
            occurred_at=at,
            member=member,
            membership=Membership("price_1"),
            subscription_id="sub_1",
        )

    back = event(EventKind.REACTIVATED, "customer.subscription.created", now)
    gone = event(EventKind.CANCELLED, "customer.subscription.deleted", now - timedelta(hours=1))
    submit(runtime.store, runtime.queue, back, 3600)
    work()
    submit(runtime.store, runtime.queue, gone, 3600)
    work()
    assert outbox() == []
    assert runtime.store.member_sequence_ids(member_key(JANE)) == []


def test_unsubscribe_while_redis_is_down_is_a_503_not_a_500(settings, own_redis, post_hook):
    from dataclasses import replace as dc_replace

    from hooks import create_app

    app = create_app({"TESTING": True, "SETTINGS": dc_replace(settings, redis_url=own_redis.url)})
    own_redis.kill()
    token = make_token(settings.secret_key, Scope.UNSUBSCRIBE, "memberpress-abc")
    client = app.test_client()
    assert client.get(f"/unsubscribe/{token}").status_code == 503
    reply = client.post(f"/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"})
    assert reply.status_code == 503


def test_unsubscribe_link_of_an_erased_member_records_nothing_and_says_so(
    client, runtime, settings
):
    path = _unsub_path("memberpress-erased0000000000000000", settings)
    page = client.get(path)
    assert page.status_code == 200
    assert "You will not hear from us." in page.get_data(as_text=True)
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert "script-src" not in page.headers["Content-Security-Policy"]
    reply = client.post(path, data={"List-Unsubscribe": "One-Click"})
    assert reply.status_code == 200
    assert runtime.store.suppressions() == []


def test_pool_claims_racing_from_many_workers_never_share_a_code(settings, tmp_path):
    """Eight threads (each its own Redis connection, like eight workers) claim for 400
    members from a 300-code pool loaded concurrently too."""
    from concurrent.futures import ThreadPoolExecutor

    from worker.incentives import resolve_offer
    from worker.playbook import Incentive
    from worker.store import Store, connect

    pool = tmp_path / "codes.txt"
    pool.write_text("\n".join(f"C{i:04d}" for i in range(300)))
    incentive = Incentive(name="race", pool=pool)

    def claim(worker: int) -> list[str | None]:
        store = Store(connect(settings.redis_url))
        return [
            resolve_offer(store, incentive, f"member-{worker}-{n}", "en", "en").coupon
            for n in range(50)
        ]

    with ThreadPoolExecutor(8) as ex:
        results = [code for batch in ex.map(claim, range(8)) for code in batch]
    given = [c for c in results if c]
    assert len(given) == 300 and len(set(given)) == 300
    assert results.count(None) == 100
