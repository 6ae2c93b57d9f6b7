"""Session files on disk.

Two directories per session: its state directory under $SESSIONS_HOME/state (0700, the service's own:
the meta record, the launch spec, the rendered config once the session has ended) and its session
directory under workspace/ (the worker's working directory and HOME, which the worker owns). Nothing is
ever read back from the session directory: whatever a worker can write is not trusted.
"""
import errno
import json
import os
import shutil

from .faults import StorageFull
from .naming import is_session_id
from .workerfiles import write_all, write_file

META_FILE = "meta.json"
LAUNCH_FILE = "launch.json"
PROGRAM_FILE = "program.conf"     # the rendered config, once the session has ended
TASK_FILE = ".session-task"       # in the session directory: the launcher writes it for the worker
META_COPY = ".session-meta.json"  # in the session directory: a copy for people and tools, never read back
TRASH_PREFIX = ".removing-"
DISK_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG)


def atomic_write(path, data, mode=0o600):
    """Write bytes to `path` through a dot-named temp file and os.replace; readers never see half a file."""
    tmp = os.path.join(os.path.dirname(path), ".%s.tmp" % os.path.basename(path))
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        try:
            write_all(fd, data)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if e.errno in DISK_ERRORS:
            raise StorageFull("cannot write %s: %s" % (path, os.strerror(e.errno))) from None
        raise


def _json(obj):
    return json.dumps(obj, ensure_ascii=False, sort_keys=True).encode("utf-8")


class SessionStore:
    """A state directory and a session directory per session; the meta file is the state of record."""

    def __init__(self, settings):
        self.settings = settings
        self.states_dir = os.path.join(settings.state_dir, "sessions")

    def session_dir(self, session_id):
        return self.settings.session_dir(session_id)

    def _path(self, session_id, name):
        return os.path.join(self.settings.session_state_dir(session_id), name)

    def create(self, session_id, launch, record):
        """Make the state directory (launch spec and meta, 0600) and the empty session directory (0700);
        undo it all on failure."""
        made = []
        try:
            for directory in (self.settings.session_state_dir(session_id), self.session_dir(session_id)):
                os.mkdir(directory, 0o700)
                made.append(directory)
            atomic_write(self._path(session_id, LAUNCH_FILE), _json(launch))
            self.save(record)
        except BaseException as e:
            for directory in made:
                shutil.rmtree(directory, ignore_errors=True)
            if isinstance(e, OSError) and e.errno in DISK_ERRORS:
                raise StorageFull("cannot create session %s: %s" % (session_id, os.strerror(e.errno))) from None
            raise

    def task_file(self, session_id):
        """Where the worker finds its task (written by the launcher into the session directory)."""
        return os.path.join(self.session_dir(session_id), TASK_FILE)

    def launch_file(self, session_id):
        return self._path(session_id, LAUNCH_FILE)

    def program_file(self, session_id):
        return self._path(session_id, PROGRAM_FILE)

    def save(self, record):
        """Persist a session record atomically as its meta file (and a copy in the session directory)."""
        data = _json(record)
        atomic_write(self._path(record["sessionId"], META_FILE), data)
        try:  # for people and tools only: a worker may have taken the name or the directory away
            write_file(self.session_dir(record["sessionId"]), META_COPY, data)
        except OSError:
            pass

    def load(self, session_id):
        """The record in a session's meta file; raises OSError or ValueError when it cannot be read."""
        with open(self._path(session_id, META_FILE), "rb") as f:
            record = json.loads(f.read())
        if not isinstance(record, dict) or record.get("sessionId") != session_id:
            raise ValueError("meta file does not describe session %s" % session_id)
        return record

    def load_all(self, on_error):
        """Every readable record, keyed by id; on_error(session_id, exc) is told of the others."""
        records = {}
        try:
            names = os.listdir(self.states_dir)
        except FileNotFoundError:
            return records
        for name in names:
            if not is_session_id(name):
                continue
            try:
                records[name] = self.load(name)
            except (OSError, ValueError) as e:
                on_error(name, e)
        return records

    def remove(self, session_id):
        """Delete the session's state, its session directory and its log.

        The state directory is first renamed out of the store in one step, so a removal cut short (a crash,
        a kill) never leaves a half-deleted session that is still listed; purge_trash() finishes it later.
        """
        for parent, directory in ((self.states_dir, self.settings.session_state_dir(session_id)),
                                  (self.settings.sessions_dir, self.session_dir(session_id))):
            trash = os.path.join(parent, TRASH_PREFIX + session_id)
            try:
                os.rename(directory, trash)
            except FileNotFoundError:
                continue
            if parent == self.states_dir:
                log_file = self.settings.log_file(session_id)
                for path in (log_file, log_file + ".1"):
                    try:
                        os.unlink(path)
                    except FileNotFoundError:
                        pass
            shutil.rmtree(trash, ignore_errors=True)

    def purge_trash(self):
        """Finish removals that were cut short: trash, and session directories whose state is gone (their
        clones included). Returns the ids of those orphaned directories."""
        orphans = []
        for parent in (self.states_dir, self.settings.sessions_dir):
            try:
                names = os.listdir(parent)
            except FileNotFoundError:
                continue
            for name in names:
                orphan = parent != self.states_dir and is_session_id(name) \
                    and not os.path.isdir(self.settings.session_state_dir(name))
                if name.startswith(TRASH_PREFIX) or orphan:
                    shutil.rmtree(os.path.join(parent, name), ignore_errors=True)
                if orphan:
                    orphans.append(name)
        return orphans
