"""A session's workspace: a clone of a git repository on a branch of its own, made in the session's own
process before its worker runs, and what the worker changed, recorded when it ends.

Why a clone in the session directory and not `git worktree add`: a worktree shares the source's .git
(objects, refs, config, hooks), so a worker able to commit could rewrite the source's branches or plant a
hook or a `core.fsmonitor` that runs as whoever next uses the repository. The clone is the worker's alone;
its branch goes back into the source as `sessions/<id>` through a bundle (data that git verifies), fetched
as the source's owner. git runs on trusted repositories only (the source, the URL cache, the fresh clone
before the worker has it); on the worker's clone it runs as the worker inside its sandbox (launch.py).

The launcher writes what happened into the session's state file (`workspace.json`), which only it and
the plugin can reach; the patch goes beside it. Stdlib only: the worker launcher imports it.
"""
import fcntl
import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import tempfile

from .store import atomic_write
from .workerfiles import open_dir

WORK_DIR = "workspace"     # the clone, in the session directory: the worker's working directory
READY = "supervisor-sessions: workspace ready"  # the launcher's line, once prepared, that the plugin waits for
STATE_FILE = "workspace.json"
PATCH_FILE = "changes.patch"
PATCH_MAX_BYTES = 64 << 20
FINISH_OUTPUT_MAX_BYTES = PATCH_MAX_BYTES + (64 << 20)   # the patch, after the numbers of every file changed
BUNDLE_MAX_BYTES = 1 << 30
FILES_SHOWN = 10_000       # files listed in a session's changes
ALLOWED_PROTOCOLS = "https:http:git"
FINISH_SCRIPT = r"""
base=$1 branch=$2 commit=$3 sep=$4 id=$5
if [ "$commit" = 1 ] && [ -n "$(git status --porcelain 2>/dev/null)" ]; then
  git add -A >/dev/null 2>&1 && git -c user.name=supervisor-sessions -c user.email=sessions@localhost \
    commit -q --no-verify -m "session $id: work left uncommitted" >/dev/null 2>&1
fi
index=$(mktemp) || exit 1
cp .git/index "$index" 2>/dev/null
export GIT_INDEX_FILE=$index
git add -A >/dev/null 2>&1 || exit 1
git diff --cached --no-ext-diff --no-textconv --no-renames --numstat -z "$base" -- || exit 1
printf '%s' "$sep"
git rev-list --count "$base..refs/heads/$branch" -- 2>/dev/null || echo 0
printf '%s' "$sep"
exec git diff --cached --no-ext-diff --no-textconv --no-renames --binary --no-color "$base" --
"""
BUNDLE_SCRIPT = 'exec git bundle create --quiet - "refs/heads/$2" "^$1"'


class Failed(Exception):
    """The workspace could not be made (cause `workspace`) or its setup failed (cause `setup`)."""

    def __init__(self, cause, reason):
        super().__init__(reason)
        self.cause, self.reason = cause, reason


def check_source(repo, roots):
    """The real path of local repository `repo` when it lies under one of `roots` (WORKSPACE_ROOTS) and is a
    git working tree; ValueError saying why not."""
    if not roots:
        raise ValueError("no local repository may be used: WORKSPACE_ROOTS is empty (the operator names the "
                         "directories whose repositories sessions may clone)")
    real = os.path.realpath(repo)
    if not any(real == root or real.startswith(root.rstrip("/") + "/") for root in map(os.path.realpath, roots)):
        raise ValueError("%s is not under WORKSPACE_ROOTS (%s)" % (repo, ":".join(roots)))
    if not os.path.isdir(os.path.join(real, ".git")):
        raise ValueError("%s is not a git working tree (it has no .git directory)" % repo)
    return real


def git_env(config_dir, protocols="file"):
    """The environment of the git we run on trusted repositories: no system config; a global one of ours
    that trusts them whoever owns them (git refuses another user's repository otherwise); clones over
    `protocols` only (local paths; ALLOWED_PROTOCOLS for a URL); never a prompt."""
    config = os.path.join(config_dir, "gitconfig")
    atomic_write(config, b"[safe]\n\tdirectory = *\n[core]\n\thooksPath = /dev/null\n", 0o644)
    return {"PATH": os.environ.get("PATH", os.defpath), "HOME": config_dir, "LANG": "C", "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": config, "GIT_TERMINAL_PROMPT": "0", "GIT_ALLOW_PROTOCOL": protocols,
            "GIT_ASKPASS": "/bin/false", "GIT_SSH_COMMAND": "/bin/false"}


def _git(args, env, timeout, what):
    """Run git with `args`; its stdout. Failed (cause workspace) with git's own words when it fails."""
    try:
        done = subprocess.run(["git"] + args, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        raise Failed("workspace", "%s took longer than %d s (WORKSPACE_CLONE_TIMEOUT_SECONDS)" % (what, timeout)) \
            from None
    except OSError as e:
        raise Failed("workspace", "%s: cannot run git: %s" % (what, e.strerror)) from None
    if done.returncode:
        words = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise Failed("workspace", "%s failed: %s" % (what, " ".join(words[-3:])[:500] or "exit %d" % done.returncode))
    return done.stdout.decode("utf-8", "replace")


def _cached(url, cache_dir, env, timeout):
    """A bare mirror of `url` in `cache_dir`, cloned or brought up to date under a lock; its path."""
    os.makedirs(cache_dir, 0o700, exist_ok=True)
    path = os.path.join(cache_dir, hashlib.sha256(url.encode("utf-8")).hexdigest()[:32] + ".git")
    with open(path + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.isdir(path):
            _git(["-C", path, "fetch", "--quiet", "--prune", "origin"], env, timeout, "git fetch of %s" % url)
        else:
            partial = tempfile.mkdtemp(prefix=".clone-", dir=cache_dir)
            _git(["clone", "--quiet", "--mirror", "--", url, partial], env, timeout, "git clone of %s" % url)
            os.rename(partial, path)
    return path


def prepare(workspace, session_dir, state_dir, cache_dir, timeout, owner=None):
    """Make the session's clone, not checked out yet (the worker checks it out, see checkout_args, so that
    the index holds what the worker's own git will see): {path, base, branch}. `owner` ((uid, gid)) gets it."""
    env = git_env(state_dir)
    repo, ref, branch = workspace["repo"], workspace["ref"], workspace["branch"]
    source = repo
    if workspace["url"]:
        source = _cached(repo, cache_dir, dict(env, GIT_ALLOW_PROTOCOL=ALLOWED_PROTOCOLS), timeout)
    base = _git(["-C", source, "rev-parse", "--verify", "--quiet", ref + "^{commit}"], env, timeout,
                "finding %s in %s" % (ref, repo)).strip()
    work = os.path.join(session_dir, WORK_DIR)
    # With a worker user of its own, objects are hard links to the source's where the file system allows (git
    # copies them where not): they never change, and the worker, not their owner, can neither write nor chmod
    # them. A worker that runs as we do could, so it gets copies.
    _git(["clone", "--quiet", "--no-checkout"] + ([] if owner else ["--no-hardlinks"]) + ["--", source, work],
         env, timeout, "git clone of %s" % repo)
    if workspace["url"]:   # the worker fetches from the network, not from our cache
        _git(["-C", work, "remote", "set-url", "origin", repo], env, timeout, "git remote")
    if owner:
        _chown_tree(work, owner)
    return {"path": work, "base": base, "branch": branch}


def checkout_args(prepared):
    """The command that checks the session's branch out, run in the clone as the worker."""
    return ["git", "checkout", "--quiet", "-b", prepared["branch"], prepared["base"]]


def add_includes(workspace, work, owner=None):
    """Copy the untracked files the spec names from the source into the checked-out clone, and keep them out
    of git there (set-up files like an .env are not the worker's changes: never diffed nor committed)."""
    for path in workspace["include"]:
        _include(workspace["repo"], work, path, owner)
    if not workspace["include"]:
        return
    lines = "".join("/%s\n" % re.sub(r"([\\*?\[\]!#])", r"\\\1", path) for path in workspace["include"])
    info = open_dir(work, ".git/info", create=True, owner=owner)
    try:
        fd = os.open("exclude", os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o644, dir_fd=info)
        with os.fdopen(fd, "a", encoding="utf-8") as f:
            f.write(lines)
    finally:
        os.close(info)


def disk_usage(top):
    """Bytes of disk that the tree at `top` takes (links not followed), as a float: XML-RPC's int stops at
    2 GiB."""
    used = 0
    for parent, dirs, files in os.walk(top):
        for name in dirs + files:
            try:
                used += os.lstat(os.path.join(parent, name)).st_blocks * 512
            except OSError:
                pass
    return float(used)


def _include(source, work, path, owner):
    """Copy untracked file `path` of the source working tree into the clone, never through a link."""
    parent, name = os.path.split(path)
    try:
        source_dir = open_dir(source, parent)
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=source_dir)
        finally:
            os.close(source_dir)
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise Failed("workspace", "include: %s is not a regular file" % path)
            data = f.read()
        target_dir = open_dir(work, parent, create=True, owner=owner)
        try:
            out = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, stat.S_IMODE(st.st_mode),
                          dir_fd=target_dir)
            with os.fdopen(out, "wb") as f:
                f.write(data)
                if owner:
                    os.fchown(f.fileno(), *owner)
        finally:
            os.close(target_dir)
    except OSError as e:
        raise Failed("workspace", "include: %s cannot be copied from %s: %s" % (path, source, e.strerror)) from None


def _chown_tree(top, owner):
    """Give the clone to the worker's user, but for the object files that all may read (hard links to the
    source's stay its owner's; one only its owner may read becomes a copy of the worker's)."""
    objects = os.path.join(top, ".git", "objects")
    for parent, dirs, files in os.walk(top):
        shared = parent == objects or parent.startswith(objects + os.sep)
        for name in dirs + files:
            path = os.path.join(parent, name)
            if shared and name in files and os.lstat(path).st_mode & stat.S_IROTH:
                continue
            if shared and name in files:
                _unshare(path)
            os.lchown(path, *owner)
    os.lchown(top, *owner)


def _unshare(path):
    """Replace `path` (a hard link to an object file) by a copy of its own, readable by all."""
    copy = path + ".unshared"
    shutil.copyfile(path, copy)
    os.chmod(copy, 0o444)
    os.replace(copy, path)


def save_state(state_dir, fields):
    """Write the session's workspace state (what the plugin reads) as one JSON file."""
    atomic_write(os.path.join(state_dir, STATE_FILE), json.dumps(fields).encode("utf-8"))


def save_patch(state_dir, patch):
    """Keep the session's patch (bytes) beside its state."""
    atomic_write(os.path.join(state_dir, PATCH_FILE), patch)


def load_state(state_dir):
    """The workspace state the launcher wrote, or None."""
    try:
        with open(os.path.join(state_dir, STATE_FILE), encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def finish_args(prepared, commit, separator, session_id):
    """bash's arguments that record what the worker changed (FINISH_SCRIPT), run in the clone as the worker."""
    return ["bash", "--noprofile", "--norc", "-c", FINISH_SCRIPT, "finish", prepared["base"], prepared["branch"],
            "1" if commit else "0", separator, session_id]


def bundle_args(prepared):
    """bash's arguments that write the session branch's new commits as a bundle on stdout."""
    return ["bash", "--noprofile", "--norc", "-c", BUNDLE_SCRIPT, "bundle", prepared["base"], prepared["branch"]]


def parse_finish(output, separator, truncated):
    """{changes, files, patch (bytes), patchTruncated} from FINISH_SCRIPT's output."""
    parts = output.split(separator.encode("ascii"), 2)   # the patch comes last: a cap cuts only the patch
    if len(parts) != 3:
        raise ValueError("the record of the changes is incomplete")
    numstat, commits, patch = parts
    files, insertions, deletions = [], 0, 0
    for entry in numstat.split(b"\0"):
        if not entry:
            continue
        added, removed, path = entry.split(b"\t", 2)
        binary = added == b"-"
        added, removed = (0, 0) if binary else (int(added), int(removed))
        insertions, deletions = insertions + added, deletions + removed
        if len(files) < FILES_SHOWN:
            files.append({"path": _text(path), "insertions": added, "deletions": removed, "binary": binary})
    count = len([e for e in numstat.split(b"\0") if e])
    return {"changes": {"files": count, "insertions": insertions, "deletions": deletions,
                        "commits": int(commits.strip() or 0)},
            "files": files, "patch": patch, "patchTruncated": truncated}


def _text(raw):
    """A path as text safe for XML and JSON: undecodable bytes and control characters replaced."""
    text = raw.decode("utf-8", "replace")
    return "".join(c if c >= " " and c not in "\x7f\ufffe\uffff" else "\ufffd" for c in text)


def export(source, bundle, branch, env, timeout):
    """Fetch `branch` from `bundle` (a file) into the source repository as refs/heads/<branch>; run as the
    source's owner."""
    _git(["-C", source, "fetch", "--quiet", "--", bundle, "refs/heads/%s:refs/heads/%s" % (branch, branch)],
         env, timeout, "git fetch of the session's branch into %s" % source)


def owner_of(path):
    """(uid, gid) of the owner of `path`'s .git directory."""
    st = os.stat(os.path.join(path, ".git"))
    return st.st_uid, st.st_gid
