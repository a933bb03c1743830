"""A win-back with a way back: the membership's rejoin page behind one button, the offer's
validity in the member's language, and the `/r/<token>` redirect that records the click and
can never be pointed elsewhere. Real playbook files, real Redis, real outbox."""

from __future__ import annotations

import re
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from hooks.rejoin import is_person_navigation
from tests import payloads
from tests.conftest import BASE_URL, SECRET_KEY, parts
from tests.fixtures_seq import CREATED, cancel
from worker.playbook import PlaybookError, load_playbook
from worker.render import format_date
from worker.tokens import RejoinLink, Scope, make_rejoin_token, make_token

PLAIN = "https://members.example.com/join/"
GOLD = "https://members.example.com/register/gold/?coupon={code}"
PLAYBOOK = f"""
[default]
rejoin_url = "{PLAIN}"
steps = [
  {{ template = "winback", delay = "1d", stream = "marketing", incentive = "membership" }},
]

[incentives.gold_back]
code = "GOLD 20&MORE"
valid_days = 30
offer = {{ en = "20% off", pt_BR = "20% de desconto" }}

[memberships.3006]
incentive = "gold_back"
rejoin_url = "{GOLD}"
"""
BUTTON = re.compile(r'<a class="button"[^>]* href="([^"]+)"')
# What a browser sends when a person follows a link (Chromium's Fetch Metadata headers).
CLICK = {"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document", "Sec-Fetch-User": "?1"}


@pytest.fixture
def playbook(use_playbook, app):
    """The worker and the web app both use PLAYBOOK."""
    rt = use_playbook(PLAYBOOK)
    app.extensions["farewell"].settings = rt.settings
    return rt


def _winback(outbox, address="jane.doe@example.com"):
    [message] = [m for m in outbox() if m["To"].addresses[0].addr_spec == address]
    return parts(message)


def _path(url: str) -> str:
    assert url.startswith(f"{BASE_URL}/r/")
    return url[len(BASE_URL) :]


def test_the_winback_has_one_button_through_farewell_and_a_dated_offer(
    playbook, post_hook, clock, outbox
):
    cancel(post_hook)
    clock.advance(days=2)
    text, html = _winback(outbox)
    [button] = BUTTON.findall(html)
    assert button.startswith(f"{BASE_URL}/r/")
    assert "Rejoin Gold Club with your code</a>" in html
    assert f"Rejoin Gold Club with your code: {button}" in text
    until = format_date(datetime.now(UTC).date() + timedelta(days=30), "en")
    assert f"The offer holds until {until}." in html and f"The offer holds until {until}." in text
    assert "GOLD 20&amp;MORE" in html


def test_portuguese_members_read_the_date_their_way(playbook, post_hook, clock, outbox):
    cancel(post_hook, locale="pt_BR")
    clock.advance(days=2)
    text, html = _winback(outbox)
    until = datetime.now(UTC).date() + timedelta(days=30)
    assert re.search(rf"A oferta vale até {until.day} de \w+ de {until.year}\.", text)
    assert f"A oferta vale até {format_date(until, 'pt_BR')}." in html
    assert "Voltar para Gold Club com seu código</a>" in html


def test_the_redirect_records_the_click_and_forwards_with_the_code(
    playbook, post_hook, clock, outbox, client, runtime
):
    seq = cancel(post_hook)
    clock.advance(days=2)
    [button] = BUTTON.findall(_winback(outbox)[1])
    # A scanner's HEAD forwards but records nothing.
    head = client.head(_path(button))
    assert head.status_code == 302
    assert runtime.store.rejoin_clicks(seq) == {}
    response = client.get(_path(button), headers=CLICK)
    assert response.status_code == 302
    assert response.headers["Location"] == (
        "https://members.example.com/register/gold/?coupon=GOLD%2020%26MORE"
    )
    assert response.headers["Cache-Control"] == "no-store"
    first = runtime.store.rejoin_clicks(seq)
    assert list(first) == ["winback"]
    client.get(_path(button), headers=CLICK)  # a second click keeps the first time
    assert runtime.store.rejoin_clicks(seq) == first


def test_a_comeback_after_the_click_is_won_back(
    playbook, post_hook, clock, outbox, client, runtime
):
    seq = cancel(post_hook)
    clock.advance(days=2)
    [button] = BUTTON.findall(_winback(outbox)[1])
    client.get(_path(button), headers=CLICK)
    post_hook.memberpress(payloads.memberpress(CREATED, status="active", subscription_id="900"))
    clock.advance(seconds=0)
    sequence = runtime.store.load_sequence(seq)
    assert (sequence.status, sequence.outcome) == ("stopped", "won_back")
    assert runtime.store.rejoin_clicks(seq)["winback"] <= sequence.came_back_at


@pytest.mark.parametrize(
    ("method", "headers", "counted"),
    [
        ("GET", CLICK, True),
        ("HEAD", CLICK, False),
        ("GET", {}, False),  # curl, wget, most scanners
        ("GET", {**CLICK, "Sec-Fetch-User": "?0"}, False),  # no user activation
        ("GET", {k: v for k, v in CLICK.items() if k != "Sec-Fetch-User"}, False),
        ("GET", {**CLICK, "Sec-Fetch-Dest": "iframe"}, False),
        ("GET", {**CLICK, "Sec-Fetch-Mode": "no-cors"}, False),
        ("GET", {**CLICK, "Sec-Purpose": "prefetch"}, False),
        ("GET", {**CLICK, "Purpose": "prefetch"}, False),
    ],
    ids=[
        "click",
        "head",
        "bare",
        "no-activation",
        "no-user",
        "frame",
        "fetch",
        "sec-prefetch",
        "prefetch",
    ],
)
def test_only_a_persons_navigation_counts(method, headers, counted):
    assert is_person_navigation(method, headers) is counted


def test_curl_is_forwarded_at_once_and_not_counted(
    playbook, post_hook, clock, outbox, live_server, runtime
):
    seq = cancel(post_hook)
    clock.advance(days=2)
    [button] = BUTTON.findall(_winback(outbox)[1])
    url = button.replace(BASE_URL, live_server.url)
    for extra in ([], ["-I"], ["-A", "Mozilla/5.0 (Windows NT 10.0) Chrome/120"]):
        shown = subprocess.run(
            ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{redirect_url}", *extra, url],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert shown.startswith("302 https://members.example.com/register/gold/"), shown
    assert runtime.store.rejoin_clicks(seq) == {}


def test_a_click_in_chromium_counts(
    playbook, post_hook, clock, outbox, live_server, browser, runtime
):
    seq = cancel(post_hook)
    clock.advance(days=2)
    html = _winback(outbox)[1].replace(BASE_URL, live_server.url)
    page = browser.new_page()
    arrived = []
    page.route(
        "https://members.example.com/**",
        lambda route: (arrived.append(route.request.url), route.fulfill(body="welcome back")),
    )
    page.set_content(html)
    page.click("a.button")
    page.wait_for_url("https://members.example.com/**")
    assert arrived == ["https://members.example.com/register/gold/?coupon=GOLD%2020%26MORE"]
    assert list(runtime.store.rejoin_clicks(seq)) == ["winback"]


def _expired(link: RejoinLink) -> str:
    class LongAgo(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - 366 * 24 * 3600

    return URLSafeTimedSerializer(SECRET_KEY, salt="farewell.rejoin", signer=LongAgo).dumps(
        [link.sequence_id, link.step_id, link.code]
    )


def _edited(token: str) -> str:
    payload, stamp, signature = token.split(".")
    return f"{payload}.{stamp}.{'A' if signature[0] != 'A' else 'Q'}{signature[1:]}"


@pytest.mark.parametrize(
    "forge",
    [
        _edited,
        lambda t: "not-a-token",
        lambda t: t[:-3],
        "expired",
        "feedback_scope",
        "unknown_sequence",
    ],
    ids=["edited", "garbage", "truncated", "expired", "feedback-scope", "unknown-sequence"],
)
def test_a_bad_token_forwards_to_the_plain_rejoin_page(
    playbook, post_hook, clock, outbox, client, runtime, forge
):
    seq = cancel(post_hook)
    clock.advance(days=2)
    token = _path(BUTTON.findall(_winback(outbox)[1])[0])[len("/r/") :]
    if forge == "expired":
        token = _expired(RejoinLink(seq, "winback", "GOLD 20&MORE"))
    elif forge == "feedback_scope":
        token = make_token(SECRET_KEY, Scope.FEEDBACK, seq)
    elif forge == "unknown_sequence":
        token = make_rejoin_token(SECRET_KEY, RejoinLink("memberpress-0", "winback", "X"))
    else:
        token = forge(token)
    response = client.get(f"/r/{token}", headers=CLICK)
    assert response.status_code == 302
    assert response.headers["Location"] == PLAIN  # never elsewhere, and no code
    assert runtime.store.rejoin_clicks(seq) == {}


def test_no_plain_page_in_the_playbook_means_404_for_a_bad_token(use_playbook, app, client):
    rt = use_playbook(PLAYBOOK.replace(f'rejoin_url = "{PLAIN}"\n', ""))
    app.extensions["farewell"].settings = rt.settings
    response = client.get("/r/not-a-token")
    assert response.status_code == 404
    assert "This link is not valid" in response.get_data(as_text=True)


def test_open_redirect_attempts_go_to_the_plain_page(playbook, client):
    for path in ("/r/https:evil.example", "/r/x?next=//evil", "/r/evil.example%3F"):
        response = client.get(path)
        assert response.status_code == 302
        assert response.headers["Location"] == PLAIN
    # Slashes in the token: Werkzeug at most merges them into a path on this host.
    for path in ("/r/%2F%2Fevil.example", "/r/https:%2F%2Fevil.example"):
        response = client.get(path)
        location = response.headers.get("Location", "")
        assert response.status_code in (308, 404), path
        assert location == "" or location.startswith(("/r/", "http://localhost/r/")), location


# --- the playbook keys --------------------------------------------------------------------


def _load(tmp_path: Path, text: str):
    path = tmp_path / "playbook.toml"
    path.write_text(text)
    return load_playbook(path)


def test_rejoin_urls_per_membership_with_the_default_as_fallback(tmp_path):
    playbook = _load(tmp_path, PLAYBOOK)
    assert playbook.rejoin_url_for("3006") == GOLD
    assert playbook.rejoin_url_for("4120") == PLAIN
    assert playbook.rejoin_url_for(None) == PLAIN
    assert playbook.incentives["gold_back"].valid_days == 30


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ((GOLD, "javascript:alert(1)"), "must be an https:// URL"),
        ((GOLD, "https://x.example/?c={coupon}"), "{code} is its one placeholder"),
        ((GOLD, "https://x.example/a b"), "no spaces"),
        ((PLAIN, PLAIN + "?c={code}"), "the plain rejoin page: no {code}"),
        (("valid_days = 30", "valid_days = 0"), "valid_days must be a whole number"),
        (("valid_days = 30", 'valid_days = "30"'), "valid_days must be a whole number"),
    ],
    ids=["scheme", "placeholder", "space", "default-code", "zero-days", "text-days"],
)
def test_bad_rejoin_keys_are_named(tmp_path, edit, message):
    with pytest.raises(PlaybookError) as caught:
        _load(tmp_path, PLAYBOOK.replace(*edit))
    assert any(message in line for line in caught.value.errors), caught.value.errors
