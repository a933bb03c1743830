"""Templates that try to exhaust memory or time are refused before they do: each attack
below is refused with little memory allocated (measured with tracemalloc), by a counted
limit rather than the clock (the renderer gets a 60 s budget here, so a refusal cannot
come from it). In the renderer alone and through the admin preview over HTTP."""

from __future__ import annotations

import base64
import threading
import tracemalloc
from dataclasses import replace
from pathlib import Path

import pytest
import requests
from werkzeug.serving import make_server

from hooks import create_app
from worker.render import Renderer, RenderLimitError
from worker.sandbox import MAX_LOOP_STEPS, size_of

EXTRA_BYTES = 50 * 1024 * 1024

ATTACKS = {
    "str.center": "{{ 'x'.center(3000000000)|length }}",
    "nested format width": "{{ '{:{}}'.format('x', 300000000) }}",
    "format width, zero-padded": "{{ '{:>0000000001000000000}'.format('x') }}",
    "format precision": "{{ '{:.300000000f}'.format(1.5) }}",
    "format repeated field": "{{ ('{0}' * 100000).format('x' * 100000) }}",
    "str.join": "{{ ('y' * 20000).join('x' * 50000) }}",
    "str.join of a generator": "{{ ('y' * 20000).join(range(99999)|map('string')) }}",
    "nested loops over a string": (
        "{% set s = 'x' * 15000 %}{% for a in s %}{% for b in s %}{% endfor %}{% endfor %}"
    ),
    "loops in a macro": (
        "{% macro m(s) %}{% for a in s %}{% for b in s %}{% endfor %}{% endfor %}{% endmacro %}"
        "{{ m('x' * 15000) }}"
    ),
    "repeat of a repeat": "{{ ('x' * 100000) * 100000 }}",
    "list repeat": "{{ (['x' * 1000] * 1000) * 1000 }}",
    "%-format with a mapping": "{{ ('%(a)s' * 100000) % {'a': 'x' * 100000} }}",
    "%-format precision": "{{ '%.300000000f' % 1.5 }}",
    "%-format star width": "{{ '%*d' % (300000000, 1) }}",
    "str.replace": "{{ ('x' * 100000).replace('x', 'y' * 100000) }}",
    "replace filter": "{{ ('x' * 100000)|replace('x', 'y' * 100000) }}",
    "indent filter": "{{ ('\\n' * 100000)|indent(99999) }}",
    "indent filter, string width": "{{ ('\\n' * 100000)|indent('y' * 100000) }}",
    "wordwrap filter": "{{ ('x' * 500000)|wordwrap(1) }}",
    "wordwrap filter, long wrapstring": "{{ ('x ' * 200000)|wordwrap(2, wrapstring='y' * 99999) }}",
    "format filter": "{{ ('%(a)s' * 100000)|format(a='x' * 100000) }}",
    "center filter over map, joined": "{{ ('x' * 100000)|map('center', 99999)|join }}",
    "join filter": "{{ ('x' * 100000)|join('y' * 100000) }}",
    "expandtabs": "{{ ('\\t' * 100000).expandtabs(99999) }}",
    "translate": "{{ ('x' * 100000).translate({120: 'y' * 100000}) }}",
    "int.to_bytes": "{{ (1).to_bytes(3000000000, 'big')|length }}",
    "power": "{{ 999999999999999 ** 99999 }}",
    "lists of lists": (
        "{% set a = ['x' * 100000] %}{% set b = [a, a, a, a, a, a, a, a] %}"
        "{% set c = [b, b, b, b, b, b, b, b] %}{% set d = [c, c, c, c, c, c, c, c] %}"
        "{{ d|length }}{{ d }}"
    ),
    "lists of lists, concatenated": (
        "{% set a = ['x' * 100000] %}{% set b = [a, a, a, a, a, a, a, a] %}{{ (b ~ '')|length }}"
    ),
    "lists of lists, as JSON": (
        "{% set a = ['x' * 60000] %}{% set b = [a, a, a, a, a, a, a, a] %}{{ b|tojson(99999) }}"
    ),
    "many mid-sized values": (
        "{% for i in range(5000) %}{% set ns = namespace(s='y' * 400000) %}{% endfor %}"
    ),
    "a namespace growing in a loop": (
        "{% set ns = namespace(s='') %}{% for i in range(99999) %}{% set ns.s = ns.s ~ 'xxxxx' %}"
        "{% endfor %}{{ ns.s|length }}"
    ),
}


def _tree(tmp_path: Path, source: str) -> Path:
    files = {
        "_base.html": "{% block subject %}{% endblock %}|{% block content %}{% endblock %}",
        "en/hello.html": '{% extends "_base.html" %}{% block subject %}Hi{% endblock %}',
        "en/hello.txt": source,
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    return tmp_path


def _peak_while(action) -> tuple[BaseException | None, int]:
    tracemalloc.start()
    try:
        action()
    except Exception as exc:  # the caller asserts what it was
        caught: BaseException | None = exc
    else:
        caught = None
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return caught, peak


@pytest.mark.parametrize("source", ATTACKS.values(), ids=ATTACKS.keys())
def test_an_attack_is_refused_before_it_allocates(tmp_path, source):
    renderer = Renderer(_tree(tmp_path, source), "en", budget_seconds=60)
    caught, peak = _peak_while(lambda: renderer.render("hello", {}, locale="en"))
    assert isinstance(caught, RenderLimitError), caught
    assert "took too long" not in str(caught)  # counted, not timed
    assert peak < EXTRA_BYTES, f"{peak / 1e6:.0f} MB"


def test_nested_loops_stop_at_the_step_limit(tmp_path):
    source = ATTACKS["nested loops over a string"]
    renderer = Renderer(_tree(tmp_path, source), "en", budget_seconds=60)
    with pytest.raises(RenderLimitError, match=f"more than {MAX_LOOP_STEPS} steps"):
        renderer.render("hello", {}, locale="en")


REAL_USE = (
    "{% for r in reasons %}{{ loop.index }}. {{ r.label|upper|center(20) }}{% endfor %}"
    "{{ '{:>8}|{:,}'.format(name, 1234567) }} {{ '%-6s|%05.1f' % (name, 2.5) }}"
    "{{ ', '.join(reasons|map(attribute='label')) }} "
    "{{ reasons|map(attribute='label')|join('; ') }}"
    "{{ (name ~ ' ') * 3 }}{{ 'a\nb'|indent(2) }} {{ name|replace('a', 'A') }}"
    "{{ '%d'|format(1234567) }} {{ [name, name]|join }} {{ {'a': name}|tojson }}"
    "{% set ns = namespace(s='') %}{% for i in range(300) %}{% set ns.s = ns.s ~ i %}{% endfor %}"
    "{{ ns.s|length }} {{ 2 ** 40 }} {{ (text|wordwrap(10)).count('\n') }}"
)


def test_ordinary_templates_stay_well_inside_the_limits(tmp_path):
    renderer = Renderer(_tree(tmp_path, REAL_USE), "en")
    reasons = [{"label": "Too expensive"}, {"label": "Not using it"}]
    text = renderer.render(
        "hello", {"reasons": reasons, "name": "Maria", "text": "word " * 100}, locale="en"
    ).text
    assert text == (
        "1.    TOO EXPENSIVE    2.     NOT USING IT    "
        "   Maria|1,234,567 Maria |002.5"
        "Too expensive, Not using it Too expensive; Not using it"
        "Maria Maria Maria a\n  b MAriA1234567 MariaMaria "
        '{"a": "Maria"}'
        "790 1099511627776 49\n"
    )


def test_size_of_counts_shared_items_each_time_and_stops_early():
    item = ["x" * 10]
    assert size_of([item, item]) == 1 + 2 * (1 + 11)
    nested: list = ["x"]
    for _ in range(60):
        nested = [nested, nested]  # 2**60 items if walked in full
    assert size_of(nested, limit=1000) > 1000


# --- through the admin preview, over HTTP ---------------------------------------------------

PASSWORD = "limits-admin-pw-0123"
AUTH = {"Authorization": "Basic " + base64.b64encode(f"admin:{PASSWORD}".encode()).decode()}


@pytest.mark.parametrize(
    "name", ["str.center", "nested format width", "str.join", "nested loops over a string"]
)
def test_the_admin_preview_refuses_an_attack_too(template_copy, runtime, name):
    template_copy.edit("en/feedback_request.txt", "{{ site_name }}", ATTACKS[name])
    settings = replace(template_copy.settings, admin_password=PASSWORD)
    app = create_app({"TESTING": True, "SETTINGS": settings})
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}/admin/templates/feedback_request/html?locale=en"
    try:
        responses: list[requests.Response] = []
        caught, peak = _peak_while(
            lambda: responses.append(requests.get(url, headers=AUTH, timeout=120))
        )
    finally:
        server.shutdown()
        thread.join(5)
    assert caught is None
    [response] = responses
    assert response.status_code == 422, response.text[:300]
    assert "could not be rendered: stopped: " in response.text
    assert peak < EXTRA_BYTES, f"{peak / 1e6:.0f} MB"
