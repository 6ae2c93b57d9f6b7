"""The session-cleanup program: every CLEANUP_INTERVAL, remove ended sessions older than the retention.

It works only through sessions.* over the unix socket: listSessions with endedBefore names the expired
ones a page at a time, and removeSession takes the group, config, directory and log in one call (it
refuses a session that is queued, starting or running).
"""
import logging
import time
import xmlrpc.client

from .client import server_proxy
from .events import now_ms
from .faults import Faults

log = logging.getLogger(__name__)

PAGE = 200  # sessions asked for per call


def sweep(rpc, retention_ms, now=None):
    """Remove every ended session past the retention, asking supervisord for them a page at a time (each
    call is short work for its loop); return how many went. One JSON log line per removal."""
    cutoff = (now_ms() if now is None else now) - retention_ms
    removed = 0
    while True:
        page = rpc.sessions.listSessions({"endedBefore": float(cutoff + 1), "limit": PAGE})
        went = 0
        for record in page:
            sid = record["sessionId"]
            try:
                rpc.sessions.removeSession(sid)
            except xmlrpc.client.Fault as e:
                if e.faultCode not in (Faults.NO_SUCH_SESSION, Faults.SESSION_ACTIVE):
                    raise
                continue  # gone already, or its processes are still being killed: next round
            went += 1
            log.info("session removed", extra={"fields": {"event": "session-removed", "sessionId": sid,
                                                          "retentionHours": retention_ms / 3_600_000}})
        removed += went
        if len(page) < PAGE or not went:
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
