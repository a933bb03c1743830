"""Operations and security, in-process against a real Redis and a real SMTP server:
rate limit, /metrics, /healthz, structured logs that leak nothing, scoped tokens,
constant-time key checks, and send claims that survive a dead worker."""

from __future__ import annotations

import hmac
import io
import json
import logging
import time
from dataclasses import replace

import pytest

from devstack.redis_server import free_port
from hooks import create_app
from hooks.sources import payload as source_payload
from tests import payloads
from tests.conftest import MEMBERPRESS_KEY, SECRET_KEY, json_of, stored_keys
from worker import jobs, liveness, logs
from worker import store as keys
from worker.mail.errors import TransientMailError
from worker.process import FarewellWorker
from worker.tokens import InvalidToken, Scope, make_token, read_token

# --- rate limit ---------------------------------------------------------------------------


def _limited_client(settings, rule: str, **extra):
    app = create_app({"TESTING": True, "SETTINGS": replace(settings, rate_limit=rule, **extra)})
    return app.test_client()


def _post(client, i: int = 0, addr: str = "203.0.113.7", key: str = MEMBERPRESS_KEY, **kw):
    body = payloads.body(payloads.memberpress(subscription_id=str(i), email=f"m{i}@example.org"))
    return client.post(
        "/hooks/memberpress",
        data=body,
        headers={"MEMBERPRESS-WEBHOOK-KEY": key},
        environ_base={"REMOTE_ADDR": addr},
        **kw,
    )


def _guess(client, i: int = 0, addr: str = "203.0.113.7", **kw):
    """A delivery with a wrong key, as a flood or a key-guesser sends them."""
    return _post(client, i, addr, key=f"guess-{i}", **kw)


def test_past_the_limit_refused_requests_get_429_with_retry_after(settings, runtime):
    client = _limited_client(settings, "5/60")
    assert [_guess(client, i).status_code for i in range(5)] == [401] * 5
    refused = _guess(client, 99)
    assert refused.status_code == 429
    retry_after = int(refused.headers["Retry-After"])
    assert 1 <= retry_after <= 60
    assert f"retry after {retry_after} s" in json_of(refused)["error"]
    assert runtime.store.redis.zcard(keys.PENDING_KEY) == 0  # nothing refused left a trace
    counters = runtime.store.counters()
    labels = (("kind", "none"), ("source", "memberpress"))
    assert counters[(keys.RECEIVED_METRIC, (*labels, ("status", "unauthorized")))] == 5
    assert counters[(keys.RECEIVED_METRIC, (*labels, ("status", "rate_limited")))] == 1


def test_authenticated_webhooks_pass_even_from_a_limited_address(settings, runtime):
    # The site's own server keeps delivering while someone at the same address floods.
    client = _limited_client(settings, "2/60")
    assert [_guess(client, i).status_code for i in range(3)] == [401, 401, 429]
    assert _post(client, 1).status_code == 202
    assert runtime.store.redis.zcard(keys.PENDING_KEY) == 1


def test_the_limit_is_per_client_address(settings, runtime):
    client = _limited_client(settings, "2/60")
    assert [_guess(client, i).status_code for i in range(3)] == [401, 401, 429]
    assert _guess(client, 10, addr="198.51.100.9").status_code == 401


def test_behind_a_trusted_proxy_the_forwarded_address_counts(settings, runtime):
    client = _limited_client(settings, "1/60", trusted_proxies=1)
    body = payloads.body(payloads.memberpress())
    bad = {"MEMBERPRESS-WEBHOOK-KEY": "wrong"}

    def guess(forwarded_for: str) -> int:
        headers = {**bad, "X-Forwarded-For": forwarded_for}
        return client.post("/hooks/memberpress", data=body, headers=headers).status_code

    assert guess("192.0.2.1") == 401
    assert guess("192.0.2.1") == 429
    assert guess("192.0.2.2") == 401


def test_a_cancellation_wave_is_never_limited(settings, runtime):
    # 400 cancellations from one WordPress site in a few seconds, with a tiny limit: all
    # accepted, because only refused requests count.
    client = _limited_client(settings, "5/60")
    statuses = {_post(client, i).status_code for i in range(400)}
    assert statuses == {202}
    assert runtime.store.redis.zcard(keys.PENDING_KEY) == 400


def test_the_limiter_fails_open_when_redis_is_down_so_the_spool_still_works(settings, runtime):
    dead = replace(settings, redis_url=f"redis://127.0.0.1:{free_port()}/0", rate_limit="1/60")
    client = create_app({"TESTING": True, "SETTINGS": dead}).test_client()
    assert [_guess(client, i).status_code for i in range(3)] == [401] * 3
    for i in range(3):
        response = _post(client, i)
        assert response.status_code == 202
        assert json_of(response)["spooled"] is True


def test_a_malformed_rate_limit_setting_is_named():
    from worker.settings import Settings, SettingsError

    with pytest.raises(SettingsError, match="FAREWELL_RATE_LIMIT"):
        Settings.from_env({"FAREWELL_RATE_LIMIT": "lots"})
    assert Settings.from_env({"FAREWELL_RATE_LIMIT": "0"}).rate_limit_rule() is None


# --- metrics and health -------------------------------------------------------------------


def _metric(text: str, name: str, **labels: str) -> float | None:
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith(f"{name}{{{wanted}}} ") or (not labels and line.startswith(f"{name} ")):
            return float(line.rsplit(" ", 1)[1])
    return None


def _burst_worker(runtime) -> None:
    queue = runtime.queue
    FarewellWorker([queue], connection=queue.connection, serializer=queue.serializer).work(
        burst=True, with_scheduler=False
    )


def test_metrics_count_events_jobs_and_emails_across_processes(client, post_hook, runtime):
    post_hook.memberpress()
    post_hook.memberpress()  # duplicate
    post_hook.memberpress(key="wrong")
    post_hook.memberpress(raw=b"[]")
    post_hook.memberpress(payloads.memberpress("transaction-completed"))
    post_hook.memberpress(payloads.memberpress(email="b@example.com", subscription_id="2"))
    liveness.set_owner("farewell-metrics")  # a worker with a heartbeat batches events
    try:
        _burst_worker(runtime)
    finally:
        liveness.set_owner(None)

    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    text = response.get_data(as_text=True)
    received = "farewell_events_received_total"
    assert _metric(text, received, source="memberpress", kind="cancelled", status="queued") == 2
    assert _metric(text, received, source="memberpress", kind="cancelled", status="duplicate") == 1
    assert _metric(text, received, source="memberpress", kind="none", status="unauthorized") == 1
    assert _metric(text, received, source="memberpress", kind="none", status="invalid") == 1
    assert _metric(text, received, source="memberpress", kind="none", status="ignored") == 1
    # One RQ job handled both cancellations (the second queued behind the first) and sent
    # both feedback requests itself: no step job ran.
    assert _metric(text, "farewell_jobs_total", job="handle_event", outcome="ok") == 2
    assert _metric(text, "farewell_jobs_total", job="send_step", outcome="ok") is None
    assert _metric(text, "farewell_emails_total", transport="outbox", result="sent") == 2
    assert _metric(text, "farewell_spool_backlog") == 0
    assert _metric(text, "farewell_events_pending") == 0  # both handled
    post_hook.memberpress(payloads.memberpress(email="c@example.com", subscription_id="3"))
    text = client.get("/metrics").get_data(as_text=True)
    assert _metric(text, "farewell_events_pending") == 1  # accepted, no worker ran yet
    assert _metric(text, "farewell_redis_up") == 1
    assert "# TYPE farewell_events_received_total counter" in text


def test_metrics_answer_without_redis(settings, runtime):
    dead = replace(settings, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    text = create_app({"TESTING": True, "SETTINGS": dead}).test_client().get("/metrics").text
    assert _metric(text, "farewell_redis_up") == 0
    assert _metric(text, "farewell_events_pending") is None  # unknown, not zero


def test_healthz_reports_scheduler_spool_and_last_send_error(client, runtime, settings):
    body = json_of(client.get("/healthz"))
    assert body["status"] == "ok" and body["redis"] == "ok"
    assert body["scheduler"] == "missing"
    assert any("python -m worker" in w for w in body["warnings"])
    assert body["last_send_error"] is None

    runtime.store.redis.set(keys.scheduler_lock_key(settings.queue_name), "w", ex=60)
    body = json_of(client.get("/healthz"))
    assert body["scheduler"] == "ok" and body["warnings"] == []
    runtime.store.record_send_error({"transport": "smtp", "error": "SMTP login refused: 535"})
    body = json_of(client.get("/healthz"))
    assert body["last_send_error"]["error"] == "SMTP login refused: 535"
    assert body["warnings"] == ["mail is failing: SMTP login refused: 535"]


def test_deferred_and_rejected_sends_are_counted(smtp_runtime, smtp_server, post_hook, work):
    smtp_server.sink.rcpt_reply = "451 4.3.0 try again later"
    post_hook.memberpress()
    work()
    smtp_server.sink.rcpt_reply = "550 5.1.1 no such user"
    post_hook.memberpress(payloads.memberpress(email="bob@example.com", subscription_id="2"))
    work()
    counters = smtp_runtime.store.counters()
    emails = "farewell_emails_total"
    assert counters[(emails, (("result", "deferred"), ("transport", "smtp")))] == 1
    assert counters[(emails, (("result", "rejected"), ("transport", "smtp")))] == 1


# --- logs ---------------------------------------------------------------------------------


@pytest.fixture
def captured_logs(settings):
    """What the process's log handler writes, as configured by create_app / python -m worker."""
    stream = io.StringIO()
    logs.configure(replace(settings, log_format="json"), stream=stream)
    yield stream
    logging.getLogger().handlers = [
        h for h in logging.getLogger().handlers if h.get_name() != "farewell"
    ]


def test_a_full_flow_logs_json_lines_with_event_ids_and_no_address_or_secret(
    smtp_runtime, smtp_server, captured_logs
):
    rt = smtp_runtime
    settings = replace(rt.settings, log_format="json")
    app = create_app({"TESTING": True, "SETTINGS": settings})
    logs.configure(settings, stream=captured_logs)
    client = app.test_client()
    good = payloads.memberpress(email="jane.doe@example.com")
    client.post(f"/hooks/memberpress?key={MEMBERPRESS_KEY}", data=payloads.body(good))
    client.post("/hooks/memberpress", data=b"{}", headers={"MEMBERPRESS-WEBHOOK-KEY": "nope"})
    # The SMTP server quotes the address back in its refusal; that must not reach the log.
    smtp_server.sink.rcpt_reply = "550 5.1.1 <jane.doe+x@example.com>: no such user"
    rejected = payloads.memberpress(email="jane.doe+x@example.com", subscription_id="9")
    client.post(
        "/hooks/memberpress",
        data=payloads.body(rejected),
        headers={"MEMBERPRESS-WEBHOOK-KEY": MEMBERPRESS_KEY},
    )
    _burst_worker(rt)
    logging.getLogger("test").error("oops %s", f"{SECRET_KEY} and {MEMBERPRESS_KEY}")

    text = captured_logs.getvalue()
    lines = [json.loads(line) for line in text.splitlines()]  # every line is one JSON object
    assert len(lines) >= 8
    assert "jane.doe@example.com" not in text and "jane.doe+x@example.com" not in text
    assert "j***@example.com" in text
    assert SECRET_KEY not in text and MEMBERPRESS_KEY not in text
    job_lines = [e for e in lines if e["logger"] in ("worker.jobs", "worker.delivery")]
    assert len(job_lines) >= 4 and all("event_id" in entry for entry in job_lines)
    queued = [entry for entry in lines if "queued" in entry["msg"]]
    assert queued and all(entry["event_id"].startswith("memberpress-") for entry in queued)
    assert {"ts", "level", "logger", "msg"} <= set(lines[0])


def test_text_logs_are_redacted_too(settings):
    stream = io.StringIO()
    logs.configure(settings, stream=stream)
    try:
        logging.getLogger("t").warning("to ana.silva@example.com with %s", MEMBERPRESS_KEY)
    finally:
        logging.getLogger().handlers = [
            h for h in logging.getLogger().handlers if h.get_name() != "farewell"
        ]
    assert stream.getvalue().rstrip().endswith("to a***@example.com with ***")


def test_secrets_in_urls_and_later_settings_are_known():
    from worker.settings import Settings

    settings = Settings.from_env(
        {
            "REDIS_URL": "redis://:redispass99@db:6379/0",
            "FAREWELL_SMTP_URL": "smtp://user:smtppass99@mail:587",
            "FAREWELL_POSTMARK_TOKEN": "pm-token-123456",
        }
    )
    assert {"redispass99", "smtppass99", "pm-token-123456"} <= set(logs.secrets_of(settings))


# --- tokens and key checks ----------------------------------------------------------------


def test_tokens_are_signed_and_scoped():
    feedback = make_token(SECRET_KEY, Scope.FEEDBACK, "seq-1")
    unsubscribe = make_token(SECRET_KEY, Scope.UNSUBSCRIBE, "seq-1")
    assert read_token(SECRET_KEY, Scope.FEEDBACK, feedback) == "seq-1"
    with pytest.raises(InvalidToken):
        read_token(SECRET_KEY, Scope.UNSUBSCRIBE, feedback)  # feedback cannot unsubscribe
    with pytest.raises(InvalidToken):
        read_token(SECRET_KEY, Scope.FEEDBACK, unsubscribe)  # and the other way round
    with pytest.raises(InvalidToken):
        read_token("another-secret-key-0123456789", Scope.FEEDBACK, feedback)
    with pytest.raises(InvalidToken):
        read_token(
            SECRET_KEY,
            Scope.FEEDBACK,
            feedback[:-12] + ("A" if feedback[-12] != "A" else "B") + feedback[-11:],
        )


def test_webhook_keys_are_compared_in_constant_time(monkeypatch, post_hook):
    calls = []
    real = hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(source_payload.hmac, "compare_digest", spy)
    assert post_hook.memberpress(key="wrong-key").status_code == 401
    assert post_hook.memberpress().status_code == 202
    key = MEMBERPRESS_KEY.encode()
    assert calls == [(b"wrong-key", key), (key, key)]


# --- send claims --------------------------------------------------------------------------


def test_a_dead_workers_uncommitted_claim_is_taken_over(runtime):
    store = runtime.store
    store.redis.set(keys.alive_key("farewell-a"), "1", ex=10)
    assert store.claim_send("seq", "step", owner="farewell-a").ours
    # While its owner lives, the claim holds.
    held = store.claim_send("seq", "step", owner="farewell-b").held
    assert (held.phase, held.owner, held.busy) == (keys.Phase.SENDING, "farewell-a", True)
    store.redis.delete(keys.alive_key("farewell-a"))  # owner died; claim ages past the guard
    value = store.redis.get(keys.send_claim_key("seq", "step"))
    old = value.rsplit("|", 1)[0] + f"|{float(value.rsplit('|', 1)[1]) - 60:.3f}"
    store.redis.set(keys.send_claim_key("seq", "step"), old)
    assert store.claim_send("seq", "step", owner="farewell-b").ours
    assert not store.commit_send("seq", "step", "farewell-a")  # the old owner is fenced off
    assert store.commit_send("seq", "step", "farewell-b")


def test_a_committed_claim_is_never_taken_over(runtime):
    store = runtime.store
    assert store.claim_send("seq", "step", owner="farewell-a").ours
    assert store.commit_send("seq", "step", "farewell-a")
    store.redis.delete(keys.alive_key("farewell-a"))  # its owner died right after committing
    held = store.claim_send("seq", "step", owner="farewell-b").held
    assert (held.phase, held.owner, held.busy) == (keys.Phase.COMMITTING, "farewell-a", False)
    store.release_send("seq", "step", "farewell-b")  # not b's to release
    assert store.redis.exists(keys.send_claim_key("seq", "step"))


def test_a_committed_claim_is_released_only_when_the_message_is_known_not_to_have_left(
    runtime,
):
    store = runtime.store
    assert store.claim_send("seq", "step", owner="farewell-a").ours
    assert store.commit_send("seq", "step", "farewell-a")
    store.release_send("seq", "step", "farewell-a")  # e.g. a bug after the POST went out
    assert store.redis.get(keys.send_claim_key("seq", "step")).startswith("committing|")
    store.release_send("seq", "step", "farewell-a", committed=True)  # refused: never left
    assert not store.redis.exists(keys.send_claim_key("seq", "step"))


class _TakenOverThenRefused:
    """A transport whose worker froze long enough for another to take its claim over, and
    then got a transient refusal (nothing sent)."""

    name = "stub"

    def __init__(self, store, claim_key: str) -> None:
        self.store, self.claim_key = store, claim_key

    def send(self, email, commit):
        self.store.redis.set(self.claim_key, f"sending|farewell-b|{time.time():.3f}")
        raise TransientMailError("421 try later")


def test_a_transient_failure_never_releases_a_claim_another_worker_took_over(post_hook, runtime):
    event_id = json_of(post_hook.memberpress())["event_id"]
    claim_key = keys.send_claim_key(event_id, "feedback_request")
    runtime.__dict__["transport"] = _TakenOverThenRefused(runtime.store, claim_key)
    liveness.set_owner("farewell-a")
    try:
        jobs.process_event(event_id)  # the first try, inside the event's job
        assert runtime.store.redis.get(claim_key).startswith("sending|farewell-b|")
        runtime.store.redis.delete(claim_key)
        jobs.send_step(event_id, "feedback_request")  # a retry, in the step's own job
    finally:
        liveness.set_owner(None)
    assert runtime.store.redis.get(claim_key).startswith("sending|farewell-b|")


def test_a_step_whose_claim_another_worker_holds_is_retried_not_dropped(
    post_hook, runtime, work, outbox
):
    event_id = json_of(post_hook.memberpress())["event_id"]
    runtime.store.redis.set(keys.alive_key("farewell-other"), "1", ex=10)
    assert runtime.store.claim_send(event_id, "feedback_request", owner="farewell-other").ours
    jobs.handle_event(event_id)
    with pytest.raises(jobs.ClaimBusy):
        jobs.send_step(event_id, "feedback_request")
    assert outbox() == []


def test_an_smtp_send_commits_after_the_envelope_and_before_data(
    smtp_runtime, smtp_server, post_hook, work
):
    rt = smtp_runtime
    liveness.set_owner("farewell-test-owner")
    try:
        event_id = json_of(post_hook.memberpress())["event_id"]
        # A refused recipient is known before the commit point: the claim never commits.
        smtp_server.sink.rcpt_reply = "452 4.2.2 mailbox full"
        work()
        assert rt.store.redis.get(keys.send_claim_key(event_id, "feedback_request")) is None
        smtp_server.sink.rcpt_reply = None
        rt.queue.enqueue_call("worker.jobs.send_step", args=(event_id, "feedback_request"))
        work()
        claim = rt.store.redis.get(keys.send_claim_key(event_id, "feedback_request"))
        assert claim.startswith("sent:") and len(smtp_server.sink.messages) == 1
    finally:
        liveness.set_owner(None)


def test_rejected_requests_store_only_operational_counters(post_hook, runtime):
    post_hook.memberpress(key="nope")
    assert stored_keys(runtime.store.redis) == []
    assert runtime.store.redis.exists(keys.METRICS_KEY)


# --- jobs of dead workers -----------------------------------------------------------------


def _running_on(runtime, worker_name: str):
    """A job RQ believes `worker_name` is running (as after that worker was SIGKILLed)."""
    from rq.executions import Execution

    job = runtime.queue.enqueue_call("worker.jobs.handle_event", args=("x",), job_id="j-1")
    runtime.queue.remove(job)  # dequeued by the (now dead) worker
    pipe = runtime.queue.connection.pipeline()
    Execution.create(job, 120, pipeline=pipe, worker_name=worker_name)
    pipe.execute()
    return job


def test_a_job_of_a_worker_without_heartbeat_is_requeued_once(runtime):
    from worker.recovery import reclaim_abandoned

    _running_on(runtime, "farewell-dead-1")
    assert reclaim_abandoned(runtime.queue) == ["j-1"]
    assert runtime.queue.job_ids == ["j-1"]
    assert reclaim_abandoned(runtime.queue) == []  # a second sweeper finds nothing


def test_a_job_of_a_live_worker_is_left_alone(runtime):
    from worker.recovery import reclaim_abandoned

    liveness.beat(runtime.queue.connection, "farewell-alive-1")
    _running_on(runtime, "farewell-alive-1")
    assert reclaim_abandoned(runtime.queue) == []
    assert runtime.queue.job_ids == []


@pytest.mark.parametrize(("lock_ttl", "released"), [(None, True), (61, False), (30, True)])
def test_due_jobs_move_when_no_live_scheduler_holds_the_queue(runtime, lock_ttl, released):
    from datetime import timedelta

    from worker.recovery import release_due_jobs

    queue = runtime.queue
    queue.enqueue_in(timedelta(seconds=-1), "worker.jobs.handle_event", "x", job_id="due-1")
    lock = keys.scheduler_lock_key(queue.name)
    if lock_ttl:  # a live scheduler (fresh lock) or a dead one (lock left to run down)
        queue.connection.set(lock, "some-scheduler", ex=lock_ttl)
    assert release_due_jobs(queue) is released
    assert (queue.job_ids == ["due-1"]) is released


def test_a_send_clears_the_last_send_error_only_when_it_was_about_its_stream(runtime):
    store = runtime.store
    store.record_send_error({"stream": "marketing", "error": "no broadcast stream"})
    labels = {"transport": "postmark", "result": "sent"}
    sent = {"transport": "postmark", "metric_labels": labels}
    store.record_sent("seq", "feedback_request", "m-1", stream="transactional", **sent)
    assert store.last_send_error()["error"] == "no broadcast stream"
    store.record_sent("seq", "winback", "m-2", stream="marketing", **sent)
    assert store.last_send_error() is None
    assert store.redis.get(keys.send_claim_key("seq", "winback")) == "sent:m-2"


def test_a_stop_that_lands_before_rqs_own_handlers_is_not_lost(runtime, caplog):
    """SIGTERM while an RQ worker starts up reaches our handler, not RQ's: the worker must
    then stop before its first dequeue instead of running on."""
    queue = runtime.queue
    worker = FarewellWorker([queue], connection=queue.connection, serializer=queue.serializer)
    worker.stop_before_work()
    with caplog.at_level(logging.INFO, logger="rq.worker"):
        worker.work(with_scheduler=False, max_idle_time=5)
    assert "stopping on request" in caplog.text
    assert worker.stop_requested
