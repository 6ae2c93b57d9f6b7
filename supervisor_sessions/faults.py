"""Fault codes of the sessions namespace and their HTTP equivalents.

Supervisor's own codes (supervisor.xmlrpc.Faults) are below 100 and the XML-RPC spec's are negative;
ours live in 1000-1099 so a client can always tell them apart.
"""


class Faults:
    INVALID_SPEC = 1001       # the create spec or an argument is malformed
    NO_SUCH_SESSION = 1002    # no session has this id
    SESSION_ACTIVE = 1003     # the session is still queued, starting or running
    STORAGE_FULL = 1004       # the disk refused a write (full, quota, read-only)
    QUEUE_FULL = 1005         # MAX_QUEUED_SESSIONS sessions already wait
    EVENTS_GONE = 1006        # the events asked for are older than the journal keeps
    NOT_CAPABLE = 1007        # the session (its runtime, or how it was created) cannot do what was asked
    NO_SUCH_PATH = 1008       # nothing of that name in the session directory
    INTERNAL = 1099           # a bug of ours; the message carries the traceback's last line


SUPERVISOR_SHUTDOWN_STATE = 6  # supervisor's own fault while it stops or reloads

HTTP_STATUS = {
    SUPERVISOR_SHUTDOWN_STATE: 503,
    Faults.INVALID_SPEC: 400,
    Faults.NO_SUCH_SESSION: 404,
    Faults.SESSION_ACTIVE: 409,
    Faults.STORAGE_FULL: 507,
    Faults.QUEUE_FULL: 429,
    Faults.EVENTS_GONE: 410,
    Faults.NOT_CAPABLE: 409,
    Faults.NO_SUCH_PATH: 404,
    Faults.INTERNAL: 500,
}


class SessionError(Exception):
    """A domain error with the fault code it maps to at the RPC boundary."""

    code = Faults.INTERNAL

    def __init__(self, message):
        super().__init__(message)
        self.message = message


class InvalidSpec(SessionError):
    code = Faults.INVALID_SPEC


class NoSuchSession(SessionError):
    code = Faults.NO_SUCH_SESSION


class SessionActive(SessionError):
    code = Faults.SESSION_ACTIVE


class StorageFull(SessionError):
    code = Faults.STORAGE_FULL


class QueueFull(SessionError):
    code = Faults.QUEUE_FULL


class NotCapable(SessionError):
    code = Faults.NOT_CAPABLE


class NoSuchPath(SessionError):
    code = Faults.NO_SUCH_PATH


class EventsGone(SessionError):
    """Events older than the journal keeps were asked for; `oldest` is the first one still there."""

    code = Faults.EVENTS_GONE

    def __init__(self, oldest):
        super().__init__("events before seq %d are no longer kept; ask from seq %d on" % (oldest, oldest))
        self.oldest = oldest
