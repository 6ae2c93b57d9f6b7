"""How the sessions.* methods answer errors: a domain error becomes its fault, a bug Faults.INTERNAL (logged
with its traceback in supervisord's log), never an HTTP 500 or a TypeError on the client."""
import functools
import traceback

from supervisor.xmlrpc import RPCError

from .faults import Faults, SessionError

_FAULT_NAMES = {v: k for k, v in vars(Faults).items() if not k.startswith("_")}


class SessionFault(RPCError):
    """An RPCError whose faultString names our fault: 'NO_SUCH_SESSION: no session ...'."""

    def __init__(self, code, message):
        Exception.__init__(self, message)
        self.code = code
        self.text = "%s: %s" % (_FAULT_NAMES.get(code, "FAILED"), message)


def guarded(method):
    """Turn domain errors into faults and any bug into Faults.INTERNAL, never a TypeError or HTTP 500."""
    @functools.wraps(method)
    def guarded(self, *args):
        try:
            self._enforce_deadlines()
            return method(self, *args)
        except RPCError:
            raise
        except SessionError as e:
            raise SessionFault(e.code, e.message) from None
        except Exception as e:
            self._log.critical("sessions.%s failed: %s" % (method.__name__, traceback.format_exc()))
            raise SessionFault(Faults.INTERNAL, "internal error in sessions.%s (%s: %s); supervisord's log "
                               "has the traceback" % (method.__name__, type(e).__name__, e)) from None
    return guarded


def as_fault(function, *args):
    """function(*args), its domain errors as faults (for a deferred answer, which guarded does not cover)."""
    try:
        return function(*args)
    except SessionError as e:
        raise SessionFault(e.code, e.message) from None
