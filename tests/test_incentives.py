"""Incentives in win-back emails: fixed codes per membership and single-use code pools,
never one code for two members."""

from __future__ import annotations

import re

import pytest

from tests.conftest import parts
from tests.fixtures_seq import POOL_PLAYBOOK, cancel
from worker.events import member_key

# --- incentives ---------------------------------------------------------------------------


def _winback_codes(messages):
    found = {}
    for m in messages:
        text, _ = parts(m)
        match = re.search(r"^    (\S+)$", text, re.M)
        found[m["To"].addresses[0].addr_spec] = match.group(1) if match else None
    return found


@pytest.mark.parametrize("when_exhausted", ["send_without", "skip_step"])
def test_coupon_pool_single_use_codes(
    use_playbook, post_hook, clock, outbox, runtime, when_exhausted
):
    rt = use_playbook(
        POOL_PLAYBOOK % when_exhausted, files={"coupons.txt": "# codes\nAAA-111\n\nBBB-222\n"}
    )
    members = ["a@example.com", "b@example.com", "c@example.com"]
    for n, address in enumerate(members):
        cancel(post_hook, email=address, subscription_id=str(n))
    clock.advance(days=2)
    codes = _winback_codes(outbox())
    given = {m: c for m, c in codes.items() if c}
    assert sorted(given.values()) == ["AAA-111", "BBB-222"]  # two members, two codes
    [unlucky] = set(members) - set(given)
    if when_exhausted == "send_without":
        assert codes[unlucky] is None
        text, _ = parts(next(m for m in outbox() if unlucky in str(m["To"])))
        assert "code is yours" not in text and "reply to this email" in text
    else:
        assert unlucky not in codes  # the step was skipped
        assert len(outbox()) == 2
    # A member keeps their code; a retried step never takes a second one.
    lucky = sorted(given)[0]
    assert rt.store.claim_pool_code("codes", member_key(lucky)) == given[lucky]
    assert rt.store.pool_remaining("codes") == 0


def test_codes_added_to_the_pool_file_are_used_and_old_ones_never_return(
    use_playbook, post_hook, clock, outbox
):
    rt = use_playbook(POOL_PLAYBOOK % "send_without", files={"coupons.txt": "AAA-111\n"})
    cancel(post_hook, email="a@example.com", subscription_id="1")
    clock.advance(days=2)
    pool_file = rt.settings.playbook_path.parent / "coupons.txt"
    pool_file.write_text("AAA-111\nCCC-333\n")  # the marketer appends a code
    cancel(post_hook, email="b@example.com", subscription_id="2")
    clock.advance(days=2)
    assert _winback_codes(outbox()) == {"a@example.com": "AAA-111", "b@example.com": "CCC-333"}


def test_fixed_code_for_one_membership_only(use_playbook, post_hook, clock, outbox):
    use_playbook(
        """
[default]
steps = [{ template = "winback", delay = "1d", stream = "marketing", incentive = "membership" }]

[incentives.gold]
code = "WELCOMEBACK20"
offer = { en = "20% off your first three months", pt_BR = "20% de desconto" }

[memberships.3006]
incentive = "gold"
"""
    )
    cancel(post_hook, email="gold@example.com", subscription_id="1")
    cancel(post_hook, email="silver@example.com", subscription_id="2", membership_id="42")
    clock.advance(days=2)
    codes = _winback_codes(outbox())
    assert codes == {"gold@example.com": "WELCOMEBACK20", "silver@example.com": None}
    text, html = parts(next(m for m in outbox() if "gold@" in str(m["To"])))
    assert "this code is yours: 20% off your first three months." in text
    assert "WELCOMEBACK20" in html


def test_pool_claims_racing_from_many_workers_never_share_a_code(settings, tmp_path):
    """Eight threads (each its own Redis connection, like eight workers) claim for 400
    members from a 300-code pool loaded concurrently too."""
    from concurrent.futures import ThreadPoolExecutor

    from worker.incentives import resolve_offer
    from worker.playbook import Incentive
    from worker.store import Store, connect

    pool = tmp_path / "codes.txt"
    pool.write_text("\n".join(f"C{i:04d}" for i in range(300)))
    incentive = Incentive(name="race", pool=pool)

    def claim(worker: int) -> list[str | None]:
        store = Store(connect(settings.redis_url))
        return [
            resolve_offer(store, incentive, f"member-{worker}-{n}", "en", "en").coupon
            for n in range(50)
        ]

    with ThreadPoolExecutor(8) as ex:
        results = [code for batch in ex.map(claim, range(8)) for code in batch]
    given = [c for c in results if c]
    assert len(given) == 300 and len(set(given)) == 300
    assert results.count(None) == 100
