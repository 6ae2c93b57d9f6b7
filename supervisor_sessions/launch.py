"""The worker launcher: the one command every session's program runs.

supervisord starts `python -I -m supervisor_sessions.launch $SESSIONS_HOME/state/sessions/<id>/launch.json`.
The launch spec lives in the service's state directory, which no worker can reach; the launcher reads
it and deletes it (it may hold user secrets), then, while it still has supervisord's privileges:
  1. creates the session's cgroup with its limits and moves itself in (when cgroups are usable),
  2. raises its own oom_score_adj, so the OOM killer takes workers before the API or supervisord,
  3. for a session that resumes an ended one, copies that one's directory into its own (workerfiles.py:
     what the old worker owned, links as links, nothing followed),
  4. hands the session directory to the session's own user and drops to that user (when root),
and then, as the worker: builds the environment from an allow-list, writes the task and the MCP
configuration in the forms the runtime reads, restricts TCP binds to the session's port (Landlock),
and execs the runtime under bubblewrap (its stdin /dev/null unless the session is interactive), so the
worker keeps the pid, process group and log that supervisord gave it. Stdlib only, to start fast.
"""
import json
import os
import shutil
import sys

from . import landlock, mcp
from .agents import adapter_for
from .cgroups import Cgroups
from .identity import drop_privileges
from .sandbox import bwrap_argv, visible_inside
from .workerfiles import TooLarge, copy_tree, write_file

# Taken from supervisord's environment when set; everything else a worker gets is named explicitly.
BASE_ENV = ("PATH", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "LC_MESSAGES", "TZ", "TERM", "TMPDIR",
            "USER", "LOGNAME", "SHELL", "SSL_CERT_FILE", "SSL_CERT_DIR", "NODE_EXTRA_CA_CERTS")
WORKER_OOM_SCORE_ADJ = 500
EXIT_CANNOT_RUN = 126
EXIT_NOT_INSTALLED = 127


def say(message):
    """One line into the session's log, marked as ours."""
    sys.stderr.write("supervisor-sessions: %s\n" % message)
    sys.stderr.flush()


def build_environment(spec, parent):
    """The worker's environment: allow-listed basics, the runtime's secrets, the GPU variables, the
    spec's env, the session's variables (HOME is the session directory: its own npm cache and config)."""
    env = {k: parent[k] for k in BASE_ENV if k in parent}
    env.setdefault("PATH", os.defpath)
    env.update({k: parent[k] for k in spec["secrets"] if k in parent})
    env.update({k: parent[k] for k in spec.get("passEnv", ()) if k in parent})
    env.update(spec["env"])
    env.update(spec["sessionEnv"])
    return env


def _carry_over(resume, session_dir, user):
    """Step 3: the ended session's directory copied into this one's, owned by the worker's user, and what
    the runtime files by working directory moved to where it will look."""
    owner = (user["uid"], user["gid"]) if user else None
    files, left_out = copy_tree(resume["dir"], session_dir, resume["owners"], owner, resume["maxBytes"],
                                resume["skip"])
    adapter_for(resume["runtime"]).carried_over(resume["dir"], session_dir)
    say("resuming session %s: %d files copied from its directory%s" % (
        resume["sessionId"], files, "; %d left out (not its worker's, or not a file, directory or link)"
        % left_out if left_out else ""))


def _confine(spec):
    """Steps 1-4 above: the parts that need supervisord's privileges."""
    session_dir = spec["sessionEnv"]["SESSION_DIR"]
    if spec.get("cgroup"):
        limits = spec["limits"]
        groups = Cgroups.from_spec(spec["cgroup"])
        groups.create(spec["sessionEnv"]["SESSION_ID"], limits["memoryMB"], limits["cpus"], limits["pids"])
        groups.join(spec["sessionEnv"]["SESSION_ID"], os.getpid())
    try:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write(str(WORKER_OOM_SCORE_ADJ))
    except OSError:
        pass
    user = spec.get("user")
    if spec.get("resume"):
        _carry_over(spec["resume"], session_dir, user)
    if user:
        os.chown(session_dir, user["uid"], user["gid"])
        os.chmod(session_dir, 0o700)
        drop_privileges(user["uid"], user["gid"])


def _mcp_servers(spec, env):
    """The canonical MCP servers with ${VAR} filled from the worker's own environment only."""
    try:
        missing = set()
        servers = mcp.fill_placeholders(mcp.load_servers(spec["mcpSource"]), env, missing)
        if missing:
            say("MCP config names variables this session does not have: %s" % ", ".join(sorted(missing)))
        return servers
    except (OSError, ValueError) as e:
        say("MCP config not used: %s" % e)
        return {}


def _sandboxed(spec, argv):
    """`argv` inside bubblewrap, with TCP binds restricted to the session's port where Landlock can."""
    sandbox = spec.get("sandbox")
    if not sandbox:
        return argv
    if sandbox.get("landlock"):
        landlock.restrict_self([int(spec["sessionEnv"]["SESSION_PORT"])])
    return bwrap_argv(sandbox["bwrap"], spec["sessionEnv"]["SESSION_DIR"], sandbox["roots"],
                      sandbox.get("devices", ())) + argv


def main(argv):
    if len(argv) != 2:
        say("usage: python -m supervisor_sessions.launch LAUNCH_FILE")
        return 2
    with open(argv[1], encoding="utf-8") as f:
        spec = json.load(f)
    os.unlink(argv[1])
    env = build_environment(spec, os.environ)
    servers = _mcp_servers(spec, env)   # read while the source is still readable to us
    try:
        _confine(spec)
    except OSError as e:
        say("cannot confine the worker: %s" % e)
        return EXIT_CANNOT_RUN
    except TooLarge as e:
        say("cannot resume: the directory of the session it resumes holds %s (RESUME_MAX_MB)" % e)
        return EXIT_CANNOT_RUN
    session_dir = spec["sessionEnv"]["SESSION_DIR"]
    try:  # never through a link: a resumed session's directory holds what an earlier worker left
        mcp.write_forms(servers, session_dir, spec["mcpForms"], spec.get("formSettings"))
        if spec.get("taskFile"):
            write_file(session_dir, os.path.basename(spec["taskFile"]), spec["task"].encode("utf-8"))
    except OSError as e:
        say("cannot write the worker's config into its directory: %s" % e)
        return EXIT_CANNOT_RUN
    program = spec["argv"][0]
    resolved = shutil.which(program, path=env["PATH"])
    if resolved is None:
        say("runtime program %r is not installed (not found on PATH=%s)" % (program, env["PATH"]))
        return EXIT_NOT_INSTALLED
    sandbox = spec.get("sandbox")
    if sandbox and not visible_inside(resolved, sandbox["roots"] + [session_dir]):
        say("runtime program %s is not inside the sandbox: its installation %s is not bound (it holds "
            "SESSIONS_HOME, or the worker users cannot reach it); install it elsewhere or add its directory to "
            "SANDBOX_READONLY_PATHS" % (resolved, os.path.dirname(os.path.realpath(resolved))))
        return EXIT_NOT_INSTALLED
    command = _sandboxed(spec, [resolved] + spec["argv"][1:])
    if not spec.get("interactive"):  # supervisord's stdin pipe never closes: a CLI that reads it waits for ever
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    try:
        os.execve(command[0], command, env)
    except OSError as e:
        say("cannot run %s: %s" % (command[0], e.strerror))
    return EXIT_CANNOT_RUN


if __name__ == "__main__":
    sys.exit(main(sys.argv))
