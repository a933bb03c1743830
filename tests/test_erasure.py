"""`member-deleted`: everything stored about the member goes, except a suppression keyed
by a hash of the address."""

from __future__ import annotations

from tests import payloads
from tests.fixtures_seq import JANE, POOL_PLAYBOOK, cancel, unsubscribe_path
from worker.events import member_key

# --- erasure ------------------------------------------------------------------------------


def _everything_in_redis(url: str) -> str:
    """Every key and value in Redis as text, RQ's (bytes, some zlib-compressed) included."""
    import zlib

    from redis import Redis

    raw = Redis.from_url(url)
    dump = []
    for key in raw.scan_iter(count=1000):
        kind = raw.type(key).decode()
        if kind == "string":
            values = [raw.get(key)]
        elif kind == "hash":
            values = [v for pair in raw.hgetall(key).items() for v in pair]
        elif kind == "set":
            values = list(raw.smembers(key))
        elif kind == "zset":
            values = raw.zrange(key, 0, -1)
        elif kind == "list":
            values = raw.lrange(key, 0, -1)
        else:  # stream
            values = [v for _id, fields in raw.xrange(key) for pair in fields.items() for v in pair]
        for value in values:
            try:
                value = zlib.decompress(value)
            except zlib.error:
                pass
            dump.append(f"{key.decode()} {value.decode(errors='replace')}")
    raw.close()
    return "\n".join(dump)


def test_member_deleted_erases_everything_but_the_suppression(
    use_playbook, post_hook, clock, outbox, client, settings
):
    from worker.store import Feedback, member_hash_key

    rt = use_playbook(
        POOL_PLAYBOOK.replace('"1d"', '"14d"') % "send_without", files={"coupons.txt": "AAA-111\n"}
    )
    seq_id = cancel(post_hook)
    clock.advance(seconds=0)
    rt.store.claim_pool_code("codes", member_key(JANE))
    [step] = rt.store.planned_steps(seq_id)
    assert rt.store.claim_send(seq_id, step).ours  # as a send that went out earlier
    rt.store.save_feedback(Feedback(seq_id, "temporary", "back in spring", False, 1.0))
    client.post(unsubscribe_path(seq_id, settings), data={"List-Unsubscribe": "One-Click"})
    rt.store.unsuppress(JANE)
    rt.store.suppress(JANE, "unsubscribed")
    assert JANE in _everything_in_redis(settings.redis_url)

    reply = post_hook.memberpress(payloads.memberpress_member_deleted())
    assert reply.status_code == 202
    clock.advance(seconds=0)

    everything = _everything_in_redis(settings.redis_url)
    assert "jane" not in everything.lower()
    assert "back in spring" not in everything
    key = member_key(JANE)
    assert rt.store.redis.exists(member_hash_key(key)) == 0
    assert rt.store.load_sequence(seq_id) is None
    assert rt.store.load_feedback(seq_id) is None
    assert clock.scheduled() == []
    # Still unsubscribed, by a hash of the address only.
    entry = rt.store.suppression(JANE)
    assert entry.reason == "unsubscribed" and entry.hint == ""
    assert [k for k in rt.store.redis.scan_iter() if key in k] == []
    assert list(rt.store.redis.scan_iter(match=f"farewell:send:{seq_id}:*")) == []
    clock.advance(days=30)
    assert len(outbox()) == 0  # the pool playbook had no immediate step


def test_member_deleted_cancels_pending_steps(post_hook, clock, outbox):
    cancel(post_hook)
    clock.advance(seconds=0)
    post_hook.memberpress(payloads.memberpress_member_deleted())
    clock.advance(seconds=0)
    assert clock.scheduled() == []
    clock.advance(days=30)
    assert len(outbox()) == 1
