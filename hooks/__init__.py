"""Farewell's web side: the webhook receiver, small public pages and the owner's admin."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask, jsonify, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from worker import logs
from worker.redis_policy import check_at_start
from worker.settings import Settings

from . import security


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app. Settings come from the environment unless `config["SETTINGS"]` gives
    a `Settings` (tests); other keys of `config` go to `app.config`."""
    app = Flask(__name__)
    config = dict(config or {})
    settings: Settings = config.pop("SETTINGS", None) or Settings.from_env()
    app.config.update(
        MAX_CONTENT_LENGTH=settings.max_body_bytes,
        SECRET_KEY=settings.secret_key or None,
        JSON_SORT_KEYS=False,
        **security.session_cookie_config(settings.base_url),
    )
    app.config.update(config)
    logs.configure(settings)
    if settings.trusted_proxies:
        # Behind N reverse proxies, the client address comes from X-Forwarded-For.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.trusted_proxies)  # type: ignore[method-assign]

    from . import (
        admin,
        admin_templates,
        body_limit,
        bounces,
        cli,
        connections,
        feedback,
        health,
        metrics,
        receiver,
        rejoin,
        services,
        template_editor,
        unsubscribe,
    )

    # Chunked bodies get the size limit too; SendGrid's endpoint allows more than the rest.
    largest = max(settings.max_body_bytes, bounces.SENDGRID_MAX_BODY)
    app.wsgi_app = body_limit.FramedBody(app.wsgi_app, largest)  # type: ignore[method-assign]
    svc = services.init_app(app, settings)
    # Refuse to run on a Redis that would evict our data (worker/redis_policy.py).
    check_at_start(svc.store.redis, settings.allow_evicting_redis)
    security.init_app(app)
    cli.init_app(app)
    app.register_blueprint(receiver.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(metrics.bp)
    # gthread workers reuse threads: a request's event id must not leak into the next one.
    app.teardown_request(lambda _exc: logs.set_event_id(None))
    app.register_blueprint(bounces.bp)
    app.register_blueprint(unsubscribe.bp)
    app.register_blueprint(admin_templates.bp)
    app.register_blueprint(template_editor.bp)
    app.register_blueprint(feedback.bp)
    app.register_blueprint(rejoin.bp)
    app.register_blueprint(admin.bp)
    connections.init_app(app, svc)

    @app.errorhandler(HTTPException)
    def json_http_error(exc: HTTPException) -> ResponseReturnValue:
        # The API speaks JSON even for errors Flask raises itself (404, 405, 413);
        # pages keep Flask's HTML errors.
        if not request.path.startswith(security.API_PATHS):
            return exc
        messages = {413: f"body is larger than {settings.max_body_bytes} bytes"}
        return jsonify(error=messages.get(exc.code or 0, exc.description)), exc.code or 500

    cli.redis_errors_in_one_line(app.cli, settings.redis_url)
    if not app.testing:
        svc.start_replayer()
    return app
