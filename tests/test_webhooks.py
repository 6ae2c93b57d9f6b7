"""Webhooks: the session-webhooks program POSTs change-feed events, signed, to WEBHOOK_URLS and to a session's
own `webhook`; retried with backoff, in seq order per session and destination, durable across kill -9."""
import collections
import hashlib
import hmac
import json
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
import xmlrpc.client
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from supervisor_sessions import webhooks
from supervisor_sessions.faults import Faults, InvalidSpec
from supervisor_sessions.settings import Settings
from supervisor_sessions.spec import parse_spec

from conftest import FINAL, System, free_port, wait_for

SECRET = "whsec-" + os.urandom(12).hex()


class Receiver:
    """A webhook receiver on a local port: keeps every request it gets; `answer(event)` picks the status.
    Made with held=True, it answers nothing until `released` is set (its requests stay in flight)."""

    def __init__(self, port=0, answer=lambda event: 200, held=False, headers=None):
        self.requests = []  # (headers with lower-case names, body bytes, status answered), in arrival order
        self.arrived = 0    # requests received, answered or not
        self.answer = answer
        self.released = threading.Event()
        if not held:
            self.released.set()
        lock, receiver = threading.Lock(), self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with lock:
                    receiver.arrived += 1
                receiver.released.wait(60)
                status = receiver.answer(json.loads(body))
                with lock:
                    receiver.requests.append(({k.lower(): v for k, v in self.headers.items()}, body, status))
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = "http://127.0.0.1:%d/hook?token=t0" % self.server.server_port

    def delivered(self, sessions=None):
        """[(headers, event)] answered with a 2xx, of `sessions` (ids) when given, in arrival order."""
        return [(headers, json.loads(body)) for headers, body, status in list(self.requests)
                if 200 <= status < 300 and (sessions is None or json.loads(body)["sessionId"] in sessions)]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def signed(secret, headers, body):
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(headers["x-sessions-signature"], expected)


def feed_event(system, seq):
    """The event `seq` as GET /v1/events shows it."""
    status, body, _ = system.http("GET", "/v1/events?since=%d" % seq)
    assert status == 200 and body["events"][0]["seq"] == seq
    return body["events"][0]


def seqs_in_feed(system, sessions, terminal_only=True):
    """Seqs of the events of `sessions` in the feed (their terminal ones only, by default)."""
    seqs, since = [], 0
    while True:
        status, body, _ = system.http("GET", "/v1/events?since=%d" % since)
        seqs += [e["seq"] for e in body["events"] if e["sessionId"] in sessions
                 and (not terminal_only or e.get("status") in FINAL)]
        if not body["events"]:
            return seqs
        since = body["nextSeq"]


# --- the pure parts, with fakes ---

def event(seq, sid, kind="state", status=None, at=1000.0, **extra):
    e = {"seq": seq, "type": kind, "sessionId": sid, "time": at * 1000, **extra}
    if status:
        e["status"] = status
    if kind == "created":
        e.setdefault("session", {"sessionId": sid, "status": "queued"})
    return e


class Clock:
    def __init__(self, now=1000.0):
        self.now = now

    def __call__(self):
        return self.now


def deliverer(tmp_path, send, clock=None, **env):
    settings = Settings.from_env(dict({"SESSIONS_HOME": str(tmp_path), "WEBHOOK_URLS": "http://a.example/in"}, **env))
    webhooks.prepare_dir(settings)
    return webhooks.Deliverer(settings, "s3cret", send=send, clock=clock or Clock())


@pytest.mark.parametrize("names, wanted", [
    (("terminal",), {"completed", "failed", "stopped", "interrupted"}),
    (("created",), {"created"}), (("state",), {"queued", "starting", "running", "completed", "failed", "stopped",
                                               "interrupted"}),
    (("removed",), {"removed"}), (("all",), {"created", "removed", "queued", "starting", "running", "completed",
                                             "failed", "stopped", "interrupted"}),
    (("created", "terminal"), {"created", "completed", "failed", "stopped", "interrupted"}),
])
def test_a_selection_picks_its_kinds_of_events(names, wanted):
    events = [event(1, "s", "created"), event(2, "s", "removed")] + [
        event(3, "s", status=s) for s in ("queued", "starting", "running", "completed", "failed", "stopped",
                                          "interrupted")]
    assert {e.get("status", e["type"]) for e in events if webhooks.selected(e, names)} == wanted


def test_backoff_doubles_from_one_second_up_to_a_minute():
    assert [webhooks.backoff(n) for n in range(1, 10)] == [1, 2, 4, 8, 16, 32, 60, 60, 60]


def test_a_destination_failing_for_one_session_holds_back_no_other(tmp_path):
    sent = []

    def send(url, body, headers):
        sent.append(int(headers["X-Sessions-Delivery"]))
        return 500 if json.loads(body)["sessionId"] == "a" else 204
    clock = Clock()
    d = deliverer(tmp_path, send, clock, WEBHOOK_EVENTS="all")
    d.add([event(1, "a", "created"), event(2, "b", "created"), event(3, "a", status="running"),
           event(4, "b", status="running")], 5)
    for _ in range(3):
        d.attempt(d.take())
    assert sent == [1, 2, 4]  # a's first event failed and holds back only a's second
    assert [(q[0].seq, q[0].next_try) for q in d.queues.values()] == [(1, 1001.0)]
    clock.now = 1001.0
    d.attempt(d.take())
    assert sent == [1, 2, 4, 1] and d.cursor == 1


def test_a_failing_delivery_is_retried_with_backoff_then_given_up_with_one_log_line(tmp_path, caplog):
    clock = Clock()
    d = deliverer(tmp_path, lambda url, body, headers: 503, clock, WEBHOOK_RETRY_SECONDS="10")
    d.add([event(1, "a", status="failed")], 2)
    tries = []
    with caplog.at_level(logging.WARNING, logger="supervisor_sessions.webhooks"):
        while d.queues:
            delivery = d.take()
            tries.append(clock.now)
            d.attempt(delivery)
            clock.now = delivery.next_try
    assert tries == [1000.0, 1001.0, 1003.0, 1007.0]  # the next (1015) would be past the 10 s
    given_up = [r.fields for r in caplog.records if r.name == webhooks.__name__]
    assert given_up == [{"event": "webhook-given-up", "seq": 1, "sessionId": "a", "type": "state",
                         "url": "http://a.example/in", "attempts": 4, "error": "HTTP 503"}]
    assert d.cursor == 2


def test_an_event_older_than_the_retry_window_is_given_up_untried(tmp_path):
    sent = []
    d = deliverer(tmp_path, lambda *args: sent.append(args) or 200, Clock(now=5000.0), WEBHOOK_RETRY_SECONDS="60")
    d.add([event(1, "a", status="completed", at=1000.0)], 2)
    d.attempt(d.take())
    assert not sent and not d.queues


def test_progress_survives_a_restart_without_repeats(tmp_path):
    hook = {"url": "http://own.example/", "events": ["all"]}
    first = deliverer(tmp_path, lambda url, body, headers: 500 if (url, headers["X-Sessions-Delivery"]) == (
        "http://own.example/", "2") else 200)
    first.add([event(1, "a", "created", session={"sessionId": "a", "webhook": hook}),
               event(2, "a", status="completed"), event(3, "b", status="completed")], 4)
    assert sorted((k, [d.seq for d in q]) for k, q in first.queues.items()) == [
        (("a", "http://a.example/in"), [2]), (("a", "http://own.example/"), [1, 2]),
        (("b", "http://a.example/in"), [3])]
    for _ in range(4):  # a's own webhook takes 1 but not 2 (retried later); the WEBHOOK_URLS take 2 and 3
        first.attempt(first.take())
    with open(os.path.join(tmp_path, "webhooks", "state.json")) as f:  # the deliverer dies here
        assert json.load(f) == {"cursor": 2, "settled": [[2, "http://a.example/in"], [3, "http://a.example/in"]],
                                "hooks": {"a": hook}}

    sent = []
    second = deliverer(tmp_path, lambda url, body, headers: sent.append((url, json.loads(body)["seq"])) or 200)
    second.add([event(2, "a", status="completed"), event(3, "b", status="completed"),
                event(4, "a", "removed")], 5)
    while second.queues:
        second.attempt(second.take())
    # 2 again only where it was owed; a's webhook, learnt before the cursor, still gets a's removal
    assert sorted(sent) == [("http://own.example/", 2), ("http://own.example/", 4)]
    with open(os.path.join(tmp_path, "webhooks", "state.json")) as f:
        assert json.load(f) == {"cursor": 5, "settled": [], "hooks": {}}


def test_a_cursor_the_journal_no_longer_holds_goes_on_from_the_oldest_kept(tmp_path, caplog):
    d = deliverer(tmp_path, lambda *args: 200)
    d.position = 3
    asked = []

    class Sessions:
        def getEvents(self, since, limit, wait):
            asked.append(since)
            if since == 3:
                raise xmlrpc.client.Fault(Faults.EVENTS_GONE, "EVENTS_GONE: events before seq 10 are no longer kept")
            if since == 0:
                return [[event(10, "a", status="completed")], 11]
            raise KeyboardInterrupt  # ends the test's loop

    class Rpc:
        sessions = Sessions()
    with caplog.at_level(logging.WARNING, logger="supervisor_sessions.webhooks"), pytest.raises(KeyboardInterrupt):
        d._follow(lambda: Rpc())
    assert asked == [3, 0, 11] and [q[0].seq for q in d.queues.values()] == [10]
    assert [r.fields["event"] for r in caplog.records if r.name == webhooks.__name__] == ["webhook-events-gone"]


def test_a_redirect_is_not_followed():
    target = Receiver()
    redirector = Receiver(answer=lambda e: 307, headers={"Location": target.url})
    try:
        status = webhooks.post(redirector.url, b'{"seq": 1}', {"Content-Type": "application/json"})
        assert status == 307 and len(redirector.requests) == 1 and not target.requests
    finally:
        target.close()
        redirector.close()


@pytest.mark.parametrize("env, message", [
    ({"WEBHOOK_URLS": "ftp://x.example/"}, "WEBHOOK_URLS: 'ftp://x.example/' must be an http:// or https:// URL"),
    ({"WEBHOOK_URLS": "http://ok.example/ https://u:pw@x.example/"}, "WEBHOOK_URLS: must not hold credentials"),
    ({"WEBHOOK_URLS": "http://x.example:99999/"}, "WEBHOOK_URLS: 'http://x.example:99999/' is not a valid URL"),
    ({"WEBHOOK_EVENTS": "terminal,everything"}, "WEBHOOK_EVENTS must name some of terminal, created, state"),
    ({"WEBHOOK_RETRY_SECONDS": "0"}, "WEBHOOK_RETRY_SECONDS must be between 1 and"),
])
def test_bad_webhook_settings_are_refused_naming_the_variable(env, message):
    with pytest.raises(ValueError) as info:
        Settings.from_env(dict(env, SESSIONS_HOME="/tmp/h"))
    assert str(info.value).startswith(message)


def test_webhook_settings_are_read():
    settings = Settings.from_env({
        "SESSIONS_HOME": "/tmp/h", "WEBHOOK_EVENTS": "created, terminal",
        "WEBHOOK_URLS": "http://a.example/x,https://b.example:8443/y?k=1  http://a.example/x ",
        "WEBHOOK_RETRY_SECONDS": "60"})
    assert settings.webhook_urls == ("http://a.example/x", "https://b.example:8443/y?k=1")
    assert (settings.webhook_events, settings.webhook_retry_seconds) == (("created", "terminal"), 60)
    assert Settings.from_env({"SESSIONS_HOME": "/tmp/h"}).webhook_events == ("terminal",)


BAD_WEBHOOKS = ["ftp://x.example/", "http://", "http://x.example/a b", "http://u:p@x.example/", 42,
                {"url": "http://x.example/", "events": ["everything"]}, {"events": ["all"]},
                {"url": "http://x.example/", "secret": "x"}, "http://x.example/" + "a" * 2048]


@pytest.mark.parametrize("webhook", BAD_WEBHOOKS)
def test_a_bad_session_webhook_is_an_invalid_spec(webhook):
    with pytest.raises(InvalidSpec, match="'webhook'"):
        parse_spec({"agent": "a", "task": "t", "provider": "p", "webhook": webhook}, None)


def test_serve_refuses_bad_webhook_urls_clearly(tmp_path):
    env = dict(os.environ, SESSIONS_HOME=str(tmp_path), WEBHOOK_URLS="gopher://x.example/")
    done = subprocess.run([sys.executable, "-m", "supervisor_sessions.cli", "serve"], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode != 0
    assert "WEBHOOK_URLS: 'gopher://x.example/' must be an http:// or https:// URL" in done.stderr


# --- against a real supervisord ---

@pytest.fixture(scope="module")
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture(scope="module")
def hooked(receiver):
    """A system whose WEBHOOK_URLS is `receiver` (terminal events), signing with SECRET."""
    s = System(env={"WEBHOOK_URLS": receiver.url, "WEBHOOK_SECRET": SECRET}).start()
    yield s
    s.stop()
    shutil.rmtree(s.home, ignore_errors=True)


def test_every_terminal_event_arrives_once_signed_as_the_api_shows_it(hooked, receiver):
    sessions = [hooked.run(task)["sessionId"] for task in ("true", "exit 3", "kill -9 $$")]
    sleeper = hooked.spawn("exec sleep 60")["sessionId"]
    hooked.wait_status(sleeper, {"running"})
    hooked.rpc().sessions.stopSession(sleeper)
    hooked.wait_status(sleeper, FINAL)
    sessions.append(sleeper)
    expected = seqs_in_feed(hooked, sessions)
    wait_for(lambda: len(receiver.delivered(sessions)) >= len(expected), message="the terminal events")
    got = receiver.delivered(sessions)
    assert sorted(e["seq"] for _, e in got) == sorted(expected) and len(expected) == 4
    for headers, body, _ in [r for r in receiver.requests if json.loads(r[1])["sessionId"] in sessions]:
        shown = json.loads(body)
        assert signed(SECRET, headers, body)
        assert headers["content-type"] == "application/json"
        assert headers["x-sessions-event"] == "state" and headers["x-sessions-delivery"] == str(shown["seq"])
        assert abs(int(headers["x-sessions-timestamp"]) - time.time()) < 120
        assert shown == feed_event(hooked, shown["seq"]) and isinstance(shown["time"], int)
    assert {e["status"] for _, e in got} == {"completed", "failed", "stopped"}


def test_a_session_webhook_gets_only_its_own_session_s_events(hooked, receiver):
    own = Receiver()
    try:
        status, accepted, _ = hooked.http("POST", "/v1/sessions", {
            "agent": "coder", "task": "true", "provider": "gemini", "runtime": "shell",
            "webhook": {"url": own.url, "events": ["all"]}})
        assert status == 202, accepted
        sid = accepted["sessionId"]
        other = hooked.run("true", webhook=own.url.replace("/hook", "/terminal-only"))["sessionId"]
        hooked.run("true")  # no webhook of its own
        hooked.wait_status(sid, FINAL)
        wait_for(lambda: [e.get("status", e["type"]) for _, e in own.delivered([sid])] == [
            "created", "starting", "running", "completed"], message="every event of the session, in order")
        wait_for(lambda: len(own.delivered([other])) == 1, message="the other session's terminal event")
        assert {e["sessionId"] for _, e in own.delivered()} == {sid, other}
        assert own.delivered([other])[0][1]["status"] == "completed"
        created = own.delivered([sid])[0][1]
        assert "webhook" not in created["session"]  # the API shows no webhook URL
        wait_for(lambda: receiver.delivered([sid]), message="WEBHOOK_URLS too")
    finally:
        own.close()


def test_a_failing_receiver_gets_the_events_later_in_order_and_holds_back_no_other_session(hooked):
    failing = {"on": True}
    flaky = Receiver(answer=lambda e: 500 if failing["on"] and e.get("labels", {}).get("hook") == "fail" else 200)
    try:
        hook = {"url": flaky.url, "events": ["all"]}
        held = [hooked.run("true", labels={"hook": "fail"}, webhook=hook)["sessionId"] for _ in range(2)]
        free = hooked.run("true", webhook=hook)["sessionId"]
        wait_for(lambda: len(flaky.delivered([free])) == 4, message="the other session's events, meanwhile")
        assert not flaky.delivered(held)
        wait_for(lambda: sum(1 for _, b, _ in flaky.requests if json.loads(b)["sessionId"] in held) >= 4,
                 message="a few failed tries")
        failing["on"] = False
        wait_for(lambda: len(flaky.delivered(held)) == 8, timeout=30, message="the held events, once it answers")
        for sid in held:
            tried = [json.loads(b)["seq"] for _, b, _ in flaky.requests if json.loads(b)["sessionId"] == sid]
            assert tried == sorted(tried)  # never a later event before an earlier one
            assert [e.get("status", e["type"]) for _, e in flaky.delivered([sid])] == [
                "created", "starting", "running", "completed"]
    finally:
        flaky.close()


def test_a_receiver_that_was_down_gets_the_events_once_it_is_up(hooked):
    port = free_port()
    sid = hooked.run("true", webhook="http://127.0.0.1:%d/late" % port)["sessionId"]
    late = Receiver(port=port)
    try:
        wait_for(lambda: late.delivered([sid]), timeout=30, message="the event, once the receiver is up")
        assert [e["status"] for _, e in late.delivered()] == ["completed"]
    finally:
        late.close()


@pytest.mark.parametrize("webhook", BAD_WEBHOOKS[:4])
def test_a_bad_webhook_is_400_over_http_and_invalid_spec_over_xml_rpc(hooked, webhook):
    body = {"agent": "coder", "task": "true", "provider": "gemini", "runtime": "shell", "webhook": webhook}
    status, answer, _ = hooked.http("POST", "/v1/sessions", body)
    assert status == 400 and answer["error"] == "invalid_request" and "'webhook'" in answer["message"]
    with pytest.raises(xmlrpc.client.Fault) as info:
        hooked.spawn("true", webhook=webhook)
    assert info.value.faultCode == Faults.INVALID_SPEC and "'webhook'" in info.value.faultString


def files_holding(home, secret, but=()):
    """The files under `home`, but those in `but`, that hold `secret`."""
    found = []
    for directory, _, names in os.walk(home):
        for name in names:
            path = os.path.join(directory, name)
            if path not in but and os.path.isfile(path):
                with open(path, "rb") as f:
                    if secret.encode() in f.read():
                        found.append(path)
    return found


def test_the_secret_is_in_no_log_no_answer_and_not_in_supervisord_s_environment(hooked):
    hooked.run("true")
    secret_file = os.path.join(hooked.home, "run", "webhook-secret")
    assert files_holding(hooked.home, SECRET, but=(secret_file,)) == []
    assert oct(os.stat(secret_file).st_mode & 0o777) == "0o600"
    for path in ("/v1/status", "/v1/sessions", "/v1/events"):
        assert SECRET not in json.dumps(hooked.http("GET", path)[1])
    with open("/proc/%d/environ" % hooked.supervisord_pid(), "rb") as f:
        assert b"WEBHOOK_SECRET" not in f.read()


def test_the_deliverer_runs_as_the_socket_s_owner_and_owns_its_progress(hooked):
    pid = hooked.rpc().supervisor.getProcessInfo("session-webhooks")["pid"]
    owner = os.stat(hooked.socket).st_uid  # the service user under root
    with open("/proc/%d/status" % pid) as f:
        uids = [line.split()[1:] for line in f if line.startswith("Uid:")][0]
    assert set(uids) == {str(owner)}
    assert os.stat(os.path.join(hooked.home, "webhooks", "state.json")).st_uid == owner
    rows = {row["name"]: row for row in hooked.http("GET", "/v1/status")[1]["services"]}
    assert rows["session-webhooks"]["state"] == "RUNNING"


def test_deliveries_go_on_after_kill_9_with_none_lost_and_none_twice(make_system):
    slow = Receiver(held=True)  # deliveries are in flight when supervisord dies
    try:
        system = make_system(env={"WEBHOOK_URLS": slow.url, "WEBHOOK_EVENTS": "all"}).start()
        with open(os.path.join(system.home, "run", "webhook-secret")) as f:
            secret = f.read().strip()
        sessions = [system.spawn("true")["sessionId"] for _ in range(8)]
        sessions += [system.spawn("exec sleep 60")["sessionId"] for _ in range(2)]
        wait_for(lambda: slow.arrived >= 2, message="deliveries in flight")
        system.kill9()
        slow.released.set()  # the deliverer finishes and records the tries in flight as supervisord is gone
        system.start()
        sessions += [system.spawn("true")["sessionId"] for _ in range(4)]
        for sid in sessions:
            system.wait_status(sid, FINAL)
        wanted = seqs_in_feed(system, sessions, terminal_only=False)
        wait_for(lambda: {e["seq"] for _, e in slow.delivered(sessions)} == set(wanted), timeout=30,
                 message="every event of the sessions")
        counts = collections.Counter(h["x-sessions-delivery"] for h, _, _ in slow.requests)
        assert [d for d, n in counts.items() if n > 1] == []
        assert all(signed(secret, h, b) for h, b, _ in slow.requests)
        for sid in sessions:  # each session's events in order
            seqs = [e["seq"] for _, e in slow.delivered([sid])]
            assert seqs == sorted(seqs) and slow.delivered([sid])[-1][1]["status"] in FINAL
        assert files_holding(system.home, secret, but=(os.path.join(system.home, "run", "webhook-secret"),)) == []
    finally:
        slow.released.set()
        slow.close()
