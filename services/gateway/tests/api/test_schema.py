"""Schemathesis against the gateway's own OpenAPI document: generated requests, no 5xx.

Every operation is called over real HTTP with the real inference service behind; answers must
match the documented status codes, content types and response schemas.
"""

import pytest
import schemathesis
from brainscan_gateway.app import create_app
from gateway_servers import gateway_settings
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

# The document is the app's own (the same one /openapi.json serves); requests go over HTTP.
schema = schemathesis.openapi.from_dict(
    create_app(gateway_settings("http://127.0.0.1:9")).openapi()
)


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
def test_generated_requests_get_documented_answers_and_never_a_5xx(case, gateway_url):
    case.call_and_validate(
        base_url=gateway_url,
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ],
    )


@pytest.fixture(scope="module")
def gateway_url(gateway) -> str:
    return gateway.url
