"""A Python client of the Management API, on the standard library alone.

    from supervisor_sessions.sdk import Client
    client = Client("http://127.0.0.1:9090", key)
    accepted = client.create("echo hello", agent="coder", provider="gemini", runtime="shell")
    for text in client.follow_log(accepted.session_id):
        print(text, end="")
    print(client.wait(accepted.session_id).exit_code)

Results are dataclasses whose attributes are the API's fields in snake_case (the answer as it came in
`.raw`). An error answer raises the ApiError subclass of its status. 429 and 503 are tried again after their
Retry-After, a bounded number of times; the followers of a log and of the change feed reconnect after a
dropped connection and go on from the last offset or seq they saw, without loss or repeats. The key is
never part of a message, an exception or a repr.
"""
import email.utils
import http.client
import itertools
import json
import re
import ssl
import time
import uuid
from dataclasses import dataclass, field, fields
from typing import Optional
from urllib.parse import quote, urlencode, urlsplit

DEFAULT_URL = "http://127.0.0.1:9090"
FINAL_STATUSES = frozenset({"completed", "failed", "stopped", "interrupted"})   # events.FINAL, without supervisor
WAIT_POLL_SECONDS = (0.05, 1.0)   # wait() polls first after the one, then ever less often up to the other
_WHOLE_ID = re.compile(r"\A[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\Z")
_ID_PREFIX = re.compile(r"\A[0-9a-f][0-9a-f-]{0,34}\Z")


# ---- errors -------------------------------------------------------------------------------------------

class ApiError(Exception):
    """An error answer of the API: its HTTP `status`, its `error` code and its `message` (status None: no answer
    came). `retry_after` is the server's Retry-After in seconds, when it gave one."""

    def __init__(self, status, error, message, retry_after=None):
        super().__init__(status, error, message)
        self.status, self.error, self.message, self.retry_after = status, error, message, retry_after

    def __str__(self):
        return "%s (%s%s)" % (self.message, "%d " % self.status if self.status else "", self.error)

    def __repr__(self):
        return "%s(%r, %r, %r)" % (type(self).__name__, self.status, self.error, self.message)


class InvalidRequest(ApiError):
    """400: a field, query or body is invalid."""


class Unauthorized(ApiError):
    """401: a missing or wrong key."""


class NotFound(ApiError):
    """404: no such session, path, request or route."""


class MethodNotAllowed(ApiError):
    """405: the route takes other methods."""


class Conflict(ApiError):
    """409: the session's state does not allow it (still live, not interactive, no workspace, ...)."""


class Gone(ApiError):
    """410: events older than the journal keeps; the message names the oldest seq still there."""


class LengthRequired(ApiError):
    """411: an upload without a Content-Length."""


class PayloadTooLarge(ApiError):
    """413: a body over 1 MiB, or an upload over FILES_UPLOAD_MAX_MB."""


class TooManyRequests(ApiError):
    """429: the queue is full, or too many followers stream already."""


class InternalError(ApiError):
    """500: a bug of the server; its log has the details."""


class Unavailable(ApiError):
    """503: supervisord is not answering, or this client holds too many connections."""


class InsufficientStorage(ApiError):
    """507: the disk is full."""


class ConnectionFailed(ApiError):
    """No answer: the API could not be reached, or the connection broke."""

    def __init__(self, message):
        super().__init__(None, "connection_failed", message)


class UnknownId(NotFound):
    """No session id starts with the prefix given."""

    def __init__(self, prefix):
        super().__init__(404, "not_found", "no session id starts with %r" % prefix)


class AmbiguousId(ValueError):
    """Several session ids start with the prefix given."""

    def __init__(self, prefix, matches):
        shown = ", ".join(sorted(matches)[:5]) + (", ..." if len(matches) > 5 else "")
        super().__init__("%r starts %d session ids (%s): give more of the id" % (prefix, len(matches), shown))


class WaitTimeout(TimeoutError):
    """wait() ran out of time; `session` is the record last seen."""

    def __init__(self, session):
        super().__init__("session %s is still %s" % (session.session_id, session.status))
        self.session = session


ERROR_CLASSES = {400: InvalidRequest, 401: Unauthorized, 404: NotFound, 405: MethodNotAllowed, 409: Conflict,
                 410: Gone, 411: LengthRequired, 413: PayloadTooLarge, 429: TooManyRequests, 500: InternalError,
                 503: Unavailable, 507: InsufficientStorage}


def error_from_answer(status, body, retry_after=None):
    """The ApiError of an error answer: its class by `status`, its code and message from the JSON body
    {"error", "message"} (from the text of a body that is not one)."""
    try:
        parsed = json.loads(body)
        error, message = str(parsed["error"]), str(parsed["message"])
    except (ValueError, TypeError, KeyError):
        error = "http_%d" % status
        message = body.decode("utf-8", "replace").strip()[:200] or "HTTP %d" % status
    return ERROR_CLASSES.get(status, ApiError)(status, error, message, retry_after)


# ---- session ids by prefix ----------------------------------------------------------------------------

def is_partial_id(value):
    """True when `value` may be the start of a session id but is not a whole one."""
    return bool(_ID_PREFIX.match(value)) and not _WHOLE_ID.match(value)


def unique_id(prefix, session_ids):
    """The one id of `session_ids` that starts with `prefix`; UnknownId or AmbiguousId else."""
    matches = {sid for sid in session_ids if sid.startswith(prefix)}
    if len(matches) == 1:
        return matches.pop()
    if matches:
        raise AmbiguousId(prefix, matches)
    raise UnknownId(prefix)


# ---- results ------------------------------------------------------------------------------------------

def _raw():
    """The `raw` field of a result: the answer as it came, neither shown nor compared."""
    return field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class Session:
    """A session record (see GET /v1/sessions/{id}); `log_tail` and `resources` come with get() only."""
    session_id: str
    status: str
    name: Optional[str] = None
    agent: Optional[str] = None
    task: Optional[str] = None
    provider: Optional[str] = None
    runtime: Optional[str] = None
    reason: Optional[str] = None
    cause: Optional[str] = None
    created_at: Optional[int] = None
    start_time: Optional[int] = None
    end_time: Optional[int] = None
    duration: Optional[int] = None
    exit_code: Optional[int] = None
    pid: Optional[int] = None
    port: Optional[int] = None
    timeout_seconds: Optional[int] = None
    limits: Optional[dict] = None
    gpus: Optional[int] = None
    gpu_devices: Optional[list] = None
    uid: Optional[int] = None
    labels: Optional[dict] = None
    agent_state: Optional[str] = None
    usage: Optional[dict] = None
    agent_session_id: Optional[str] = None
    budget: Optional[dict] = None
    stall_seconds: Optional[int] = None
    interactive: Optional[bool] = None
    idle_timeout_seconds: Optional[int] = None
    approvals: Optional[str] = None
    resumed_from: Optional[str] = None
    workspace: Optional[dict] = None
    changes: Optional[dict] = None
    placement: Optional[dict] = None
    ray: Optional[dict] = None
    node: Optional[dict] = None
    session_dir: Optional[str] = None
    log_file: Optional[str] = None
    log_tail: Optional[str] = None
    resources: Optional[dict] = None
    raw: dict = _raw()

    @property
    def ended(self):
        """True once the session is completed, failed, stopped or interrupted."""
        return self.status in FINAL_STATUSES


@dataclass(frozen=True)
class Page:
    """One page of GET /v1/sessions: `count` is how many match in all."""
    sessions: list
    count: int
    limit: int
    offset: int


@dataclass(frozen=True)
class Accepted:
    """The answer to a create; `replayed` when an earlier create with the same idempotency key made it."""
    session_id: str
    status: str
    message: str
    session_dir: str
    log_file: str
    replayed: bool = False
    raw: dict = _raw()


@dataclass(frozen=True)
class Stopped:
    """The answer to a stop or a removal: the status the session is moving to (`stopping`, or final)."""
    session_id: str
    status: str
    purged: bool = False
    raw: dict = _raw()


@dataclass(frozen=True)
class Event:
    """An event of the change feed; what else its type carries (status, exitCode, ...) is in `raw`."""
    seq: int
    type: str
    session_id: str
    time: int
    labels: Optional[dict] = None
    raw: dict = _raw()


@dataclass(frozen=True)
class EventPage:
    """A page of the change feed: pass `next_seq` as `since` to continue."""
    events: list
    next_seq: int


@dataclass(frozen=True)
class Runtime:
    """A runtime: its program, whether it is installed, its version and what it supports."""
    runtime: str
    program: str
    installed: bool
    supports: dict
    version: Optional[str] = None


@dataclass(frozen=True)
class Approval:
    """A permission request an agent waits on: its tool and a summary of its input."""
    request_id: str
    tool: str
    input: str
    since: int


@dataclass(frozen=True)
class DiffStat:
    """What a session's workspace changed, in numbers: `changes` in all, `files` one by one."""
    changes: dict
    files: list
    patch_truncated: bool
    raw: dict = _raw()


@dataclass(frozen=True)
class FileEntry:
    """An entry of a directory listing: type is file, dir, link or other; mtime in ms."""
    name: str
    type: str
    size: int
    mtime: int


@dataclass(frozen=True)
class Listing:
    """A directory of a session: its entries (`truncated` past 10,000)."""
    path: str
    entries: list
    truncated: bool


def _snake(name):
    return re.sub("([A-Z])", r"_\1", name).lower()


def _camel(name):
    head, *rest = name.split("_")
    return head + "".join(word.title() for word in rest)


def _typed(cls, body):
    """The JSON object `body` as a `cls`: each attribute from the key of its name in camelCase (others are
    left to `raw`)."""
    names = {f.name for f in fields(cls)} - {"raw"}
    values = {_snake(key): value for key, value in body.items() if _snake(key) in names}
    if "raw" in {f.name for f in fields(cls)}:
        values["raw"] = body
    return cls(**values)


# ---- event streams ------------------------------------------------------------------------------------

@dataclass
class _Frame:
    id: Optional[str] = None
    event: Optional[str] = None
    data: list = field(default_factory=list)


def _frames(response):
    """The complete frames of a text/event-stream as they arrive; one the end of the stream cut short is not
    given. The API separates lines with \\n alone, so a \\r stays in the data."""
    frame = _Frame()
    for line in iter(response.readline, b""):
        if not line.endswith(b"\n"):
            return
        line = line[:-1].decode("utf-8", "replace")
        if not line:
            if frame.data or frame.event:
                yield frame
            frame = _Frame()
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "data":
                frame.data.append(value)
            elif name in ("id", "event"):
                setattr(frame, name, value)


def _chunk_text(lines, size):
    """The text of a log chunk of `size` bytes from its SSE data lines: the lines joined, and the line break
    that the framing drops at the end when the bytes say there was one. A U+FFFD is counted as the one byte
    it mostly replaced: an invalid one, or a control character where the API read the log through supervisord."""
    text = "\n".join(lines)
    return text + "\n" if size > len(text.encode("utf-8")) - 2 * text.count("\ufffd") else text


def _retry_after(response):
    """Retry-After in seconds (a number or an HTTP date); None without one."""
    value = (response.getheader("Retry-After") or "").strip()
    if value.isdigit():
        return int(value)
    try:
        return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError, IndexError):
        return None


# ---- the client ---------------------------------------------------------------------------------------

class Client:
    """A client of the Management API at `url` with the bearer token `key`.

    `timeout`: seconds a request may take to connect and between reads. `retries`: how often a request that
    got 429, 503 or no answer is tried again (with Retry-After, else 0.5 s, 1 s, 2 s ...; never longer than
    `max_retry_wait`), and how often in a row a follower reconnects. `stream_timeout`: the longest silence a
    follower accepts before it reconnects (the API sends a keep-alive every 15 s). Requests that may have
    had an effect are tried again only where a repeat is harmless (creates carry an idempotency key).
    A client keeps no connection between calls: threads may share one.
    """

    def __init__(self, url, key, *, timeout=30.0, retries=4, max_retry_wait=60.0,
                 stream_timeout=45.0):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("the API's URL must be http(s)://HOST[:PORT][/PATH], got %r" % url)
        if not re.fullmatch(r"[\x21-\x7e]*", key):
            raise ValueError("the API key must be printable ASCII without spaces (it is not shown)")
        self.url = url.rstrip("/")
        self.timeout, self.retries, self.max_retry_wait = timeout, retries, max_retry_wait
        self.stream_timeout = stream_timeout
        self._connection_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        self._host, self._port, self._base = parts.hostname, parts.port, parts.path.rstrip("/")
        self._authorization = "Bearer " + key

    def __repr__(self):
        return "Client(%r)" % self.url

    # -- transport --

    def _open(self, method, path, query=None, body=None, headers=None, timeout=None, idempotent=True):
        """(connection, response) of a request whose answer is not an error, its body unread. 429 is tried
        again, and so are a connection that could not be made (nothing was sent) and, when `idempotent`,
        503 and a connection lost on the way."""
        target = self._base + path + ("?" + urlencode(query, doseq=True) if query else "")
        sent = dict({"Authorization": self._authorization, "Accept": "application/json"}, **(headers or {}))
        for attempt in itertools.count(1):
            connection = self._connection_class(self._host, self._port, timeout=timeout or self.timeout)
            try:
                connection.connect()
            except ssl.SSLError as e:   # a certificate that will not be any better next time
                connection.close()
                raise ConnectionFailed("no TLS connection to %s: %s" % (self.url, e.reason or e)) from None
            except OSError as e:
                failure, retry = ConnectionFailed("cannot connect to %s: %s" % (self.url, e.strerror or e)), True
            else:
                try:
                    connection.request(method, target, body=body, headers=sent)
                    response = connection.getresponse()
                    if response.status < 400:
                        return connection, response
                    failure = error_from_answer(response.status, response.read(), _retry_after(response))
                    retry = failure.status == 429 or (failure.status == 503 and idempotent)
                except (OSError, http.client.HTTPException) as e:
                    failure = ConnectionFailed("the connection to %s broke: %s" % (self.url, type(e).__name__))
                    retry = idempotent
            connection.close()
            if not retry or attempt > self.retries:
                raise failure
            self._pause(attempt, failure.retry_after)

    def _pause(self, attempt, retry_after=None):
        time.sleep(min(self.max_retry_wait, 0.5 * 2 ** (attempt - 1) if retry_after is None else retry_after))

    def _call(self, method, path, query=None, body=None, headers=None, idempotent=True):
        """(status, Content-Type, body bytes) of a request whose answer is not an error."""
        for attempt in itertools.count(1):
            connection, response = self._open(method, path, query, body, headers, idempotent=idempotent)
            try:
                return response.status, response.getheader("Content-Type", ""), response.read()
            except (OSError, http.client.HTTPException) as e:
                if not idempotent or attempt > self.retries:
                    raise ConnectionFailed("the answer of %s broke off: %s" % (self.url, type(e).__name__)) from None
            finally:
                connection.close()
            self._pause(attempt)

    def _json(self, method, path, query=None, body=None, idempotent=True):
        """The JSON answer to a request with the JSON `body` (when not None)."""
        if body is None:
            return json.loads(self._call(method, path, query, idempotent=idempotent)[2])
        return json.loads(self._call(method, path, query, json.dumps(body).encode("utf-8"),
                                     {"Content-Type": "application/json"}, idempotent)[2])

    def _follow(self, path, query):
        """The frames of the event stream at `path`, for ever. After a dropped connection (or a silence of
        `stream_timeout`) it reconnects with Last-Event-ID, the id of the last frame given, so that nothing
        is lost or repeated; `retries` reconnections in a row that bring no frame raise ConnectionFailed."""
        last_id, failures = None, 0
        while True:
            headers = {"Accept": "text/event-stream"}
            if last_id is not None:
                headers["Last-Event-ID"] = last_id
            connection, response = self._open("GET", path, query, headers=headers, timeout=self.stream_timeout)
            try:
                for frame in _frames(response):
                    failures = 0
                    last_id = frame.id or last_id
                    yield frame
            except (OSError, http.client.HTTPException):
                pass
            finally:
                connection.close()
            failures += 1
            if failures > self.retries:
                raise ConnectionFailed("the stream of %s%s keeps breaking" % (self.url, path))
            self._pause(failures)

    @staticmethod
    def _session_path(session_id, *rest):
        return "/".join(("/v1/sessions", quote(session_id, safe="")) + rest)

    # -- sessions --

    def create(self, task, *, agent=None, provider=None, runtime=None, name=None, env=None,
               timeout_seconds=None, limits=None, gpus=None, labels=None, webhook=None, budget=None,
               stall_seconds=None, interactive=None, idle_timeout_seconds=None, approvals=None,
               resume_from=None, workspace=None, placement=None, idempotency_key=None):
        """Create a session (see SessionRequest in /v1/openapi.json for each field; None leaves one out).

        The same `idempotency_key` within 24 h gives the session made first (`replayed`). Without one, a key
        of this call's own is sent, so that a retry after a lost answer never creates a second session."""
        given = dict(locals())   # the arguments, before any other name is bound here
        spec = {_camel(name): value for name, value in given.items()
                if value is not None and name not in ("self", "idempotency_key")}
        status, _, answer = self._call("POST", "/v1/sessions", body=json.dumps(spec).encode("utf-8"), headers={
            "Content-Type": "application/json", "Idempotency-Key": idempotency_key or uuid.uuid4().hex})
        return _typed(Accepted, dict(json.loads(answer), replayed=status == 200))

    def get(self, session_id, tail=None):
        """A session's record, with the last `tail` lines of its log (the API's default: 50)."""
        return _typed(Session, self._json("GET", self._session_path(session_id),
                                          None if tail is None else {"tail": tail}))

    def list(self, status=None, labels=None, limit=100, offset=0):
        """A page of sessions, newest first: of `status` and carrying every one of `labels` ({name: value})."""
        query = {"limit": limit, "offset": offset, "label": ["%s=%s" % item for item in (labels or {}).items()]}
        if status:
            query["status"] = status
        answer = self._json("GET", "/v1/sessions", query)
        return Page([_typed(Session, s) for s in answer["sessions"]], answer["count"],
                    answer.get("limit", limit), answer.get("offset", offset))

    def iter_sessions(self, status=None, labels=None, page_size=1000):
        """Every session that list() would give, page after page; one that sessions created meanwhile push
        to the next page is given once."""
        seen = set()
        for offset in itertools.count(0, page_size):
            page = self.list(status, labels, page_size, offset)
            for session in page.sessions:
                if session.session_id not in seen:
                    seen.add(session.session_id)
                    yield session
            if len(page.sessions) < page_size:
                return

    def resolve(self, id_or_prefix):
        """The whole session id that `id_or_prefix` starts (itself when it is whole, or no prefix of one);
        UnknownId or AmbiguousId when it starts none or several."""
        if not is_partial_id(id_or_prefix):
            return id_or_prefix
        return unique_id(id_or_prefix, (s.session_id for s in self.iter_sessions()))

    def stop(self, session_id):
        """Stop a session's worker and its whole process tree; a session that has ended is left as it is."""
        return _typed(Stopped, self._json("DELETE", self._session_path(session_id)))

    def remove(self, session_id):
        """Stop a session (when it runs) and remove its directory, log and config."""
        return _typed(Stopped, self._json("DELETE", self._session_path(session_id), {"purge": "true"}))

    def wait(self, session_id, statuses=FINAL_STATUSES, timeout=None):
        """The session's record once its status is one of `statuses` (a name or several; default: ended) or
        it has ended (it changes no more); WaitTimeout after `timeout` seconds."""
        statuses = {statuses} if isinstance(statuses, str) else set(statuses)
        deadline = None if timeout is None else time.monotonic() + timeout
        pause, longest = WAIT_POLL_SECONDS
        while True:
            session = self.get(session_id, tail=0)
            if session.status in statuses or session.ended:
                return session
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise WaitTimeout(session)
            time.sleep(pause if left is None else min(pause, left))
            pause = min(pause * 2, longest)

    # -- logs and events --

    def log(self, session_id, offset=0):
        """A session's log from byte `offset` to its end, as text."""
        return self._call("GET", self._session_path(session_id, "log"), {"offset": offset})[2].decode("utf-8")

    def follow_log(self, session_id, offset=0):
        """A session's log from byte `offset` on, one chunk of text as it comes, until the session has ended.
        After a dropped connection it goes on from the offset of the last chunk (the SSE id)."""
        for frame in self._follow(self._session_path(session_id, "log"), {"follow": "true", "offset": offset}):
            if frame.event == "end":
                return
            end = int(frame.id)
            yield _chunk_text(frame.data, end - offset if end >= offset else end)  # less: the log rotated
            offset = end

    def events(self, since=0, session=None, types=None, labels=None):
        """A page of the change feed from seq `since`: of one session, of `types` (names), with `labels`."""
        return self._event_page("/v1/events", _feed_query(since, session, types, labels))

    def follow_events(self, since=0, session=None, types=None, labels=None):
        """The change feed from seq `since` on as Events, then each one as it happens, for ever (stop
        iterating to end it). After a dropped connection it goes on after the last seq given."""
        return self._follow_feed("/v1/events", _feed_query(since, session, types, labels))

    def session_events(self, session_id, since=0, types=None, labels=None):
        """A page of one session's events (its agent's included); NotFound for an unknown session."""
        return self._event_page(self._session_path(session_id, "events"), _feed_query(since, None, types, labels))

    def follow_session_events(self, session_id, since=0, types=None, labels=None):
        """One session's events as follow_events() gives the feed."""
        return self._follow_feed(self._session_path(session_id, "events"), _feed_query(since, None, types, labels))

    def _event_page(self, path, query):
        answer = self._json("GET", path, query)
        return EventPage([_typed(Event, e) for e in answer["events"]], answer["nextSeq"])

    def _follow_feed(self, path, query):
        for frame in self._follow(path, query):
            yield _typed(Event, json.loads("\n".join(frame.data)))

    # -- agents --

    def send_message(self, session_id, text):
        """Queue the next message of an interactive session's agent (Conflict when it is not one)."""
        self._json("POST", self._session_path(session_id, "messages"), body={"text": text}, idempotent=False)

    def interrupt(self, session_id):
        """Stop the current turn of an interactive session; it lives on for the next message."""
        self._json("POST", self._session_path(session_id, "interrupt"))

    def close_input(self, session_id):
        """Close an interactive session's input: it ends after the current turn."""
        self._json("POST", self._session_path(session_id, "close"))

    def approvals(self, session_id):
        """The permission requests the session's agent waits on (approvals: ask)."""
        answer = self._json("GET", self._session_path(session_id, "approvals"))
        return [_typed(Approval, a) for a in answer["approvals"]]

    def answer_approval(self, session_id, request_id, decision, message=None):
        """Allow or deny (`decision`) one permission request, with a `message` for the agent."""
        body = {"decision": decision} if message is None else {"decision": decision, "message": message}
        self._json("POST", self._session_path(session_id, "approvals", quote(request_id, safe="")), body=body,
                   idempotent=False)

    # -- workspaces and files --

    def diff(self, session_id):
        """What an ended session's workspace changed, as a patch (text)."""
        return self._call("GET", self._session_path(session_id, "diff"))[2].decode("utf-8", "replace")

    def diff_stat(self, session_id):
        """What an ended session's workspace changed, in numbers per file."""
        return _typed(DiffStat, self._json("GET", self._session_path(session_id, "diff"), {"stat": "true"}))

    def _file_path(self, session_id, path):
        return self._session_path(session_id, "files") + ("/" + quote(path, safe="/") if path else "")

    def read_file(self, session_id, path):
        """The bytes of a file of the session directory; IsADirectoryError for a directory."""
        _, content_type, data = self._call("GET", self._file_path(session_id, path))
        if content_type.startswith("application/json"):
            raise IsADirectoryError("%s is a directory of session %s" % (path, session_id))
        return data

    def list_files(self, session_id, path=""):
        """The entries of a directory of the session (its own directory by default)."""
        _, content_type, data = self._call("GET", self._file_path(session_id, path))
        if not content_type.startswith("application/json"):
            raise NotADirectoryError("%s is a file of session %s" % (path, session_id))
        listing = json.loads(data)
        return Listing(listing["path"], [_typed(FileEntry, e) for e in listing["entries"]], listing["truncated"])

    def archive(self, session_id, path=""):
        """A directory of the session (its own by default) as the bytes of a .tar.gz."""
        return self._call("GET", self._file_path(session_id, path), {"archive": "tar.gz"})[2]

    def put_file(self, session_id, path, data):
        """Write `data` (bytes) to `path` of the session directory, making the directories on the way; the
        size written."""
        _, _, answer = self._call("PUT", self._file_path(session_id, path), body=data,
                                  headers={"Content-Type": "application/octet-stream"})
        return json.loads(answer)["size"]

    # -- the service --

    def runtimes(self):
        """Every runtime: installed or not, its version, what it supports."""
        return [_typed(Runtime, r) for r in self._json("GET", "/v1/runtimes")["runtimes"]]

    def status(self):
        """Workers, workspaces, services, GPUs and the machine (the JSON of GET /v1/status)."""
        return self._json("GET", "/v1/status")

    def openapi(self):
        """The OpenAPI 3.1 document of the API."""
        return self._json("GET", "/v1/openapi.json")

    def metrics(self):
        """The Prometheus text of /metrics."""
        return self._call("GET", "/metrics")[2].decode("utf-8")

    def health(self):
        """True when the API process answers."""
        return self._json("GET", "/health").get("status") == "ok"

    def ready(self):
        """True when the API answers and supervisord does too (False on 503, tried once)."""
        try:
            return self._json("GET", "/ready", idempotent=False).get("status") == "ready"
        except Unavailable:
            return False


def _feed_query(since, session, types, labels):
    query = {"since": since, "label": ["%s=%s" % item for item in (labels or {}).items()]}
    if session:
        query["session"] = session
    if types:
        query["type"] = ",".join(types)
    return query
