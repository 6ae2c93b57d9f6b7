"""Supervisor process-state events turned into session state changes (pure: no I/O here)."""
import time

from supervisor.states import ProcessStates

LIVE = frozenset({"starting", "preparing", "running"})  # a worker process exists (preparing: its workspace)
ACTIVE = LIVE | {"queued"}                            # not ended yet
FINAL = frozenset({"completed", "failed", "stopped", "interrupted"})
STATUSES = ACTIVE | FINAL
# Why a session ended, in a word (the record's and the terminal event's `cause`; `reason` says it in words).
CAUSES = {"completed": ("exit",), "failed": ("exit", "signal", "timeout", "oom", "budget", "stalled", "spawn",
                                             "workspace", "setup"),
          "stopped": ("request", "cleanup"), "interrupted": ("shutdown", "node")}
STOPPED_BY = CAUSES["stopped"]


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


def exit_cause(exitstatus):
    """`signal` when a signal ended the worker (see exit_reason), else `exit`."""
    return "signal" if exitstatus == -1 or (isinstance(exitstatus, int) and 128 < exitstatus < 160) else "exit"


INTERRUPTED = {"status": "interrupted", "cause": "shutdown", "reason": "supervisord stopped while the worker ran"}


def stopped_by(by):
    """The fields of a session stopped by `by` (`request` or `cleanup`)."""
    return {"status": "stopped", "cause": by, "reason": "stopped on request" if by == "request" else "stopped by " + by}


def spawn_failure(reason):
    """The fields of a session whose worker could not be started."""
    return {"status": "failed", "cause": "spawn", "reason": reason, "endTime": now_ms()}


def state_change(process, new_state, expected, shutting_down, stopped_by_whom="request"):
    """The record fields a transition of a session's process sets, or None when it changes nothing.

    `shutting_down` is true while supervisord stops everything to exit or reload: a worker stopped then
    did not finish, so it ends `interrupted`, never `stopped`. `stopped_by_whom` is who asked for a stop.
    """
    if new_state == ProcessStates.RUNNING:
        return {"status": "running", "pid": process.pid, "startTime": _ms(process.laststart)}
    if new_state == ProcessStates.EXITED:
        status = process.exitstatus
        if expected:
            return {"status": "completed", "cause": "exit", "exitCode": status, "endTime": _ms(process.laststop)}
        return {"status": "failed", "cause": exit_cause(status), "exitCode": status, "reason": exit_reason(status),
                "endTime": _ms(process.laststop)}
    if new_state == ProcessStates.STOPPED and process.laststart:
        update = {"endTime": _ms(process.laststop)}
        if process.exitstatus is not None:
            update["exitCode"] = process.exitstatus
        update.update(INTERRUPTED if shutting_down else stopped_by(stopped_by_whom))
        return update
    if new_state in (ProcessStates.FATAL, ProcessStates.BACKOFF):
        return spawn_failure(process.spawnerr or "could not be spawned")
    return None
