"""Supervisor process-state events turned into session state changes (pure: no I/O here)."""
import time

from supervisor.states import ProcessStates

LIVE = frozenset({"starting", "running"})            # a worker process exists
ACTIVE = LIVE | {"queued"}                            # not ended yet
FINAL = frozenset({"completed", "failed", "stopped", "interrupted"})
STATUSES = ACTIVE | FINAL


def now_ms():
    return int(time.time() * 1000)


def _ms(seconds):
    return int(seconds * 1000) if seconds else now_ms()


_EXIT_MEANINGS = {-1: "killed by a signal", 126: "exit code 126: the program could not be executed",
                  127: "exit code 127: a program was not found (see the session log)"}


def exit_reason(exitstatus):
    """A human reason for an unexpected exit status as supervisor reports it (-1: a signal; 129-159: what
    the sandbox, like a shell, reports for a program that a signal ended)."""
    if isinstance(exitstatus, int) and 128 < exitstatus < 160:
        return "killed by signal %d (exit code %d)" % (exitstatus - 128, exitstatus)
    return _EXIT_MEANINGS.get(exitstatus, "exit code %s" % exitstatus)


def state_change(process, new_state, expected, shutting_down):
    """The record fields a transition of a session's process sets, or None when it changes nothing.

    `shutting_down` is true while supervisord stops everything to exit or reload: a worker stopped then
    did not finish, so it ends `interrupted`, never `stopped`.
    """
    if new_state == ProcessStates.RUNNING:
        return {"status": "running", "pid": process.pid, "startTime": _ms(process.laststart)}
    if new_state == ProcessStates.EXITED:
        status = process.exitstatus
        if expected:
            return {"status": "completed", "exitCode": status, "endTime": _ms(process.laststop)}
        return {"status": "failed", "exitCode": status, "reason": exit_reason(status),
                "endTime": _ms(process.laststop)}
    if new_state == ProcessStates.STOPPED and process.laststart:
        update = {"endTime": _ms(process.laststop)}
        if process.exitstatus is not None:
            update["exitCode"] = process.exitstatus
        if shutting_down:
            update.update(status="interrupted", reason="supervisord stopped while the worker ran")
        else:
            update.update(status="stopped", reason="stopped on request")
        return update
    if new_state in (ProcessStates.FATAL, ProcessStates.BACKOFF):
        return {"status": "failed", "reason": process.spawnerr or "could not be spawned", "endTime": now_ms()}
    return None
