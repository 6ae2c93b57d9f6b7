"""A session's files as the API serves them: one path inside the session directory, resolved from the
directory down without following a link, then read in chunks, listed, or written by an upload.

It runs on supervisord's thread with supervisord's privileges, so every call is bounded (one chunk of at
most CHUNK_MAX bytes, one listing of at most LIST_MAX entries) and serves only what the session's worker
owns: a link, a FIFO, a device or a file of another user (a hard link to what the worker could not read)
is refused, never opened. Stdlib only.
"""
import errno
import os
import stat

from .faults import InvalidSpec, NoSuchPath
from .workerfiles import open_dir, write_all

PATH_MAX_CHARS = 4096
NAME_MAX_BYTES = 255
CHUNK_MAX = 1 << 20
LIST_MAX = 10_000
_UPLOAD_SUFFIX = ".upload"


def path_parts(path):
    """The components of `path`, relative to the session directory ("" is the directory itself); InvalidSpec
    for an absolute path, `..`, a NUL, or one too long."""
    if not isinstance(path, str) or len(path) > PATH_MAX_CHARS or "\0" in path:
        raise InvalidSpec("a path is a string of at most %d characters without NUL" % PATH_MAX_CHARS)
    if path.startswith("/"):
        raise InvalidSpec("%r is absolute: paths are relative to the session directory" % path[:200])
    parts = [part for part in path.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise InvalidSpec("%r goes up with '..': paths stay inside the session directory" % path[:200])
    if any(len(part.encode("utf-8", "surrogateescape")) > NAME_MAX_BYTES for part in parts):
        raise InvalidSpec("a name in %r is longer than %d bytes" % (path[:200], NAME_MAX_BYTES))
    return parts


def _shown(parts):
    return "/".join(parts) or "."


def _parent(session_dir, parts, owner=None, create=False):
    """A descriptor of the directory holding the last of `parts` (of the directory itself when none)."""
    try:
        return open_dir(session_dir, "/".join(parts[:-1]), create=create, owner=owner)
    except OSError as e:
        raise _path_error(e, session_dir, parts[:-1]) from None


def _path_error(error, session_dir, parts):
    """The error to answer for `error` on the way to `parts`, naming the first component that is a link or
    missing (found again for the message alone: what was refused was refused without following it)."""
    walked = []
    for part in parts:
        walked.append(part)
        try:
            if stat.S_ISLNK(os.lstat(os.path.join(session_dir, *walked)).st_mode):
                return InvalidSpec("%s is a symbolic link: links are not followed" % _shown(walked))
        except OSError:
            break
    if error.errno == errno.ELOOP:
        return InvalidSpec("%s is a symbolic link: links are not followed" % _shown(parts))
    if error.errno in (errno.ENOENT, errno.ENOTDIR):
        return NoSuchPath("%s: no such file or directory in the session directory" % _shown(parts))
    if error.errno == errno.EACCES:
        return InvalidSpec("%s cannot be read: its worker made it unreadable" % _shown(parts))
    return InvalidSpec("%s: %s" % (_shown(parts), os.strerror(error.errno or 0)))


def _kind(mode):
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "dir"
    return "link" if stat.S_ISLNK(mode) else "other"


def _checked(st, parts, owners):
    """The kind of what stands at `parts` (`st`), when it is a file or directory the worker owns (or the
    session directory itself, which we own once its worker has ended); else InvalidSpec."""
    kind = _kind(st.st_mode)
    if not parts:
        return kind
    if kind == "link":
        raise InvalidSpec("%s is a symbolic link: links are not followed" % _shown(parts))
    if kind == "other":
        raise InvalidSpec("%s is not a regular file or a directory" % _shown(parts))
    if st.st_uid not in owners:
        raise InvalidSpec("%s is not the session worker's (another user owns it)" % _shown(parts))
    return kind


def read(session_dir, path, owners, offset=0, length=CHUNK_MAX):
    """What stands at `path`: {type: "dir", entries: [{name, type, size, mtime}] sorted by name (at most
    LIST_MAX), truncated} or {type: "file", size, mtime, offset, data: at most `length` (<= CHUNK_MAX) bytes
    from `offset`}. `owners` are the uids whose files are served."""
    parts = path_parts(path)
    parent = _parent(session_dir, parts)
    try:
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        try:
            fd = os.open(parts[-1], flags, dir_fd=parent) if parts else os.dup(parent)
        except OSError as e:
            raise _path_error(e, session_dir, parts) from None
    finally:
        os.close(parent)
    try:
        st = os.fstat(fd)
        if _checked(st, parts, owners) == "dir":
            return _listing(fd)
        os.lseek(fd, max(0, offset), os.SEEK_SET)
        data = os.read(fd, max(0, min(length, CHUNK_MAX)))
        return {"type": "file", "size": st.st_size, "mtime": int(st.st_mtime * 1000), "offset": offset,
                "data": data}
    finally:
        os.close(fd)


def _listing(dir_fd):
    with os.scandir(dir_fd) as entries:
        names = sorted(entry.name for entry in entries)
    shown = []
    for name in names[:LIST_MAX]:
        try:
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except OSError:   # gone since the listing
            continue
        shown.append({"name": name, "type": _kind(st.st_mode), "size": st.st_size if stat.S_ISREG(st.st_mode) else 0,
                      "mtime": int(st.st_mtime * 1000)})
    return {"type": "dir", "entries": shown, "truncated": len(names) > LIST_MAX}


def write(session_dir, path, owner, upload_id, offset, data, final):
    """One chunk of an upload to `path`: written at `offset` into the upload's temp file beside it (offset 0
    starts it afresh), which the final chunk renames over `path`. Directories on the way are made; what is
    made belongs to `owner` ((uid, gid) or None). Returns the bytes written so far."""
    parts = path_parts(path)
    if not parts:
        raise InvalidSpec("a file is uploaded to a path inside the session directory, not to the directory itself")
    parent = _parent(session_dir, parts, owner, create=True)
    try:
        temp = ".%s.%s%s" % (parts[-1][:200], upload_id, _UPLOAD_SUFFIX)
        flags = os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC | (os.O_CREAT | os.O_TRUNC if offset == 0 else 0)
        try:
            fd = os.open(temp, flags, 0o644, dir_fd=parent)
        except OSError as e:
            raise InvalidSpec("upload %s to %s cannot go on: %s" % (upload_id, _shown(parts), os.strerror(e.errno))) \
                from None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise InvalidSpec("upload %s to %s cannot go on" % (upload_id, _shown(parts)))
            os.lseek(fd, offset, os.SEEK_SET)
            write_all(fd, data)
            if owner:
                os.fchown(fd, owner[0], owner[1])
            written = os.fstat(fd).st_size
        finally:
            os.close(fd)
        if final:
            _replace(parent, temp, parts)
        return written
    finally:
        os.close(parent)


def _replace(parent, temp, parts):
    try:
        st = os.stat(parts[-1], dir_fd=parent, follow_symlinks=False)
    except FileNotFoundError:
        st = None
    if st is not None and stat.S_ISDIR(st.st_mode):
        os.unlink(temp, dir_fd=parent)
        raise InvalidSpec("%s is a directory" % _shown(parts))
    os.replace(temp, parts[-1], src_dir_fd=parent, dst_dir_fd=parent)   # a link standing there is replaced
