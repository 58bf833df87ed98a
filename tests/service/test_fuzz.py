"""Generated requests (schemathesis, all of its checks) against the real server: no 5xx, and
every response is what the published OpenAPI schema says (status codes, bodies, types).

`python benchmarks/fuzz.py` runs the same test with many more cases and reports the counts.
"""

import json
import os
from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from tests.service.conftest import Server

EXAMPLES = int(os.environ.get("TEXTCNN_FUZZ_EXAMPLES", "40"))  # per operation and mode
REPORT = os.environ.get("TEXTCNN_FUZZ_REPORT")  # a JSON file for the status counts
OPERATIONS = [
    "GET /health",
    "GET /ready",
    "GET /info",
    "GET /metrics",
    "GET /confusion.png",
    "GET /reliability.png",
    "GET /models",
    "POST /models/{name}/reload",
    "POST /classify",
]


KEY = "fuzz-key"


@pytest.fixture(scope="module")
def keyed_server(model_dir):
    running = Server(model_dir, api_key=KEY)
    yield running
    running.stop()


@pytest.fixture(scope="module", params=["open", "key given", "key missing"])
def api(request, server, keyed_server):
    """(the schema, the headers every request carries): a server without a key, and one
    with a key asked with it and without it (every response then a 401 but the probes')."""
    if request.param == "open":
        return schemathesis.openapi.from_url(f"{server.url}/openapi.json"), {}
    schema = schemathesis.openapi.from_url(f"{keyed_server.url}/openapi.json")
    given_key = {"Authorization": f"Bearer {KEY}"} if request.param == "key given" else {}
    return schema, given_key


@pytest.fixture(scope="module")
def api_schema(api):
    return api[0]


@pytest.fixture(scope="module")
def statuses():
    counts: Counter = Counter()
    yield counts
    if REPORT:
        with open(REPORT, "w") as handle:
            json.dump(dict(sorted(counts.items())), handle, indent=2)


def test_every_operation_is_fuzzed(api_schema):
    found = {f"{op.ok().method.upper()} {op.ok().path}" for op in api_schema.get_all_operations()}
    assert found == set(OPERATIONS)


@pytest.mark.parametrize(
    ("operation", "mode"),
    [(op, GenerationMode.POSITIVE) for op in OPERATIONS]
    # the GET operations take no input, so only the POST has invalid input to generate
    + [("POST /classify", GenerationMode.NEGATIVE)],
)
def test_generated_requests_conform_to_the_schema(api, statuses, operation, mode):
    api_schema, headers = api
    method, path = operation.split()
    api_operation = api_schema[path][method]

    @given(case=api_operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    def check(case):
        response = case.call_and_validate(timeout=30, headers=headers)
        statuses[f"{operation} {mode.value} {response.status_code}"] += 1
        assert response.status_code < 500

    check()
