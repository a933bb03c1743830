"""Every Lua script the store runs, and the one method that runs each.

A script is used where a check and the writes it decides must be one atomic step: between a
plain read and the write that follows it, another web or worker process could act on the
same key. Each constant's first lines say what KEYS[n] and ARGV[n] are and what it returns;
each `Scripts` method builds those from our types and names the reply, so callers never see
a raw one. redis-py's Script runs them by EVALSHA (one round trip), loading a script on the
server the first time only.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import NamedTuple

from redis import Redis

from . import keys
from .records import JobRecord

# Dedupe, durable record, pending marker and the handling job in one atomic round trip:
# either the event is new, fully recorded and queued, or it is a duplicate and nothing
# changes (two deliveries of one event racing must not both queue it). KEYS 5-7 are RQ's
# own and, with the job hash fields (RQ's Job.to_dict), come from worker/rq_seam.py
# (`job_record`, assumptions 1 and 2), so RQ workers run the job as if RQ wrote it.
# Counting the event here costs no round trip either, nor does
# recording the delivery for the Connections page (worker/webhook_log.py `accept_record`).
# `delivered(entry, field)`: record the delivery with ACCEPT's KEYS[8-9] and ARGV[11], [14]
# (nothing without them). Its own snippet so that worker/subscription_state.py's prologue,
# which runs before ACCEPT in one script, records the deliveries it answers itself.
DELIVERED = """
local function delivered(entry, field)
  if #KEYS < 9 then return end
  if redis.call('LPUSH', KEYS[8], entry) > 2 * tonumber(ARGV[11]) then
    redis.call('LTRIM', KEYS[8], 0, tonumber(ARGV[11]) - 1)
  end
  if redis.call('HINCRBY', KEYS[9], field, 1) == 1 then
    redis.call('EXPIRE', KEYS[9], ARGV[14])
  end
end
"""
ACCEPT = (
    DELIVERED
    + """
-- KEYS[1] dedupe:{event_id}  KEYS[2] event:{event_id}  KEYS[3] pending  KEYS[4] metrics
-- KEYS[5] RQ's job hash  KEYS[6] RQ's queue list  KEYS[7] RQ's set of queues ('': no job)
-- KEYS[8] the source's delivery list  KEYS[9] this hour's delivery counts (both optional)
-- ARGV[1] dedupe TTL  ARGV[2] event JSON  ARGV[3] event TTL  ARGV[4] accepted-at
-- ARGV[5] event id  ARGV[6] / ARGV[7] metric field to count when new / duplicate ('': none)
-- ARGV[8] job id  ARGV[9] / ARGV[10] the delivery entry when new / duplicate
-- ARGV[11] entries kept (trimmed once the list holds twice that: one LTRIM per ARGV[11]
-- pushes)  ARGV[12] / ARGV[13] the count field when new / duplicate  ARGV[14] the counts'
-- TTL (set when a field is created)  ARGV[15..] the job hash's fields and values
-- Returns 1 when the event is new (recorded and queued), 0 for a duplicate.
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
  redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[3])
  redis.call('ZADD', KEYS[3], ARGV[4], ARGV[5])
  if ARGV[6] ~= '' then redis.call('HINCRBY', KEYS[4], ARGV[6], 1) end
  if KEYS[5] ~= '' then
    redis.call('HSET', KEYS[5], unpack(ARGV, 15))
    redis.call('RPUSH', KEYS[6], ARGV[8])
    redis.call('SADD', KEYS[7], KEYS[6])
  end
  delivered(ARGV[9], ARGV[12])
  return 1
end
if ARGV[7] ~= '' then redis.call('HINCRBY', KEYS[4], ARGV[7], 1) end
delivered(ARGV[10], ARGV[13])
return 0
"""
)

# A cancellation's sequence: the member's cooldown is held by this sequence or another one,
# then the sequence is created once. Atomic so two cancellations of one member racing
# start one sequence, and a replayed one never overwrites the sequence it started.
START = """
-- KEYS[1] cooldown:{member_key}  KEYS[2] sequence:{id}  KEYS[3] member:{key}:sequences
-- ARGV[1] sequence id  ARGV[2] cooldown seconds  ARGV[3] member key
-- ARGV[4..] the sequence hash's fields and values
-- Returns {'created', ''}, {'exists', its status} or {'cooldown', the holder's id}.
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then
  local holder = redis.call('GET', KEYS[1])
  if holder and holder ~= ARGV[1] then return {'cooldown', holder} end
end
if redis.call('HSETNX', KEYS[2], 'member_key', ARGV[3]) == 0 then
  return {'exists', redis.call('HGET', KEYS[2], 'status') or ''}
end
redis.call('HSET', KEYS[2], unpack(ARGV, 4))
redis.call('SADD', KEYS[3], ARGV[1])
return {'created', ''}
"""

# Send claim and the per-sequence email cap in one step: two workers must never both own
# a step's claim, nor two steps both take the last place under the cap. A step may take its
# claim only if the sequence has not already claimed `cap` other steps; a
# `sending|owner|at` claim whose owner has no heartbeat is taken over.
CLAIM = """
-- KEYS[1] send:{sequence_id}:{step}  KEYS[2] sequence:{sequence_id}:claims
-- ARGV[1] claim TTL  ARGV[2] step  ARGV[3] cap (0: none)  ARGV[4] our claim value
-- ARGV[5] alive-key prefix  ARGV[6] now  ARGV[7] takeover guard (seconds)
-- Returns false when the claim is ours, '+<old claim>' when taken over from a dead owner,
-- 'cap' when the cap is reached, else the claim someone holds.
local cur = redis.call('GET', KEYS[1])
if cur then
  local owner, at = string.match(cur, '^sending|([^|]+)|([0-9.]+)$')
  if not (owner and redis.call('EXISTS', ARGV[5] .. owner) == 0
          and tonumber(ARGV[6]) - tonumber(at) > tonumber(ARGV[7])) then
    return cur
  end
else
  local cap = tonumber(ARGV[3])
  if cap > 0 and redis.call('SISMEMBER', KEYS[2], ARGV[2]) == 0
     and redis.call('SCARD', KEYS[2]) >= cap then
    return 'cap'
  end
end
redis.call('SET', KEYS[1], ARGV[4], 'EX', ARGV[1])
redis.call('SADD', KEYS[2], ARGV[2])
redis.call('EXPIRE', KEYS[2], ARGV[1])
if cur then return '+' .. cur end
return false
"""

# Move our claim past the point of no return only while it is still ours: a takeover
# landing between a GET and a SET would otherwise be overwritten (and mail sent twice).
COMMIT = """
-- KEYS[1] send:{sequence_id}:{step}
-- ARGV[1] our `sending` prefix  ARGV[2] the committing value
-- Returns 1 when committed, 0 when the claim is no longer ours.
local cur = redis.call('GET', KEYS[1])
if cur and string.sub(cur, 1, string.len(ARGV[1])) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
  return 1
end
return 0
"""

# Release a claim only while it is still ours, and its place under the cap with it: a
# plain DEL could drop a claim another worker took over meanwhile.
RELEASE = """
-- KEYS[1] send:{sequence_id}:{step}  KEYS[2] sequence:{sequence_id}:claims
-- ARGV[1] our `sending` prefix  ARGV[2] our `committing` prefix (or the `sending` one
-- again, to keep a committed claim)  ARGV[3] the step
-- Returns 1 when released, 0 when the claim was not ours to release.
local cur = redis.call('GET', KEYS[1])
if cur and (string.sub(cur, 1, string.len(ARGV[1])) == ARGV[1]
            or string.sub(cur, 1, string.len(ARGV[2])) == ARGV[2]) then
  redis.call('SREM', KEYS[2], ARGV[3])
  return redis.call('DEL', KEYS[1])
end
return 0
"""

# Fixed-window counter: the window's expiry is set on its first hit, in the same step as
# the INCR, so a crash between the two can never leave a window that never expires; the
# request is counted in the metrics too, at no extra round trip.
RATE = """
-- KEYS[1] ratelimit:{bucket}:{window}  KEYS[2] metrics
-- ARGV[1] window TTL  ARGV[2] limit  ARGV[3] / ARGV[4] metric field when within / over
-- Returns the window's hits, this one included.
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
if n <= tonumber(ARGV[2]) then
  redis.call('HINCRBY', KEYS[2], ARGV[3], 1)
else
  redis.call('HINCRBY', KEYS[2], ARGV[4], 1)
end
return n
"""

# Load codes from a pool file: a code enters `available` the first time it is seen, never
# again, so a code handed out (and popped) cannot come back when the file is reloaded,
# even if two processes load the file at once.
POOL_LOAD = """
-- KEYS[1] pool:{name}:known  KEYS[2] pool:{name}:available
-- ARGV[1..] the codes
-- Returns how many codes were new.
local added = 0
for i, code in ipairs(ARGV) do
  if redis.call('SADD', KEYS[1], code) == 1 then
    redis.call('RPUSH', KEYS[2], code)
    added = added + 1
  end
end
return added
"""

# One code per member: the member's earlier code if any, else the next unused one. Atomic
# so two sends to one member racing hand out one code, not two.
POOL_CLAIM = """
-- KEYS[1] pool:{name}:given  KEYS[2] pool:{name}:available
-- ARGV[1] member key
-- Returns the member's code, or false when the pool is empty.
local code = redis.call('HGET', KEYS[1], ARGV[1])
if code then return code end
code = redis.call('LPOP', KEYS[2])
if not code then return false end
redis.call('HSET', KEYS[1], ARGV[1], code)
return code
"""


class Started(NamedTuple):
    """START's reply: outcome "created", "exists" (detail: its status) or "cooldown"
    (detail: the id of the sequence that holds it)."""

    outcome: str
    detail: str


class Claimed(enum.Enum):
    OURS = "ours"
    TAKEN_OVER = "taken over"  # ours, from an owner whose heartbeat is gone
    CAP = "cap"  # the sequence already claimed `cap` other steps
    HELD = "held"  # someone holds it


class ClaimReply(NamedTuple):
    result: Claimed
    claim: str = ""  # HELD: the claim held; TAKEN_OVER: the claim replaced


def accept_arguments(
    event_id: str,
    event_json: str,
    dedupe_ttl: int,
    accepted_at: float,
    count_as: tuple[str, str],
    job: JobRecord | None,
    delivery: tuple[list[str], list[str | int]] | None = None,
) -> tuple[list[str], list[str | bytes | int | float]]:
    """ACCEPT's KEYS and ARGV (worker/subscription_state.py runs ACCEPT behind its own
    state test, with these). delivery: `webhook_log.accept_record`'s keys and arguments."""
    keys_ = [
        keys.dedupe_key(event_id),
        keys.event_key(event_id),
        keys.PENDING_KEY,
        keys.METRICS_KEY,
    ]
    args: list[str | bytes | int | float] = [
        dedupe_ttl,
        event_json,
        keys.EVENT_TTL,
        accepted_at,
        event_id,
        *count_as,
    ]
    keys_ += [job.key, job.queue_key, job.queues_key] if job else ["", "", ""]
    args.append(job.id if job else "")
    if delivery is not None:
        keys_ += delivery[0]
        args += delivery[1]
    if job is not None:
        args += ["" for _ in range(14 - len(args))] + list(job.fields)
    return keys_, args


# Used by worker/subscription_state.py (where the verdicts are named).
# The state test in front of the accept script. KEYS[1]: the subscription's state hash;
# KEYS[2..]: the accept script's keys. ARGV[1]: "state" or "payment"; ARGV[2]: the new
# state, or the payment's paid-until; ARGV[3]: the payment's amount ("" for a state);
# ARGV[4]: the delivery's time (seconds); ARGV[5]: the metric field for "recorded";
# ARGV[6]: the delivery's role ("cancel", "comeback" or ""); ARGV[7]: its event id;
# ARGV[8..]: the accept script's arguments (its ARGV[7] names the "duplicate" metric field).
# Both are taken off KEYS and ARGV, so the accept script that follows reads its own.
# Returns the accept script's 1 (new) / 0 (event id seen), or {-1, the event id holding
# the state} for a duplicate state, -2 stale, 2 payment recorded.
STATE_PROLOGUE = """
local skey = table.remove(KEYS, 1)
local mode = table.remove(ARGV, 1)
local value = table.remove(ARGV, 1)
local amount = table.remove(ARGV, 1)
local at_text = table.remove(ARGV, 1)
local at = tonumber(at_text)
local recorded = table.remove(ARGV, 1)
local role = table.remove(ARGV, 1)
local event_id = table.remove(ARGV, 1)
local cur = redis.call('HMGET', skey, 'state', 'changed_at', 'expires_at', 'amount', 'paid_at',
  'event_id', 'cancelled_by')
local function refuse(code, holder)
  if ARGV[7] ~= '' then redis.call('HINCRBY', KEYS[4], ARGV[7], 1) end
  local entry = ARGV[10]  -- a duplicate, on the Connections page, under the id that holds
  if holder and holder ~= '' and entry ~= '' then  -- the state (the reply's), not this one's
    local fields = cjson.decode(entry)
    fields['event_id'] = holder
    entry = cjson.encode(fields)
  end
  delivered(entry, ARGV[13])
  if holder then return {code, holder} end
  return code
end
if mode == 'payment' then
  if at < tonumber(cur[5] or '0') then return refuse(-2) end
  if cur[3] == value and cur[4] == amount then return refuse(-1) end
  redis.call('HSET', skey, 'expires_at', value, 'amount', amount, 'paid_at', at_text)
  if recorded ~= '' then redis.call('HINCRBY', KEYS[4], recorded, 1) end
  return 2
end
if cur[1] and at < tonumber(cur[2] or '0') then return refuse(-2) end
if cur[1] == value then return refuse(-1, cur[6] or '') end
if role == 'cancel' and cur[7] then return refuse(-1, cur[7]) end
redis.call('HSET', skey, 'state', value, 'changed_at', at_text, 'event_id', event_id)
redis.call('HINCRBY', skey, 'revision', 1)
if role == 'cancel' then redis.call('HSET', skey, 'cancelled_by', event_id) end
if role == 'comeback' then redis.call('HDEL', skey, 'cancelled_by') end
"""
STATE_ACCEPT = DELIVERED + STATE_PROLOGUE + ACCEPT


class Scripts:
    """The scripts registered with one client (a Store's)."""

    def __init__(self, redis: Redis) -> None:
        self._accept = redis.register_script(ACCEPT)
        self._state_accept = redis.register_script(STATE_ACCEPT)
        self._start = redis.register_script(START)
        self._claim = redis.register_script(CLAIM)
        self._commit = redis.register_script(COMMIT)
        self._release = redis.register_script(RELEASE)
        self._rate = redis.register_script(RATE)
        self._pool_load = redis.register_script(POOL_LOAD)
        self._pool_claim = redis.register_script(POOL_CLAIM)

    def accept_state(
        self, state_key: str, head: list[str], keys: list[str], args: list
    ) -> tuple[int, str]:
        """STATE_ACCEPT: the state test, then ACCEPT, in one call. Returns (code, the event
        id holding the state for a duplicate state, else "")."""
        reply = self._state_accept(keys=[state_key, *keys], args=[*head, *args])
        if isinstance(reply, list):
            code, holder = reply
            return int(code), holder or ""
        return int(reply), ""

    def accept(
        self,
        event_id: str,
        event_json: str,
        dedupe_ttl: int,
        accepted_at: float,
        count_as: tuple[str, str],
        job: JobRecord | None,
        delivery: tuple[list[str], list[str | int]] | None = None,
    ) -> bool:
        """ACCEPT; True when the event is new. count_as: the metric fields (new, duplicate);
        delivery: the keys and arguments that record it (`webhook_log.accept_record`)."""
        keys_, args = accept_arguments(
            event_id, event_json, dedupe_ttl, accepted_at, count_as, job, delivery
        )
        return bool(self._accept(keys=keys_, args=args))

    def start(
        self, sequence_id: str, member_key: str, cooldown: int, fields: Mapping[str, str]
    ) -> Started:
        keys_ = [
            keys.cooldown_key(member_key),
            keys.sequence_key(sequence_id),
            keys.member_sequences_key(member_key),
        ]
        args = [sequence_id, cooldown, member_key]
        for name, value in fields.items():
            args += [name, value]
        outcome, detail = self._start(keys=keys_, args=args)
        return Started(outcome, detail)

    def claim(
        self,
        sequence_id: str,
        step: str,
        cap: int,
        value: str,
        now: float,
        takeover_after: float,
    ) -> ClaimReply:
        reply = self._claim(
            keys=[keys.send_claim_key(sequence_id, step), keys.sequence_claims_key(sequence_id)],
            args=[
                keys.SEND_CLAIM_TTL,
                step,
                cap,
                value,
                keys.alive_key(""),
                now,
                takeover_after,
            ],
        )
        if not reply:
            return ClaimReply(Claimed.OURS if reply is None else Claimed.HELD)
        if reply == "cap":
            return ClaimReply(Claimed.CAP)
        if reply.startswith("+"):
            return ClaimReply(Claimed.TAKEN_OVER, reply[1:])
        return ClaimReply(Claimed.HELD, reply)

    def commit(self, sequence_id: str, step: str, sending: str, committing: str) -> bool:
        """COMMIT; True when the claim was still ours and is now `committing`."""
        key = keys.send_claim_key(sequence_id, step)
        return bool(self._commit(keys=[key], args=[sending, committing]))

    def release(self, sequence_id: str, step: str, sending: str, committing: str) -> bool:
        """RELEASE; True when the claim was ours and is gone."""
        reply = self._release(
            keys=[keys.send_claim_key(sequence_id, step), keys.sequence_claims_key(sequence_id)],
            args=[sending, committing, step],
        )
        return bool(reply)

    def rate(
        self, bucket: str, start: int, ttl: int, limit: int, counted_as: tuple[str, str]
    ) -> int:
        """RATE; the hits in `bucket`'s window that began at `start`, this one included."""
        reply = self._rate(
            keys=[keys.ratelimit_key(bucket, start), keys.METRICS_KEY],
            args=[ttl, limit, *counted_as],
        )
        return int(reply)

    def pool_load(self, name: str, codes: list[str]) -> int:
        """POOL_LOAD; how many of `codes` were new."""
        reply = self._pool_load(
            keys=[keys.pool_key(name, "known"), keys.pool_key(name, "available")], args=codes
        )
        return int(reply)

    def pool_claim(self, name: str, member_key: str) -> str | None:
        """POOL_CLAIM; the member's code, None when the pool is empty."""
        code = self._pool_claim(
            keys=[keys.pool_key(name, "given"), keys.pool_key(name, "available")],
            args=[member_key],
        )
        return code or None
