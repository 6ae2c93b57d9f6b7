"""Who runs what when supervisord runs as root: the service user of the API, session-cleanup and
session-webhooks, and a pool of unprivileged users, one per live session. Without root everything runs as
the one user there is."""
import os
import pwd

NOLOGIN = "/usr/sbin/nologin"


def is_root():
    return os.geteuid() == 0


def _useradd(name, uid=None):
    import subprocess  # not at the top: the worker launcher imports this module and must start fast
    argv = ["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent", "--shell", NOLOGIN,
            "--user-group"]
    if uid is not None:
        argv += ["--uid", str(uid)]
    done = subprocess.run(argv + [name], capture_output=True, text=True)
    if done.returncode != 0 and "already exists" not in done.stderr:
        raise OSError("useradd %s failed: %s" % (name, done.stderr.strip() or done.returncode))


def ensure_user(name):
    """(uid, gid) of the system user `name`, created (no home, no login) when missing."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        _useradd(name)
        entry = pwd.getpwnam(name)
    return entry.pw_uid, entry.pw_gid


def ensure_worker_pool(base, count):
    """[(uid, gid)] of `count` worker users from uid `base` on (sess-<uid>, each with its own group),
    created when missing. A uid already taken by someone else's user is skipped."""
    pool, uid = [], base
    while len(pool) < count:
        name = "sess-%d" % uid
        try:
            entry = pwd.getpwuid(uid)
        except KeyError:
            _useradd(name, uid)
            entry = pwd.getpwuid(uid)
        if entry.pw_name == name:
            pool.append((entry.pw_uid, entry.pw_gid))
        uid += 1
    return pool


def blocked_path(uid, gid, paths):
    """The first directory on the way to one of `paths` that uid:gid may not pass through, or None."""
    for path in paths:
        directory = "/"
        for part in os.path.realpath(path).split("/")[1:]:
            directory = os.path.join(directory, part)
            try:
                st = os.stat(directory)
            except OSError:
                break
            if not os.path.isdir(directory):
                break
            mode = st.st_mode
            allowed = mode & 0o001 or (st.st_uid == uid and mode & 0o100) or (st.st_gid == gid and mode & 0o010)
            if not allowed:
                return directory
    return None


def service_user(name, code_paths):
    """((uid, gid), None) of the service user when our code can run as it, else (None, why not)."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        return None, "the service user %r does not exist (supervisor-sessions serve creates it as root)" % name
    blocked = blocked_path(entry.pw_uid, entry.pw_gid, code_paths)
    if blocked:
        return None, ("the service user %r cannot reach our Python through %s (mode %o): the API, "
                      "session-cleanup and session-webhooks run as root; let others pass (chmod o+x %s) or "
                      "install elsewhere" % (name, blocked, os.stat(blocked).st_mode & 0o777, blocked))
    return (entry.pw_uid, entry.pw_gid), None


def drop_privileges(uid, gid):
    """Become uid:gid for good, with no supplementary groups (from root)."""
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
