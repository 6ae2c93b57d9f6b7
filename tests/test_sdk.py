"""The Python SDK (supervisor_sessions.sdk) against a real system: typed results, paging, waits, logs and the
change feed followed across a killed API without loss or repeats, 429 tried again after its Retry-After,
and each error answer as an exception of its own."""
import io
import itertools
import json
import os
import queue
import shutil
import signal
import tarfile
import tempfile
import threading
import time
import uuid

import pytest

from supervisor_sessions import events as session_events
from supervisor_sessions.sdk import (ERROR_CLASSES, FINAL_STATUSES, AmbiguousId, ApiError, Client, Conflict,
                                     ConnectionFailed, Gone, InvalidRequest, NotFound, PayloadTooLarge,
                                     TooManyRequests, Unauthorized, Unavailable, UnknownId, WaitTimeout,
                                     error_from_answer)

from conftest import FINAL, System, free_port, wait_for
from test_workspaces import make_repo

SHELL = {"agent": "coder", "provider": "gemini", "runtime": "shell"}
UNKNOWN = "00000000-0000-4000-8000-000000000000"
# every route of /v1/openapi.json and the method of Client that calls it
ROUTES = {("get", "/health"): "health", ("get", "/ready"): "ready", ("get", "/v1/openapi.json"): "openapi",
          ("post", "/v1/sessions"): "create", ("get", "/v1/sessions"): "list",
          ("get", "/v1/sessions/{sessionId}"): "get", ("delete", "/v1/sessions/{sessionId}"): "stop",
          ("get", "/v1/sessions/{sessionId}/log"): "follow_log", ("get", "/v1/events"): "events",
          ("get", "/v1/sessions/{sessionId}/events"): "session_events",
          ("post", "/v1/sessions/{sessionId}/messages"): "send_message",
          ("post", "/v1/sessions/{sessionId}/interrupt"): "interrupt",
          ("post", "/v1/sessions/{sessionId}/close"): "close_input",
          ("get", "/v1/sessions/{sessionId}/approvals"): "approvals",
          ("post", "/v1/sessions/{sessionId}/approvals/{requestId}"): "answer_approval",
          ("get", "/v1/sessions/{sessionId}/files"): "list_files",
          ("get", "/v1/sessions/{sessionId}/files/{path}"): "read_file",
          ("put", "/v1/sessions/{sessionId}/files/{path}"): "put_file",
          ("get", "/v1/sessions/{sessionId}/diff"): "diff", ("get", "/v1/runtimes"): "runtimes",
          ("get", "/v1/status"): "status"}


def url(system):
    return "http://127.0.0.1:%d" % system.port


@pytest.fixture(scope="module")
def client(system):
    return Client(url(system), system.key)


@pytest.fixture(scope="module")
def tight():
    """A system of one slot and no queue (a second create is 429), a journal of 10 events and 1 MB uploads."""
    s = System(env={"MAX_CONCURRENT_SESSIONS": "1", "MAX_QUEUED_SESSIONS": "0", "EVENTS_RETAINED": "10",
                    "FILES_UPLOAD_MAX_MB": "1"}).start()
    yield s
    s.stop()
    shutil.rmtree(s.home, ignore_errors=True)


@pytest.fixture
def workspace_session(make_system):
    """(system, record) of an ended session whose workspace changed a.txt and added new.txt."""
    roots = tempfile.mkdtemp(prefix="sdkroots", dir="/tmp")
    os.chmod(roots, 0o755)
    repo = os.path.join(roots, "repo")
    make_repo(repo, {"a.txt": "one\n"})
    system = make_system(env={"WORKSPACE_ROOTS": roots}).start()
    record = system.rpc().sessions.createSession(dict(SHELL, task="echo two >> a.txt; echo new > new.txt",
                                                      workspace={"repo": repo}))
    yield system, system.wait_status(record["sessionId"], FINAL, 60)
    shutil.rmtree(roots, ignore_errors=True)


class Consumer:
    """The items of an iterator as a thread of its own takes them, for a test to read with deadlines."""

    def __init__(self, iterator):
        self.items, self.got, self.ended = queue.Queue(), [], False
        threading.Thread(target=self._run, args=(iterator,), daemon=True).start()

    def _run(self, iterator):
        try:
            for item in iterator:
                self.items.put(item)
        except Exception as e:   # the test raises it
            self.items.put(e)
        self.items.put(StopIteration())

    def take_until(self, done, timeout=30):
        """Every item so far, once done(them) or the iterator ended; the test fails at the deadline."""
        deadline = time.monotonic() + timeout
        while not self.ended and not done(self.got):
            try:
                item = self.items.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail("timed out after %.0fs; got %r" % (timeout, self.got))
            if isinstance(item, StopIteration):
                self.ended = True
            elif isinstance(item, Exception):
                raise item
            else:
                self.got.append(item)
        return self.got


def kill_api(system):
    """SIGKILL the API (supervisord starts it again); its pid."""
    pid = system.rpc().supervisor.getProcessInfo("management-api")["pid"]
    os.kill(pid, signal.SIGKILL)
    return pid


def api_answers(system, method, status):
    """How many requests to /v1/sessions with `method` the API answered with `status` (its access log)."""
    with open(os.path.join(system.home, "logs", "management-api.log")) as f:
        lines = [json.loads(line) for line in f if line.startswith("{")]
    return sum(1 for line in lines if (line.get("method"), line.get("route"), line.get("status"))
               == (method, "/v1/sessions", status))


def every_event(client, **query):
    """Every event of the feed that `query` selects, page after page."""
    got, since = [], 0
    while True:
        page = client.events(since, **query)
        if not page.events:
            return got
        got += page.events
        since = page.next_seq


def ended(events, sid):
    return any(e.session_id == sid and e.raw.get("status") in FINAL for e in events)


def unique_prefix(ids, sid):
    """The shortest start of `sid` that no other of `ids` has."""
    return next(sid[:n] for n in range(1, 37) if sum(1 for other in ids if other.startswith(sid[:n])) == 1)


def shared_prefix(client):
    """A start of at least two session ids (sessions are made until two share their first character)."""
    while True:
        ids = [s.session_id for s in client.iter_sessions()]
        for first in "0123456789abcdef":
            if sum(1 for sid in ids if sid.startswith(first)) > 1:
                return first
        client.create("true", **SHELL)


def unknown_prefix(ids):
    """A start of no id of `ids`."""
    return next(p for p in ("%03x" % n for n in range(4096)) if not any(sid.startswith(p) for sid in ids))


# ---- sessions -----------------------------------------------------------------------------------------

def test_a_session_is_created_waited_for_and_read_as_typed_records(client):
    accepted = client.create("echo hello; exit 3", **SHELL)
    assert accepted.status == "accepted" and accepted.replayed is False
    assert accepted.log_file.endswith(accepted.session_id + ".log")
    done = client.wait(accepted.session_id)
    assert (done.status, done.exit_code, done.cause, done.reason) == ("failed", 3, "exit", "exit code 3")
    assert done.ended and done.pid is None and done.duration == done.end_time - done.start_time
    assert done.raw["exitCode"] == 3 and done.session_dir == accepted.session_dir
    shown = client.get(accepted.session_id)
    assert shown.log_tail == "hello" and shown.task == "echo hello; exit 3" and shown.runtime == "shell"
    assert client.log(accepted.session_id) == "hello\n"
    assert client.log(accepted.session_id, offset=2) == "llo\n"


def test_the_spec_fields_given_reach_the_record_and_env_is_never_shown(client):
    accepted = client.create("printf %s \"$GREETING\" > out.txt", name="greeter", env={"GREETING": "hi there"},
                             labels={"team": "sdk"}, timeout_seconds=60, limits={"memoryMB": 256}, **SHELL)
    done = client.wait(accepted.session_id)
    assert done.status == "completed"
    assert (done.name, done.labels, done.timeout_seconds, done.limits["memoryMB"]) == ("greeter", {"team": "sdk"},
                                                                                      60, 256)
    assert client.read_file(accepted.session_id, "out.txt") == b"hi there"
    assert "hi there" not in json.dumps(done.raw)


def test_an_idempotency_key_gives_the_session_made_first(client):
    key = uuid.uuid4().hex
    first = client.create("true", idempotency_key=key, **SHELL)
    again = client.create("true", idempotency_key=key, **SHELL)
    assert again.session_id == first.session_id and (first.replayed, again.replayed) == (False, True)


def test_lists_are_filtered_paged_and_iterated_to_the_end(client):
    tag = {"run": uuid.uuid4().hex[:12]}
    ids = [client.create("exit %d" % (i % 2), labels=tag, **SHELL).session_id for i in range(5)]
    for sid in ids:
        client.wait(sid)
    page = client.list(labels=tag, limit=2)
    assert (page.count, page.limit, page.offset) == (5, 2, 0)
    assert [s.session_id for s in page.sessions] == ids[:-3:-1]
    assert [s.session_id for s in client.list(labels=tag, limit=2, offset=4).sessions] == ids[:1]
    assert [s.session_id for s in client.iter_sessions(labels=tag, page_size=2)] == ids[::-1]
    assert [s.session_id for s in client.iter_sessions("failed", tag, page_size=1)] == [ids[3], ids[1]]


def test_a_session_is_stopped_then_removed(client):
    sid = client.create("sleep 60", **SHELL).session_id
    assert client.wait(sid, "running", timeout=20).status == "running"
    assert client.stop(sid).status in ("stopping", "stopped")
    assert client.wait(sid).status == "stopped"
    removed = client.remove(sid)
    assert (removed.session_id, removed.status, removed.purged) == (sid, "stopped", True)
    with pytest.raises(NotFound):
        client.get(sid)


def test_wait_gives_up_at_its_timeout_with_the_record_it_saw(client):
    sid = client.create("sleep 60", **SHELL).session_id
    started = time.monotonic()
    with pytest.raises(WaitTimeout) as info:
        client.wait(sid, timeout=0.5)
    assert 0.5 <= time.monotonic() - started < 5
    assert info.value.session.session_id == sid and info.value.session.status in ("starting", "running")
    client.stop(sid)
    assert client.wait(sid).status == "stopped"
    assert client.wait(sid, "running", timeout=1).status == "stopped"   # ended: it will never run again


def test_the_final_statuses_are_the_plugins(client):
    assert FINAL_STATUSES == session_events.FINAL


# ---- logs and the change feed -------------------------------------------------------------------------

def as_written(chunks):
    """The text of log chunks, a control character as itself (read through supervisord, the API gives U+FFFD)."""
    return "".join(chunks).replace("\ufffd", "\x1b")


def test_follow_log_gives_the_log_as_written(client):
    gate = "while [ ! -e %s ]; do sleep 0.02; done; "
    sid = client.create("printf 'a\\nb'; " + gate % "go" + "printf 'c\\n\\033[1mbold\\033[0m\\n'; " + gate % "again"
                        + "printf end", **SHELL).session_id
    follower = Consumer(client.follow_log(sid))
    follower.take_until(lambda chunks: as_written(chunks) == "a\nb")   # a chunk that ends inside a line
    client.put_file(sid, "go", b"")
    follower.take_until(lambda chunks: as_written(chunks) == "a\nbc\n\x1b[1mbold\x1b[0m\n")
    client.put_file(sid, "again", b"")
    whole = "".join(follower.take_until(lambda chunks: False))
    assert whole == client.log(sid) and as_written([whole]) == "a\nbc\n\x1b[1mbold\x1b[0m\nend"
    assert "".join(client.follow_log(sid, offset=3)) == whole[3:]


def test_follow_log_goes_on_after_the_api_is_killed_without_loss_or_repeats(system, client):
    sid = client.create("for i in $(seq 1 60); do echo line-$i; sleep 0.05; done", **SHELL).session_id
    follower = Consumer(client.follow_log(sid))
    follower.take_until(lambda chunks: "line-5\n" in "".join(chunks))
    killed = kill_api(system)
    assert system.rpc().sessions.getSession(sid)["status"] == "running"   # the rest is still to come
    follower.take_until(lambda chunks: False)
    assert "".join(follower.got) == "".join("line-%d\n" % i for i in range(1, 61))
    assert system.rpc().supervisor.getProcessInfo("management-api")["pid"] not in (0, killed)


def test_follow_events_goes_on_after_the_api_is_killed_without_loss_or_repeats(system, client):
    tag = {"run": uuid.uuid4().hex[:12]}
    first = system.spawn("true", labels=tag)["sessionId"]
    follower = Consumer(client.follow_events(labels=tag))
    follower.take_until(lambda events: ended(events, first))
    killed = kill_api(system)
    second = system.spawn("true", labels=tag)["sessionId"]   # over XML-RPC while the API is down
    got = follower.take_until(lambda events: ended(events, second))
    assert [e.seq for e in got] == [e.seq for e in every_event(client, labels=tag)]
    assert [e.type for e in got if e.session_id == second] == ["created", "state", "state", "state"]
    assert system.rpc().supervisor.getProcessInfo("management-api")["pid"] not in (0, killed)


def test_event_pages_are_filtered_by_session_type_and_label(system, client):
    tag = {"run": uuid.uuid4().hex[:12]}
    sid = client.create("exit 4", labels=tag, **SHELL).session_id
    client.wait(sid)
    events = every_event(client, session=sid)
    assert [e.type for e in events] == ["created", "state", "state", "state"]
    assert events[-1].raw["exitCode"] == 4 and events[-1].labels == tag and events[0].time > 0
    assert every_event(client, labels=tag, types=["created"]) == events[:1]
    page = client.session_events(sid, since=events[1].seq)
    assert page.events == events[1:] and page.next_seq == events[-1].seq + 1
    follower = client.follow_session_events(sid, types=["state"])
    assert list(itertools.islice(follower, 3)) == events[1:]
    follower.close()
    with pytest.raises(NotFound):
        client.session_events(UNKNOWN)


# ---- files, workspaces, agents and the service --------------------------------------------------------

def test_files_are_written_read_listed_and_archived(system, client):
    sid = system.run("printf one > a.txt; mkdir sub")["sessionId"]
    data = os.urandom(100_000)
    assert client.put_file(sid, "sub/new file.bin", data) == len(data)
    assert client.read_file(sid, "sub/new file.bin") == data
    listing = client.list_files(sid)
    assert listing.path == "" and not listing.truncated
    assert {(e.name, e.type) for e in listing.entries} >= {("a.txt", "file"), ("sub", "dir")}
    assert [(e.name, e.size) for e in client.list_files(sid, "sub").entries] == [("new file.bin", len(data))]
    with tarfile.open(fileobj=io.BytesIO(client.archive(sid)), mode="r:gz") as archive:
        assert archive.extractfile("sub/new file.bin").read() == data
        assert archive.extractfile("a.txt").read() == b"one"
    with pytest.raises(IsADirectoryError):
        client.read_file(sid, "sub")
    with pytest.raises(NotADirectoryError):
        client.list_files(sid, "a.txt")
    with pytest.raises(NotFound):
        client.read_file(sid, "nothing-here")
    with pytest.raises(InvalidRequest):
        client.read_file(sid, "../a.txt")


def test_the_diff_of_a_workspace_as_a_patch_and_as_numbers(workspace_session):
    system, record = workspace_session
    client = Client(url(system), system.key)
    patch = client.diff(record["sessionId"])
    assert "+two" in patch and "+new" in patch and "a.txt" in patch
    stat = client.diff_stat(record["sessionId"])
    assert stat.changes["files"] == 2 and not stat.patch_truncated
    assert sorted(f["path"] for f in stat.files) == ["a.txt", "new.txt"]


def test_agent_routes_of_a_session_that_is_no_agent(system, client):
    sid = system.run("true")["sessionId"]
    assert client.approvals(sid) == []
    for call in (lambda: client.send_message(sid, "next"), lambda: client.interrupt(sid),
                 lambda: client.close_input(sid), lambda: client.diff(sid)):
        with pytest.raises(Conflict) as info:
            call()
        assert info.value.error == "conflict" and "NOT_CAPABLE" in info.value.message
    with pytest.raises(NotFound):
        client.answer_approval(sid, "no-such-request", "allow", "go on")


def test_the_service_runtimes_status_and_document(client):
    assert {r.runtime: r.installed for r in client.runtimes()}["shell"] is True
    assert client.status()["workers"]["total"] >= 0
    assert client.health() and client.ready()
    assert "sessions_api_requests_total" in client.metrics()
    paths = client.openapi()["paths"]
    assert set(ROUTES) == {(method, path) for path, operations in paths.items() for method in operations
                           if path != "/" and not path.startswith("/ui/")}   # the dashboard's are a browser's
    assert all(callable(getattr(client, name)) for name in ROUTES.values())


def test_a_session_id_by_a_unique_prefix(client):
    shared = shared_prefix(client)
    ids = [s.session_id for s in client.iter_sessions()]
    assert client.resolve(unique_prefix(ids, ids[0])) == ids[0]
    assert client.resolve(ids[0]) == ids[0] and client.resolve("not-hex") == "not-hex"
    with pytest.raises(AmbiguousId) as info:
        client.resolve(shared)
    assert "give more of the id" in str(info.value)
    with pytest.raises(UnknownId) as info:
        client.resolve(unknown_prefix(ids))
    assert isinstance(info.value, NotFound) and info.value.status == 404


# ---- errors and retries -------------------------------------------------------------------------------

@pytest.mark.parametrize("status", sorted(ERROR_CLASSES))
def test_each_error_status_has_its_class(status):
    error = error_from_answer(status, json.dumps({"error": "code", "message": "what happened"}).encode(), 7)
    assert type(error) is ERROR_CLASSES[status] and isinstance(error, ApiError)
    assert (error.status, error.error, error.message, error.retry_after) == (status, "code", "what happened", 7)
    assert str(error) == "what happened (%d code)" % status


def test_an_error_without_a_json_body_keeps_its_text():
    error = error_from_answer(502, b"<h1>Bad gateway</h1>\n")
    assert type(error) is ApiError and (error.status, error.error, error.message) == (502, "http_502",
                                                                                      "<h1>Bad gateway</h1>")


def test_error_answers_of_the_api_raise_their_class(system, client):
    with pytest.raises(InvalidRequest, match="unknown runtime"):
        client.create("true", agent="coder", provider="gemini", runtime="no-such-runtime")
    with pytest.raises(InvalidRequest, match="limit"):
        client.list(limit=0)
    with pytest.raises(NotFound, match="NO_SUCH_SESSION"):
        client.get(UNKNOWN)
    with pytest.raises(NotFound):
        client.get("../../etc/passwd")
    with pytest.raises(PayloadTooLarge):
        client.create("x" * (1 << 20), **SHELL)
    with pytest.raises(Unauthorized) as info:
        Client(url(system), "wrong-" + system.key).list()
    assert system.key not in str(info.value) + repr(info.value)


def test_the_key_is_in_no_repr_and_no_message(system):
    client = Client(url(system), system.key)
    assert system.key not in repr(client) and repr(client) == "Client(%r)" % url(system)
    with pytest.raises(ValueError) as info:
        Client(url(system), system.key + "\nX-Injected: 1")
    assert system.key not in str(info.value)


def test_an_api_that_cannot_be_reached_is_a_connection_failure():
    client = Client("http://127.0.0.1:%d" % free_port(), "key", retries=2, max_retry_wait=0.01)
    with pytest.raises(ConnectionFailed) as info:
        client.list()
    assert info.value.status is None and "cannot connect to http://127.0.0.1" in str(info.value)


def test_a_full_queue_is_tried_again_after_retry_after_then_raised(tight):
    holder = tight.spawn("sleep 60")["sessionId"]
    client = Client(url(tight), tight.key, retries=1)
    before = api_answers(tight, "POST", 429)
    started = time.monotonic()
    with pytest.raises(TooManyRequests) as info:
        client.create("true", **SHELL)
    assert time.monotonic() - started >= 5   # the API's Retry-After
    assert (info.value.status, info.value.retry_after) == (429, 5) and "QUEUE_FULL" in info.value.message
    wait_for(lambda: api_answers(tight, "POST", 429) == before + 2, message="two 429 in the access log")
    tight.rpc().sessions.stopSession(holder)
    tight.wait_status(holder, FINAL)


def test_a_create_refused_for_a_full_queue_succeeds_once_a_slot_frees(tight):
    holder = tight.spawn("sleep 1")["sessionId"]
    before = api_answers(tight, "POST", 429)
    client = Client(url(tight), tight.key, retries=100, max_retry_wait=0.1)
    accepted = client.create("echo after", **SHELL)
    assert tight.rpc().sessions.getSession(holder)["status"] == "completed"
    assert client.wait(accepted.session_id).status == "completed"
    wait_for(lambda: api_answers(tight, "POST", 429) > before, message="a 429 in the access log")


def test_events_older_than_the_journal_keeps_are_gone(tight):
    for _ in range(4):
        tight.run("true")   # 16 events of which 10 to 20 are kept
    client = Client(url(tight), tight.key)
    with pytest.raises(Gone, match="ask from seq") as info:
        client.events(since=1)
    oldest = int(info.value.message.split("ask from seq ")[1].split()[0])
    assert client.events(since=oldest).events[0].seq == oldest
    with pytest.raises(Gone):
        next(client.follow_events(since=1))


def test_an_upload_over_the_limit_is_too_large(tight):
    sid = tight.run("true")["sessionId"]
    with pytest.raises(PayloadTooLarge):
        Client(url(tight), tight.key).put_file(sid, "big.bin", b"x" * ((1 << 20) + 1))


def test_supervisord_not_answering_is_unavailable_after_the_retries(make_system):
    system = make_system().start()
    client = Client(url(system), system.key, retries=1, max_retry_wait=0.05)
    aside = system.socket + ".aside"
    os.rename(system.socket, aside)
    try:
        with pytest.raises(Unavailable, match="supervisord is not answering"):
            client.runtimes()
        with pytest.raises(Unavailable):
            client.create("true", **SHELL)
        assert client.ready() is False
    finally:
        os.rename(aside, system.socket)
    wait_for(client.ready, message="the API ready again")
    assert client.runtimes()
