"""The renderer: lookup order and fallbacks, filters, and a sandbox that refuses hostile
templates with an error and leaks nothing. Pure: files in tmp_path, no Redis."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from jinja2.exceptions import SecurityError, UndefinedError

from worker.render import (
    Renderer,
    RenderLimitError,
    TemplateMissing,
    format_date,
    format_money,
    plain,
)

LAYOUT = (
    "{% block subject %}{% endblock %}|{% block preheader %}{% endblock %}|"
    "{% block content %}{% endblock %}"
)


def _email(folder: str) -> dict[str, str]:
    return {
        f"{folder}/hello.html": (
            '{% extends "_base.html" %}{% block subject %}subject from ' + folder + "{% endblock %}"
            "{% block content %}html from " + folder + "{% endblock %}"
        ),
        f"{folder}/hello.txt": "text from " + folder,
    }


@pytest.fixture
def tree(tmp_path: Path):
    """Build a templates folder from {relative path: source}."""

    def build(*folders: str, extra: dict[str, str] | None = None) -> Renderer:
        files = {"_base.html": LAYOUT}
        for folder in folders:
            files.update(_email(folder))
        files.update(extra or {})
        for name, source in files.items():
            (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / name).write_text(source, encoding="utf-8")
        return Renderer(tmp_path, "en", budget_seconds=0.5)

    return build


def _render(renderer: Renderer, locale: str, membership: str | None = None):
    return renderer.render("hello", {}, locale=locale, membership_id=membership)


# --- lookup order ---------------------------------------------------------------------------


def test_membership_and_locale_comes_first(tree):
    r = tree("en", "pt_BR", "memberships/3006/en", "memberships/3006/pt_BR")
    email = _render(r, "pt_BR", "3006")
    assert email.subject == "subject from memberships/3006/pt_BR"
    assert email.text == "text from memberships/3006/pt_BR\n"


def test_membership_in_the_default_locale_beats_the_plain_locale(tree):
    r = tree("en", "pt_BR", "memberships/3006/en")
    assert _render(r, "pt_BR", "3006").subject == "subject from memberships/3006/en"


def test_without_an_override_the_members_locale_is_used(tree):
    r = tree("en", "pt_BR", "memberships/3006/en")
    assert _render(r, "pt_BR", "9999").subject == "subject from pt_BR"
    assert _render(r, "pt_BR").subject == "subject from pt_BR"


def test_other_memberships_do_not_see_an_override(tree):
    r = tree("en", "memberships/3006/en")
    assert _render(r, "en", "42").subject == "subject from en"


def test_missing_locale_falls_back_to_the_default(tree):
    r = tree("en")
    assert _render(r, "pt_BR").subject == "subject from en"
    assert _render(r, "fr").subject == "subject from en"


def test_odd_locales_and_membership_ids_from_webhooks_stay_inside_the_folder(tree):
    r = tree("en", "memberships/3006/en")
    assert _render(r, "../en", "../memberships/3006").subject == "subject from en"
    assert _render(r, "memberships", "3006/../3006").subject == "subject from en"


def test_an_email_missing_in_the_locale_falls_back_to_the_default(tree):
    r = tree("en", extra={"pt_BR/other.html": "x", "pt_BR/other.txt": "x"})
    assert _render(r, "pt_BR").subject == "subject from en"


def test_both_parts_come_from_one_folder(tree):
    r = tree("en", extra={"pt_BR/hello.html": '{% extends "_base.html" %}'})
    with pytest.raises(TemplateMissing, match=r"pt_BR/hello.html has no matching hello.txt"):
        _render(r, "pt_BR")


def test_unknown_email_is_template_missing(tree):
    r = tree("en")
    with pytest.raises(TemplateMissing):
        r.render("nope", {}, locale="en")


# --- filters --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "currency", "locale", "expected"),
    [
        (1234.56, None, "en", "$1,234.56"),
        (1234.56, None, "pt_BR", "R$ 1.234,56"),
        ("49.9", None, "pt_BR", "R$ 49,90"),
        (Decimal("1000000"), "USD", "pt_BR", "$ 1.000.000,00"),
        (5, "eur", "en", "€5.00"),
        (-3.5, "GBP", "en", "-£3.50"),
        (10, "CAD", "en", "CAD 10.00"),
        (None, None, "en", ""),
    ],
)
def test_money_is_formatted_for_the_locale(value, currency, locale, expected):
    assert format_money(value, currency, locale) == expected


def test_money_refuses_what_is_not_a_number():
    with pytest.raises(ValueError, match="not a number"):
        format_money("ten", None, "en")


def test_dates_are_formatted_for_the_locale():
    assert format_date(date(2026, 3, 5), "en") == "March 5, 2026"
    assert format_date("2026-03-05T10:00:00+00:00", "pt_BR") == "5 de março de 2026"


def test_filters_use_the_members_locale_by_default(tree):
    r = tree(
        "en",
        extra={
            "pt_BR/hello.html": '{% extends "_base.html" %}{% block subject %}'
            "{{ price|money }} {{ day|date }} {{ price|money('USD', 'en') }}{% endblock %}",
            "pt_BR/hello.txt": "{{ day|date('en') }}",
        },
    )
    email = r.render("hello", {"price": 1234.5, "day": "2026-12-31"}, locale="pt_BR")
    assert email.subject == "R$ 1.234,50 31 de dezembro de 2026 $1,234.50"
    assert email.text == "December 31, 2026\n"


# --- safety ---------------------------------------------------------------------------------

HOSTILE = [
    ("{{ ''.__class__.__mro__ }}", SecurityError),
    ("{{ ''.__class__.__mro__[1].__subclasses__() }}", SecurityError),
    ("{{ config }}", UndefinedError),
    ("{{ settings.secret_key }}", UndefinedError),
    ("{{ self._TemplateReference__context }}", SecurityError),
    ("{{ cycler.__init__.__globals__.os.environ }}", SecurityError),
    ("{{ namespace.__init__.__globals__['os'].environ }}", SecurityError),
    ("{{ joiner.__init__.__globals__ }}", SecurityError),
    ("{{ lipsum.__globals__['os'].environ }}", UndefinedError),
    ("{{ request.environ }}", UndefinedError),
    ("{{ reasons.__class__ }}", SecurityError),
    ("{% set l = [1] %}{% for i in l %}{{ l.append(1) }}{% endfor %}", SecurityError),
    ("{{ range(1000000000)|list }}", RenderLimitError),
    (
        "{% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}{% endfor %}",
        RenderLimitError,
    ),
    (
        "{% for i in range(99999) %}{% for j in range(99999) %}{{ j }}{% endfor %}{% endfor %}",
        RenderLimitError,
    ),
    ("{{ 'x' * 1000000000 }}", RenderLimitError),
    ("{{ 'x'|center(1000000000) }}", RenderLimitError),
    ("{{ '{:>1000000000}'.format('x') }}", RenderLimitError),
    ("{{ '%1000000000d' % 1 }}", RenderLimitError),
    ("{{ 10 ** 10 ** 10 }}", RenderLimitError),
    (
        "{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}"
        "{% endfor %}{{ ns.s|length }}",
        RenderLimitError,
    ),
    (
        "{% macro f(s, n) %}{{ f(s ~ s, n - 1) if n else s|length }}{% endmacro %}{{ f('x', 64) }}",
        RenderLimitError,
    ),
    ("{% for x in [1] recursive %}{{ loop([1]) }}{% endfor %}", RecursionError),
]


@pytest.mark.parametrize(("source", "error"), HOSTILE)
def test_hostile_templates_are_refused(tree, monkeypatch, source, error):
    monkeypatch.setenv("FAREWELL_SECRET_KEY", "leak-me-if-you-can-0123456789")
    r = tree("en", extra={"en/hello.txt": source})
    with pytest.raises(error) as caught:
        r.render("hello", {"first_name": "Maria", "reasons": [{"id": "x"}]}, locale="en")
    assert "leak-me-if-you-can" not in str(caught.value)


def test_hostile_subject_block_is_refused_too(tree):
    r = tree(
        "en",
        extra={
            "en/hello.html": '{% extends "_base.html" %}'
            "{% block subject %}{{ ''.__class__ }}{% endblock %}"
        },
    )
    with pytest.raises(SecurityError):
        _render(r, "en")


def test_output_size_is_capped(tree):
    r = tree(
        "en", extra={"en/hello.txt": "{% for i in range(99999) %}{{ 'x' * 9999 }}{% endfor %}"}
    )
    with pytest.raises(RenderLimitError, match="longer than"):
        _render(r, "en")


def test_ordinary_numbers_are_still_fine(tree):
    r = tree("en", extra={"en/hello.txt": "{{ 250000 * 2 }} {{ '%d' % 1234567 }} {{ 2 ** 10 }}"})
    assert _render(r, "en").text == "500000 1234567 1024\n"


def test_templates_get_only_plain_data(tree):
    r = tree("en")
    with pytest.raises(TypeError, match="not plain data"):
        r.render("hello", {"settings": object()}, locale="en")
    assert plain({"a": [1, "b", None, {"c": date(2026, 1, 1)}]}) == {
        "a": [1, "b", None, {"c": date(2026, 1, 1)}]
    }


def test_html_is_autoescaped_and_text_is_not(tree):
    r = tree(
        "en",
        extra={
            "en/hello.html": (
                '{% extends "_base.html" %}{% block content %}{{ name }}{% endblock %}'
            ),
            "en/hello.txt": "{{ name }}",
        },
    )
    email = r.render("hello", {"name": "<b>Jo</b>"}, locale="en")
    assert "&lt;b&gt;Jo&lt;/b&gt;" in email.html
    assert email.text == "<b>Jo</b>\n"


def test_subject_and_preheader_are_plain_text(tree):
    r = tree(
        "en",
        extra={
            "en/hello.html": (
                '{% extends "_base.html" %}{% block subject %}Hi {{ name }}{% endblock %}'
                "{% block preheader %}For {{ name }}{% endblock %}"
                "{% block content %}{{ name }}{% endblock %}"
            ),
            "en/hello.txt": "{{ name }}",
        },
    )
    email = r.render("hello", {"name": """D'Arcy & <Jo> "Q\""""}, locale="en")
    assert email.subject == """Hi D'Arcy & <Jo> "Q\""""
    assert email.preheader == """For D'Arcy & <Jo> "Q\""""
    assert "&lt;Jo&gt;" in email.html
    # Unescaped once only: a name that itself reads "&amp;" keeps it.
    literal = r.render("hello", {"name": "Tom &amp; Jerry"}, locale="en")
    assert literal.subject == "Hi Tom &amp; Jerry"
