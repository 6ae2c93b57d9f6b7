"""The API's copy of every session record, kept current from the change feed, so that reads of sessions
neither parse a thousand XML-RPC structs nor wait on supervisord's loop.

A thread catches up (it notes the feed's next seq, then reads every record in pages), then follows the
feed with a long-poll: a `created` event adds its record, a `state` event sets the fields it carries, a
`removed` event drops the record, an agent event sets what it `set`s. Replaying the events from the noted seq on makes up for whatever
changed while the pages were read. While the feed cannot be followed (supervisord down, restarting, or
the API just started), `live` is false and the API asks supervisord itself.
"""
import logging
import threading
import time
import xmlrpc.client

from .events import FINAL
from .faults import Faults

log = logging.getLogger(__name__)

PAGE = 500                # records per listSessions call while catching up
WAIT_SECONDS = 20         # how long one getEvents call waits for the next event
RETRY_SECONDS = 0.5       # pause before trying again once supervisord stopped answering
_NOT_RECORD_FIELDS = frozenset({"seq", "type", "sessionId", "time", "labels"})
_LAST_SEQ = 2 ** 31 - 1   # asking from here answers no event, only the next seq


def apply_event(records, event):
    """Change `records` ({id: record}) as `event` says."""
    sid = event["sessionId"]
    if event["type"] == "created":
        records[sid] = dict(event["session"])
    elif event["type"] == "removed":
        records.pop(sid, None)
    elif event["type"] == "state" and sid in records:
        record = records[sid]
        record.update((k, v) for k, v in event.items() if k not in _NOT_RECORD_FIELDS)
        if record.get("status") in FINAL:
            record.pop("pid", None)
    elif isinstance(event.get("set"), dict) and sid in records:  # an agent event that changed the record
        records[sid].update(event["set"])


def workspace_usage(records):
    """{sessions, diskBytes} of the records with a workspace (see Mirror.workspace_usage)."""
    used = [(r.get("workspace") or {}).get("diskBytes") or 0 for r in records if r.get("workspace")]
    return {"sessions": len(used), "diskBytes": int(sum(used))}


class Mirror:
    """Every session record, in creation order, as the feed says it is now."""

    def __init__(self, connect):
        self._connect = connect   # () -> a new XML-RPC proxy to supervisord
        self._lock = threading.Lock()
        self._records = {}
        self._rendered = {}       # id -> what page()'s render made of the record as it is now
        self._live = threading.Event()

    @property
    def live(self):
        """True while the copy follows the feed (reads may then come from it)."""
        return self._live.is_set()

    def start(self):
        threading.Thread(target=self._run, name="session-mirror", daemon=True).start()

    def wait_live(self, timeout):
        return self._live.wait(timeout)

    def get(self, sid):
        """A copy of one record, or None."""
        with self._lock:
            record = self._records.get(sid)
            return dict(record) if record is not None else None

    def add(self, record):
        """A record just created through this API, so the client that made it sees it in its next read
        (the feed's own `created` event, coming a moment later, replaces it)."""
        with self._lock:
            if record["sessionId"] not in self._records:
                self._records[record["sessionId"]] = dict(record)
                self._rendered.pop(record["sessionId"], None)

    def discard(self, sid):
        """A record just removed through this API, so its client's next read no longer shows it."""
        with self._lock:
            self._records.pop(sid, None)
            self._rendered.pop(sid, None)

    def page(self, render, finish, status=None, labels=None, offset=0, limit=100):
        """(finish(render(record), record) for the matching records, newest first, from offset, at most
        limit; how many match). What render makes of a record is kept until the record changes."""
        def wanted(record):
            have = record.get("labels") or {}
            return (status is None or record["status"] == status) and \
                all(have.get(k) == v for k, v in (labels or {}).items())
        with self._lock:
            matching = [r for r in reversed(self._records.values()) if wanted(r)] if status or labels \
                else list(reversed(self._records.values()))
            return [finish(self._render(render, r), r) for r in matching[offset:offset + limit]], len(matching)

    def _render(self, render, record):
        rendered = self._rendered.get(record["sessionId"])
        if rendered is None:
            rendered = self._rendered[record["sessionId"]] = render(record)
        return rendered

    def counts(self):
        """{status: how many} over every record."""
        with self._lock:
            counts = {}
            for record in self._records.values():
                counts[record["status"]] = counts.get(record["status"], 0) + 1
            return counts

    def workspace_usage(self):
        """{sessions: how many have a workspace, diskBytes: what their clones took when last measured}."""
        with self._lock:
            return workspace_usage(self._records.values())

    def _run(self):
        while True:
            try:
                self._follow(self._connect())
            except xmlrpc.client.Fault as e:
                if e.faultCode not in (Faults.EVENTS_GONE, Faults.NO_SUCH_SESSION):  # fell behind; a page vanished
                    log.warning("the session mirror stopped following the feed: %s", e.faultString)
            except (OSError, xmlrpc.client.Error) as e:
                log.debug("the session mirror lost supervisord: %s", e)
            except Exception:
                log.exception("the session mirror failed; it starts again")
            self._live.clear()
            time.sleep(RETRY_SECONDS)

    def _follow(self, proxy):
        """Catch up, then apply the feed as it comes, for as long as supervisord answers."""
        next_seq = self._catch_up(proxy)
        while True:
            events, next_seq = proxy.sessions.getEvents(next_seq, 1000, WAIT_SECONDS)
            with self._lock:
                for event in events:
                    apply_event(self._records, event)
                    self._rendered.pop(event["sessionId"], None)

    def _catch_up(self, proxy):
        """Read every record (in pages, after the feed's next seq was noted) and replay what happened
        meanwhile; return the seq to follow from."""
        next_seq = proxy.sessions.getEvents(_LAST_SEQ, 1)[1]
        records, query = {}, {"limit": PAGE}
        while True:
            page = proxy.sessions.listSessions(query)
            records.update((r["sessionId"], r) for r in page)
            if len(page) < PAGE:
                break
            query = {"limit": PAGE, "afterId": page[-1]["sessionId"]}
        while True:
            events, next_seq = proxy.sessions.getEvents(next_seq, 1000)
            for event in events:
                apply_event(records, event)
            if not events:
                break
        with self._lock:
            self._records, self._rendered = records, {}
            self._live.set()
        return next_seq
