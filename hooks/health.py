"""`GET /healthz`: is this process able to accept and hand over events?"""

from __future__ import annotations

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue
from redis.exceptions import RedisError

from .services import get_services

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    services = get_services()
    body: dict[str, object] = {"spool_backlog": services.spool.backlog()}
    try:
        services.store.redis.ping()
    except RedisError as exc:
        body.update(status="unavailable", reason=f"redis: {type(exc).__name__}")
        return jsonify(body), 503
    body["status"] = "ok"
    # Mail keeps failing until someone fixes the configuration: say so here, loudly.
    try:
        body["last_send_error"] = services.store.last_send_error()
        body["failed_jobs"] = services.queue.failed_job_registry.count
    except RedisError:
        pass
    return jsonify(body), 200
