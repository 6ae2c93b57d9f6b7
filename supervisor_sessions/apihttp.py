"""What every route of the Management API shares: JSON answers and errors, and the checks of query
parameters, bodies and session ids (each failure an ApiError: HTTP status and a message)."""
import json

import bottle

from .naming import is_session_id

MAX_BODY_BYTES = 1024 * 1024      # a POST body above this is 413
ERROR_CODES = {400: "invalid_request", 401: "unauthorized", 404: "not_found", 405: "method_not_allowed",
               409: "conflict", 410: "gone", 411: "length_required", 413: "payload_too_large", 429: "too_many_requests", 500: "internal_error",
               503: "unavailable", 507: "insufficient_storage"}


class ApiError(Exception):
    """An error answer: HTTP status, message and extra headers."""

    def __init__(self, status, message, headers=None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def json_answer(status, body, headers=None):
    """`body` as a JSON answer with `status`."""
    return bottle.HTTPResponse(json.dumps(body), status=status, headers=dict(
        headers or {}, **{"Content-Type": "application/json"}))


def error_answer(status, message, headers=None):
    """The JSON error {"error": code, "message": message} with `status`."""
    return json_answer(status, {"error": ERROR_CODES.get(status, "error"), "message": message}, headers)


def query_int(name, default, minimum, maximum):
    """The integer query parameter `name` within [minimum, maximum]; `default` when absent."""
    raw = bottle.request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, "%s must be an integer, got %r" % (name, raw[:40])) from None
    if not minimum <= value <= maximum:
        raise ApiError(400, "%s must be between %d and %d" % (name, minimum, maximum))
    return value


def query_bool(name):
    """The true/false query parameter `name` (false when absent)."""
    raw = bottle.request.query.get(name, "false").lower()
    if raw not in ("true", "false", "1", "0", "yes", "no"):
        raise ApiError(400, "%s must be true or false, got %r" % (name, raw[:40]))
    return raw in ("true", "1", "yes")


def read_json_body(expected="agent, task and provider"):
    """The request's body: a JSON object of at most MAX_BODY_BYTES."""
    environ = bottle.request.environ
    try:
        declared = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise ApiError(400, "Content-Length is not a number") from None
    if declared > MAX_BODY_BYTES:
        raise ApiError(413, "the body may be at most %d bytes" % MAX_BODY_BYTES)
    raw = environ["wsgi.input"].read(MAX_BODY_BYTES + 1)
    if len(raw) > MAX_BODY_BYTES:
        raise ApiError(413, "the body may be at most %d bytes" % MAX_BODY_BYTES)
    try:
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise ApiError(400, "the body is not valid UTF-8 JSON: %s" % str(e)[:120]) from None
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be a JSON object with %s" % expected)
    return body


def session_id_param(value):
    """`value` when it is a well-formed session id; a 404 else."""
    if not is_session_id(value):
        raise ApiError(404, "no session %r" % value[:80])
    return value
