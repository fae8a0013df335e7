"""schemathesis against the live OpenAPI document: no request it generates causes a server error.

The watch stream never ends by design, so its generated requests are sent by hand: only the status
and headers are awaited (tests/locator/test_http.py covers its content).
schemathesis's pytest plug-in (``from_fixture``) does not work with pytest 9, so the operations are
driven with Hypothesis directly.
"""

from __future__ import annotations

import json

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from vmferry.locator.auth import sign
from vmferry.locator.model import Locator

from .conftest import EAST_SECRET, LocatorProcess


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    proc = LocatorProcess(tmp_path_factory.mktemp("openapi"), dns=False).start()
    with proc.client() as east:  # something to find
        east.register("10.1.0.0/16", [Locator("192.0.2.1")])
        east.register("app.example.test", [Locator("192.0.2.2", port=80)])
    yield proc
    proc.kill()


def signed_check(url: str, operation, tried: list) -> None:
    @given(operation.as_strategy())
    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def check(case):
        body = json.dumps(case.body).encode()
        headers = sign(EAST_SECRET.encode(), "POST", operation.path, "east-1", body)
        response = httpx.post(url + operation.path, content=body,
                              headers={**headers, "Content-Type": "application/json"})
        assert response.status_code < 500, response.text
        tried.append(response.status_code)

    check()


def stream_check(url: str, operation, tried: list) -> None:
    @given(operation.as_strategy())
    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def check(case):
        with httpx.stream("GET", url + case.formatted_path, params=case.query, timeout=5) as response:
            assert response.status_code < 500
            tried.append(response.status_code)

    check()


def test_no_generated_request_causes_a_server_error(live):
    schema = schemathesis.openapi.from_url(live.url + "/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    paths = sorted(f"{op.method.upper()} {op.path}" for op in operations)
    assert "POST /v1/register" in paths and "GET /v1/resolve" in paths and "GET /v1/watch" in paths
    tried = []
    for operation in operations:
        if operation.path == "/v1/watch":
            stream_check(live.url, operation, tried)
            continue

        @given(operation.as_strategy())
        @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case):
            response = case.call_and_validate(checks=[not_a_server_error])
            tried.append(response.status_code)

        check()
        if operation.method.upper() == "POST":  # the same generated bodies, this time correctly signed
            signed_check(live.url, operation, tried)
    assert len(tried) > 100
    assert 200 in tried  # some signed, generated registrations went through
    with live.client() as east:  # and the service is still consistent afterwards
        assert east.resolve("10.1.2.3").mapping.eid.text == "10.1.0.0/16"
