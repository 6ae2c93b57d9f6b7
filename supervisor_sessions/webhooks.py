"""The session-webhooks program: POSTs the events of the change feed to webhook receivers.

It follows sessions.getEvents over the unix socket (a long-poll: supervisord is never held up) and sends
each event to every destination that selects it: the WEBHOOK_URLS get the kinds WEBHOOK_EVENTS names, a
session's own `webhook` the kinds it names of that session's events. The body is the event as the HTTP
API shows it, signed with HMAC-SHA256 under WEBHOOK_SECRET. A 2xx answer delivers it; anything else is
tried again after 1 s, 2 s, 4 s ... (at most 60 s) until WEBHOOK_RETRY_SECONDS after the event, and then
given up with one JSON log line. One destination gets one session's events in seq order; a destination
failing for one session holds back no other session.

Progress is kept in $SESSIONS_HOME/webhooks/state.json: a cursor (every event below it is settled:
delivered or given up), the (seq, url) pairs settled above it, and the webhooks of the sessions whose
`created` event lies below the cursor. Stopped, or once supervisord dies, the program finishes the tries in
flight and records them before it exits, and the next one waits for it (a lock): after a restart nothing
is lost and nothing is delivered twice.
"""
import collections
import fcntl
import hashlib
import hmac
import http.client
import json
import logging
import os
import signal
import threading
import time
import urllib.parse
import xmlrpc.client
from dataclasses import dataclass

from . import procs
from .client import server_proxy
from .events import FINAL
from .faults import Faults, SessionError
from .settings import ensure_secret
from .store import atomic_write
from .views import show_event

log = logging.getLogger(__name__)

POLL_LIMIT = 1000
POLL_WAIT_SECONDS = 25
GATHER_SECONDS = 0.2    # after a page, let events gather: a burst costs supervisord one answer, not one each
REQUEST_TIMEOUT = 10    # seconds for each step of a POST (connect, send, each read)
BACKOFF_MAX = 60
SENDERS = 4             # POSTs in flight at once
USER_AGENT = "supervisor-sessions-webhooks"


def webhook_secret(settings, env):
    """The secret that signs deliveries: WEBHOOK_SECRET (then written to run/webhook-secret for the
    deliverer), else the one kept there (generated once, 0600). `serve` calls it as root before it drops
    WEBHOOK_SECRET from supervisord's environment; the deliverer calls it before it drops privileges."""
    given = env.get("WEBHOOK_SECRET", "").strip()
    if given:
        atomic_write(settings.webhook_secret_file, given.encode("utf-8") + b"\n")
        return given
    return ensure_secret("", settings.webhook_secret_file)[0]


def prepare_dir(settings, owner=None):
    """Create the deliverer's directory (0700) and, under root, give it and its files to `owner` (uid, gid)."""
    os.makedirs(settings.webhooks_dir, mode=0o700, exist_ok=True)
    if owner:
        for name in [""] + os.listdir(settings.webhooks_dir):
            os.chown(os.path.join(settings.webhooks_dir, name), *owner)


def selected(event, names):
    """Whether `event` is of a kind that `names` (of spec.WEBHOOK_EVENTS) asks for."""
    return ("all" in names or event["type"] in names
            or ("terminal" in names and event["type"] == "state" and event.get("status") in FINAL))


def backoff(attempts):
    """Seconds to wait after `attempts` failed tries: 1, 2, 4, ... at most BACKOFF_MAX."""
    return min(BACKOFF_MAX, 2 ** (attempts - 1))


def signature(secret, body):
    """The X-Sessions-Signature of `body` (bytes): sha256=<hex HMAC-SHA256 under the secret>."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def destination(url):
    """A URL as the log shows it: without its query, which may hold a token."""
    parts = urllib.parse.urlsplit(url)
    return "%s://%s%s" % (parts.scheme, parts.netloc, parts.path)


def post(url, body, headers, timeout=REQUEST_TIMEOUT):
    """POST `body` to `url` once and return the HTTP status; a redirect is an answer like any other."""
    parts = urllib.parse.urlsplit(url)
    kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = kind(parts.netloc, timeout=timeout)
    try:
        connection.request("POST", (parts.path or "/") + ("?" + parts.query if parts.query else ""), body, headers)
        return connection.getresponse().status
    finally:
        connection.close()


@dataclass
class Delivery:
    """One event for one destination; `next_try` is when it may be tried (again)."""
    seq: int
    session: str
    url: str
    kind: str
    body: bytes
    deadline: float
    attempts: int = 0
    next_try: float = 0.0
    error: str = ""


class Deliverer:
    """The deliveries owed, in one queue per (session, url), and the progress kept in the state file.

    `add` queues what a page of the feed asks for; sender threads `take` the next due delivery and
    `attempt` it. Everything is under one condition; only POSTs happen outside it.
    """

    def __init__(self, settings, secret, send=post, clock=time.time):
        self.urls, self.events = settings.webhook_urls, settings.webhook_events
        self.retry_seconds = settings.webhook_retry_seconds
        self.path = settings.webhooks_state_file
        self.secret, self.send, self.clock = secret, send, clock
        self.condition = threading.Condition()
        self.queues = {}     # (session, url) -> deque of Delivery, oldest first
        self.busy = set()    # queues whose first delivery is being tried
        self.stopping = False
        self.position, self.settled, self.hooks = self._load()

    def _load(self):
        """(cursor, settled (seq, url) pairs, {session: webhook}) from the state file; nothing yet: from 0."""
        try:
            with open(self.path, encoding="utf-8") as f:
                state = json.load(f)
        except FileNotFoundError:
            return 0, set(), {}
        return state["cursor"], {(seq, url) for seq, url in state["settled"]}, state["hooks"]

    @property
    def cursor(self):
        """Every event below it is settled: the oldest delivery still owed, else the next event to read."""
        return min((queue[0].seq for queue in self.queues.values()), default=self.position)

    def _save(self):
        """Write the progress (under the condition), dropping what lies below the cursor."""
        cursor = self.cursor
        self.settled = {pair for pair in self.settled if pair[0] >= cursor}
        self.hooks = {sid: hook for sid, hook in self.hooks.items() if hook.get("removedSeq", cursor) >= cursor}
        state = {"cursor": cursor, "settled": sorted(self.settled), "hooks": self.hooks}
        try:
            atomic_write(self.path, json.dumps(state).encode("utf-8"))
        except (OSError, SessionError) as e:
            log.error("cannot save the webhook progress", extra={"fields": {
                "event": "webhook-state-unsaved", "path": self.path, "error": str(e)}})

    def add(self, events, next_seq):
        """Queue the deliveries a page of the feed asks for (but those settled already); read on from next_seq."""
        with self.condition:
            for event in events:
                sid = event["sessionId"]
                if event["type"] == "created" and event["session"].get("webhook"):
                    self.hooks[sid] = dict(event["session"]["webhook"])
                hook = self.hooks.get(sid)
                urls = [url for url in self.urls if selected(event, self.events)]
                if hook:
                    if hook["url"] not in urls and selected(event, hook["events"]):
                        urls.append(hook["url"])
                    if event["type"] == "removed":
                        hook["removedSeq"] = event["seq"]
                body = json.dumps(show_event(event)).encode("utf-8") if urls else b""
                for url in urls:
                    if (event["seq"], url) not in self.settled:
                        self.queues.setdefault((sid, url), collections.deque()).append(Delivery(
                            event["seq"], sid, url, event["type"], body, event["time"] / 1000 + self.retry_seconds))
            self.position = next_seq
            self._save()
            self.condition.notify_all()

    def take(self):
        """The next delivery due (its queue then busy), waiting for one; None once stopping."""
        with self.condition:
            while not self.stopping:
                now, wake = self.clock(), None
                for key, queue in self.queues.items():
                    if key not in self.busy:
                        if queue[0].next_try <= now:
                            self.busy.add(key)
                            return queue[0]
                        wake = queue[0].next_try if wake is None else min(wake, queue[0].next_try)
                self.condition.wait(None if wake is None else wake - now)
            return None

    def attempt(self, delivery):
        """Try a delivery once (none past its deadline) and settle it, or set when to try it again."""
        now, retry_at = self.clock(), None
        if now < delivery.deadline:
            delivery.attempts += 1
            delivery.error = self._post(delivery, now)
            if delivery.error and now + backoff(delivery.attempts) < delivery.deadline:
                retry_at = now + backoff(delivery.attempts)
        with self.condition:
            self.busy.discard((delivery.session, delivery.url))
            if retry_at is not None:
                delivery.next_try = retry_at
            else:
                if delivery.error or not delivery.attempts:
                    log.warning("webhook delivery given up", extra={"fields": {
                        "event": "webhook-given-up", "seq": delivery.seq, "sessionId": delivery.session,
                        "type": delivery.kind, "url": destination(delivery.url), "attempts": delivery.attempts,
                        "error": delivery.error or "not tried within WEBHOOK_RETRY_SECONDS"}})
                self._settle(delivery)
            self.condition.notify_all()

    def _post(self, delivery, now):
        """POST a delivery once: "" when a 2xx answered it, else what went wrong."""
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT,
                   "X-Sessions-Signature": signature(self.secret, delivery.body),
                   "X-Sessions-Timestamp": str(int(now)), "X-Sessions-Event": delivery.kind,
                   "X-Sessions-Delivery": str(delivery.seq)}
        try:
            status = self.send(delivery.url, delivery.body, headers)
        except (OSError, http.client.HTTPException) as e:
            return "%s: %s" % (type(e).__name__, e)
        return "" if 200 <= status < 300 else "HTTP %d" % status

    def _settle(self, delivery):
        key = (delivery.session, delivery.url)
        self.queues[key].popleft()
        if not self.queues[key]:
            del self.queues[key]
        self.settled.add((delivery.seq, delivery.url))
        self._save()

    def send_forever(self):
        """A sender thread: attempt deliveries until stopping."""
        delivery = self.take()
        while delivery is not None:
            self.attempt(delivery)
            delivery = self.take()

    def follow(self, connect):
        """Read the feed from the cursor on, for ever; where the journal no longer holds it, from the oldest
        event it keeps (said in the log). A bug here stops the deliverer, for supervisord to start anew."""
        try:
            self._follow(connect)
        except Exception:
            log.exception("the change feed follower failed", extra={"fields": {"event": "webhook-follower-failed"}})
            self.stop()

    def _follow(self, connect):
        rpc, since = connect(), self.position
        while True:
            try:
                events, since = rpc.sessions.getEvents(since, POLL_LIMIT, POLL_WAIT_SECONDS)
            except (OSError, xmlrpc.client.Error) as e:
                if getattr(e, "faultCode", None) == Faults.EVENTS_GONE:
                    log.warning("events were lost to webhooks", extra={"fields": {
                        "event": "webhook-events-gone", "cursor": since, "error": e.faultString}})
                    since = 0
                    continue
                log.warning("cannot read the change feed", extra={"fields": {
                    "event": "webhook-feed-failed", "error": "%s: %s" % (type(e).__name__, e)}})
                time.sleep(1)
                rpc = connect()
                continue
            if events:
                self.add(events, since)
                time.sleep(GATHER_SECONDS)

    def stop(self):
        """Start no more tries (those in flight are finished and recorded)."""
        with self.condition:
            self.stopping = True
            self.condition.notify_all()


def run(settings, secret):
    """Deliver until SIGTERM or supervisord's end, then finish the tries in flight and return.

    A lock on its directory (see prepare_dir) makes a new deliverer wait for one that is still finishing."""
    lock = os.open(settings.webhooks_dir, os.O_RDONLY | os.O_DIRECTORY)
    fcntl.flock(lock, fcntl.LOCK_EX)
    deliverer = Deliverer(settings, secret)
    signal.signal(signal.SIGTERM, lambda *_: deliverer.stop())
    procs.exit_with_parent(then=deliverer.stop)
    connect = lambda: server_proxy(settings.socket_path, timeout=POLL_WAIT_SECONDS + 15)  # noqa: E731
    threading.Thread(target=deliverer.follow, args=(connect,), name="feed", daemon=True).start()
    senders = [threading.Thread(target=deliverer.send_forever, name="sender-%d" % i) for i in range(SENDERS)]
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join()
