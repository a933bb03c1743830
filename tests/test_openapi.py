"""docs/openapi.yaml describes the app, and the app keeps to it: schemathesis generates
requests from the description and checks every answer against it (no 5xx, documented
status codes, content types, bodies and headers). Bounded: a few dozen cases per
operation."""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import CHECKS

from tests.conftest import MEMBERPRESS_KEY

SPEC = Path(__file__).resolve().parent.parent / "docs" / "openapi.yaml"
CHECK_NAMES = {
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
}
OPERATIONS = [
    ("POST", "/hooks/{source}"),
    ("POST", "/hooks/{provider}"),
    ("GET", "/unsubscribe/{token}"),
    ("POST", "/unsubscribe/{token}"),
    ("GET", "/healthz"),
    ("GET", "/metrics"),
]


def _checks():
    return [check for check in CHECKS.get_all() if check.__name__ in CHECK_NAMES]


def test_every_operation_in_the_app_is_described():
    schema = schemathesis.openapi.from_path(SPEC)
    described = {(op.ok().method.upper(), op.ok().path) for op in schema.get_all_operations()}
    assert described == set(OPERATIONS)
    assert len(_checks()) == len(CHECK_NAMES)


@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_the_app_answers_as_docs_openapi_yaml_says(app, method, path):
    schema = schemathesis.openapi.from_path(SPEC)
    schema.app = app
    operation = schema[path][method]

    @given(case=operation.as_strategy())
    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    def run(case):
        # Most of the value is past authentication, so requests carry the key.
        case.call_and_validate(
            headers={"MEMBERPRESS-WEBHOOK-KEY": MEMBERPRESS_KEY}, checks=_checks()
        )

    run()
