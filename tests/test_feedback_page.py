"""`/feedback/<token>`: the one-click exit survey, driven from the links of a real
generated email, against a real Redis."""

from __future__ import annotations

import re
import time

import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from hooks.feedback_text import COMMENT_MAX, TEXT
from tests import payloads
from tests.conftest import BASE_URL, SECRET_KEY, json_of
from worker.store import feedback_key
from worker.tokens import Scope, make_token

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def path_of(url: str) -> str:
    assert url.startswith(BASE_URL)
    return url[len(BASE_URL) :]


def csrf_of(response) -> str:
    return CSRF.search(response.get_data(as_text=True)).group(1)


@pytest.fixture
def cancelled(post_hook, work, survey_links):
    """Jane cancels; returns (sequence id, survey links by reason)."""
    event_id = json_of(post_hook.memberpress())["event_id"]
    work()
    return event_id, survey_links()


def feedback_keys(runtime) -> list[str]:
    return list(runtime.store.redis.scan_iter(feedback_key("*")))


def submit(client, url: str, **form):
    page = client.get(path_of(url))
    data = {"csrf_token": csrf_of(page), **form}
    return client.post(path_of(url).split("?")[0], data=data)


def test_the_link_opens_a_form_with_that_reason_preselected(client, cancelled, runtime):
    _seq, links = cancelled
    assert set(links) == {
        "too_expensive",
        "not_using",
        "missing_features",
        "switched_service",
        "technical_issues",
        "customer_service",
        "temporary",
        "other",
    }
    response = client.get(path_of(links["not_using"]))
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert '<html lang="en">' in html
    assert "<legend>What was the main reason you cancelled?</legend>" in html
    radios = re.findall(
        r'<input type="radio" name="reason" id="reason-(\w+)" value="\w+"( checked)?', html
    )
    assert [r for r, _ in radios] == list(links)  # every reason, in the configured order
    assert [r for r, checked in radios if checked] == ["not_using"]
    assert '<label for="comment">' in html and f'maxlength="{COMMENT_MAX}"' in html
    assert 'type="checkbox" id="no_email" name="no_email"' in html
    assert "I wasn&#39;t using it enough" in html or "I wasn't using it enough" in html
    assert response.headers["Content-Security-Policy"].startswith("default-src 'none'")
    # Only our own static script (no inline code: the CSP allows 'self' scripts alone).
    assert re.findall(r"<script[^>]*>", html) == ['<script src="/static/feedback.js" defer>']
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    # Without scripts the clicked reason waits for the Confirm button.
    assert "You chose “I wasn&#39;t using it enough”. Press Confirm to send it." in html
    assert '<button type="submit" id="send">Confirm</button>' in html


def test_get_records_nothing(client, cancelled, runtime):
    _seq, links = cancelled
    for url in links.values():  # a link scanner fetching every button
        assert client.get(path_of(url)).status_code == 200
        assert client.head(path_of(url)).status_code == 200
    assert feedback_keys(runtime) == []
    assert not runtime.store.is_suppressed("jane.doe@example.com")


def test_post_records_the_answer_once_and_thanks(client, cancelled, runtime):
    seq, links = cancelled
    response = submit(client, links["too_expensive"], reason="too_expensive", comment=" Pricey ")
    assert response.status_code == 303
    assert response.headers["Location"].endswith(
        path_of(links["too_expensive"]).split("?")[0] + "/thanks"
    )
    feedback = runtime.store.load_feedback(seq)
    assert (feedback.reason, feedback.comment, feedback.no_email) == (
        "too_expensive",
        "Pricey",
        False,
    )
    assert len(feedback_keys(runtime)) == 1
    thanks = client.get(response.headers["Location"])
    assert thanks.status_code == 200
    text = thanks.get_data(as_text=True)
    assert "Thank you, truly." in text
    assert "won&#39;t email you again" not in text and "won't email you again" not in text
    assert "coupon" not in text.lower() and "<form" not in text  # no upsell, nothing to fill


def test_resubmitting_updates_the_answer(client, cancelled, runtime):
    seq, links = cancelled
    submit(client, links["too_expensive"], reason="too_expensive")
    first_at = runtime.store.load_feedback(seq).at
    response = submit(client, links["other"], reason="other", comment="Moving abroad")
    assert response.status_code == 303
    feedback = runtime.store.load_feedback(seq)
    assert (feedback.reason, feedback.comment) == ("other", "Moving abroad")
    assert feedback.at >= first_at
    assert len(feedback_keys(runtime)) == 1
    # Coming back to the page shows the answer as it stands.
    html = client.get(path_of(links["other"]).split("?")[0]).get_data(as_text=True)
    assert 'value="other" checked' in html and "Moving abroad</textarea>" in html


def test_post_without_csrf_is_refused(client, cancelled, runtime):
    _seq, links = cancelled
    url = path_of(links["too_expensive"]).split("?")[0]
    client.get(url)  # the session has a token, the form does not send it
    response = client.post(url, data={"reason": "too_expensive"})
    assert response.status_code == 400
    assert "This form has expired" in response.get_data(as_text=True)
    response = client.post(url, data={"reason": "too_expensive", "csrf_token": "forged"})
    assert response.status_code == 400
    assert feedback_keys(runtime) == []


def test_dont_email_me_suppresses_the_member(client, cancelled, runtime, clock, outbox):
    seq, links = cancelled
    response = submit(client, links["temporary"], reason="temporary", no_email="1")
    assert response.status_code == 303
    assert runtime.store.load_feedback(seq).no_email is True
    entry = runtime.store.suppression("jane.doe@example.com")
    assert entry is not None and entry.reason == "asked_no_email"
    thanks = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "email you again" in thanks
    # The win-back planned for day 14 is cancelled at once, and nothing more is sent.
    assert clock.scheduled() == []
    clock.advance(days=15)
    assert len(outbox()) == 1


def test_without_the_box_the_winback_still_comes(client, cancelled, clock, outbox):
    seq, links = cancelled
    submit(client, links["temporary"], reason="temporary")
    assert clock.scheduled() == [f"step-{seq}-winback"]
    clock.advance(days=15)
    assert len(outbox()) == 2


def test_only_no_email_is_a_valid_answer(client, cancelled, runtime):
    seq, links = cancelled
    url = path_of(links["other"]).split("?")[0]
    assert submit(client, BASE_URL + url, no_email="1").status_code == 303
    assert runtime.store.load_feedback(seq).reason == ""


def _expired_token(sequence_id: str) -> str:
    class LongAgo(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - 121 * 24 * 3600

    return URLSafeTimedSerializer(SECRET_KEY, salt="farewell.feedback", signer=LongAgo).dumps(
        sequence_id
    )


def _edited(token: str) -> str:
    # Change the signature's first character: its last one carries unused padding bits,
    # so some edits there decode to the same signature.
    payload, stamp, signature = token.split(".")
    first = "A" if signature[0] != "A" else "Q"
    return f"{payload}.{stamp}.{first}{signature[1:]}"


def _other_payload(token: str) -> str:
    # Another sequence id with this token's signature.
    other = make_token(SECRET_KEY, Scope.FEEDBACK, "memberpress-000000000000000000000000")
    return other.split(".")[0] + "." + ".".join(token.split(".")[1:])


@pytest.mark.parametrize(
    ("forge", "message"),
    [
        (_edited, "This link is not valid"),
        (_other_payload, "This link is not valid"),
        (lambda t: "not-a-token", "This link is not valid"),
        ("expired", "This link has expired"),
        ("unsubscribe_scope", "This link is not valid"),
        ("unknown_sequence", "This survey is no longer open"),
    ],
    ids=["edited", "other-payload", "garbage", "expired", "other-scope", "unknown-sequence"],
)
def test_bad_tokens_get_a_404_page_and_record_nothing(client, cancelled, runtime, forge, message):
    seq, links = cancelled
    token = path_of(links["too_expensive"]).split("/feedback/")[1].split("?")[0]
    if forge == "expired":
        bad = _expired_token(seq)
    elif forge == "unsubscribe_scope":
        bad = make_token(SECRET_KEY, Scope.UNSUBSCRIBE, seq)
    elif forge == "unknown_sequence":
        bad = make_token(SECRET_KEY, Scope.FEEDBACK, "memberpress-ffffffffffffffffffffffff")
    else:
        bad = forge(token)
    csrf = csrf_of(client.get(path_of(links["too_expensive"])))
    get = client.get(f"/feedback/{bad}?reason=too_expensive")
    assert get.status_code == 404
    assert message in get.get_data(as_text=True)
    post = client.post(
        f"/feedback/{bad}", data={"csrf_token": csrf, "reason": "too_expensive", "no_email": "1"}
    )
    assert post.status_code == 404
    assert feedback_keys(runtime) == []
    assert not runtime.store.is_suppressed("jane.doe@example.com")


def test_an_unknown_reason_is_a_400_with_a_message(client, cancelled, runtime):
    _seq, links = cancelled
    url = path_of(links["too_expensive"]).split("?")[0]
    response = client.get(f"{url}?reason=free_pizza")
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "We don&#39;t know that reason" in html or "We don't know that reason" in html
    assert "checked" not in html  # the form is still there, nothing chosen
    csrf = csrf_of(response)
    response = client.post(url, data={"csrf_token": csrf, "reason": "free_pizza"})
    assert response.status_code == 400
    assert feedback_keys(runtime) == []


def test_too_long_or_empty_answers_are_400_and_keep_what_was_typed(client, cancelled, runtime):
    _seq, links = cancelled
    url = path_of(links["other"])
    response = submit(client, BASE_URL + url, reason="other", comment="x" * (COMMENT_MAX + 1))
    assert response.status_code == 400
    assert f"under {COMMENT_MAX} characters" in response.get_data(as_text=True)
    assert 'value="other" checked' in response.get_data(as_text=True)
    response = submit(client, BASE_URL + url, comment="   ")
    assert response.status_code == 400
    assert "Please pick a reason" in response.get_data(as_text=True)
    assert feedback_keys(runtime) == []


def test_portuguese_members_get_the_page_in_portuguese(client, post_hook, work, survey_links):
    post_hook.memberpress(payloads.memberpress(first_name="João", locale="pt_BR"))
    work()
    links = survey_links()
    html = client.get(path_of(links["too_expensive"])).get_data(as_text=True)
    assert '<html lang="pt-BR">' in html
    assert "Qual foi o principal motivo do cancelamento?" in html
    assert "O preço ficou alto para mim" in html
    assert ">Confirmar</button>" in html and 'data-send="Enviar"' in html
    response = submit(client, links["too_expensive"], reason="too_expensive")
    thanks = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Muito obrigado, de verdade." in thanks


def test_every_locale_has_every_string():
    keys = set(TEXT["en"])
    for locale, strings in TEXT.items():
        assert set(strings) == keys, locale


def test_control_characters_are_dropped_from_comments(client, cancelled, runtime):
    seq, links = cancelled
    comment = "Hi\x1b[2J there\r\nsecond line\x00 ok 👩‍💻"
    assert submit(client, links["other"], reason="other", comment=comment).status_code == 303
    assert runtime.store.load_feedback(seq).comment == "Hi[2J there\nsecond line ok 👩‍💻"


def test_redis_down_is_a_503_page_not_a_500(settings, runtime):
    from dataclasses import replace

    from devstack.redis_server import free_port
    from hooks import create_app

    down = replace(settings, redis_url=f"redis://127.0.0.1:{free_port()}/0", admin_password="pw")
    client = create_app({"TESTING": True, "SETTINGS": down}).test_client()
    token = make_token(SECRET_KEY, Scope.FEEDBACK, "memberpress-0123")
    response = client.get(f"/feedback/{token}?reason=other")
    assert response.status_code == 503
    assert "We can&#39;t save answers right now" in response.get_data(as_text=True)
    admin = client.get("/admin", auth=("admin", "pw"))
    assert admin.status_code == 503 and b"Redis is not answering" in admin.data


def test_thanks_without_an_answer_leads_back_to_the_form(client, cancelled):
    _seq, links = cancelled
    url = path_of(links["other"]).split("?")[0]
    response = client.get(f"{url}/thanks")
    assert response.status_code == 303
    assert response.headers["Location"].endswith(url)


def test_a_bad_link_speaks_the_browsers_language(client):
    response = client.get("/feedback/garbage", headers={"Accept-Language": "pt-BR,pt;q=0.9"})
    assert response.status_code == 404
    html = response.get_data(as_text=True)
    assert '<html lang="pt-BR">' in html and "Este link não é válido" in html
    english = client.get("/feedback/garbage", headers={"Accept-Language": "de-DE"})
    assert "This link is not valid" in english.get_data(as_text=True)
