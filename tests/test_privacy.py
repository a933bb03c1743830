"""A person's data: `privacy export` and `privacy forget` on data seeded through the real
intake (webhooks, jobs, survey), and the retention sweep that erases old personal data
while the dashboard's counts stay the same. Real Redis throughout."""

from __future__ import annotations

import json
import re
import time
from dataclasses import replace

import pytest

from tests import payloads
from tests.conftest import json_of
from tests.fixtures_insights import ADMIN_PASSWORD
from tests.test_erasure import _everything_in_redis
from tests.test_feedback_page import submit
from tests.test_insights import AUTH, figure, seed
from worker import retention
from worker.events import member_key
from worker.store import cancellation_key, feedback_key, member_hash_key

ANA = "ana.quintessa@example.com"
DAY = 24 * 3600


@pytest.fixture
def settings(settings):
    return replace(settings, admin_password=ADMIN_PASSWORD)


def _cancel_ana(post_hook, clock, survey_links, client) -> str:
    """Ana cancels, gets the survey email, answers with a comment naming herself; then a
    second event of hers arrives that no worker has handled yet."""
    reply = post_hook.memberpress(
        payloads.memberpress(
            email=ANA, first_name="Anabela", last_name="Quintessa", subscription_id="77"
        )
    )
    assert reply.status_code == 202
    clock.advance(seconds=0)
    link = survey_links(ANA)["too_expensive"]
    answer = submit(client, link, reason="too_expensive", comment="Anabela here, too dear")
    assert answer.status_code == 303
    return json_of(reply)["event_id"]


def _dashboard(client) -> tuple[dict[str, str], dict[str, str]]:
    html = client.get("/admin", headers=AUTH).get_data(as_text=True)
    names = ("cancellations", "asked", "answered", "won_back", "came_back", "no_email")
    reasons = dict(re.findall(r'<tr data-reason="(\w+)">.*?data-count="(\d+)"', html))
    return {n: figure(html, n) for n in names}, reasons


def test_export_lists_everything_seeded_through_the_real_intake(
    post_hook, clock, survey_links, client, runner, runtime
):
    seq_id = _cancel_ana(post_hook, clock, survey_links, client)
    paused = payloads.memberpress(
        "subscription-paused", email=ANA, subscription_id="78", status="suspended"
    )
    assert post_hook.memberpress(paused).status_code == 202  # not handled by a worker yet

    result = runner.invoke(args=["privacy", "export", ANA])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)

    assert data["member_key"] == member_key(ANA)
    member = data["member"]
    assert (member["email"], member["first_name"], member["last_name"]) == (
        ANA,
        "Anabela",
        "Quintessa",
    )
    names = sorted(e["name"] for e in data["events"])
    assert names == ["subscription-paused", "subscription-stopped"]  # the unhandled one too
    [cancellation] = data["cancellations"]
    assert cancellation["event_id"] == seq_id and cancellation["member_key"] == member_key(ANA)
    [sequence] = data["sequences"]
    assert sequence["id"] == seq_id and sequence["membership_title"] == "Gold Club"
    answer = sequence["survey_answer"]
    assert (answer["reason"], answer["comment"]) == ("too_expensive", "Anabela here, too dear")
    assert sequence["send_claims"]["feedback_request"].startswith("sent:")
    assert [e["step"] for e in sequence["send_log"]] == ["feedback_request"]
    assert data["suppression"] is None
    assert data["subscription_states"]["memberpress:77"]["state"] == "cancelled"


def test_export_says_nothing_of_other_members(post_hook, clock, survey_links, client, runner):
    _cancel_ana(post_hook, clock, survey_links, client)
    result = runner.invoke(args=["privacy", "export", "bo@example.com"])
    data = json.loads(result.output)
    assert (data["member"], data["events"], data["sequences"], data["cancellations"]) == (
        None,
        [],
        [],
        [],
    )
    assert "Anabela" not in result.output and ANA not in result.output


def test_forget_leaves_nothing_personal_and_cancels_pending_steps(
    post_hook, clock, survey_links, client, runner, runtime, settings
):
    seq_id = _cancel_ana(post_hook, clock, survey_links, client)
    assert clock.scheduled()  # the win-back waits
    unhandled = payloads.memberpress(
        "subscription-paused", email=ANA, subscription_id="78", status="suspended"
    )
    assert post_hook.memberpress(unhandled).status_code == 202
    key = member_key(ANA)
    before = _everything_in_redis(settings.redis_url)
    assert ANA in before and key in before and "Anabela" in before

    result = runner.invoke(args=["privacy", "forget", ANA])
    assert result.exit_code == 0, result.output
    assert "pending step(s) cancelled" in result.output and ANA not in result.output
    clock.advance(seconds=0)  # the unhandled event's job finds its record gone

    everything = _everything_in_redis(settings.redis_url)
    for trace in (ANA, key, "Anabela", "Quintessa", "too dear"):
        assert trace not in everything, trace
    assert clock.scheduled() == []
    assert runtime.store.load_cancellation(seq_id).member_key == ""
    counts, _reasons = _dashboard(client)
    assert counts["cancellations"] == "1"  # still counted, without who it was
    export = json.loads(runner.invoke(args=["privacy", "export", ANA]).output)
    assert (export["member"], export["events"], export["sequences"]) == (None, [], [])


def test_member_deleted_drops_the_members_send_log_and_record_link_too(
    post_hook, clock, survey_links, client, runtime, settings
):
    seq_id = _cancel_ana(post_hook, clock, survey_links, client)
    assert post_hook.memberpress(payloads.memberpress_member_deleted(ANA)).status_code == 202
    clock.advance(seconds=0)
    assert [e for e in runtime.store.send_log() if e["sequence"] == seq_id] == []
    assert member_key(ANA) not in _everything_in_redis(settings.redis_url)


def _sweep_until_done(runtime, now: float, batch: int) -> list[retention.Pass]:
    passes = []
    for _ in range(1000):
        done = retention.sweep(runtime.store, runtime.queue, 730, now=now, batch=batch)
        passes.append(done)
        if done.cycle_done and not (done.members or done.records):
            return passes
    raise AssertionError("the retention sweep never finished")


def test_the_retention_sweep_erases_old_personal_data_and_keeps_the_counts(
    client, post_hook, clock, survey_links, runtime, settings
):
    seed(client, post_hook, clock, survey_links, runtime)
    emails = ["ana@example.com", "bo@example.com", "cy@example.com", "eve@example.com"]
    counts, reasons = _dashboard(client)
    assert counts["cancellations"] == "5" and reasons["too_expensive"] == "2"

    assert list(runtime.store.redis.scan_iter(match="farewell:substate:*"))
    passes = _sweep_until_done(runtime, time.time() + 731 * DAY, batch=2)
    assert all(p.records <= 2 + 5 for p in passes)  # bounded (plus records sharing a time)
    assert sum(p.members for p in passes) == 5 and sum(p.send_log for p in passes) > 0

    everything = _everything_in_redis(settings.redis_url)
    for trace in [*emails, "=cmd@", "Jane", "Doe", "Too pricey", "HYPERLINK"]:
        assert trace not in everything, trace
    for email in emails:
        assert member_key(email) not in everything
    assert list(runtime.store.redis.scan_iter(match="farewell:substate:*")) == []
    assert _dashboard(client) == (counts, reasons)
    again = retention.sweep(runtime.store, runtime.queue, 730, now=time.time() + 731 * DAY)
    assert (again.members, again.send_log) == (0, 0)
    assert _dashboard(client) == (counts, reasons)


def test_a_member_still_around_loses_only_their_old_cancellations_personal_data(
    post_hook, clock, survey_links, client, runtime
):
    seq_id = _cancel_ana(post_hook, clock, survey_links, client)
    later = time.time() + 731 * DAY
    key = member_key(ANA)
    # A recent event of hers (a new subscription two years on): she is still a member.
    runtime.store.redis.hset(member_hash_key(key), "last_event_at", "2099-01-01T00:00:00+00:00")
    _sweep_until_done(runtime, later, batch=100)
    r = runtime.store.redis
    assert r.hget(member_hash_key(key), "email") == ANA
    assert r.hget(cancellation_key(seq_id), "member_key") == ""
    assert r.hget(feedback_key(seq_id), "comment") == ""
    assert r.hget(feedback_key(seq_id), "reason") == "too_expensive"
    assert runtime.store.member_sequence_ids(key) == []


def test_nothing_is_erased_inside_the_period_or_with_retention_off(
    post_hook, clock, survey_links, client, runtime, settings
):
    _cancel_ana(post_hook, clock, survey_links, client)
    before = _everything_in_redis(settings.redis_url)
    retention.sweep(runtime.store, runtime.queue, 730, now=time.time() + 700 * DAY)
    retention.sweep(runtime.store, runtime.queue, 0, now=time.time() + 7000 * DAY)
    after = _everything_in_redis(settings.redis_url)
    assert ANA in after and "Anabela here, too dear" in after
    assert len(after.splitlines()) >= len(before.splitlines()) - 1  # the retention state


def test_one_pass_a_minute_over_all_processes(runtime):
    assert retention.run_due(runtime.store, runtime.queue, 730) is not None
    assert retention.run_due(runtime.store, runtime.queue, 730) is None  # another process
    assert retention.run_due(runtime.store, runtime.queue, 0) is None  # switched off


def test_retention_days_must_not_be_negative():
    from worker.settings import Settings, SettingsError

    assert Settings.from_env({}).retention_days == 730
    assert Settings.from_env({"FAREWELL_RETENTION_DAYS": "0"}).retention_days == 0
    with pytest.raises(SettingsError, match="FAREWELL_RETENTION_DAYS"):
        Settings.from_env({"FAREWELL_RETENTION_DAYS": "-1"})


def test_a_survey_link_past_retention_takes_no_new_answer(
    post_hook, clock, survey_links, client, runtime
):
    """A short retention can end before the survey link expires (120 days): the anonymized
    sequence must not collect a new comment."""
    _cancel_ana(post_hook, clock, survey_links, client)
    link = survey_links(ANA)["not_using"]
    _sweep_until_done(runtime, time.time() + 731 * DAY, batch=100)
    page = client.get(link.split("example.com", 1)[1])
    assert page.status_code == 404
