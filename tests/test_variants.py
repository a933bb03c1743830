"""A/B variants (worker/variants.py): the playbook accepts and checks them, a member's
variant is stable and the shares follow the weights, the worker sends the assigned one
and records it, the dashboard counts per variant, the verdict's arithmetic."""

from __future__ import annotations

import base64
from collections import Counter
from dataclasses import replace
from datetime import timedelta

import pytest

from hooks import create_app
from tests import payloads
from tests.conftest import HookPoster, parts, read_eml
from tests.rq_helpers import run_queued
from worker.playbook import PlaybookError, Step, TemplateVariant, load_playbook
from worker.runtime import Runtime, set_runtime
from worker.variants import (
    VariantStats,
    assign,
    prob_b_beats_a,
    prob_best,
    verdict,
)

AB = Step(
    "winback",
    timedelta(days=14),
    "marketing",
    variants=(TemplateVariant("winback", 70), TemplateVariant("winback_b", 30)),
)
AB_PLAYBOOK = """
[default]
steps = [
  { variants = [{ template = "feedback_request", weight = 1 },
                { template = "feedback_b", weight = 1 }], delay = "0", stream = "transactional" },
]
"""
PASSWORD = "ab-admin-password-long-enough"


# --- assignment -------------------------------------------------------------------------------


def test_a_members_variant_is_stable():
    first = [assign(AB, f"member{n}", f"seq{n}") for n in range(200)]
    again = [assign(AB, f"member{n}", f"seq{n}") for n in range(200)]
    assert first == again
    assert set(first) == {"winback", "winback_b"}


def test_shares_follow_the_weights_over_many_members():
    counts = Counter(
        assign(AB, f"m{n}@example.com", f"memberpress-{n:024x}") for n in range(20_000)
    )
    assert abs(counts["winback"] / 20_000 - 0.70) < 0.02
    assert abs(counts["winback_b"] / 20_000 - 0.30) < 0.02


def test_a_new_sequence_may_draw_again_and_a_step_without_variants_is_itself():
    drawn = {assign(AB, "same-member", f"seq{n}") for n in range(50)}
    assert drawn == {"winback", "winback_b"}
    plain = Step("winback", timedelta(0), "marketing")
    assert assign(plain, "m", "s") == "winback"


# --- the playbook -----------------------------------------------------------------------------


def _load(tmp_path, steps: str, templates=None):
    path = tmp_path / "playbook.toml"
    path.write_text(f"[default]\nsteps = [\n{steps}\n]\n")
    return load_playbook(path, templates_dir=templates)


def test_the_playbook_reads_variants(tmp_path):
    playbook = _load(
        tmp_path,
        '{ variants = [{ template = "winback", weight = 70 }, { template = "winback_b", '
        'weight = 30 }], delay = "14d", stream = "marketing" }',
    )
    [step] = playbook.default
    assert step.id == "winback" and step.templates == ("winback", "winback_b")
    assert step.variants == AB.variants


@pytest.mark.parametrize(
    ("variants", "problem"),
    [
        ('[{ template = "winback", weight = 1 }]', "with at least two"),
        ('"winback"', "with at least two"),
        ('[{ template = "winback" }, { template = "winback" }]', "listed twice"),
        ('[{ template = "winback", weight = 0 }, { template = "b" }]', "weight must be a whole"),
        ('[{ template = "winback", weight = 1.5 }, { template = "b" }]', "weight must be a whole"),
        ('[{ template = "Bad Name" }, { template = "b" }]', "'template' must be a name"),
        ('[{ template = "winback", share = 1 }, { template = "b" }]', "unknown key 'share'"),
    ],
)
def test_bad_variants_are_refused_with_the_step(tmp_path, variants, problem):
    with pytest.raises(PlaybookError) as caught:
        _load(tmp_path, f'{{ variants = {variants}, stream = "marketing" }}')
    assert any("[default] step 1" in e and problem in e for e in caught.value.errors), (
        caught.value.errors
    )


def test_a_variant_template_must_exist_and_the_step_template_must_be_a_variant(tmp_path):
    from worker.settings import PROJECT_ROOT

    with pytest.raises(PlaybookError) as caught:
        _load(
            tmp_path,
            '{ template = "winback", variants = [{ template = "winback" }, '
            '{ template = "winback_zz" }], stream = "marketing" }',
            templates=PROJECT_ROOT / "email_templates",
        )
    assert any("'winback_zz' has no .html and .txt" in e for e in caught.value.errors)
    with pytest.raises(PlaybookError, match="must be one of the variants"):
        _load(
            tmp_path,
            '{ template = "feedback_request", variants = [{ template = "winback" }, '
            '{ template = "winback_b" }], stream = "marketing" }',
        )


def test_playbook_check_validates_and_shows_variants(template_copy):
    _write_variant_b(template_copy)
    template_copy.write("playbook.toml", AB_PLAYBOOK)
    app = create_app({"TESTING": True, "SETTINGS": template_copy.settings})
    result = app.test_cli_runner().invoke(args=["playbook", "check"])
    assert result.exit_code == 0, result.output
    assert "feedback_request 50% / feedback_b 50% (+0, transactional)" in result.output
    template_copy.write("playbook.toml", AB_PLAYBOOK.replace('"feedback_b"', '"feedback_c"'))
    result = app.test_cli_runner().invoke(args=["playbook", "check"])
    assert result.exit_code == 1 and "'feedback_c' has no .html and .txt" in result.output


# --- sending and counting -----------------------------------------------------------------


def _write_variant_b(copy) -> None:
    for suffix in ("html", "txt"):
        source = copy.read(f"en/feedback_request.{suffix}")
        copy.write(
            f"en/feedback_b.{suffix}",
            source.replace("Thank you for being with us", "Variant B says hello"),
        )


def test_the_worker_sends_each_member_their_variant_and_the_dashboard_counts(template_copy):
    _write_variant_b(template_copy)
    template_copy.write("playbook.toml", AB_PLAYBOOK)
    settings = replace(template_copy.settings, admin_password=PASSWORD)
    rt = Runtime(settings)
    set_runtime(rt)
    app = create_app({"TESTING": True, "SETTINGS": settings})
    client = app.test_client()
    try:
        expected = {}
        for n in range(12):
            body = payloads.memberpress(
                email=f"ab{n}@example.com", member_id=500 + n, subscription_id=f"ab{n}"
            )
            reply = HookPoster(client).memberpress(body)
            assert reply.status_code == 202
            expected[f"ab{n}@"] = reply.get_json()["event_id"]
        run_queued(rt.queue)
        got = Counter()
        [step] = rt.playbook.default
        for eml in settings.outbox_dir.glob("*.eml"):
            text = eml.read_text()
            who = next(k for k in expected if k in text)
            seq = rt.store.load_sequence(expected[who])
            variant = assign(step, seq.member_key, seq.id)
            html, plain = parts(read_eml(eml))  # bodies are encoded as SMTP sends them
            assert ("Variant B says hello" in html + plain) == (variant == "feedback_b"), who
            got[variant] += 1
        assert sum(got.values()) == 12 and len(got) == 2  # both arms used
        assert rt.store.variant_outcomes(step.id, "feedback_b")[0] == got["feedback_b"]

        auth = base64.b64encode(f"admin:{PASSWORD}".encode()).decode()
        page = client.get("/admin/", headers={"Authorization": f"Basic {auth}"})
        html = page.get_data(as_text=True)
        assert page.status_code == 200
        assert "A/B tests" in html and 'data-variant="feedback_b"' in html
        row = html[html.index('data-variant="feedback_b"') :].split("</tr>")[0]
        assert f"<td>{got['feedback_b']}</td>" in row
        assert "Too early to tell" in html
    finally:
        set_runtime(None)
        rt.close()
        app.extensions["farewell"].store.redis.close()
        app.extensions["farewell"].queue.connection.close()


# --- the verdict --------------------------------------------------------------------------


def test_the_exact_comparison():
    assert prob_b_beats_a(10, 100, 10, 100) == pytest.approx(0.5)
    assert prob_b_beats_a(10, 100, 20, 100) == pytest.approx(0.9752, abs=1e-3)
    assert prob_b_beats_a(20, 100, 10, 100) == pytest.approx(1 - 0.9752, abs=1e-3)
    assert prob_b_beats_a(0, 0, 0, 0) == pytest.approx(0.5)


def test_three_variants_by_the_grid_agree_with_the_exact_pair():
    pair = [VariantStats("a", 1, 200, 30, 30), VariantStats("b", 1, 200, 45, 45)]
    weak = VariantStats("c", 1, 200, 5, 5)  # no chance of being best: leaves a and b alone
    three = prob_best([*pair, weak], "came_back")
    exact = prob_best(pair, "came_back")
    assert three["b"] == pytest.approx(exact["b"], abs=0.01)
    assert three["c"] < 1e-6
    assert sum(three.values()) == pytest.approx(1.0)


def test_verdict_in_words():
    small = [VariantStats("a", 1, 99, 5, 5), VariantStats("b", 1, 300, 40, 40)]
    early = verdict(small, "came_back")
    assert (
        not early.ready and early.text.startswith("Too early to tell") and "a has 99" in early.text
    )
    clear = verdict(
        [VariantStats("a", 1, 100, 10, 10), VariantStats("b", 1, 100, 25, 25)], "came_back"
    )
    assert clear.ready and clear.text.startswith("b works better: a more than 99% chance")
    even = verdict(
        [VariantStats("a", 1, 100, 10, 10), VariantStats("b", 1, 100, 11, 11)], "answered"
    )
    assert even.text.startswith("No clear winner yet") and "answered the survey" in even.text


def test_each_variant_counts_its_rejoin_clicks_and_the_revenue_it_won_back(runtime):
    """The dashboard's per-variant figures read what the send, the rejoin redirect and the
    comeback wrote (here written directly, key by key, as those paths do)."""
    from decimal import Decimal

    from worker.store.keys import (
        cancellation_key,
        rejoin_key,
        sequence_key,
        variant_sequences_key,
    )

    r = runtime.store.redis
    r.sadd(variant_sequences_key("winback", "winback_b"), "s1", "s2", "s3", "gone")
    r.hset(sequence_key("s1"), mapping={"status": "stopped", "outcome": "won_back"})
    r.hset(sequence_key("s2"), mapping={"status": "stopped", "outcome": "won_back"})
    r.hset(sequence_key("s3"), mapping={"status": "active"})
    r.hset(rejoin_key("s1"), "winback", "1764547200.0")
    r.hset(rejoin_key("s3"), "feedback_request", "1764547200.0")  # another step's button
    r.hset(cancellation_key("s1"), mapping={"mrr": "10.00", "currency": "USD"})
    r.hset(cancellation_key("s2"), mapping={"mrr": "49.90", "currency": "BRL"})
    outcome = runtime.store.variant_outcomes("winback", "winback_b")
    assert outcome.sent == 3 and outcome.came_back == 2  # "gone": erased since, left out
    assert outcome.rejoin_clicks == 1
    assert outcome.recovered == {"USD": Decimal("10.00"), "BRL": Decimal("49.90")}
