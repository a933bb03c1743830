"""The owner's weekly digest: when it goes out (pure, fixed aware datetimes), what it says,
and, on the real Redis with RQ's scheduled registry, that it is sent once per week and
schedules the next one."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from tests.conftest import BASE_URL
from worker import digest
from worker.settings import Settings, SettingsError
from worker.store import Cancellation, Feedback

SAO_PAULO = ZoneInfo("America/Sao_Paulo")
NEW_YORK = ZoneInfo("America/New_York")
OWNER = "owner@example.com"


def test_next_send_at_is_the_next_weekday_and_hour_in_local_time():
    monday = 0
    # Wednesday 2026-12-02 12:00 UTC = 09:00 in Sao Paulo (UTC-3): next Monday 08:00 local.
    now = datetime(2026, 12, 2, 12, tzinfo=UTC)
    assert digest.next_send_at(now, monday, 8, SAO_PAULO) == datetime(2026, 12, 7, 11, tzinfo=UTC)
    # On Monday before 08:00 local: today; at or after it: a week later.
    early = datetime(2026, 12, 7, 10, 59, tzinfo=UTC)
    assert digest.next_send_at(early, monday, 8, SAO_PAULO) == datetime(2026, 12, 7, 11, tzinfo=UTC)
    on_time = datetime(2026, 12, 7, 11, tzinfo=UTC)
    assert digest.next_send_at(on_time, monday, 8, SAO_PAULO) == datetime(
        2026, 12, 14, 11, tzinfo=UTC
    )


def test_the_local_hour_holds_across_daylight_saving():
    # New York leaves daylight saving on Sunday 2026-11-01: 08:00 local is 12:00 UTC on the
    # Monday before and 13:00 UTC on the Monday after.
    before = digest.next_send_at(datetime(2026, 10, 27, tzinfo=UTC), 0, 8, NEW_YORK)
    after = digest.next_send_at(before, 0, 8, NEW_YORK)
    assert (before, after) == (
        datetime(2026, 11, 2, 13, tzinfo=UTC),
        datetime(2026, 11, 9, 13, tzinfo=UTC),
    )
    earlier = digest.next_send_at(datetime(2026, 10, 20, tzinfo=UTC), 0, 8, NEW_YORK)
    assert earlier == datetime(2026, 10, 26, 12, tzinfo=UTC)


def test_the_period_is_the_monday_to_sunday_before():
    assert digest.period_before(date(2026, 12, 7)) == (date(2026, 11, 30), date(2026, 12, 6))
    assert digest.period_before(date(2026, 12, 10)) == (date(2026, 11, 30), date(2026, 12, 6))
    assert digest.week_label(date(2026, 12, 7)) == "2026-W50"
    assert digest.week_monday("2026-W50") == date(2026, 12, 7)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("digest_day", "someday", "FAREWELL_DIGEST_DAY must be one of"),
        ("digest_hour", 24, "FAREWELL_DIGEST_HOUR must be an hour"),
        ("digest_to", "a@example.com, b@example.com", "FAREWELL_DIGEST_TO must be one email"),
        ("timezone", "Mars/Olympus", "FAREWELL_TIMEZONE must be an IANA time zone"),
        ("currency", "dollars", "FAREWELL_CURRENCY must be a 3-letter"),
        ("digest_locale", "pt", "FAREWELL_DIGEST_LOCALE must be one of en, pt_BR"),
    ],
)
def test_bad_digest_settings_are_named(name, value, message):
    with pytest.raises(SettingsError, match=message):
        Settings(**{name: value}).validate()


# --- on the real stack -----------------------------------------------------------------------


@pytest.fixture
def settings(settings):
    return replace(settings, digest_to=OWNER, timezone="America/Sao_Paulo", digest_hour=8)


def _at(day: date, hour: int = 12) -> float:
    return datetime.combine(day, time(hour), tzinfo=UTC).timestamp()


def _record(runtime, event_id: str, day: date, mrr: str | None, comment: str = "") -> None:
    runtime.store.record_cancellation(
        Cancellation(
            event_id=event_id,
            at=_at(day),
            member_key=f"key-{event_id}",
            membership_id="3006",
            membership_title="Gold Club",
            source="memberpress",
            sequence_id=event_id,
            mrr=Decimal(mrr) if mrr else None,
            currency="USD" if mrr else "",
        )
    )
    if comment:
        runtime.store.save_feedback(Feedback(event_id, "too_expensive", comment, False, _at(day)))


def _owner_mail(outbox):
    return [m for m in outbox() if m["To"].addresses[0].addr_spec == OWNER]


def test_the_digest_is_scheduled_sent_once_and_schedules_the_next(runtime, clock, outbox):
    week = digest.ensure_scheduled(runtime.queue, runtime.settings, datetime.now(UTC))
    assert week is not None
    # A second start (or a second worker) schedules nothing more.
    assert digest.ensure_scheduled(runtime.queue, runtime.settings, datetime.now(UTC)) == week
    assert clock.scheduled() == [digest.job_id(week)]
    since, until = digest.period_before(digest.week_monday(week))
    _record(runtime, "mp-1", since, "20.00", comment="Too pricey <b>now</b>")
    _record(runtime, "mp-2", until, "9.99")
    _record(runtime, "mp-3", until, None)
    _record(runtime, "mp-old", since - timedelta(days=1), "100.00")  # the week before

    clock.advance(days=8)  # the scheduled job comes due and runs
    [mail] = _owner_mail(outbox)
    text = mail.get_body(("plain",)).get_content()
    assert mail["Subject"] == "Example Club: 3 cancellations, $29.99 MRR lost last week"
    assert "Cancellations:        3" in text
    assert "Lost MRR:             $29.99 (1 without a price)" in text
    assert "1  It costs more than it's worth to me  ($20.00 MRR)" in text
    assert "New comments: 1" in text and "Too pricey <b>now</b>" in text
    dashboard = f"{BASE_URL}/admin?from={since.isoformat()}&to={until.isoformat()}"
    assert f"Dashboard: {dashboard}" in text
    html = mail.get_body(("html",)).get_content()
    assert (
        "Too pricey &lt;b&gt;now&lt;/b&gt;" in html
        and f'href="{dashboard.replace("&", "&amp;")}"' in html
    )

    # Never twice for one week: the job run again (a retry, a second worker) sends nothing.
    assert digest.send_digest(week) == "already sent"
    assert len(_owner_mail(outbox)) == 1
    # The next week's digest is scheduled, once.
    following = digest.week_label(digest.week_monday(week) + timedelta(days=7))
    assert clock.scheduled() == [digest.job_id(following)]


def test_off_without_an_address(runtime, settings):
    off = replace(settings, digest_to="")
    assert digest.ensure_scheduled(runtime.queue, off, datetime.now(UTC)) is None
    assert runtime.queue.scheduled_job_registry.get_job_ids() == []


def test_a_failed_send_releases_the_week_for_a_retry(runtime, outbox, monkeypatch):
    week = digest.week_label(date.today())

    class Broken:
        def send(self, email):
            raise ConnectionError("smtp down")

    monkeypatch.setattr(type(runtime), "transport", Broken(), raising=False)
    with pytest.raises(ConnectionError):
        digest.send_digest(week)
    assert runtime.store.redis.get(digest.claim_key(week)) is None
    monkeypatch.undo()
    assert digest.send_digest(week) == f"sent {week}"
    assert len(_owner_mail(outbox)) == 1


@pytest.mark.parametrize(
    "overrides",
    [{"digest_locale": "pt_BR"}, {"default_locale": "pt_BR"}],
    ids=["digest-locale", "default-locale"],
)
def test_the_digest_speaks_the_owners_language(use_playbook, settings, outbox, overrides):
    rt = use_playbook(settings.playbook_path.read_text(), **overrides)
    week = digest.week_label(date(2026, 12, 14))
    since, until = digest.period_before(digest.week_monday(week))
    _record(rt, "mp-1", since, "1234.50", comment="Caro demais")
    _record(rt, "mp-2", until, None)
    assert digest.send_digest(week) == f"sent {week}"
    [mail] = _owner_mail(outbox)
    text = mail.get_body(("plain",)).get_content()
    assert mail["Subject"] == (
        "Example Club: 2 cancelamentos, $ 1.234,50 de MRR perdido na semana passada"
    )
    assert "de 7 de dezembro de 2026 a 13 de dezembro de 2026 (UTC)" in text
    assert "Cancelamentos:        2" in text
    assert "MRR perdido:          $ 1.234,50 (1 sem preço)" in text
    assert "1  O preço ficou alto para mim  ($ 1.234,50 de MRR)" in text
    assert "Reconquistados:       0 ($ 0,00 de MRR recuperado)" in text
    assert "Novos comentários: 1" in text and "Painel: " in text
    assert '<html lang="pt-BR">' in mail.get_body(("html",)).get_content()


def test_english_dates_read_in_full():
    ins = digest.compute([], digest.Filters(), [])
    sent = digest.compose_digest(
        ins, date(2026, 12, 7), date(2026, 12, 13), "https://x.example/admin", "Club"
    )
    assert sent.text.startswith(
        "Farewell weekly digest for Club: December 7, 2026 to December 13, 2026 (UTC)"
    )
    assert "Won back:             0 (recovered $0.00 MRR)" in sent.text
