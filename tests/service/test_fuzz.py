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

EXAMPLES = int(os.environ.get("TEXTCNN_FUZZ_EXAMPLES", "40"))  # per operation and mode
REPORT = os.environ.get("TEXTCNN_FUZZ_REPORT")  # a JSON file for the status counts
OPERATIONS = [
    "GET /health",
    "GET /ready",
    "GET /info",
    "GET /metrics",
    "GET /confusion.png",
    "POST /classify",
]


@pytest.fixture(scope="module")
def api_schema(server):
    return schemathesis.openapi.from_url(f"{server.url}/openapi.json")


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
def test_generated_requests_conform_to_the_schema(api_schema, statuses, operation, mode):
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
        response = case.call_and_validate(timeout=30)
        statuses[f"{operation} {mode.value} {response.status_code}"] += 1
        assert response.status_code < 500

    check()
