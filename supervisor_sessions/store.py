"""Session files on disk: the session directory, its meta record, task and launch spec, and its log."""
import errno
import json
import os
import shutil

from .faults import StorageFull
from .naming import is_session_id

META_FILE = ".session-meta.json"
TASK_FILE = ".session-task"
LAUNCH_FILE = ".session-launch.json"
PROGRAM_FILE = ".session-program.conf"
TRASH_PREFIX = ".removing-"  # the rendered config, once the session has ended
_DISK_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG)


def atomic_write(path, data, mode=0o644):
    """Write bytes to `path` through a dot-named temp file and os.replace; readers never see half a file."""
    tmp = os.path.join(os.path.dirname(path), ".%s.tmp" % os.path.basename(path))
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if e.errno in _DISK_ERRORS:
            raise StorageFull("cannot write %s: %s" % (path, os.strerror(e.errno))) from None
        raise


def _json(obj):
    return json.dumps(obj, ensure_ascii=False, sort_keys=True).encode("utf-8")


class SessionStore:
    """One directory per session under settings.sessions_dir; the meta file is the state of record."""

    def __init__(self, settings):
        self.settings = settings

    def session_dir(self, session_id):
        return self.settings.session_dir(session_id)

    def _path(self, session_id, name):
        return os.path.join(self.session_dir(session_id), name)

    def create(self, session_id, task, launch, record):
        """Make the session directory with its task, launch spec (0600) and meta; undo it all on failure."""
        directory = self.session_dir(session_id)
        try:
            os.mkdir(directory, 0o755)
        except OSError as e:
            if e.errno in _DISK_ERRORS:
                raise StorageFull("cannot create %s: %s" % (directory, os.strerror(e.errno))) from None
            raise
        try:
            atomic_write(self._path(session_id, TASK_FILE), task.encode("utf-8"), 0o600)
            atomic_write(self._path(session_id, LAUNCH_FILE), _json(launch), 0o600)
            self.save(record)
        except BaseException:
            shutil.rmtree(directory, ignore_errors=True)
            raise

    def task_file(self, session_id):
        return self._path(session_id, TASK_FILE)

    def launch_file(self, session_id):
        return self._path(session_id, LAUNCH_FILE)

    def program_file(self, session_id):
        return self._path(session_id, PROGRAM_FILE)

    def save(self, record):
        """Persist a session record atomically as its meta file."""
        atomic_write(self._path(record["sessionId"], META_FILE), _json(record))

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
            names = os.listdir(self.settings.sessions_dir)
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
        """Delete the session directory and its log.

        The directory is first renamed out of the store in one step, so a removal cut short (a crash, a
        kill) never leaves a half-deleted session that is still listed; purge_trash() finishes it later.
        """
        trash = os.path.join(self.settings.sessions_dir, TRASH_PREFIX + session_id)
        try:
            os.rename(self.session_dir(session_id), trash)
        except FileNotFoundError:
            pass
        log_file = self.settings.log_file(session_id)
        for path in (log_file, log_file + ".1"):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
        shutil.rmtree(trash, ignore_errors=True)

    def purge_trash(self):
        """Finish removals that were cut short."""
        try:
            names = os.listdir(self.settings.sessions_dir)
        except FileNotFoundError:
            return
        for name in names:
            if name.startswith(TRASH_PREFIX):
                shutil.rmtree(os.path.join(self.settings.sessions_dir, name), ignore_errors=True)
