"""Every Redis key Farewell owns: its name, and what it holds.

Layout (all under the `farewell:` prefix):

    dedupe:{event_id}          "1" while a re-delivery must be ignored (TTL: dedupe_ttl)
    event:{event_id}           the normalized event as JSON (TTL: EVENT_TTL)
    pending                    zset event_id -> accepted-at; removed once handle_event is done
    member:{member_key}        hash: email, member_id, first_name, last_name, locale,
                               last_event, last_event_at, came_back_at
    member:{member_key}:sequences  set of the member's sequence ids
    member:{member_key}:events     set of the member's event ids (for erasure)
    member:{member_key}:paused     set of the member's paused subscription ids
    sequence:{sequence_id}     hash: plan (JSON step -> stream), member_key, event_id,
                               membership_id, membership_title, locale, started_at,
                               access_ends_at, status (active | stopped | erased: made
                               anonymous past retention, member_key ""); once stopped:
                               outcome (came_back | won_back), came_back_at; after a
                               win-back email: marketing_sent_at; acted_at (when Farewell
                               first acted: steps are spaced from it), note (a step dropped,
                               worker/catchup.py)
    sequence:{sequence_id}:claims  set of steps that took a send claim (the per-sequence cap;
                               TTL: SEND_CLAIM_TTL)
    cooldown:{member_key}      the sequence id that holds the member's cooldown (TTL: cooldown)
    send:{sequence_id}:{step}  send claim (TTL: SEND_CLAIM_TTL): `sending|<owner>|<at>`, then
                               `committing|<owner>|<at>` past the transport's point of no
                               return, then `sent:<message id>` (`sent:rejected` when the
                               provider refused the address); a process without a heartbeat
                               writes a bare `sending` / `committing` (see sends.py)
    sendlog                    stream of sends (capped at SENDLOG_MAXLEN)
    feedback:{sequence_id}     hash: reason, comment, no_email ("1" | "0"), at
    rejoin:{sequence_id}       hash step -> when its rejoin button was first followed
                               (the win-back funnel; no personal data)
    winback:{sequence_id}      hash step -> when that marketing email went out (the funnel
                               per email; no personal data)
    suppressed                 hash address-hash -> JSON {reason, at, hint, membership_id
                               (when known)}: never mail these
    cancellations              zset event_id -> occurred_at: every cancellation, for insights
    cancellation:{event_id}    hash: member_key, at, membership_id, membership_title, source,
                               sequence_id, mrr (decimal text, "" unknown), currency
    cancellations:memberships  hash membership id -> latest title (the dashboard's filter)
    cancellations:membership:{id}  zset event_id -> occurred_at, one membership's records
    pool:{name}:available      list of single-use codes not yet handed out
    pool:{name}:known          set of every code ever loaded from the pool file
    pool:{name}:given          hash member_key -> the code that member got
    pool:{name}:loaded         sha256 of the pool file last loaded
    ping:{source}              hash: the last activation ping (at, detail), for operators
    deliveries:{source}        list of the source's last deliveries, refusals:{source} of its
                               last refused ones (short JSON, capped), deliveries:counts:{hour}
                               hash "<source>:<result>" -> count (TTL 8 days), and
                               connections:memberpress_key (the key pasted on the Connections
                               page): the Connections record, owned by worker/webhook_log.py
    substate:{source}:{hash}   hash: a subscription's last known state and latest payment
                               (state, changed_at, revision, expires_at, amount, paid_at),
                               for sources without event ids; written with the event by
                               worker/subscription_state.py (no TTL, no personal data)
    metrics                    hash "<name>|<label>=<value>,..." -> count (Prometheus counters,
                               see metrics.py)
    ratelimit:{bucket}:{window}  refused webhooks in one fixed window (TTL: the window + 1 s)
    alive:{owner}              a worker process's heartbeat (TTL: ALIVE_TTL)
    batch:{owner}              list of the event job ids a worker took off RQ's queue to
                               handle in the job it runs (worker/batch.py)
    batches                    set of the owners that ever took a batch (for recovery)
    stripe:last_error          JSON {error, at, event}: Stripe refused our API key, for /healthz
    mail:last_error            JSON {transport, stream, error, at, sequence, step}: the last
                               configuration error of the mail transport, for /healthz
    retention                  hash: members_cursor, records_through, states_cursor: where
                               the retention sweep stopped (worker/retention.py)
    retention:lock             held for a minute by the process that ran a retention pass
    templates:last_good        hash email ("en/winback") -> JSON {digest, at, files: {name:
                               source}}: the files it last rendered from (worker/safety.py)
    templates:failures         hash email -> JSON {file, line, error, digest, fallback, at,
                               count}: emails that failed at send time, until fixed
    templates:versions:{email} list of JSON {n, at, note, html, text}: every version saved in
                               the admin editor, version n at position n - 1
    templates:published        hash email -> the version number the worker sends (no entry:
                               the file in the templates folder)
    variant:{step}:{template}  set of the sequence ids sent that A/B variant of a step
                               (worker/variants.py; the dashboard's counts)
    templates:draft:{token}    JSON {email, html, text, ...}: an editor preview (TTL: 1 hour)

The web side writes `dedupe`, `event` and `pending` (and `substate`) together with the RQ
job that handles the event (in one Lua call), plus `suppressed` (unsubscribe page, the
survey's "don't email me", `suppress` commands), `feedback` (survey page), `rejoin` (the
rejoin redirect), sequence stops (`member resume`), `ping`, `metrics` and `ratelimit`; the
worker owns the rest.
"""

from __future__ import annotations

PREFIX = "farewell:"
EVENT_TTL = 30 * 24 * 3600
SEND_CLAIM_TTL = 400 * 24 * 3600
SENDLOG_MAXLEN = 100_000
# A worker refreshes its heartbeat every ALIVE_TTL / 3 seconds; silent this long, it is dead.
ALIVE_TTL = 10


def dedupe_key(event_id: str) -> str:
    return f"{PREFIX}dedupe:{event_id}"


def event_key(event_id: str) -> str:
    return f"{PREFIX}event:{event_id}"


PENDING_KEY = f"{PREFIX}pending"
SENDLOG_KEY = f"{PREFIX}sendlog"
SUPPRESSED_KEY = f"{PREFIX}suppressed"
METRICS_KEY = f"{PREFIX}metrics"
RATELIMIT_PREFIX = f"{PREFIX}ratelimit:"
BATCH_OWNERS_KEY = f"{PREFIX}batches"
LAST_SEND_ERROR_KEY = f"{PREFIX}mail:last_error"
STRIPE_ERROR_KEY = f"{PREFIX}stripe:last_error"
TEMPLATE_LAST_GOOD_KEY = f"{PREFIX}templates:last_good"
TEMPLATE_FAILURES_KEY = f"{PREFIX}templates:failures"
TEMPLATE_PUBLISHED_KEY = f"{PREFIX}templates:published"


def template_versions_key(email: str) -> str:
    return f"{PREFIX}templates:versions:{email}"


def variant_sequences_key(step: str, template: str) -> str:
    return f"{PREFIX}variant:{step}:{template}"


def template_draft_key(token: str) -> str:
    return f"{PREFIX}templates:draft:{token}"


CANCELLATIONS_KEY = f"{PREFIX}cancellations"
CANCELLATION_MEMBERSHIPS_KEY = f"{PREFIX}cancellations:memberships"


def ratelimit_key(bucket: str, window: int) -> str:
    return f"{RATELIMIT_PREFIX}{bucket}:{window}"


def alive_key(owner: str) -> str:
    return f"{PREFIX}alive:{owner}"


def batch_key(owner: str) -> str:
    return f"{PREFIX}batch:{owner}"


def scheduler_lock_key(queue_name: str) -> str:
    """RQ's own key: present while a scheduler holds the queue (see worker/rq_seam.py)."""
    from ..rq_seam import scheduler_lock_key as rq_scheduler_lock_key

    return rq_scheduler_lock_key(queue_name)


def member_hash_key(key: str) -> str:
    return f"{PREFIX}member:{key}"


def member_sequences_key(key: str) -> str:
    return f"{PREFIX}member:{key}:sequences"


def member_events_key(key: str) -> str:
    return f"{PREFIX}member:{key}:events"


def member_paused_key(key: str) -> str:
    return f"{PREFIX}member:{key}:paused"


def sequence_key(sequence_id: str) -> str:
    return f"{PREFIX}sequence:{sequence_id}"


def sequence_claims_key(sequence_id: str) -> str:
    return f"{PREFIX}sequence:{sequence_id}:claims"


def cooldown_key(key: str) -> str:
    return f"{PREFIX}cooldown:{key}"


def send_claim_key(sequence_id: str, step: str) -> str:
    return f"{PREFIX}send:{sequence_id}:{step}"


def feedback_key(sequence_id: str) -> str:
    return f"{PREFIX}feedback:{sequence_id}"


def rejoin_key(sequence_id: str) -> str:
    return f"{PREFIX}rejoin:{sequence_id}"


def winback_key(sequence_id: str) -> str:
    return f"{PREFIX}winback:{sequence_id}"


def cancellation_key(event_id: str) -> str:
    return f"{PREFIX}cancellation:{event_id}"


def membership_cancellations_key(membership_id: str) -> str:
    return f"{PREFIX}cancellations:membership:{membership_id}"


def pool_key(name: str, part: str) -> str:
    """part: available | known | given | loaded."""
    return f"{PREFIX}pool:{name}:{part}"


def ping_key(source: str) -> str:
    return f"{PREFIX}ping:{source}"
