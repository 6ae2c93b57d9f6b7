"""Files in a directory a worker owns, handled without trusting what the worker left there.

A worker can plant symbolic links, FIFOs, hard links to files it could not read, and deep trees in its
directory. Everything here works from directory descriptors opened with O_NOFOLLOW, so a link is never
followed, a FIFO is never waited on, and a file the worker does not own is never copied. Stdlib only: the
worker launcher imports it.
"""
import os
import stat

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
COPY_MAX_DEPTH = 128
_CHUNK = 1 << 20


def open_dir(base, relative="", create=False, owner=None):
    """A descriptor of the directory `relative` (components separated by "/") under `base`, each component
    opened without following links and, when missing and `create`, made 0700 (0755 with an `owner`, (uid,
    gid), who gets it). OSError (ELOOP, ENOTDIR) where one is a link or not a directory."""
    fd = os.open(base, _DIR_FLAGS)
    try:
        for part in [p for p in relative.split("/") if p not in ("", ".")]:
            if part == "..":
                raise OSError(1, "'..' is not allowed in %r" % relative)
            made = False
            if create:
                try:
                    os.mkdir(part, 0o755 if owner else 0o700, dir_fd=fd)
                    made = True
                except FileExistsError:
                    pass
            child = os.open(part, _DIR_FLAGS, dir_fd=fd)
            if made and owner:
                os.fchown(child, owner[0], owner[1])
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


def write_all(fd, data):
    """Write all of `data` (bytes) to descriptor `fd`, however many writes it takes."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def write_file(base, relative, data, mode=0o600):
    """Write `data` (bytes) to `relative` under `base`, its directories made as needed: a fresh temp file
    (O_EXCL, O_NOFOLLOW) renamed over whatever stands there, in parents that are not links. OSError else."""
    parent, name = os.path.split(relative)
    dir_fd = open_dir(base, parent, create=True)
    tmp = ".%s.%s.tmp" % (name, os.urandom(6).hex())
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=dir_fd)
        try:
            write_all(fd, data)
        finally:
            os.close(fd)
        os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        try:
            os.unlink(tmp, dir_fd=dir_fd)
        except OSError:
            pass
        raise
    finally:
        os.close(dir_fd)


class TooLarge(Exception):
    """What was to be copied holds more bytes than allowed."""


class _Copy:
    def __init__(self, owners, owner, max_bytes, skip):
        self.owners, self.owner, self.left, self.skip = frozenset(owners), owner, max_bytes, frozenset(skip)
        self.files = self.left_out = 0

    def tree(self, src_fd, dst_fd, depth):
        with os.scandir(src_fd) as entries:
            names = [entry.name for entry in entries]
        for name in names:
            if depth == 0 and name in self.skip:
                continue
            try:
                self._entry(src_fd, dst_fd, name, depth)
            except (PermissionError, FileNotFoundError):  # one it made unreadable to itself, or took away
                self.left_out += 1

    def _entry(self, src_fd, dst_fd, name, depth):
        st = os.stat(name, dir_fd=src_fd, follow_symlinks=False)
        if st.st_uid not in self.owners or depth >= COPY_MAX_DEPTH:
            self.left_out += 1
        elif stat.S_ISLNK(st.st_mode):
            self._link(src_fd, dst_fd, name)
        elif stat.S_ISDIR(st.st_mode):
            self._dir(src_fd, dst_fd, name, st, depth)
        elif stat.S_ISREG(st.st_mode):
            self._file(src_fd, dst_fd, name)
        else:  # a FIFO, a socket, a device
            self.left_out += 1

    def _link(self, src_fd, dst_fd, name):
        try:
            os.symlink(os.readlink(name, dir_fd=src_fd), name, dir_fd=dst_fd)
        except FileExistsError:  # the target's own file stays
            return
        self._own(name, dst_fd)

    def _dir(self, src_fd, dst_fd, name, st, depth):
        try:
            os.mkdir(name, 0o700, dir_fd=dst_fd)
        except FileExistsError:
            pass
        sub_src = os.open(name, _DIR_FLAGS, dir_fd=src_fd)
        try:
            sub_dst = os.open(name, _DIR_FLAGS, dir_fd=dst_fd)
            try:
                self.tree(sub_src, sub_dst, depth + 1)
                os.fchmod(sub_dst, stat.S_IMODE(st.st_mode) & 0o777 | 0o700)
                self._own_fd(sub_dst)
            finally:
                os.close(sub_dst)
        finally:
            os.close(sub_src)

    def _file(self, src_fd, dst_fd, name):
        src = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=src_fd)
        try:
            st = os.fstat(src)  # the file opened, not what stood there a moment before
            if not stat.S_ISREG(st.st_mode) or st.st_uid not in self.owners:
                self.left_out += 1
                return
            if st.st_size > self.left:
                raise TooLarge("more than the %d bytes allowed" % self.left)
            try:
                dst = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                              stat.S_IMODE(st.st_mode) & 0o777 | 0o600, dir_fd=dst_fd)
            except FileExistsError:  # the target's own file stays
                return
            try:
                copied = 0
                while copied < st.st_size:  # never past the size checked: a growing file is cut there
                    sent = os.sendfile(dst, src, None, min(_CHUNK, st.st_size - copied))
                    if not sent:
                        break
                    copied += sent
                self.left -= copied
                self._own_fd(dst)
            finally:
                os.close(dst)
            self.files += 1
        finally:
            os.close(src)

    def _own(self, name, dir_fd):
        if self.owner:
            os.chown(name, self.owner[0], self.owner[1], dir_fd=dir_fd, follow_symlinks=False)

    def _own_fd(self, fd):
        if self.owner:
            os.fchown(fd, self.owner[0], self.owner[1])


def copy_tree(source, target, owners, owner=None, max_bytes=1 << 62, skip=()):
    """Copy what is in directory `source` into the directory `target` (where a name is taken already, the
    target's stays): regular files, directories and
    symbolic links (as links, never followed) that a uid in `owners` owns. Anything else is left out: a FIFO,
    a socket, a device, a file of another user (a hard link to something the worker could not read), what
    lies deeper than COPY_MAX_DEPTH. Names in `skip` are not copied from `source`'s top. What is made belongs
    to `owner` ((uid, gid)) when given. Raises TooLarge past `max_bytes` of file content. Returns (files
    copied, entries left out)."""
    copy = _Copy(owners, owner, max_bytes, skip)
    src_fd = os.open(source, _DIR_FLAGS)
    try:
        dst_fd = os.open(target, _DIR_FLAGS)
        try:
            copy.tree(src_fd, dst_fd, 0)
        finally:
            os.close(dst_fd)
    finally:
        os.close(src_fd)
    return copy.files, copy.left_out
