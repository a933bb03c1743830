"""`templates check` and `templates preview`: the shipped set passes; broken copies fail with
file, line and a plain message; the worker refuses to start on a broken set."""

from __future__ import annotations

import re

import pytest

from hooks import create_app
from worker import process as worker_process
from worker.runtime import Runtime, set_runtime
from worker.template_check import TemplateSetError, link_problem


def _cli(settings, *args: str):
    app = create_app({"TESTING": True, "SETTINGS": settings})
    return app.test_cli_runner().invoke(args=["templates", *args])


def _line_of(copy, name: str, needle: str) -> int:
    lines = copy.read(name).splitlines()
    return next(n for n, line in enumerate(lines, start=1) if needle in line)


# --- the shipped set ------------------------------------------------------------------------


def test_the_shipped_templates_pass_the_check(template_copy):
    report = template_copy.check()
    assert report.problems == []
    assert report.renders >= 4  # every playbook email x en, pt_BR x sample variants


def test_the_check_command_passes_on_the_shipped_templates(settings):
    result = _cli(settings, "check")
    assert result.exit_code == 0, result.output
    assert "0 error(s), 0 warning(s)" in result.output


def test_every_shipped_email_has_a_subject_and_preheader_in_each_language(template_copy):
    from hooks.email_previews import Previews

    previews = Previews(template_copy.settings)
    assert set(previews.locales()) >= {"en", "pt_BR"}
    for name in previews.names():
        for locale in ("en", "pt_BR"):
            preview = previews.render(name, locale)
            assert preview.email is not None, preview.error
            assert len(preview.email.subject) > 10
            assert len(preview.email.preheader) > 20
            assert (template_copy.root / locale / f"{name}.txt").is_file()


# --- broken copies --------------------------------------------------------------------------


def test_unknown_variable_names_the_template_and_line(template_copy):
    name = "en/feedback_request.html"
    template_copy.edit(
        name,
        "{{ membership_title }} {% endif %}membership",
        "{{ membership_titel }} {% endif %}membership",
    )
    line = _line_of(template_copy, name, "membership_titel")
    [problem] = template_copy.check().errors
    assert (problem.file, problem.line) == (name, line)
    assert "unknown variable {{ membership_titel }}" in problem.message
    assert str(problem).startswith(f"{name}:{line}: ")


def test_unknown_variable_in_a_layout_names_the_layout(template_copy):
    name = "pt_BR/_layout.txt"
    template_copy.edit(name, "{{ site_name }}", "{{ site }}")
    problems = template_copy.check().errors
    assert {(p.file, p.line) for p in problems} == {
        (name, _line_of(template_copy, name, "{{ site }}"))
    }


BREAKAGES = {
    "syntax error": (
        lambda c: c.edit("pt_BR/feedback_request.html", "{% endfor %}", "{% endfro %}"),
        r"pt_BR/feedback_request\.html:(\d+): \{% for %\} opened on line \1 is never closed: "
        r"add \{% endfor %\}.*line \d+ has \{% endfro %\}",
    ),
    "unknown variable": (
        lambda c: c.edit("en/feedback_request.txt", "{{ site_name }}", "{{ sitename }}"),
        r"en/feedback_request\.txt:\d+: unknown variable \{\{ sitename \}\}",
    ),
    "missing text part": (
        lambda c: c.path("pt_BR/feedback_request.txt").unlink(),
        r"pt_BR/feedback_request\.html: missing text part",
    ),
    "missing html part": (
        lambda c: c.path("en/feedback_request.html").unlink(),
        r"en/feedback_request\.txt: missing HTML part",
    ),
    "missing subject": (
        lambda c: c.write(
            "en/feedback_request.html",
            re.sub(
                r"\{% block subject %\}.*?\{% endblock %\}", "", c.read("en/feedback_request.html")
            ),
        ),
        r"en/feedback_request\.html: missing subject",
    ),
    "email missing in the default language": (
        lambda c: c.edit(
            "playbook.toml",
            "only_if_no_reason = true },",
            'only_if_no_reason = true },\n  { template = "thanks_again", delay = "3d" },',
        ),
        r"en/thanks_again\.html: missing email: the playbook sends 'thanks_again'",
    ),
    "relative link": (
        lambda c: c.edit(
            "en/feedback_request.html",
            'href="{{ reason.url }}"',
            'href="/feedback/{{ reason.id }}"',
        ),
        r"en/feedback_request\.html:\d+: link '/feedback/too_expensive' is not a full address",
    ),
    "http link": (
        lambda c: c.edit(
            "pt_BR/feedback_request.txt",
            "— {{ sender_name }}",
            "http://example.com/help\n— {{ sender_name }}",
        ),
        r"pt_BR/feedback_request\.txt:\d+: link 'http://example\.com/help' must start with https://",
    ),
    "feedback link not built from FAREWELL_BASE_URL": (
        lambda c: c.edit(
            "en/feedback_request.html",
            'href="{{ reason.url }}"',
            'href="https://other.example/feedback/x"',
        ),
        r"en/feedback_request\.html:\d+: .*not at FAREWELL_BASE_URL",
    ),
    "hostile template": (
        lambda c: c.edit(
            "en/feedback_request.txt", "{{ site_name }}", "{{ ''.__class__.__mro__ }}"
        ),
        r"en/feedback_request\.txt:\d+: uses something templates are not allowed to touch",
    ),
    "endless loop": (
        lambda c: c.edit(
            "en/feedback_request.txt",
            "{{ site_name }}",
            "{% for i in range(99999) %}{% for j in range(99999) %}{{ j }}{% endfor %}{% endfor %}",
        ),
        r"en/feedback_request\.txt(:\d+)?: stopped: loops ran more than 100000 steps",
    ),
}


@pytest.mark.parametrize("breakage", list(BREAKAGES))
def test_the_check_command_fails_on_a_broken_copy_and_names_the_problem(template_copy, breakage):
    breaks, expected = BREAKAGES[breakage]
    breaks(template_copy)
    result = _cli(template_copy.settings, "check")
    assert result.exit_code == 1, result.output
    assert re.search(expected, result.output), result.output
    assert "error(s)" in result.output


def test_marketing_email_without_unsubscribe_link_fails(template_copy):
    template_copy.edit("playbook.toml", 'stream = "transactional"', 'stream = "marketing"')
    assert template_copy.check().ok  # the shipped layouts carry the link
    for layout in ("en/_layout.html", "pt_BR/_layout.txt"):
        text = template_copy.read(layout)
        template_copy.write(
            layout, re.sub(r"\{% if unsubscribe_url %\}.*?\{% endif %\}", "", text, flags=re.S)
        )
    errors = template_copy.check().errors
    assert {p.message.split(":")[0] for p in errors} == {
        "marketing email without the unsubscribe link"
    }
    assert {p.file for p in errors if "feedback_request" in p.file} == {
        "en/feedback_request.html",
        "pt_BR/feedback_request.txt",
    }


def test_membership_overrides_are_checked_with_their_own_stream(template_copy):
    template_copy.write(
        "memberships/3006/pt_BR/feedback_request.html",
        template_copy.read("pt_BR/feedback_request.html").replace(
            "{{ site_name }}", "{{ site_nome }}"
        ),
    )
    template_copy.write(
        "memberships/3006/pt_BR/feedback_request.txt",
        template_copy.read("pt_BR/feedback_request.txt"),
    )
    [problem] = template_copy.check().errors
    assert problem.file == "memberships/3006/pt_BR/feedback_request.html"
    assert "site_nome" in problem.message


def test_an_override_missing_its_text_part_fails(template_copy):
    template_copy.write(
        "memberships/3006/en/feedback_request.html", template_copy.read("en/feedback_request.html")
    )
    [problem] = template_copy.check().errors
    assert problem.file == "memberships/3006/en/feedback_request.html"
    assert problem.message.startswith("missing text part")


def test_a_language_without_an_email_is_a_warning_not_an_error(template_copy):
    template_copy.path("pt_BR/feedback_request.html").unlink()
    template_copy.path("pt_BR/feedback_request.txt").unlink()
    report = template_copy.check()
    assert report.ok
    [warning] = report.warnings
    assert "members who speak pt_BR will get the en one" in warning.message


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://members.example.com/feedback/abc?reason=x", None),
        ("https://shop.example.org/rejoin", None),
        ("mailto:help@example.com", None),
        ("/feedback/abc", "not a full address"),
        ("#top", "not a full address"),
        ("http://shop.example.org/", "must start with https://"),
        ("javascript:alert(1)", "not a full address"),
        ("https://evil.example/unsubscribe/abc", "not at FAREWELL_BASE_URL"),
    ],
)
def test_link_rules(url, problem):
    found = link_problem(url, "https://members.example.com")
    assert (found is None) if problem is None else (problem in found)


# --- the worker refuses to start --------------------------------------------------------------


def test_the_worker_refuses_to_start_on_a_broken_template_set(template_copy):
    template_copy.edit("en/feedback_request.txt", "{{ site_name }}", "{{ sitename }}")
    set_runtime(Runtime(template_copy.settings))
    try:
        with pytest.raises(
            TemplateSetError, match=r"en/feedback_request\.txt:\d+: unknown variable"
        ):
            worker_process.preflight()
        assert worker_process.main() == 2
    finally:
        set_runtime(None)


def test_the_worker_preflight_passes_on_the_shipped_set(runtime):
    worker_process.preflight()


# --- preview --------------------------------------------------------------------------------


def test_preview_writes_a_standalone_page(settings, tmp_path):
    out = tmp_path / "preview.html"
    result = _cli(
        settings,
        "preview",
        "feedback_request",
        "--locale",
        "pt_BR",
        "--membership",
        "3006",
        "--out",
        str(out),
    )
    assert result.exit_code == 0, result.output
    page = out.read_text(encoding="utf-8")
    assert "Obrigado, Maria — podemos fazer uma pergunta?" in page  # subject
    assert "Sua assinatura Gold Club foi cancelada" in page  # preheader and text part
    assert "<iframe sandbox" in page and "srcdoc=" in page  # the HTML part, sandboxed
    assert "Obrigado por ter estado conosco, Maria." in page  # text part, readable
    assert "membership 3006" in page


def test_preview_uses_the_membership_override(template_copy, tmp_path):
    for part in ("html", "txt"):
        template_copy.write(
            f"memberships/3006/en/feedback_request.{part}",
            template_copy.read(f"en/feedback_request.{part}").replace(
                "Thank you", "Thanks, Gold member"
            ),
        )
    out = tmp_path / "p.html"
    result = _cli(
        template_copy.settings,
        "preview",
        "feedback_request",
        "--membership",
        "3006",
        "--out",
        str(out),
    )
    assert result.exit_code == 0, result.output
    assert "Thanks, Gold member, Maria — may we ask one thing?" in out.read_text(encoding="utf-8")
    result = _cli(template_copy.settings, "preview", "feedback_request", "--membership", "42")
    assert "Thank you, Maria — may we ask one thing?" in result.output


def test_preview_of_an_unknown_email_or_language_is_a_usage_error(settings):
    result = _cli(settings, "preview", "nope")
    assert result.exit_code == 2
    assert "there is no email called 'nope'" in result.output
    result = _cli(settings, "preview", "feedback_request", "--locale", "fr")
    assert result.exit_code == 2
    assert "no 'fr' language folder" in result.output


def test_preview_of_a_broken_email_says_why_and_fails(template_copy, tmp_path):
    template_copy.edit("en/feedback_request.txt", "{{ site_name }}", "{{ sitename }}")
    result = _cli(
        template_copy.settings, "preview", "feedback_request", "--out", str(tmp_path / "x.html")
    )
    assert result.exit_code == 1
    assert "unknown variable {{ sitename }}" in result.output


def test_the_check_command_reports_a_broken_playbook(template_copy):
    template_copy.write("playbook.toml", "[default\n")
    result = _cli(template_copy.settings, "check")
    assert result.exit_code == 1
    assert "playbook.toml: not valid TOML" in result.output


def test_preview_shows_the_membership_incentive_from_the_playbook(template_copy):
    text = template_copy.read("playbook.toml")
    template_copy.write(
        "playbook.toml",
        text
        + '\n[incentives.gold_back]\ncode = "WELCOMEBACK20"\n'
        + 'offer = { en = "20% off your first three months back" }\n'
        + '\n[memberships.3006]\nincentive = "gold_back"\n',
    )
    assert template_copy.check().ok
    result = _cli(template_copy.settings, "preview", "winback", "--membership", "3006")
    assert result.exit_code == 0, result.output
    assert "WELCOMEBACK20" in result.output
    assert "20% off your first three months back" in result.output
    plain = _cli(template_copy.settings, "preview", "winback")
    assert plain.exit_code == 0 and "WELCOMEBACK20" not in plain.output
