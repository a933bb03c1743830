"""Insights figures: pure computations on hand-made records, then the dashboard, the CSV
export and the report command on data seeded through real webhooks and survey posts."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import replace
from datetime import UTC, date, datetime

import pytest

from tests import payloads
from tests.conftest import json_of
from tests.fixtures_insights import ADMIN_PASSWORD
from tests.test_feedback_page import submit
from worker.insights import (
    Entry,
    FilterError,
    Filters,
    compute,
    csv_safe,
    export_rows,
    parse_filters,
    weekly,
)
from worker.reasons import Reason
from worker.store import Cancellation, Feedback, SequenceOutcome

REASONS = [
    Reason("too_expensive", {"en": "Too expensive", "pt_BR": "Caro demais"}),
    Reason("not_using", {"en": "Not using it"}),
    Reason("other", {"en": "Something else"}),
]


def ts(day: str, hour: int = 12) -> float:
    return datetime.fromisoformat(day).replace(hour=hour, tzinfo=UTC).timestamp()


def entry(
    eid: str,
    day: str,
    membership: str = "3006",
    reason: str | None = None,
    comment: str = "",
    outcome: str = "",
    answered: str | None = None,
    sequence: bool = True,
    no_email: bool = False,
) -> Entry:
    c = Cancellation(
        eid, ts(day), f"key-{eid}", membership, f"Plan {membership}", "memberpress", eid
    )
    came_back = ts(day, 20) if outcome else None
    seq = SequenceOutcome(outcome, came_back) if sequence else None
    fb = (
        Feedback(eid, reason, comment, no_email, ts(answered or day, 13))
        if reason is not None
        else None
    )
    return Entry(c, seq, fb, f"{eid}@example.com")


ENTRIES = [
    entry(
        "a", "2026-11-02", reason="too_expensive", comment="older comment", answered="2026-11-03"
    ),
    entry("b", "2026-11-04", reason="too_expensive", outcome="won_back"),
    entry(
        "c",
        "2026-11-05",
        membership="77",
        reason="retired_reason",
        comment="newer <b>",
        answered="2026-11-20",
    ),
    entry("d", "2026-11-18", outcome="came_back"),
    entry("e", "2026-11-19", sequence=False),  # cooldown: never asked
    entry("f", "2026-11-19", reason="", comment="", no_email=True),
]


def test_figures_over_everything():
    got = compute(ENTRIES, Filters(), REASONS)
    assert got.cancellations == 6
    assert (got.asked, got.answered) == (5, 4)
    assert got.response_rate == pytest.approx(0.8)
    assert (got.won_back, got.came_back, got.no_email) == (1, 1, 1)
    assert [(w.start, w.count) for w in got.weeks] == [
        (date(2026, 11, 2), 3),
        (date(2026, 11, 9), 0),
        (date(2026, 11, 16), 3),
    ]
    assert [w.label for w in got.weeks] == ["2026-W45", "2026-W46", "2026-W47"]
    shares = {r.id: (r.label, r.count, round(r.share, 3)) for r in got.reasons}
    assert shares == {
        "too_expensive": ("Too expensive", 2, 0.667),
        "not_using": ("Not using it", 0, 0.0),
        "other": ("Something else", 0, 0.0),
        "retired_reason": ("retired_reason", 1, 0.333),  # history survives a removed reason
    }
    # Most answers first; ties keep the configured order.
    assert [r.id for r in got.reasons] == ["too_expensive", "retired_reason", "not_using", "other"]
    assert [c.text for c in got.comments] == ["newer <b>", "older comment"]


def test_labels_follow_the_locale():
    got = compute(ENTRIES, Filters(), REASONS, locale="pt_BR")
    labels = {r.id: r.label for r in got.reasons}
    assert labels["too_expensive"] == "Caro demais"
    assert labels["not_using"] == "Not using it"  # falls back to the default locale


def test_filters_by_membership_and_dates():
    got = compute(ENTRIES, Filters(membership_id="3006"), REASONS)
    assert got.cancellations == 5 and got.answered == 3
    got = compute(ENTRIES, Filters(since=date(2026, 11, 4), until=date(2026, 11, 18)), REASONS)
    assert got.cancellations == 3  # b, c, d: both ends inclusive
    assert [(w.start, w.count) for w in got.weeks] == [
        (date(2026, 11, 2), 2),
        (date(2026, 11, 9), 0),
        (date(2026, 11, 16), 1),
    ]
    assert compute(ENTRIES, Filters(membership_id="nope"), REASONS).response_rate is None


def test_no_data_no_weeks_and_a_long_range_is_capped():
    assert weekly([], Filters()) == []
    weeks = weekly([], Filters(since=date(2000, 1, 3), until=date(2026, 11, 23)))
    assert len(weeks) == 260 and weeks[-1].start == date(2026, 11, 23)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("", "2026-13-01", ""), "'from' date must look like 2026-01-31"),
        (("", "", "yesterday"), "'to' date must look like"),
        (("", "2026-11-20", "2026-11-01"), "is after the 'to' date"),
    ],
)
def test_bad_filter_values_are_explained(args, message):
    with pytest.raises(FilterError, match=message):
        parse_filters(*args)


def test_parse_filters_ignores_blanks():
    assert parse_filters(" 3006 ", "2026-11-01", " ") == Filters("3006", date(2026, 11, 1), None)


@pytest.mark.parametrize(
    ("cell", "safe"),
    [
        ('=HYPERLINK("x")', '\'=HYPERLINK("x")'),
        ("+1", "'+1"),
        ("-2", "'-2"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("plain", "plain"),
        ("", ""),
        ("a=b", "a=b"),
    ],
)
def test_csv_cells_that_look_like_formulas_are_quoted(cell, safe):
    assert csv_safe(cell) == safe


def test_export_rows_one_per_cancellation_oldest_first():
    rows = list(export_rows(ENTRIES, Filters(), REASONS))
    assert rows[0][:3] == ["cancelled_at", "email", "membership_id"]
    assert [r[1] for r in rows[1:]] == [f"{x}@example.com" for x in "abcdef"]
    a = dict(zip(rows[0], rows[1], strict=True))
    assert a["cancelled_at"] == "2026-11-02T12:00:00Z"
    assert (a["reason_id"], a["reason"], a["comment"]) == (
        "too_expensive",
        "Too expensive",
        "older comment",
    )
    assert a["answered_at"] == "2026-11-03T13:00:00Z" and a["survey_sent"] == "yes"
    e = dict(zip(rows[0], rows[5], strict=True))
    assert (e["survey_sent"], e["reason_id"], e["outcome"]) == ("no", "", "")


# --- through the real app -----------------------------------------------------------------


@pytest.fixture
def settings(settings):
    return replace(settings, admin_password=ADMIN_PASSWORD)


AUTH = {
    "Authorization": "Basic "
    + __import__("base64").b64encode(f"admin:{ADMIN_PASSWORD}".encode()).decode()
}


def seed(client, post_hook, clock, survey_links, runtime) -> dict[str, str]:
    """Five cancellations through the MemberPress webhook, three survey answers through the
    survey page, then one member back on their own before the win-back email and one back
    right after it (a win-back), both through `subscription-created` webhooks."""
    members = [
        ("ana@example.com", "1", "3006", "Gold Club"),
        ("bo@example.com", "2", "3006", "Gold Club"),
        ("cy@example.com", "3", "3006", "Gold Club"),
        ("=cmd@example.com", "4", "42", "Silver"),
        ("eve@example.com", "5", "42", "Silver"),
    ]
    ids = {}
    for email, sub, mid, title in members:
        reply = post_hook.memberpress(
            payloads.memberpress(
                email=email, subscription_id=sub, membership_id=mid, membership_title=title
            )
        )
        assert reply.status_code == 202
        ids[email] = json_of(reply)["event_id"]
    clock.advance(seconds=0)
    answers = [
        ("ana@example.com", "too_expensive", "Too pricey <script>alert(1)</script>"),
        ("bo@example.com", "too_expensive", ""),
        ("=cmd@example.com", "not_using", '=HYPERLINK("http://evil")'),
    ]
    for email, reason, comment in answers:
        response = submit(client, survey_links(email)[reason], reason=reason, comment=comment)
        assert response.status_code == 303

    def comes_back(email: str, subscription_id: str) -> None:
        created = payloads.memberpress(
            "subscription-created", email=email, status="active", subscription_id=subscription_id
        )
        assert post_hook.memberpress(created).status_code == 202
        clock.advance(seconds=0)

    comes_back("eve@example.com", "50")
    clock.advance(days=14, minutes=1)  # the win-back emails go out
    comes_back("bo@example.com", "20")
    return ids


def figure(html: str, name: str) -> str:
    return re.search(rf'data-figure="{name}">([^<]*)<', html).group(1)


def test_admin_is_off_without_a_password(settings, runtime):
    from hooks import create_app

    app = create_app({"TESTING": True, "SETTINGS": replace(settings, admin_password="")})
    client = app.test_client()
    for path in ("/admin", "/admin/export.csv", "/admin/connections"):
        reply = client.get(path)
        # Off, and it says how to turn it on (not a bare 404).
        assert reply.status_code == 404
        assert "Set FAREWELL_ADMIN_PASSWORD" in reply.get_data(as_text=True)


@pytest.mark.parametrize("path", ["/admin", "/admin/", "/admin/export.csv"])
def test_admin_needs_the_password(client, path):
    response = client.get(path)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic realm=")
    wrong = client.get(path, auth=("admin", "nope"))
    assert wrong.status_code == 401
    ok = client.get(path, auth=("admin", ADMIN_PASSWORD))
    assert ok.status_code == 200
    assert ok.headers["Cache-Control"] == "no-store"  # members' words stay out of caches


def test_dashboard_numbers_match_the_seeded_webhooks(
    client, post_hook, clock, survey_links, runtime
):
    seed(client, post_hook, clock, survey_links, runtime)
    response = client.get("/admin", headers=AUTH)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert figure(html, "cancellations") == "5"
    assert (figure(html, "answered"), figure(html, "asked")) == ("3", "5")
    assert figure(html, "response_rate") == "60%"
    assert (figure(html, "won_back"), figure(html, "came_back")) == ("1", "1")
    counts = dict(re.findall(r'<tr data-reason="(\w+)">.*?data-count="(\d+)"', html))
    assert counts["too_expensive"] == "2" and counts["not_using"] == "1" and counts["other"] == "0"
    assert "It costs more than it&#39;s worth to me" in html
    # One week, five cancellations, drawn as SVG on the server.
    assert re.search(r'<rect class="bar" [^>]*data-count="5"', html)
    assert "<svg" in html and "<script" not in html
    assert "Too pricey &lt;script&gt;alert(1)&lt;/script&gt;" in html
    comments = re.findall(r"<blockquote>(.*?)</blockquote>", html)
    assert comments == [
        "=HYPERLINK(&#34;http://evil&#34;)",
        "Too pricey &lt;script&gt;alert(1)&lt;/script&gt;",
    ]


def test_dashboard_filters_by_membership_and_date(client, post_hook, clock, survey_links, runtime):
    seed(client, post_hook, clock, survey_links, runtime)
    html = client.get("/admin?membership=42", headers=AUTH).get_data(as_text=True)
    assert figure(html, "cancellations") == "2"
    assert (figure(html, "answered"), figure(html, "won_back"), figure(html, "came_back")) == (
        "1",
        "0",
        "1",
    )
    assert '<option value="42" selected>Silver (42)</option>' in html
    today = datetime.now(UTC).date().isoformat()
    html = client.get(f"/admin?from={today}&to={today}", headers=AUTH).get_data(as_text=True)
    assert figure(html, "cancellations") == "5"
    html = client.get("/admin?to=2020-01-01", headers=AUTH).get_data(as_text=True)
    assert figure(html, "cancellations") == "0" and figure(html, "response_rate") == "n/a"
    bad = client.get("/admin?from=soon", headers=AUTH)
    assert bad.status_code == 400
    assert "must look like 2026-01-31" in bad.get_data(as_text=True)


def test_csv_export(client, post_hook, clock, survey_links, runtime):
    seed(client, post_hook, clock, survey_links, runtime)
    response = client.get("/admin/export.csv", headers=AUTH)
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"].startswith("attachment; filename=")
    rows = list(csv.DictReader(io.StringIO(response.data.decode("utf-8-sig"))))
    assert len(rows) == 5
    by_email = {r["email"]: r for r in rows}
    ana = by_email["ana@example.com"]
    assert (ana["membership_id"], ana["membership"], ana["source"]) == (
        "3006",
        "Gold Club",
        "memberpress",
    )
    assert (ana["reason_id"], ana["reason"]) == (
        "too_expensive",
        "It costs more than it's worth to me",
    )
    assert ana["comment"] == "Too pricey <script>alert(1)</script>"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", ana["cancelled_at"])
    assert ana["answered_at"] and ana["no_email"] == "no" and ana["outcome"] == ""
    assert by_email["bo@example.com"]["outcome"] == "won_back"
    assert by_email["bo@example.com"]["came_back_at"] >= by_email["bo@example.com"]["answered_at"]
    assert by_email["eve@example.com"]["outcome"] == "came_back"
    assert (
        by_email["eve@example.com"]["reason_id"] == ""
        and by_email["eve@example.com"]["answered_at"] == ""
    )
    # Cells a spreadsheet would run as formulas are quoted.
    assert "'=cmd@example.com" in by_email
    assert by_email["'=cmd@example.com"]["comment"] == '\'=HYPERLINK("http://evil")'
    filtered = client.get("/admin/export.csv?membership=42", headers=AUTH)
    assert len(list(csv.DictReader(io.StringIO(filtered.data.decode("utf-8-sig"))))) == 2


def test_a_replayed_cancellation_counts_once(client, post_hook, work, runtime):
    from worker import jobs

    event_id = json_of(post_hook.memberpress())["event_id"]
    work()
    assert post_hook.memberpress().status_code == 200  # duplicate delivery
    jobs.handle_event(event_id)  # and a re-run job (RQ is at-least-once)
    assert len(runtime.store.cancellations()) == 1
    html = client.get("/admin", headers=AUTH).get_data(as_text=True)
    assert figure(html, "cancellations") == "1"


def test_report_command_prints_the_same_figures(
    client, post_hook, clock, survey_links, runtime, runner
):
    seed(client, post_hook, clock, survey_links, runtime)
    result = runner.invoke(args=["report"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert re.search(r"^Cancellations\s+5$", out, re.M)
    assert re.search(r"^Survey answered\s+3 of 5 asked \(60%\)$", out, re.M)
    assert re.search(r"^Won back\s+1 \(25% of 4 win-backs sent\)$", out, re.M)
    assert re.search(r"^Came back on own\s+1$", out, re.M)
    assert re.search(r"It costs more than it's worth to me\s+2\s+67%\s+\S.*\[too_expensive\]", out)
    # The money the dashboard shows, and who wrote each comment.
    assert re.search(r"^Unsubscribed\s+0 \(through an email's link\)$", out, re.M)
    assert re.search(r"^Lost MRR\s+100\.00 USD$", out, re.M)
    assert re.search(r"^Recovered MRR\s+20\.00 USD$", out, re.M)
    assert re.search(r"^  Gold Club\s+3\s+60\.00 USD$", out, re.M)
    assert re.search(r"^  winback\s+4\s+0\s+1\s+20\.00 USD$", out, re.M)
    assert "ana@example.com  It costs more than it's worth to me · Gold Club: Too pricey" in out
    assert "Too pricey <script>alert(1)</script>" in out
    assert out.index("HYPERLINK") < out.index("Too pricey")  # newest first
    result = runner.invoke(args=["report", "--membership", "42"])
    assert "Silver" in result.output and re.search(r"^Cancellations\s+2$", result.output, re.M)
    result = runner.invoke(args=["report", "--since", "tomorrow"])
    assert result.exit_code == 2 and "must look like" in result.output


def test_report_lines_carry_no_control_characters():
    from hooks.report import format_report

    evil = entry("z", "2026-11-02", reason="other", comment="hi\x1b]0;pwned\x07\nthere")
    out = format_report(compute([evil], Filters(), REASONS))
    assert "\x1b" not in out and "\x07" not in out
    assert "Something else · Plan 3006: hi?]0;pwned? there" in out


def test_a_cancellation_inside_the_cooldown_counts_but_was_not_asked(
    client, post_hook, clock, outbox, runtime
):
    post_hook.memberpress(payloads.memberpress(subscription_id="1"))
    clock.advance(seconds=0)
    post_hook.memberpress(payloads.memberpress(subscription_id="2", membership_id="42"))
    clock.advance(seconds=0)
    assert len(outbox()) == 1  # the cooldown: one sequence, one email
    html = client.get("/admin", headers=AUTH).get_data(as_text=True)
    assert figure(html, "cancellations") == "2"
    assert (figure(html, "answered"), figure(html, "asked")) == ("0", "1")
    rows = list(
        csv.DictReader(
            io.StringIO(client.get("/admin/export.csv", headers=AUTH).data.decode("utf-8-sig"))
        )
    )
    assert [(r["membership_id"], r["survey_sent"]) for r in rows] == [("3006", "yes"), ("42", "no")]


def test_an_erased_member_still_counts_without_who_they_were(
    client, post_hook, clock, survey_links, runtime
):
    post_hook.memberpress()
    clock.advance(seconds=0)
    submit(client, survey_links()["other"], reason="other", comment="Jane here, moving away")
    assert post_hook.memberpress(payloads.memberpress_member_deleted()).status_code == 202
    clock.advance(seconds=0)
    html = client.get("/admin", headers=AUTH).get_data(as_text=True)
    assert figure(html, "cancellations") == "1"
    assert figure(html, "answered") == "0"
    assert "moving away" not in html
    export = client.get("/admin/export.csv", headers=AUTH).data.decode("utf-8-sig")
    [row] = list(csv.DictReader(io.StringIO(export)))
    assert (row["email"], row["comment"], row["membership"]) == ("", "", "Gold Club")
    assert "jane" not in export.lower()


def test_previous_period_has_the_same_length():
    from worker.insights import previous_period

    assert previous_period(Filters("3006", date(2026, 11, 1), date(2026, 11, 30))) == Filters(
        "3006", date(2026, 10, 2), date(2026, 10, 31)
    )
    assert previous_period(Filters(since=date(2026, 11, 1))) is None
    assert previous_period(Filters(since=date(1000, 1, 1), until=date(2000, 1, 1))) is None


def test_reasons_per_month_fold_the_rest_into_other():
    from worker.insights import TREND_OTHER, monthly_reasons

    def answer(n: int, day: date, reason: str) -> Entry:
        at = datetime(day.year, day.month, day.day, 12, tzinfo=UTC).timestamp()
        c = Cancellation(f"e{n}", at, f"k{n}", "3006", "Gold", "memberpress", f"e{n}")
        return Entry(c, SequenceOutcome(""), Feedback(f"e{n}", reason, "", False, at))

    reasons = ["a", "a", "a", "b", "b", "c", "d", "e", "f"]
    answers = [answer(i, date(2026, 9, 3), r) for i, r in enumerate(reasons)]
    answers.append(answer(99, date(2026, 11, 20), "a"))
    months = monthly_reasons(answers, Filters())
    assert [m.month for m in months] == [date(2026, 9, 1), date(2026, 10, 1), date(2026, 11, 1)]
    keys = [k for k, _ in months[0].counts]
    assert keys[:2] == ["a", "b"] and keys[-1] == TREND_OTHER and len(keys) == 6
    assert dict(months[0].counts)[TREND_OTHER] == 1  # the sixth reason
    assert months[1].total == 0 and dict(months[2].counts)["a"] == 1
    assert months[0].label == "Sep 2026"


def test_report_names_the_row_of_cancellations_without_a_membership():
    from hooks.report import format_report

    # MemberPress sends "membership": false for a membership deleted in WordPress.
    deleted = entry("m", "2026-11-02", membership="")
    deleted = replace(deleted, cancellation=replace(deleted.cancellation, membership_title=""))
    out = format_report(compute([deleted], Filters(), REASONS))
    assert re.search(r"^  \(none\)\s+1\s", out, re.M)
