"""The session-cleanup program: every CLEANUP_INTERVAL, remove ended sessions older than the retention.

It works only through sessions.* over the unix socket: removeSession takes the group, config, directory
and log in one call, and refuses a session that is queued, starting or running.
"""
import logging
import time
import xmlrpc.client

from .client import server_proxy
from .events import FINAL, now_ms
from .faults import Faults

log = logging.getLogger(__name__)


def expired(records, now, retention_ms):
    """Ids of the ended sessions whose end (or creation) lies more than `retention_ms` before `now`."""
    return [r["sessionId"] for r in records
            if r["status"] in FINAL and now - int(r.get("endTime") or r.get("createdAt") or 0) >= retention_ms]


def sweep(rpc, retention_ms, now=None):
    """Remove every expired session; return how many went. One JSON log line per removal."""
    now = now_ms() if now is None else now
    removed = 0
    for sid in expired(rpc.sessions.listSessions(), now, retention_ms):
        try:
            rpc.sessions.removeSession(sid)
        except xmlrpc.client.Fault as e:
            if e.faultCode not in (Faults.NO_SUCH_SESSION, Faults.SESSION_ACTIVE):
                raise
            continue  # gone already, or restarted meanwhile: not ours to remove now
        removed += 1
        log.info("session removed", extra={"fields": {"event": "session-removed", "sessionId": sid,
                                                      "retentionHours": retention_ms / 3_600_000}})
    return removed


def run(settings):
    """Sweep now and then every settings.cleanup_interval seconds, for ever."""
    rpc = server_proxy(settings.socket_path)
    retention_ms = int(settings.retention_hours * 3_600_000)
    while True:
        try:
            sweep(rpc, retention_ms)
        except (OSError, xmlrpc.client.Error) as e:
            log.warning("cleanup round failed", extra={"fields": {"event": "cleanup-failed",
                                                                  "error": "%s: %s" % (type(e).__name__, e)}})
            rpc = server_proxy(settings.socket_path)
        time.sleep(settings.cleanup_interval)
