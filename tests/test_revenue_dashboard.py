"""Money on the dashboard, end to end on the real stack: MemberPress prices through the
webhook become lost MRR; a rejoin click and a comeback fill the win-back funnel; the page
works at 375 px and 1200 px in a real Chromium."""

from __future__ import annotations

import csv
import io
import re
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from tests import payloads
from tests.conftest import BASE_URL, json_of
from tests.fixtures_insights import ADMIN_PASSWORD
from tests.fixtures_seq import CREATED
from tests.test_feedback_page import submit
from tests.test_insights import AUTH, figure
from tests.test_rejoin import CLICK

PLAYBOOK = """
[default]
rejoin_url = "https://members.example.com/join/"
steps = [
  { template = "feedback_request", delay = "0", stream = "transactional" },
  { template = "winback", delay = "1d", stream = "marketing" },
]
"""
BUTTON = re.compile(r'<a class="button"[^>]* href="([^"]+)"')
# Where the screenshots are also copied for a person to look at (see the report).
SHOTS = Path("/tmp") / "farewell-dashboard-shots"


@pytest.fixture
def settings(settings):
    return replace(settings, admin_password=ADMIN_PASSWORD)


@pytest.fixture
def stack(use_playbook, app):
    rt = use_playbook(PLAYBOOK)
    app.extensions["farewell"].settings = rt.settings
    return rt


def _cancel(post_hook, email, sub, mid, title, price, period, period_type) -> str:
    body = payloads.memberpress(
        email=email, subscription_id=sub, membership_id=mid, membership_title=title
    )
    body["data"].update(price=price, period=period, period_type=period_type)
    reply = post_hook.memberpress(body)
    assert reply.status_code == 202, reply.data
    return json_of(reply)["event_id"]


@pytest.fixture
def seeded(stack, client, post_hook, clock, outbox, survey_links):
    """Three cancellations with prices; ana answers; win-backs go out; bo follows the
    rejoin button and comes back."""
    gold, silver = (
        ("3006", "Gold Club", "20.00", "1", "months"),
        ("42", "Silver", "120.00", "1", "years"),
    )
    ids = {
        "ana": _cancel(post_hook, "ana@example.com", "1", *gold),
        "bo": _cancel(post_hook, "bo@example.com", "2", *gold),
        "cy": _cancel(post_hook, "cy@example.com", "3", *silver),
    }
    clock.advance(seconds=0)
    comment = "Too pricey for me right now"
    link = survey_links("ana@example.com")["too_expensive"]
    assert submit(client, link, reason="too_expensive", comment=comment).status_code == 303
    clock.advance(days=2)  # the win-backs go out
    [winback] = [
        m
        for m in outbox()
        if m["To"].addresses[0].addr_spec == "bo@example.com" and "List-Unsubscribe" in m
    ]
    [button] = BUTTON.findall(winback.get_body(("html",)).get_content())
    assert client.get(button[len(BASE_URL) :], headers=CLICK).status_code == 302
    back = payloads.memberpress(
        CREATED, email="bo@example.com", status="active", subscription_id="20"
    )
    assert post_hook.memberpress(back).status_code == 202
    clock.advance(seconds=0)
    return ids


def test_lost_mrr_by_reason_and_membership_and_the_funnel(seeded, client, stack):
    record = stack.store.load_cancellation(seeded["cy"])
    assert (str(record.mrr), record.currency) == ("10.00", "USD")
    html = client.get("/admin", headers=AUTH).get_data(as_text=True)
    assert figure(html, "cancellations") == "3"
    assert figure(html, "lost_mrr") == "$50.00"
    row = re.search(r'<tr data-reason="too_expensive">.*?</tr>', html, re.S).group(0)
    assert '<td data-count="1">1</td>' in row and "<td data-mrr>$20.00</td>" in row
    assert html.index('data-reason="too_expensive"') < html.index('data-reason="not_using"')
    gold = re.search(r'<tr data-membership="3006">.*?</tr>', html, re.S).group(0)
    assert "<td>2</td>" in gold and "$40.00" in gold
    silver = re.search(r'<tr data-membership="42">.*?</tr>', html, re.S).group(0)
    assert "$10.00" in silver
    assert figure(html, "winbacks_sent") == "3"
    assert figure(html, "rejoin_clicks") == "1"
    assert figure(html, "won_back_after_winback") == "1"
    assert figure(html, "recovered_mrr") == "$20.00"
    assert figure(html, "won_back_rate") == "33%"  # over win-backs sent
    assert '<a href="mailto:ana@example.com">ana@example.com</a>' in html
    # The membership filter narrows the money too.
    gold_only = client.get("/admin?membership=3006", headers=AUTH).get_data(as_text=True)
    assert figure(gold_only, "lost_mrr") == "$40.00"


def test_export_has_the_revenue_columns(seeded, client):
    response = client.get("/admin/export.csv", headers=AUTH)
    rows = list(csv.DictReader(io.StringIO(response.data.decode("utf-8-sig"))))
    by_email = {r["email"]: r for r in rows}
    assert (by_email["cy@example.com"]["mrr"], by_email["cy@example.com"]["currency"]) == (
        "10.00",
        "USD",
    )
    assert by_email["bo@example.com"]["winback_sent"] == "yes"
    assert by_email["bo@example.com"]["rejoin_clicked"] == "yes"
    assert by_email["ana@example.com"]["rejoin_clicked"] == "no"
    assert by_email["bo@example.com"]["outcome"] == "won_back"


@pytest.mark.browser
@pytest.mark.parametrize("width", [375, 1200])
def test_the_dashboard_fits_375_and_1200_px(seeded, live_server, _chromium, tmp_path, width):
    context = _chromium.new_context(
        viewport={"width": width, "height": 900},
        http_credentials={"username": "admin", "password": ADMIN_PASSWORD},
    )
    try:
        page = context.new_page()
        response = page.goto(f"{live_server.url}/admin")
        assert response is not None and response.status == 200
        page.locator("details summary").click()  # the weekly table too
        overflow = page.evaluate(
            "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"the page scrolls sideways by {overflow}px at {width}px"
        # Every table is whole on screen or scrolls inside its own box.
        clipped = page.evaluate(
            """() => [...document.querySelectorAll('table')].filter(t => {
                   const box = t.closest('.table-scroll');
                   return !box && t.getBoundingClientRect().right > window.innerWidth;
               }).length"""
        )
        assert clipped == 0
        assert page.locator('[data-figure="lost_mrr"]').inner_text() == "$50.00"
        # Chart labels stay a readable size: SVG text scales with its chart's width.
        sizes = page.evaluate(
            "() => [...document.querySelectorAll('svg.chart text')]"
            ".map(t => t.getBoundingClientRect().height)"
        )
        assert sizes and all(9 <= size <= 22 for size in sizes), (width, sizes)
        # ... and none is cut off at the top of its chart (the count above the tallest bar).
        clipped_labels = page.evaluate(
            """() => [...document.querySelectorAll('svg.chart text')].filter(t =>
                   t.getBoundingClientRect().top < t.ownerSVGElement.getBoundingClientRect().top
               ).length"""
        )
        assert clipped_labels == 0, width
        shot = tmp_path / f"admin-{width}.png"
        page.screenshot(path=shot, full_page=True)
        assert shot.stat().st_size > 1000
        SHOTS.mkdir(exist_ok=True)
        shutil.copy(shot, SHOTS / shot.name)
    finally:
        context.close()


def test_comments_filter_by_reason_and_the_trend_chart(seeded, client):
    html = client.get("/admin?reason=not_using", headers=AUTH).get_data(as_text=True)
    assert "No comments in this range yet." in html
    html = client.get("/admin?reason=too_expensive", headers=AUTH).get_data(as_text=True)
    assert "Too pricey for me right now" in html
    assert '<option value="too_expensive" selected>' in html
    [segment] = re.findall(r'<rect class="seg seg-0"[^>]*data-reason="([^"]+)"', html)
    assert segment == "too_expensive"
    assert "Reasons per month" in html and '<ul class="legend">' in html


def test_the_period_is_compared_with_the_one_before(seeded, client, stack):
    from datetime import UTC, datetime, timedelta

    today = datetime.now(UTC).date()
    week_ago = today - timedelta(days=6)
    html = client.get(f"/admin?from={week_ago}&to={today}", headers=AUTH).get_data(as_text=True)
    assert "Previous 7 days" in html
    assert figure(html, "previous_cancellations") == "0"
    assert figure(html, "previous_lost_mrr") == "n/a"
    assert "(+3)" in html


def test_comment_authors_by_name_and_unsubscribes_counted(seeded, client, outbox):
    [winback] = [
        m
        for m in outbox()
        if m["To"].addresses[0].addr_spec == "cy@example.com" and "List-Unsubscribe" in m
    ]
    url = winback["List-Unsubscribe"].strip("<>")
    one_click = client.post(url[len(BASE_URL) :], data={"List-Unsubscribe": "One-Click"})
    assert one_click.status_code == 200
    html = client.get("/admin", headers=AUTH).get_data(as_text=True)
    assert figure(html, "unsubscribes") == "1"
    # cy's win-back was Silver's: the membership filter keeps it there.
    silver = client.get("/admin?membership=42", headers=AUTH).get_data(as_text=True)
    gold = client.get("/admin?membership=3006", headers=AUTH).get_data(as_text=True)
    assert (figure(silver, "unsubscribes"), figure(gold, "unsubscribes")) == ("1", "0")
    assert 'Jane Doe <a href="mailto:ana@example.com">ana@example.com</a>' in html


TWO_WINBACKS = """
[default]
rejoin_url = "https://members.example.com/join/"
steps = [
  { template = "winback", delay = "1d", stream = "marketing" },
  { template = "winback_last", delay = "5d", stream = "marketing" },
]
"""


def _follow_and_come_back(client, post_hook, outbox, email, sub, last):
    """Follow the rejoin button of `email`'s first (or `last`) win-back, then rejoin."""
    [html] = [
        body
        for m in outbox()
        if m["To"].addresses[0].addr_spec == email and "List-Unsubscribe" in m
        for body in [m.get_body(("html",)).get_content()]
        if ("Last call." in body) is last
    ]
    [button] = BUTTON.findall(html)
    assert client.get(button[len(BASE_URL) :], headers=CLICK).status_code == 302
    back = payloads.memberpress(CREATED, email=email, status="active", subscription_id=sub)
    assert post_hook.memberpress(back).status_code == 202


def test_the_funnel_per_email(use_playbook, app, tmp_path, client, post_hook, clock, outbox):
    templates = tmp_path / "email_templates"
    shutil.copytree(app.extensions["farewell"].settings.templates_dir, templates)
    for ext in ("html", "txt"):
        for lang in ("en", "pt_BR"):
            text = (templates / lang / f"winback.{ext}").read_text()
            last = text.replace("{% endblock %}", "<p>Last call.</p>\n{% endblock %}")
            (templates / lang / f"winback_last.{ext}").write_text(last)
    rt = use_playbook(TWO_WINBACKS, templates_dir=templates)
    app.extensions["farewell"].settings = rt.settings
    gold = ("3006", "Gold Club", "20.00", "1", "months")
    for name, sub in (("ana", "1"), ("bo", "2"), ("cy", "3")):
        _cancel(post_hook, f"{name}@example.com", sub, *gold)
    clock.advance(days=2)  # the first win-back goes to all three; bo follows it and rejoins
    _follow_and_come_back(client, post_hook, outbox, "bo@example.com", "20", False)
    clock.advance(days=4)  # the last win-back to ana and cy; cy follows it and rejoins
    _follow_and_come_back(client, post_hook, outbox, "cy@example.com", "30", True)
    clock.advance(seconds=0)
    html = client.get("/admin", headers=AUTH).get_data(as_text=True)
    rows = dict(re.findall(r'<tr data-step="([^"]+)">(.*?)</tr>', html, re.S))
    assert list(rows) == ["winback", "winback_last"]  # in the order they go out
    cells = {step: re.findall(r"<td data-(\w+)>([^<]*)</td>", row) for step, row in rows.items()}
    assert cells["winback"] == [("sent", "3"), ("clicks", "1"), ("won", "1"), ("mrr", "$20.00")]
    assert cells["winback_last"] == [
        ("sent", "2"),
        ("clicks", "1"),
        ("won", "1"),
        ("mrr", "$20.00"),
    ]
    assert figure(html, "winbacks_sent") == "3"  # members reached, as before
    assert figure(html, "won_back_after_winback") == "2"
