"""Answers that wait inside supervisord without blocking it (the long-poll of sessions.getEvents).

An XML-RPC method may return a function instead of a value: supervisord's HTTP channel then calls it each
time its main loop finds the channel writable, until it returns something other than NOT_DONE_YET. The
loop looks at such a channel at most once per the function's `delay` and otherwise sleeps in poll() for up
to a second, so an answer could lag its event by that second. `wake()` marks every waiting channel as due,
so the next pass of the loop (the one right after the event) sends the answer.
"""
import time
import weakref

from supervisor.http import NOT_DONE_YET
from supervisor.xmlrpc import DeferredXMLRPCResponse


class Waiters:
    """The deferred answers now waiting, and a way to have them looked at at once."""

    def __init__(self, socket_map, recheck_seconds):
        self._socket_map = socket_map
        self._recheck = recheck_seconds
        # A client that hangs up drops its channel and with it the answer: nothing here keeps it alive.
        self._waiting = weakref.WeakSet()

    def wait(self, ready, answer, deadline):
        """A deferred answer: `answer()` once `ready()` is true, or at the latest at `deadline`
        (time.monotonic())."""
        def deferred():
            if ready() or time.monotonic() >= deadline:
                self._waiting.discard(deferred)
                return answer()
            return NOT_DONE_YET
        deferred.delay = self._recheck
        self._waiting.add(deferred)
        return deferred

    def wake(self):
        """Have every waiting answer looked at in the next pass of supervisord's loop."""
        if not self._waiting:
            return
        for channel in list(self._socket_map.values()):
            fifo = getattr(channel, "producer_fifo", None)
            if fifo is None or fifo.is_empty():
                continue
            producer = fifo.first()
            if isinstance(producer, DeferredXMLRPCResponse) and producer.callback in self._waiting:
                channel.last_writable_check = 0  # due now: see deferring_http_channel.writable
