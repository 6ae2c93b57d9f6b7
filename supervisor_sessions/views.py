"""How the API shows session records and change-feed events (the webhook bodies are the same)."""
import json

from .events import now_ms

RECORD_FIELDS = ("sessionId", "name", "agent", "task", "provider", "runtime", "status", "reason",
                 "createdAt", "startTime", "endTime", "duration", "cause", "exitCode", "pid", "port", "timeoutSeconds",
                 "limits", "gpus", "gpuDevices", "uid", "labels", "agentState", "usage", "agentSessionId", "budget", "stallSeconds",
                 "interactive", "idleTimeoutSeconds", "approvals", "resumedFrom", "workspace", "changes",
                 "sessionDir", "logFile")


def present(record, now=None):
    """A session record as the API shows it: integer times, duration (to `now`, ms, while it runs), null
    for what is not known yet."""
    shown = {key: record.get(key) for key in RECORD_FIELDS}
    for key in ("createdAt", "startTime", "endTime"):
        if shown[key] is not None:
            shown[key] = int(shown[key])
    shown["duration"] = duration(record, now)
    if shown["workspace"] and shown["workspace"].get("diskBytes") is not None:   # a double over XML-RPC
        shown["workspace"] = dict(shown["workspace"], diskBytes=int(shown["workspace"]["diskBytes"]))
    return shown


def duration(record, now=None):
    """ms from the start of a session to its end (or to `now` while it runs); None before it started."""
    if not record.get("startTime"):
        return None
    return int(record.get("endTime") or now or now_ms()) - int(record["startTime"])


def open_json(record):
    """The JSON of a record as present() shows it but for its duration, without its closing brace: the
    part that changes only when the record does (see close_json)."""
    shown = present(record)
    del shown["duration"]
    return json.dumps(shown)[:-1]


def close_json(opened, record, now):
    """A record's JSON from open_json's part: its duration at `now` added (as duration() computes it; this
    runs for every record of a list, so it does the sum itself)."""
    start = record.get("startTime")
    if not start:
        return opened + ', "duration": null}'
    return '%s, "duration": %d}' % (opened, (record.get("endTime") or now) - start)


def show_event(event):
    """An event as the API shows it: times as integers of ms, the record of a `created` as GET shows one."""
    shown = dict(event)
    for key in ("time", "startTime", "endTime"):
        if key in shown:
            shown[key] = int(shown[key])
    if "session" in shown:
        shown["session"] = present(shown["session"])
    return shown
