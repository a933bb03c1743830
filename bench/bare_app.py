"""The framework's ceiling: a bare Flask app served by the same gunicorn settings.

`POST /hooks/<source>` reads the body and answers `{}`; `GET /healthz` lets devstack's
Stack wait for it like the real app.
"""

from __future__ import annotations

from flask import Flask, request


def create_app() -> Flask:
    app = Flask(__name__)

    @app.post("/hooks/<source>")
    def hook(source: str) -> dict:
        request.get_data()
        return {}

    @app.get("/healthz")
    def healthz() -> dict:
        return {"status": "ok"}

    return app
