"""How the API shows session records and change-feed events (the webhook bodies are the same)."""
from .events import now_ms

RECORD_FIELDS = ("sessionId", "name", "agent", "task", "provider", "runtime", "status", "reason",
                 "createdAt", "startTime", "endTime", "duration", "cause", "exitCode", "pid", "port", "timeoutSeconds",
                 "limits", "gpus", "gpuDevices", "uid", "labels", "sessionDir", "logFile")


def present(record, now=None):
    """A session record as the API shows it: integer times, duration (to `now`, ms, while it runs), null
    for what is not known yet."""
    shown = {key: record.get(key) for key in RECORD_FIELDS}
    for key in ("createdAt", "startTime", "endTime"):
        if shown[key] is not None:
            shown[key] = int(shown[key])
    if shown["startTime"]:
        shown["duration"] = (shown["endTime"] or now or now_ms()) - shown["startTime"]
    return shown


def show_event(event):
    """An event as the API shows it: times as integers of ms, the record of a `created` as GET shows one."""
    shown = dict(event)
    for key in ("time", "startTime", "endTime"):
        if key in shown:
            shown[key] = int(shown[key])
    if "session" in shown:
        shown["session"] = present(shown["session"])
    return shown
