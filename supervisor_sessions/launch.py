"""The worker launcher: the one command every session's program runs.

supervisord starts `python -I -m supervisor_sessions.launch <session>/.session-launch.json`. The launcher
reads the launch spec the plugin wrote (then deletes it, since it may hold user secrets), builds the
worker's environment from an allow-list instead of supervisord's whole environment, writes the MCP
configuration in the forms the runtime reads, and execs the runtime's argv in place, so the worker keeps
the pid, process group and log supervisord gave it. Stdlib only, to start fast.
"""
import json
import os
import shutil
import sys

from . import mcp

# Taken from supervisord's environment when set; everything else a worker gets is named explicitly.
BASE_ENV = ("PATH", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "LC_MESSAGES", "TZ", "TERM", "TMPDIR",
            "USER", "LOGNAME", "SHELL", "SSL_CERT_FILE", "SSL_CERT_DIR", "NODE_EXTRA_CA_CERTS")
EXIT_CANNOT_RUN = 126
EXIT_NOT_INSTALLED = 127


def say(message):
    """One line into the session's log, marked as ours."""
    sys.stderr.write("supervisor-sessions: %s\n" % message)
    sys.stderr.flush()


def build_environment(spec, parent):
    """The worker's environment: allow-listed basics, the runtime's secrets, the spec's env, session vars."""
    env = {k: parent[k] for k in BASE_ENV if k in parent}
    env.setdefault("PATH", os.defpath)
    if parent.get("HOME"):
        # HOME becomes the session dir; keep npm's download cache shared so npx MCP servers start fast.
        env["NPM_CONFIG_CACHE"] = parent.get("NPM_CONFIG_CACHE") or os.path.join(parent["HOME"], ".npm")
    env.update({k: parent[k] for k in spec["secrets"] if k in parent})
    env.update(spec["env"])
    env.update(spec["sessionEnv"])
    return env


def main(argv):
    if len(argv) != 2:
        say("usage: python -m supervisor_sessions.launch LAUNCH_FILE")
        return 2
    with open(argv[1], encoding="utf-8") as f:
        spec = json.load(f)
    os.unlink(argv[1])
    env = build_environment(spec, os.environ)
    session_dir = spec["sessionEnv"]["SESSION_DIR"]
    try:
        missing = set()
        servers = mcp.fill_placeholders(mcp.load_servers(spec["mcpSource"]), dict(os.environ, **env), missing)
        if missing:
            say("MCP config names unset variables: %s" % ", ".join(sorted(missing)))
    except (OSError, ValueError) as e:
        say("MCP config not used: %s" % e)
        servers = {}
    mcp.write_forms(servers, session_dir, spec["mcpForms"])
    program = spec["argv"][0]
    resolved = shutil.which(program, path=env["PATH"])
    if resolved is None:
        say("runtime program %r is not installed (not found on PATH=%s)" % (program, env["PATH"]))
        return EXIT_NOT_INSTALLED
    try:
        os.execve(resolved, spec["argv"], env)
    except OSError as e:
        say("cannot run %s: %s" % (resolved, e.strerror))
    return EXIT_CANNOT_RUN


if __name__ == "__main__":
    sys.exit(main(sys.argv))
