"""`GET /healthz`: is this process able to accept and hand over events?

200 whenever Redis answers (this web process can accept webhooks); the body also says
whether a scheduler holds the queue (delayed emails are being released), how many events
wait in this host's spool, the last send error a worker recorded, the email templates that
failed at send time (worker/safety.py), and `warnings` in plain words. 503 only when Redis
does not answer — and even then webhooks are still accepted into the spool.
"""

from __future__ import annotations

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue
from redis.exceptions import RedisError

from worker.redis_policy import check as check_redis_policy
from worker.safety import template_failures

from .ops_auth import details_need_token
from .services import get_services

bp = Blueprint("health", __name__)


@bp.get("/healthz")
@details_need_token  # with FAREWELL_METRICS_TOKEN set, only `status` for the public
def healthz() -> ResponseReturnValue:
    services = get_services()
    store = services.store
    backlog = services.spool.backlog()
    body: dict[str, object] = {"spool_backlog": backlog}
    try:
        store.redis.ping()
        scheduler = store.scheduler_alive(services.settings.queue_name)
        last_error = store.last_send_error()
        stripe_error = store.stripe_error()
        policy = check_redis_policy(store.redis, services.settings.allow_evicting_redis)
        failures = template_failures(store)
    except RedisError as exc:
        body.update(status="unavailable", redis="down", reason=f"redis: {type(exc).__name__}")
        return jsonify(body), 503
    body.update(
        redis="ok",
        scheduler="ok" if scheduler else "missing",
        last_send_error=last_error,
        stripe_error=stripe_error,
        template_failures=[
            {"email": f.email, "where": f.where, "error": f.error, "fallback": f.fallback.value}
            for f in failures
        ],
    )
    try:
        body["failed_jobs"] = services.queue.failed_job_registry.count
    except RedisError:
        pass
    warnings = [policy.refusal] if policy.refusal else []
    warnings += policy.warnings  # a Redis that evicts or forgets (worker/redis_policy.py)
    if not scheduler:
        warnings.append("no worker scheduler holds the queue: is `python -m worker` running?")
    if backlog:
        warnings.append(f"{backlog} event(s) wait in the spool for Redis")
    if last_error:
        # Mail keeps failing until someone fixes the configuration: say so here, loudly.
        warnings.append(f"mail is failing: {last_error.get('error', '')}")
    if stripe_error:
        warnings.append(f"Stripe events wait: {stripe_error.get('error', '')}")
    # A template that broke while running: members get a fallback, someone must fix it.
    warnings += [failure.sentence() for failure in failures]
    body.update(status="ok", warnings=warnings)
    return jsonify(body), 200
