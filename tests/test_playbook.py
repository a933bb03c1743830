"""The marketers' playbook: what it accepts, and errors that name file, step and problem
(at worker start-up and from `flask --app hooks playbook check`)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from worker.playbook import PlaybookError, load_playbook, parse_delay
from worker.runtime import Runtime, set_runtime
from worker.settings import PROJECT_ROOT

TEMPLATES = PROJECT_ROOT / "email_templates"
REASONS = ["too_expensive", "not_using", "temporary", "other"]


def _load(tmp_path: Path, text: str, files: dict[str, str] | None = None):
    for name, content in (files or {}).items():
        (tmp_path / name).write_text(content)
    path = tmp_path / "playbook.toml"
    path.write_text(text)
    return load_playbook(path, templates_dir=TEMPLATES, reason_ids=REASONS)


def test_the_shipped_playbook_is_feedback_now_and_a_winback_after_14_days():
    playbook = load_playbook(
        TEMPLATES / "playbook.toml", templates_dir=TEMPLATES, reason_ids=REASONS
    )
    feedback, winback = playbook.steps_for("anything")
    assert (feedback.template, feedback.delay, feedback.stream) == (
        "feedback_request",
        timedelta(0),
        "transactional",
    )
    assert (winback.template, winback.delay, winback.stream) == (
        "winback",
        timedelta(days=14),
        "marketing",
    )
    assert winback.incentive == "membership"
    assert playbook.incentive_for("3006", winback) is None  # none configured out of the box


def test_a_full_playbook_loads(tmp_path):
    playbook = _load(
        tmp_path,
        """
[default]
steps = [{ template = "feedback_request" }]

[incentives.gold]
code = "GOLD10"
offer = "10% off"

[incentives.pool]
pool = "codes.txt"
when_exhausted = "skip_step"

[memberships.3006]
incentive = "gold"

[memberships.42]
incentive = "pool"

[[memberships.42.steps]]
template = "feedback_request"

[[memberships.42.steps]]
template = "winback"
delay = "48h"
stream = "marketing"
incentive = "membership"
only_if_reason = ["too_expensive"]
""",
        {"codes.txt": "A\nB\n"},
    )
    assert playbook.steps_for("3006") == playbook.default
    winback = playbook.step("42", "winback")
    assert winback.delay == timedelta(hours=48)
    assert winback.only_if_reason == ("too_expensive",)
    assert playbook.incentive_for("42", winback).pool == tmp_path / "codes.txt"
    assert playbook.incentive_for("42", winback).when_exhausted == "skip_step"
    assert playbook.incentives["gold"].offer_text("pt_BR") == "10% off"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[memberships.1]\nincentive = 'x'\n", "[default]: a [default] table with steps"),
        (
            '[default]\nsteps = [{ template = "feedback_request", delay = "2 weeks" }]',
            "[default] step 1: delay '2 weeks' is not like",
        ),
        (
            '[default]\nsteps = [{ template = "feedback_request", stream = "promo" }]',
            "[default] step 1: stream must be one of transactional, marketing",
        ),
        (
            '[default]\nsteps = [{ template = "feedback_request" }, { template = "winbak" }]',
            "[default] step 2: template 'winbak' has no .html and .txt",
        ),
        (
            '[default]\nsteps = [{ template = "feedback_request", dealy = "1d" }]',
            "[default] step 1: unknown key 'dealy'",
        ),
        (
            '[default]\nsteps = [{ template = "winback", stream = "marketing", '
            'only_if_reason = ["pricey"] }]',
            "[default] step 1: only_if_reason: 'pricey' is not a reason",
        ),
        (
            '[default]\nsteps = [{ template = "winback", stream = "marketing", '
            'incentive = "nope" }]',
            "[default] step 1: incentive 'nope' is not 'membership' or an [incentives] name",
        ),
        (
            '[default]\nsteps = [{ template = "feedback_request", incentive = "membership" }]',
            "step 1: an incentive is promotional: the step's stream must be marketing",
        ),
        (
            '[default]\nsteps = []\n[incentives.p]\npool = "missing.txt"',
            "[incentives.p]: pool file",
        ),
        (
            '[default]\nsteps = []\n[incentives.p]\ncode = "A"\npool = "x.txt"',
            "[incentives.p]: needs exactly one of `code`",
        ),
        (
            '[default]\nsteps = []\n[memberships.7]\nincentive = "ghost"',
            "[memberships.7]: incentive 'ghost' is not defined",
        ),
        (
            '[default]\nsteps = []\n[memberships.7]\nsteps = [{ template = "x y" }]',
            "[memberships.7] step 1: 'template' must be a name",
        ),
        (
            '[default]\nsteps = [{ template = "winback", stream = "marketing", '
            'only_if_no_reason = true, only_if_reason = ["temporary"] }]',
            "step 1: only_if_no_reason and only_if_reason cannot both hold",
        ),
        ("[default\n", "not valid TOML"),
    ],
)
def test_invalid_playbooks_name_file_step_and_problem(tmp_path, text, message):
    with pytest.raises(PlaybookError) as info:
        _load(tmp_path, text)
    assert message in str(info.value)
    assert all(line.startswith(str(tmp_path / "playbook.toml")) for line in info.value.errors)


def test_every_problem_is_reported_at_once(tmp_path):
    with pytest.raises(PlaybookError) as info:
        _load(
            tmp_path,
            '[default]\nsteps = [{ template = "nope", delay = "x" }, { stream = "b" }]\n',
        )
    assert len(info.value.errors) == 3


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0", timedelta(0)),
        (0, timedelta(0)),
        ("30m", timedelta(minutes=30)),
        ("14d", timedelta(days=14)),
    ],
)
def test_parse_delay(value, expected):
    assert parse_delay(value) == expected


def test_playbook_check_command_passes_the_shipped_playbook(runner):
    result = runner.invoke(args=["playbook", "check"])
    assert result.exit_code == 0, result.output
    assert "playbook.toml: OK" in result.output
    assert "winback (+14d, marketing)" in result.output


def test_playbook_check_command_fails_with_the_errors(runner, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[default]\nsteps = [{ template = "winback", stream = "loud" }]\n')
    result = runner.invoke(args=["playbook", "check", "--file", str(bad)])
    assert result.exit_code == 1
    assert f"{bad}: [default] step 1: stream must be one of" in result.output


def test_the_worker_refuses_to_start_with_a_broken_playbook(settings, tmp_path, caplog):
    from worker.process import main

    bad = tmp_path / "bad.toml"
    bad.write_text('[default]\nsteps = [{ template = "feedback_request", delay = "soon" }]\n')
    set_runtime(Runtime(replace(settings, playbook_path=bad)))
    try:
        assert main() == 2
    finally:
        set_runtime(None)
    assert "refusing to start" in caplog.text and "delay 'soon'" in caplog.text


def test_a_membership_may_name_the_language_of_its_emails(tmp_path):
    path = tmp_path / "playbook.toml"
    path.write_text(
        '[default]\nsteps = [{ template = "winback", delay = "1d", stream = "marketing" }]\n'
        '[memberships.3006]\nlocale = "pt-BR"\n[memberships.3007]\nlocale = "fr"\n'
    )
    with pytest.raises(PlaybookError) as info:
        load_playbook(path)
    assert "[memberships.3007]" in str(info.value) and "'fr'" in str(info.value)
    path.write_text(path.read_text().replace('locale = "fr"', ""))
    playbook = load_playbook(path)
    assert playbook.locale_for("3006") == "pt_BR"
    assert playbook.locale_for("3007") is None and playbook.locale_for(None) is None


@pytest.mark.parametrize(
    ("step", "skips_once_a_reason_is_known"),
    [
        ('{ template = "feedback_request" }', True),  # playbooks from before the key
        ('{ template = "feedback_request", only_if_no_reason = false }', False),
        ('{ template = "feedback_request", only_if_reason = ["temporary"] }', False),
        ('{ template = "winback", stream = "marketing" }', False),
        ('{ template = "winback", stream = "marketing", only_if_no_reason = true }', True),
    ],
)
def test_asking_why_once_is_playbook_data(tmp_path, step, skips_once_a_reason_is_known):
    (loaded,) = _load(tmp_path, f"[default]\nsteps = [{step}]").steps_for("any")
    assert loaded.only_if_no_reason is skips_once_a_reason_is_known
