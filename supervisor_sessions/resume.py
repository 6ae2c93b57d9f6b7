"""Resuming an ended agent session (`resumeFrom`): which sessions may be resumed, and what the new one takes.

The new session is a session of its own (its id, record, log, user and limits) that starts in a copy of the
ended one's directory (the launcher makes it, see workerfiles.copy_tree) and runs the CLI's own resume with
the agent session id the ended one reported first. The ended session is left as it was.
"""
import os
import re

from .events import FINAL
from .faults import InvalidSpec, NotCapable, SessionActive
from .mcp import CANONICAL_FILE
from .store import META_COPY, TASK_FILE

# What a CLI's session id must look like to reach its argv: it was read from the worker's output.
AGENT_SESSION_ID = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9._:-]{0,199}\Z")
INHERITED = ("runtime", "agent", "provider")


def inherited(raw, records):
    """The create spec `raw` (as sent) with what it does not name of INHERITED taken from the session its
    resumeFrom names; `raw` itself when there is none."""
    source = records.get(raw.get("resumeFrom")) if isinstance(raw, dict) and isinstance(
        raw.get("resumeFrom"), str) else None
    if source is None:
        return raw
    return dict({key: source[key] for key in INHERITED if key in source}, **raw)


def agent_session_to_resume(spec, source, adapter, source_dir):
    """The agent session id that a new session of `spec` continues from `source` (the record its resumeFrom
    names, or None); raise why it cannot."""
    name = spec.resume_from
    if source is None:
        raise InvalidSpec("resumeFrom: there is no session %s" % name)
    if source["status"] not in FINAL:
        raise SessionActive("resumeFrom: session %s is %s; a session is resumed once it has ended"
                            % (name, source["status"]))
    if source["runtime"] != spec.runtime:
        raise InvalidSpec("resumeFrom: session %s ran runtime %s, not %s" % (name, source["runtime"], spec.runtime))
    if not adapter.capabilities.resume:
        raise NotCapable("runtime %s cannot resume a session: it lacks the 'resume' capability (see GET "
                         "/v1/runtimes)" % spec.runtime)
    agent_session = source.get("agentSessionId")
    if not agent_session:
        raise NotCapable("resumeFrom: session %s has no agent session to continue (its agent never reported one)"
                         % name)
    if not AGENT_SESSION_ID.match(agent_session):
        raise NotCapable("resumeFrom: the agent session id that session %s reported is not one that can be "
                         "passed to its CLI" % name)
    if not os.path.isdir(source_dir):
        raise NotCapable("resumeFrom: the directory of session %s is gone (it was removed)" % name)
    return agent_session


def launch_part(source, source_dir, owners, max_mb):
    """The launch spec's `resume`: what the launcher copies (not the files of ours that the new session gets
    afresh), whose files it takes (`owners`: the uids of the ended session's worker), and the most it copies."""
    return {"sessionId": source["sessionId"], "dir": source_dir, "owners": sorted(owners), "runtime": source["runtime"],
            "maxBytes": max_mb << 20, "skip": [META_COPY, TASK_FILE, CANONICAL_FILE]}
