"""docs/openapi.yaml describes the app, and the app keeps to it: every route of the app is
in the description, and schemathesis generates requests from the description and checks
every answer against it (no 5xx, documented status codes, content types, bodies and
headers). Bounded: a few dozen cases per operation."""

from __future__ import annotations

import base64
import dataclasses
import re
from pathlib import Path

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import CHECKS

from hooks import create_app
from tests.conftest import MEMBERPRESS_KEY

SPEC = Path(__file__).resolve().parent.parent / "docs" / "openapi.yaml"
CHECK_NAMES = {
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
}
ADMIN_PASSWORD = "openapi-admin-pass"
# The bounce receivers are three fixed routes that the description folds into one.
PROVIDER_ROUTES = {"/hooks/postmark-bounce", "/hooks/mailgun-events", "/hooks/sendgrid-events"}


def _described() -> set[tuple[str, str]]:
    schema = schemathesis.openapi.from_path(SPEC)
    return {(op.ok().method.upper(), op.ok().path) for op in schema.get_all_operations()}


def _routes(app: Flask) -> set[tuple[str, str]]:
    routes = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        path = "/hooks/{provider}" if rule.rule in PROVIDER_ROUTES else rule.rule
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", path)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            routes.add((method, path))
    return routes


def _checks():
    return [check for check in CHECKS.get_all() if check.__name__ in CHECK_NAMES]


OPERATIONS = sorted(_described())


@pytest.fixture
def admin_app(settings, runtime):
    """The app with its admin switched on, so the admin pages are checked past the 404."""
    app = create_app(
        {
            "TESTING": True,
            "SETTINGS": dataclasses.replace(
                settings, admin_password=ADMIN_PASSWORD, admin_email="owner@example.com"
            ),
        }
    )
    yield app
    services = app.extensions["farewell"]
    services.store.redis.close()
    services.queue.connection.close()


def test_every_route_of_the_app_is_described(admin_app):
    assert _routes(admin_app) == _described()
    assert len(_checks()) == len(CHECK_NAMES)


@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_the_app_answers_as_docs_openapi_yaml_says(admin_app, method, path):
    schema = schemathesis.openapi.from_path(SPEC)
    schema.app = admin_app
    operation = schema[path][method]
    basic = base64.b64encode(f"admin:{ADMIN_PASSWORD}".encode()).decode()

    @given(case=operation.as_strategy())
    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    def run(case):
        # Most of the value is past authentication, so requests carry the keys.
        case.call_and_validate(
            headers={"MEMBERPRESS-WEBHOOK-KEY": MEMBERPRESS_KEY, "Authorization": f"Basic {basic}"},
            checks=_checks(),
        )

    run()
