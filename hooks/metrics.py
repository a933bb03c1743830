"""`GET /metrics`: Prometheus text format, totals across every web and worker process.

Counters are kept in Redis (worker/store/keys.py `metrics`), so any web process answers
with the same totals; the spool backlog is this host's gauge. With FAREWELL_METRICS_TOKEN
set, scrapes need `Authorization: Bearer <token>` (hooks/ops_auth.py).

    farewell_events_received_total{source,kind,status}  webhooks by what the receiver did
    farewell_jobs_total{job,outcome}                      RQ jobs finished, ok or failed
    farewell_emails_total{transport,result}               sent, rejected, deferred, ...
    farewell_spool_replayed_total{result}                  events replayed from the spool
    farewell_admin_refused_total{source,status}            wrong admin logins: 401 or 429
    farewell_template_fallbacks_total{email,used}          sends whose template failed, by
                                                           what went out instead
    farewell_template_failures                             emails whose template is failing
    farewell_spool_backlog                                 events waiting in this host's spool
    farewell_events_pending                                accepted events not yet handled
    farewell_redis_up                                      1 when Redis answered this scrape
"""

from __future__ import annotations

from flask import Blueprint, Response
from redis.exceptions import RedisError

from .ops_auth import token_required
from .services import get_services

bp = Blueprint("metrics", __name__)

HELP = {
    "farewell_events_received_total": "Webhooks received, by source, event kind and outcome.",
    "farewell_jobs_total": "Background jobs finished, by job and outcome.",
    "farewell_emails_total": "Email send attempts, by transport and result.",
    "farewell_spool_replayed_total": "Events replayed from the local spool into Redis.",
    "farewell_admin_refused_total": "Refused admin logins, by outcome (401 or 429).",
    "farewell_template_fallbacks_total": (
        "Sends whose template failed, by email and what went out instead "
        "(last_good, shipped_default, none)."
    ),
}
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render(
    counters: dict,
    backlog: int,
    redis_up: bool,
    pending: int | None = None,
    template_failures: int | None = None,
) -> str:
    lines: list[str] = []
    by_name: dict[str, list[tuple[tuple[tuple[str, str], ...], int]]] = {}
    for (name, labels), value in counters.items():
        by_name.setdefault(name, []).append((labels, value))
    for name in sorted(set(by_name) | set(HELP)):
        lines.append(f"# HELP {name} {HELP.get(name, name)}")
        lines.append(f"# TYPE {name} counter")
        for labels, value in sorted(by_name.get(name, [])):
            text = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
            lines.append(f"{name}{{{text}}} {value}" if text else f"{name} {value}")
    lines += [
        "# HELP farewell_spool_backlog Events waiting in this host's local spool.",
        "# TYPE farewell_spool_backlog gauge",
        f"farewell_spool_backlog {backlog}",
        *(
            [
                "# HELP farewell_events_pending Accepted events not yet handled by a worker "
                "(the backlog of a wave).",
                "# TYPE farewell_events_pending gauge",
                f"farewell_events_pending {pending}",
            ]
            if pending is not None
            else []
        ),
        *(
            [
                "# HELP farewell_template_failures Emails whose template failed at send time "
                "and is not fixed yet (see /healthz).",
                "# TYPE farewell_template_failures gauge",
                f"farewell_template_failures {template_failures}",
            ]
            if template_failures is not None
            else []
        ),
        "# HELP farewell_redis_up 1 when Redis answered this scrape.",
        "# TYPE farewell_redis_up gauge",
        f"farewell_redis_up {1 if redis_up else 0}",
    ]
    return "\n".join(lines) + "\n"


@bp.get("/metrics")
@token_required  # when FAREWELL_METRICS_TOKEN is set
def metrics() -> Response:
    services = get_services()
    try:
        counters, pending = services.store.counters(), services.store.pending_count()
        failing = len(services.store.template_failures())
        redis_up = True
    except RedisError:
        counters, pending, failing, redis_up = {}, None, None, False
    body = render(counters, services.spool.backlog(), redis_up, pending, failing)
    return Response(body, 200, content_type=CONTENT_TYPE)
