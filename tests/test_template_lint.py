"""The sharper checks (worker/template_lint.py) on their own and through `templates check`:
drift between the parts, text outside blocks, unclosed tags at their opening line, "did you
mean", and generating the text part from the HTML part."""

from __future__ import annotations

from pathlib import Path

from hooks import create_app
from worker.render import make_environment
from worker.template_lint import did_you_mean, drift, outside_blocks, text_from_html

ENV = make_environment(Path("."))
FEEDBACK = "en/feedback_request.html"


def _cli(settings, *args: str):
    app = create_app({"TESTING": True, "SETTINGS": settings})
    return app.test_cli_runner().invoke(args=["templates", *args])


def _line_of(copy, name: str, needle: str) -> int:
    lines = copy.read(name).splitlines()
    return next(n for n, line in enumerate(lines, start=1) if needle in line)


# --- drift ----------------------------------------------------------------------------------


def test_drift_finds_a_sentence_in_one_part_only():
    html = "<h1>Hello, Maria.</h1><p>We miss you already. Come back any time you like.</p>"
    text = "Hello, Maria.\n\nWe miss you already.\n"
    assert drift(html, text) == (["Come back any time you like."], [])
    assert drift("<p>We miss you already.</p>", text + "Our new courses start in May.\n") == (
        [],
        ["Our new courses start in May."],
    )


def test_drift_ignores_links_wrapping_and_short_fragments():
    html = '<p>It takes one click:\n<a href="https://x.example/f">share your thoughts</a>.</p>'
    text = "It takes one\nclick: https://x.example/f\n\nThanks!\n"
    assert drift(html, text) == ([], [])


def test_an_edited_html_part_with_a_stale_text_part_is_a_warning(template_copy):
    template_copy.edit(
        FEEDBACK, "There is nothing else you need to do.", "Your data is deleted within 30 days."
    )
    report = template_copy.check()
    assert report.ok  # a warning does not block
    [warning] = [w for w in report.warnings if "drifts" in w.message]
    assert warning.file == "en/feedback_request.txt"
    assert "'Your data is deleted within 30 days.' is in en/feedback_request.html" in (
        warning.message
    )
    assert "templates text-from-html en/feedback_request.html" in warning.message


def test_text_from_html_keeps_the_variables_and_spells_out_links(template_copy):
    text = text_from_html(template_copy.read("en/winback.html"))
    assert text.startswith('{% extends "en/_layout.txt" %}')
    assert "{% block subject %}" not in text and "<p>" not in text
    assert "share your thoughts: {{ feedback_url }}" in text
    assert "{% if coupon %}" in text and "{{ coupon }}" in text


def test_the_generated_text_part_passes_the_check_without_drift(template_copy):
    template_copy.edit(
        FEEDBACK, "There is nothing else you need to do.", "Your data is deleted within 30 days."
    )
    result = _cli(template_copy.settings, "text-from-html", FEEDBACK, "--write")
    assert result.exit_code == 0, result.output
    assert "wrote en/feedback_request.txt" in result.output
    assert "Your data is deleted within 30 days." in template_copy.read("en/feedback_request.txt")
    report = template_copy.check()
    assert report.ok and not [w for w in report.warnings if "drifts" in w.message], report.problems


def test_text_from_html_refuses_files_outside_the_folder(template_copy):
    for bad in ("../README.md", "en/nothing.html", "en/winback.txt"):
        result = _cli(template_copy.settings, "text-from-html", bad)
        assert result.exit_code == 2 and "no such .html file" in result.output


# --- content outside blocks -------------------------------------------------------------------


def test_text_outside_blocks_is_found_at_its_line():
    source = '{% extends "en/_layout.html" %}\n{% block content %}x{% endblock %}\n\nP.S. {{ a }}\n'
    assert outside_blocks(ENV, source) == [(4, "P.S."), (4, "{{ … }}")]
    assert outside_blocks(ENV, "no layout here {{ a }}") == []
    assert (
        outside_blocks(ENV, '{% extends "x" %}{% set a = 1 %}\n{% block b %}{% endblock %}') == []
    )


def test_text_outside_blocks_is_an_error_in_the_check(template_copy):
    template_copy.write(FEEDBACK, template_copy.read(FEEDBACK) + "\n<p>P.S. We love you.</p>\n")
    line = _line_of(template_copy, FEEDBACK, "P.S.")
    [error] = template_copy.check().errors
    assert (error.file, error.line) == (FEEDBACK, line)
    assert "outside every {% block %}" in error.message and "silently dropped" in error.message


# --- unclosed tags ---------------------------------------------------------------------------


def test_an_unclosed_if_is_reported_where_it_opens(template_copy):
    template_copy.edit(FEEDBACK, "<p>If you have", "{% if first_name %}<p>Hi</p>\n<p>If you have")
    line = _line_of(template_copy, FEEDBACK, "<p>Hi</p>")
    [error] = template_copy.check().errors
    assert (error.file, error.line) == (FEEDBACK, line)
    assert error.message.startswith(f"{{% if %}} opened on line {line} is never closed")
    assert "add {% endif %}" in error.message


def test_an_unclosed_for_at_the_end_of_the_file(template_copy):
    name = "en/winback.txt"
    template_copy.write(
        name,
        template_copy.read(name).replace(
            "{% endblock %}", "{% for x in reasons %}\n{% endblock %}"
        ),
    )
    line = _line_of(template_copy, name, "{% for x in reasons %}")
    [error] = template_copy.check().errors
    assert (error.file, error.line) == (name, line)
    assert "{% for %} opened on line" in error.message


# --- did you mean ----------------------------------------------------------------------------


def test_did_you_mean():
    assert did_you_mean("membership_titel", ["membership_title", "first_name"]) == (
        "membership_title"
    )
    assert did_you_mean("zzz", ["membership_title"]) is None


def test_an_unknown_variable_gets_did_you_mean(template_copy):
    template_copy.edit(FEEDBACK, "{{ site_name }}", "{{ sitename }}")
    [error] = template_copy.check().errors
    assert "unknown variable {{ sitename }}" in error.message
    assert "Did you mean {{ site_name }}?" in error.message


def test_an_unknown_field_gets_did_you_mean(template_copy):
    template_copy.edit(FEEDBACK, "{{ reason.label }}", "{{ reason.lable }}")
    [error] = template_copy.check().errors
    assert "did you mean 'label'?" in error.message
