"""The incentive a step offers: a fixed code, or a single-use code from a pool file.

A pool hands each member one code, never the same code to two members: the file's codes are
loaded into Redis once (a code seen before is never loaded again), and a claim pops the next
one atomically and remembers it for the member, so a retried step gets the same code.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

from .playbook import Incentive, pool_codes
from .store import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Offer:
    """What the email offers: `coupon` is None when there is no code to give."""

    coupon: str | None = None
    text: str | None = None  # the incentive's one-line description, in the member's language
    skip_step: bool = False  # the pool is empty and the playbook says to send nothing
    valid_days: int | None = None  # the code holds this many days after the email
    rejoin_url: str | None = None  # the playbook's rejoin page (may hold {code})


NO_OFFER = Offer()


def resolve_offer(
    store: Store,
    incentive: Incentive | None,
    member_key: str,
    locale: str,
    default_locale: str,
    rejoin_url: str | None = None,
) -> Offer:
    if incentive is None:
        return Offer(rejoin_url=rejoin_url)
    text = incentive.offer_text(locale, default_locale)
    if incentive.code:
        return Offer(
            coupon=incentive.code, text=text, valid_days=incentive.valid_days, rejoin_url=rejoin_url
        )
    assert incentive.pool is not None
    sync_pool(store, incentive)
    code = store.claim_pool_code(incentive.name, member_key)
    if code is not None:
        return Offer(coupon=code, text=text, valid_days=incentive.valid_days, rejoin_url=rejoin_url)
    log.warning(
        "incentive %s: the pool %s is exhausted; %s",
        incentive.name,
        incentive.pool.name,
        "step skipped" if incentive.when_exhausted == "skip_step" else "sent without a code",
    )
    return Offer(skip_step=incentive.when_exhausted == "skip_step", rejoin_url=rejoin_url)


def sync_pool(store: Store, incentive: Incentive) -> int:
    """Load codes added to the pool file since the last load (cheap when unchanged)."""
    assert incentive.pool is not None
    data = incentive.pool.read_bytes()
    signature = hashlib.sha256(data).hexdigest()
    if store.pool_signature(incentive.name) == signature:
        return 0  # this exact file is loaded: nothing to parse
    return store.load_pool(incentive.name, pool_codes(data.decode("utf-8")), signature)
