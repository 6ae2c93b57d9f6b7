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
import select
import shutil
import signal
import sys
import tempfile
import time

from . import landlock, mcp, workspace
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
    """Steps 1-3 above and the session directory handed to the worker's user: what needs our privileges."""
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


def _drop(spec):
    """Become the worker's user for good (when we are root and it has one)."""
    user = spec.get("user")
    if user:
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


def _sandboxed(spec, argv, cwd=None):
    """`argv` inside bubblewrap, with TCP binds restricted to the session's port where Landlock can."""
    sandbox = spec.get("sandbox")
    if not sandbox:
        return argv
    if sandbox.get("landlock"):
        landlock.restrict_self([int(spec["sessionEnv"]["SESSION_PORT"])])
    return bwrap_argv(sandbox["bwrap"], spec["sessionEnv"]["SESSION_DIR"], sandbox["roots"],
                      sandbox.get("devices", ()), cwd) + argv


def _resolve(spec, program, env, what="runtime program"):
    """The path of `program` as the worker will run it; None (said in the log) when it cannot."""
    resolved = shutil.which(program, path=env["PATH"])
    if resolved is None:
        say("%s %r is not installed (not found on PATH=%s)" % (what, program, env["PATH"]))
        return None
    sandbox = spec.get("sandbox")
    if sandbox and not visible_inside(resolved, sandbox["roots"] + [spec["sessionEnv"]["SESSION_DIR"]]):
        say("%s %s is not inside the sandbox: its installation %s is not bound (it holds "
            "SESSIONS_HOME, or the worker users cannot reach it); install it elsewhere or add its directory to "
            "SANDBOX_READONLY_PATHS" % (what, resolved, os.path.dirname(os.path.realpath(resolved))))
        return None
    return resolved


def _run_worker(spec, env, servers, cwd=None):
    """As the worker: write its config and task, then exec its runtime in the sandbox (in `cwd`, else the
    session directory). Returns an exit status only when that cannot be done."""
    session_dir = spec["sessionEnv"]["SESSION_DIR"]
    try:  # never through a link: a resumed session's directory holds what an earlier worker left
        mcp.write_forms(servers, session_dir, spec["mcpForms"], spec.get("formSettings"))
        if spec.get("taskFile"):
            write_file(session_dir, os.path.basename(spec["taskFile"]), spec["task"].encode("utf-8"))
    except OSError as e:
        say("cannot write the worker's config into its directory: %s" % e)
        return EXIT_CANNOT_RUN
    resolved = _resolve(spec, spec["argv"][0], env)
    if resolved is None:
        return EXIT_NOT_INSTALLED
    command = _sandboxed(spec, [resolved] + spec["argv"][1:], cwd)
    if not spec.get("interactive"):  # supervisord's stdin pipe never closes: a CLI that reads it waits for ever
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    try:
        if cwd:
            os.chdir(cwd)
        os.execve(command[0], command, env)
    except OSError as e:
        say("cannot run %s: %s" % (command[0], e.strerror))
    return EXIT_CANNOT_RUN


# ---- a session with a workspace: the launcher stays its process, with our privileges, until it ends ----

FINISH_TIMEOUT_SECONDS = 120
_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT)


def workspace_session(spec, env, servers):
    """Prepare the clone (see workspace.py), run the setup command and then the runtime as the worker (each
    in its sandbox, children of ours), record what the worker changed, and end as the worker ended. The
    state file tells the plugin each step; a line in the log (workspace.READY) says the workspace is ready."""
    ws = spec["workspace"]
    user = spec.get("user")
    try:
        owner = (user["uid"], user["gid"]) if user else None
        prepared = workspace.prepare(ws, spec["sessionEnv"]["SESSION_DIR"], ws["stateDir"], ws["cacheDir"],
                                     ws["timeoutSeconds"], owner)
        status = _as_worker(spec, env, workspace.checkout_args(prepared), prepared["path"])[0]
        if status:
            raise workspace.Failed("workspace", "git checkout of %s failed (%s)" % (ws["ref"], _status_words(status)))
        workspace.add_includes(ws, prepared["path"], owner)
        prepared["diskBytes"] = workspace.disk_usage(prepared["path"])
        workspace.save_state(ws["stateDir"], dict(prepared, phase="prepared"))
        if ws["setup"]:
            status = _as_worker(spec, env, ["bash", "--noprofile", "--norc", "-c", ws["setup"]], prepared["path"])[0]
            if status:
                raise workspace.Failed("setup", "the workspace setup command failed (%s); its output is above"
                                       % _status_words(status))
    except workspace.Failed as e:
        workspace.save_state(ws["stateDir"], {"phase": "failed", "cause": e.cause, "reason": e.reason})
        say(e.reason)
        return EXIT_CANNOT_RUN
    sys.stderr.write("%s: %s on %s at %s\n" % (workspace.READY, prepared["path"], prepared["branch"], prepared["base"]))
    sys.stderr.flush()
    stopped_by = []   # a stop reaches us too (stopasgroup): the worker ends, then its changes are recorded
    for signum in _STOP_SIGNALS:
        signal.signal(signum, lambda signum, frame: stopped_by.append(signum))
    pid = os.fork()
    if pid == 0:
        for signum in _STOP_SIGNALS:
            signal.signal(signum, signal.SIG_DFL)
        try:
            _drop(spec)
            os._exit(_run_worker(spec, env, servers, prepared["path"]))
        except BaseException:
            os._exit(EXIT_CANNOT_RUN)
    status = _wait(pid)
    _record_changes(spec, env, ws, prepared)
    if os.WIFSIGNALED(status) or stopped_by:   # end as the worker did, or as we were told
        signum = os.WTERMSIG(status) if os.WIFSIGNALED(status) else stopped_by[0]
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
    return os.waitstatus_to_exitcode(status)


def _wait(pid):
    while True:
        try:
            return os.waitpid(pid, 0)[1]
        except InterruptedError:
            continue


def _status_words(status):
    code = os.waitstatus_to_exitcode(status)
    return "killed by signal %d" % -code if code < 0 else "exit code %d" % code


def _as_worker(spec, env, argv, cwd, capture=0, timeout=None):
    """Run `argv` as the worker in its sandbox, in `cwd`, stdin /dev/null: (wait status, the first `capture`
    bytes of its stdout, whether there was more). Without `capture` its output goes to the session log."""
    reader, writer = os.pipe() if capture else (None, None)
    pid = os.fork()
    if pid == 0:
        try:
            if writer is not None:
                os.dup2(writer, 1)
                os.close(reader)
            os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
            _drop(spec)
            resolved = _resolve(spec, argv[0], env, "program")
            if resolved is None:
                os._exit(EXIT_NOT_INSTALLED)
            command = _sandboxed(spec, [resolved] + argv[1:], cwd)
            os.chdir(cwd)
            os.execve(command[0], command, env)
        except BaseException:
            os._exit(EXIT_CANNOT_RUN)
    if reader is None:
        return _wait(pid), b"", False
    os.close(writer)
    kept, more = _read_capped(reader, capture, timeout, pid)
    return _wait(pid), kept, more


def _read_capped(fd, limit, timeout, pid):
    """Read `fd` to its end (or until `timeout`, when `pid` is killed): its first `limit` bytes, and whether
    there was more."""
    parts, size, more = [], 0, False
    deadline = time.monotonic() + (timeout or 1e9)
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                os.kill(pid, signal.SIGKILL)
                return b"".join(parts), True
            data = os.read(fd, 1 << 16)
            if not data:
                return b"".join(parts), more
            if size < limit:
                parts.append(data[:limit - size])
            more = more or size + len(data) > limit
            size += len(data)
    finally:
        os.close(fd)


def _record_changes(spec, env, ws, prepared):
    """What the worker changed, recorded by git run as the worker in its sandbox: the state file gets the
    numbers and files, the patch goes beside it; a local source gets the session's branch when it has new
    commits. Whatever fails is said in the state file: the session still ends as its worker did."""
    state_dir, sid = ws["stateDir"], spec["sessionEnv"]["SESSION_ID"]
    separator = "--sessions-%s--" % os.urandom(16).hex()   # chosen after the worker ended: it cannot forge it
    finished = dict(prepared, phase="finished", diskBytes=workspace.disk_usage(prepared["path"]))
    status, output, truncated = _as_worker(spec, env, workspace.finish_args(prepared, ws["commit"], separator, sid),
                                           prepared["path"], workspace.FINISH_OUTPUT_MAX_BYTES,
                                           FINISH_TIMEOUT_SECONDS)
    try:
        if status:
            raise ValueError("git could not list them (%s)" % _status_words(status))
        result = workspace.parse_finish(output, separator, truncated)
    except ValueError as e:
        finished["changesError"] = "the changes could not be recorded: %s" % e
        workspace.save_state(state_dir, finished)
        return
    workspace.save_patch(state_dir, result.pop("patch")[:workspace.PATCH_MAX_BYTES])
    finished.update(result)
    if not ws["url"] and result["changes"]["commits"]:
        finished.update(_export_branch(spec, env, ws, prepared))
    workspace.save_state(state_dir, finished)


def _export_branch(spec, env, ws, prepared):
    """Fetch the session's branch into the local source repository, through a bundle that the worker's git
    writes and the source's owner fetches: {exported, exportError?}."""
    status, bundle, too_large = _as_worker(spec, env, workspace.bundle_args(prepared), prepared["path"],
                                           workspace.BUNDLE_MAX_BYTES, FINISH_TIMEOUT_SECONDS)
    if status or too_large:
        return {"exported": False, "exportError": "git could not bundle the branch (%s)" % (
            "over %d bytes" % workspace.BUNDLE_MAX_BYTES if too_large else _status_words(status))}
    owner = workspace.owner_of(ws["repo"])
    with tempfile.TemporaryDirectory(prefix="sessions-bundle-") as directory:
        os.chmod(directory, 0o755)
        git_env = workspace.git_env(directory)
        path = os.path.join(directory, "branch.bundle")
        with open(path, "wb") as f:
            f.write(bundle)
        os.chmod(path, 0o644)
        reader, writer = os.pipe()
        pid = os.fork()
        if pid == 0:   # as the source's owner: its files stay theirs, its config and hooks run as them
            os.close(reader)
            try:
                if os.geteuid() == 0 and owner[0] != 0:
                    drop_privileges(*owner)
                workspace.export(ws["repo"], path, prepared["branch"], git_env, ws["timeoutSeconds"])
                os._exit(0)
            except BaseException as e:
                os.write(writer, str(getattr(e, "reason", e)).encode("utf-8", "replace")[:1000])
                os._exit(1)
        os.close(writer)
        words, _ = _read_capped(reader, 1000, FINISH_TIMEOUT_SECONDS, pid)
        if _wait(pid):
            return {"exported": False, "exportError": words.decode("utf-8", "replace") or "the fetch failed"}
    return {"exported": True}


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
    if spec.get("workspace"):
        return workspace_session(spec, env, servers)
    try:
        _drop(spec)
    except OSError as e:
        say("cannot become the worker's user: %s" % e)
        return EXIT_CANNOT_RUN
    return _run_worker(spec, env, servers)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
