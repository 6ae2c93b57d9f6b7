"""The real agent CLIs from npm, installed once per machine, and what each needs to run offline.

`install()` puts claude-code, gemini-cli and codex into a cache directory (SESSIONS_TEST_NPM_PREFIX, default
/var/cache/supervisor-sessions-tests/npm) under a file lock, so concurrent pytest workers install once; it
skips the calling test when npm is missing or the install fails. The `*_env` functions give the environment
(and write the config files) for a CLI to talk to a provider stand-in at `url` with HOME at `home`.
"""
import fcntl
import json
import os
import shutil
import subprocess
import time

import pytest

from supervisor_sessions import mcp
from supervisor_sessions.agents import ADAPTERS

DEFAULT_PREFIX = "/var/cache/supervisor-sessions-tests/npm"
PACKAGES = {  # binary: (npm package, version): the builds agent-protocols.md was written from
    "claude": ("@anthropic-ai/claude-code", "2.1.197"),
    "gemini": ("@google/gemini-cli", "0.61.0"),
    "codex": ("@openai/codex", "0.169.0"),
}
INSTALL_TIMEOUT = 900
# Variables that would point a CLI at a real provider or a real account: never passed on.
PROVIDER_VARS = ("ANTHROPIC_", "CLAUDE_", "OPENAI_", "CODEX_", "GEMINI_", "GOOGLE_", "VERTEX")

_failure = None  # why the install failed in this process: later callers skip without trying again


def npm_prefix():
    return os.environ.get("SESSIONS_TEST_NPM_PREFIX") or DEFAULT_PREFIX


def cli_path(name):
    """The path of binary `name` (claude, codex, gemini) in the cache; it may not be installed yet."""
    return os.path.join(npm_prefix(), "node_modules", ".bin", name)


def claude_path():
    install()
    return cli_path("claude")


def codex_path():
    install()
    return cli_path("codex")


def gemini_path():
    install()
    return cli_path("gemini")


def _specs():
    return ["%s@%s" % package for package in PACKAGES.values()]


def _installed(prefix):
    try:
        with open(os.path.join(prefix, ".installed")) as f:
            if json.load(f) != _specs():
                return False
    except (OSError, ValueError):
        return False
    claude = os.path.realpath(cli_path("claude"))
    # `npm install --ignore-scripts` leaves a small placeholder for claude; install.cjs swaps the real one in.
    return all(os.access(cli_path(name), os.X_OK) for name in PACKAGES) and os.path.getsize(claude) > 1 << 20


def install():
    """Install the CLIs into npm_prefix() unless they are there already; the prefix. Skips on failure."""
    global _failure
    prefix = npm_prefix()
    if _failure:
        pytest.skip(_failure)
    if _installed(prefix):
        return prefix
    if not (shutil.which("npm") and shutil.which("node")):
        _failure = "npm and node are needed to install the agent CLIs"
        pytest.skip(_failure)
    try:
        os.makedirs(prefix, exist_ok=True)
        with open(os.path.join(prefix, ".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # another worker may be installing: wait for it
            if not _installed(prefix):
                _npm_install(prefix)
    except (OSError, subprocess.SubprocessError) as error:
        _failure = "installing the agent CLIs into %s failed: %s" % (prefix, error)
        pytest.skip(_failure)
    return prefix


def _npm_install(prefix):
    def run(argv):
        done = subprocess.run(argv, cwd=prefix, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=INSTALL_TIMEOUT)
        if done.returncode:
            raise subprocess.SubprocessError("%s exited %d: %s" % (" ".join(argv[:3]), done.returncode,
                                                                   (done.stderr or done.stdout)[-1500:]))

    started = time.monotonic()
    run(["npm", "install", "--ignore-scripts", "--prefer-offline", "--fetch-retries=1", "--no-audit", "--no-fund",
         "--loglevel=error", "--prefix", prefix] + _specs())
    run(["node", os.path.join(prefix, "node_modules", "@anthropic-ai", "claude-code", "install.cjs")])
    with open(os.path.join(prefix, ".installed"), "w") as f:
        json.dump(_specs(), f)
    with open(os.path.join(prefix, ".install-seconds"), "w") as f:
        f.write("%.1f\n" % (time.monotonic() - started))


def base_env(home):
    """This process's environment without provider settings, with HOME at `home`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(PROVIDER_VARS)}
    env["HOME"] = home
    return env


def claude_env(url, home):
    """Claude Code against a stand-in: its base URL, any key, no non-essential traffic."""
    return dict(base_env(home), ANTHROPIC_BASE_URL=url, ANTHROPIC_API_KEY="sk-ant-standin",
                CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1")


def codex_env(url, home):
    """Codex against a stand-in: the provider its adapter writes into $CODEX_HOME/config.toml (codex ignores
    OPENAI_BASE_URL). Run it as `codex exec --json --skip-git-repo-check -s workspace-write TASK` with stdin
    at /dev/null."""
    settings = ADAPTERS["codex"].form_settings({"OPENAI_BASE_URL": url.rstrip("/") + "/v1"})
    mcp.write_forms({}, home, ["codex"], {"codex": settings})
    return dict(base_env(home), CODEX_HOME=os.path.join(home, ".codex"), OPENAI_API_KEY="sk-standin")


def gemini_env(url, home):
    """Gemini CLI against a stand-in: key, base URL, a trusted workspace, the settings its adapter writes."""
    mcp.write_forms({}, home, ["gemini"], {"gemini": ADAPTERS["gemini-cli"].form_settings({})})
    return dict(base_env(home), GEMINI_API_KEY="standin-key", GOOGLE_GEMINI_BASE_URL=url.rstrip("/"),
                **ADAPTERS["gemini-cli"].env)
