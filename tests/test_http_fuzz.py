"""Property tests of request validation: whatever arrives, the API answers with a JSON error or success,
never a 500, a traceback or an HTML page."""
import json
import shutil
import urllib.parse

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import System

ALLOWED = {200, 202, 400, 404, 405, 413, 429}
FIELDS = ["agent", "task", "provider", "runtime", "name", "env"]
VALID_ID = "00000000-0000-4000-8000-000000000000"
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-2 ** 70, max_value=2 ** 70) | st.floats()
    | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=10)
field_values = st.one_of(st.just("true"), st.sampled_from(["coder", "gemini", "shell", "a b", "-x", ""]),
                         st.text(max_size=30), json_values)
bodies = st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=10), field_values, max_size=7)
FUZZ = settings(max_examples=1000, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture(scope="module")
def api():
    system = System().start()
    system.spec = system.http("GET", "/v1/openapi.json")[1]
    yield system
    system.stop()
    shutil.rmtree(system.home, ignore_errors=True)


def conforms(system, body, schema):
    jsonschema.validate(body, {"$ref": "#/components/schemas/" + schema, "components": system.spec["components"]})


def check(system, answer, schema=None):
    """No 500, errors are JSON, and a success matches its schema in /v1/openapi.json."""
    status, body, headers = answer
    assert status in ALLOWED, (status, body)
    if status >= 400:
        assert dict(headers)["Content-Type"] == "application/json"
        conforms(system, body, "Error")
    elif schema:
        conforms(system, body, schema)


@FUZZ
@given(body=bodies, shell=st.booleans())
def test_any_json_body_gets_a_clean_answer(api, body, shell):
    if shell:
        body = dict(body, runtime="shell", task="true")
    raw = json.dumps(body, allow_nan=True).encode()
    check(api, api.http("POST", "/v1/sessions", raw=raw, headers={"Content-Type": "application/json"}), "Accepted")


@FUZZ
@given(raw=st.binary(max_size=200) | st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")))
def test_any_bytes_as_a_body_get_a_clean_answer(api, raw):
    check(api, api.http("POST", "/v1/sessions", raw=raw, headers={"Content-Type": "application/json"}), "Accepted")


queries = st.dictionaries(st.sampled_from(["status", "limit", "offset", "tail", "follow", "purge"])
                          | st.text(max_size=6), st.text(max_size=12), max_size=4)
paths = st.sampled_from(["/v1/sessions", "/v1/sessions/" + VALID_ID, "/v1/sessions/%s/log" % VALID_ID,
                         "/v1/status"]) | st.text(max_size=40).map(lambda t: "/v1/sessions/" + urllib.parse.quote(t))


@FUZZ
@given(path=paths, query=queries, method=st.sampled_from(["GET", "DELETE", "PUT", "PATCH"]))
def test_any_path_and_query_get_a_clean_answer(api, path, query, method):
    schema = {"/v1/sessions": "SessionList", "/v1/status": "Status"}.get(path) if method == "GET" else None
    check(api, api.http(method, path + "?" + urllib.parse.urlencode(query)), schema)
