"""Fault codes: ours never clash with supervisor's or the XML-RPC spec's, and each has an HTTP status."""
import pytest
from supervisor import xmlrpc as supervisor_xmlrpc

from supervisor_sessions import faults
from supervisor_sessions.faults import (HTTP_STATUS, SUPERVISOR_SHUTDOWN_STATE, Faults, InvalidSpec, NoSuchSession,
                                        EventsGone, NoSuchPath, NotCapable, QueueFull, SessionActive, SessionError, StorageFull)


def codes(cls):
    return {name: value for name, value in vars(cls).items() if name.isupper()}


OURS = codes(Faults)
SUPERVISORS = codes(supervisor_xmlrpc.Faults)
# The XML-RPC fault code interoperability spec (xmlrpc-epi): parse, server and application errors.
XMLRPC_SPEC = {-32700, -32701, -32702, -32600, -32601, -32602, -32603, -32500, -32400, -32300} | set(
    range(-32099, -31999))


def test_supervisors_faults_are_read_here():
    assert len(SUPERVISORS) > 10 and SUPERVISORS["SHUTDOWN_STATE"] == SUPERVISOR_SHUTDOWN_STATE


@pytest.mark.parametrize("name", sorted(OURS))
def test_our_fault_code_clashes_with_no_supervisor_or_xmlrpc_code(name):
    code = OURS[name]
    assert isinstance(code, int) and code not in SUPERVISORS.values() and code not in XMLRPC_SPEC
    assert 1000 <= code < 1100 and code > max(SUPERVISORS.values())


def test_our_fault_codes_are_distinct():
    assert len(set(OURS.values())) == len(OURS)


@pytest.mark.parametrize("name", sorted(OURS))
def test_every_fault_code_has_an_http_error_status(name):
    assert 400 <= HTTP_STATUS[OURS[name]] < 600


def test_http_statuses_cover_exactly_our_codes_and_supervisors_shutdown():
    assert set(HTTP_STATUS) == set(OURS.values()) | {SUPERVISOR_SHUTDOWN_STATE}
    assert HTTP_STATUS[SUPERVISOR_SHUTDOWN_STATE] == 503


@pytest.mark.parametrize("error, code", [
    (SessionError, Faults.INTERNAL), (InvalidSpec, Faults.INVALID_SPEC), (NoSuchSession, Faults.NO_SUCH_SESSION),
    (SessionActive, Faults.SESSION_ACTIVE), (StorageFull, Faults.STORAGE_FULL), (QueueFull, Faults.QUEUE_FULL),
    (NotCapable, Faults.NOT_CAPABLE),
    (NoSuchPath, Faults.NO_SUCH_PATH),
])
def test_each_session_error_carries_its_code_and_message(error, code):
    raised = error("what went wrong")
    assert (raised.code, raised.message, str(raised)) == (code, "what went wrong", "what went wrong")
    assert isinstance(raised, SessionError)


def test_events_gone_names_the_oldest_seq_still_kept():
    raised = EventsGone(42)
    assert (raised.code, raised.oldest) == (Faults.EVENTS_GONE, 42) and "ask from seq 42 on" in raised.message


def test_every_session_error_subclass_in_the_module_is_covered():
    subclasses = {cls for cls in vars(faults).values()
                  if isinstance(cls, type) and issubclass(cls, SessionError) and cls is not SessionError}
    assert subclasses == {InvalidSpec, NoSuchSession, SessionActive, StorageFull, QueueFull, EventsGone, NotCapable,
                          NoSuchPath}
    assert len({cls.code for cls in subclasses}) == len(subclasses)
