"""state_change: a supervisor process-state transition turned into the session record's fields."""
import pytest
from supervisor.states import ProcessStates

from supervisor_sessions.events import ACTIVE, FINAL, LIVE, STATUSES, exit_reason, now_ms, state_change


class FakeProcess:
    """The attributes of supervisor's Subprocess that state_change reads."""

    def __init__(self, pid=4242, laststart=1700000000.25, laststop=1700000012.5, exitstatus=0, spawnerr=None):
        self.pid = pid
        self.laststart = laststart
        self.laststop = laststop
        self.exitstatus = exitstatus
        self.spawnerr = spawnerr


START_MS, STOP_MS = 1700000000250, 1700000012500


def test_running_records_the_pid_and_the_start_time():
    assert state_change(FakeProcess(), ProcessStates.RUNNING, True, False) == {
        "status": "running", "pid": 4242, "startTime": START_MS}


def test_an_expected_exit_completes_with_its_code():
    assert state_change(FakeProcess(exitstatus=0), ProcessStates.EXITED, True, False) == {
        "status": "completed", "cause": "exit", "exitCode": 0, "endTime": STOP_MS}


@pytest.mark.parametrize("exitstatus, cause, reason", [
    (1, "exit", "exit code 1"), (2, "exit", "exit code 2"), (-1, "signal", "killed by a signal"),
    (126, "exit", "exit code 126: the program could not be executed"),
    (127, "exit", "exit code 127: a program was not found (see the session log)"),
    (143, "signal", "killed by signal 15 (exit code 143)"),
])
def test_an_unexpected_exit_fails_with_its_code_cause_and_reason(exitstatus, cause, reason):
    assert state_change(FakeProcess(exitstatus=exitstatus), ProcessStates.EXITED, False, False) == {
        "status": "failed", "cause": cause, "exitCode": exitstatus, "reason": reason, "endTime": STOP_MS}


@pytest.mark.parametrize("shutting_down, status, cause, reason", [
    (False, "stopped", "request", "stopped on request"),
    (True, "interrupted", "shutdown", "supervisord stopped while the worker ran"),
])
@pytest.mark.parametrize("exitstatus", [-1, 0, None])
def test_a_stop_is_stopped_on_request_but_interrupted_while_supervisord_shuts_down(
        shutting_down, status, cause, reason, exitstatus):
    expected = {"status": status, "cause": cause, "reason": reason, "endTime": STOP_MS}
    if exitstatus is not None:
        expected["exitCode"] = exitstatus
    assert state_change(FakeProcess(exitstatus=exitstatus), ProcessStates.STOPPED, True, shutting_down) == expected


def test_a_stop_asked_for_by_cleanup_says_so():
    update = state_change(FakeProcess(exitstatus=-1), ProcessStates.STOPPED, True, False, "cleanup")
    assert (update["status"], update["cause"], update["reason"]) == ("stopped", "cleanup", "stopped by cleanup")


@pytest.mark.parametrize("shutting_down", [False, True])
def test_a_stop_of_a_process_that_never_started_changes_nothing(shutting_down):
    assert state_change(FakeProcess(laststart=0), ProcessStates.STOPPED, True, shutting_down) is None


@pytest.mark.parametrize("state", [ProcessStates.FATAL, ProcessStates.BACKOFF])
def test_a_spawn_failure_fails_with_supervisors_reason(state):
    before = now_ms()
    update = state_change(FakeProcess(spawnerr="can't find command 'nope'"), state, False, False)
    assert (update["status"], update["reason"]) == ("failed", "can't find command 'nope'")
    assert before <= update["endTime"] <= now_ms()


@pytest.mark.parametrize("spawnerr", [None, ""])
def test_a_spawn_failure_without_a_reason_still_says_something(spawnerr):
    update = state_change(FakeProcess(spawnerr=spawnerr), ProcessStates.FATAL, False, False)
    assert update["reason"] == "could not be spawned"


@pytest.mark.parametrize("state", [ProcessStates.STARTING, ProcessStates.STOPPING, ProcessStates.UNKNOWN])
def test_transitional_states_change_nothing(state):
    assert state_change(FakeProcess(), state, True, False) is None


def test_a_missing_stop_time_becomes_now():
    before = now_ms()
    update = state_change(FakeProcess(laststop=0), ProcessStates.EXITED, True, False)
    assert before <= update["endTime"] <= now_ms()


@pytest.mark.parametrize("state, expected, shutting_down", [
    (ProcessStates.RUNNING, True, False), (ProcessStates.EXITED, True, False), (ProcessStates.EXITED, False, False),
    (ProcessStates.STOPPED, True, False), (ProcessStates.STOPPED, True, True), (ProcessStates.FATAL, False, False),
])
def test_every_status_set_is_a_known_one(state, expected, shutting_down):
    assert state_change(FakeProcess(), state, expected, shutting_down)["status"] in STATUSES


def test_the_status_sets_partition_as_documented():
    assert LIVE < ACTIVE and not ACTIVE & FINAL and STATUSES == ACTIVE | FINAL
    assert ACTIVE - LIVE == {"queued"}


@pytest.mark.parametrize("exitstatus, reason", [
    (-1, "killed by a signal"), (126, "exit code 126: the program could not be executed"),
    (127, "exit code 127: a program was not found (see the session log)"), (0, "exit code 0"),
    (9, "exit code 9"), (255, "exit code 255"), (None, "exit code None"), (128, "exit code 128"),
    (137, "killed by signal 9 (exit code 137)"), (143, "killed by signal 15 (exit code 143)"),
])
def test_exit_reasons_name_signals_and_missing_programs(exitstatus, reason):
    assert exit_reason(exitstatus) == reason
