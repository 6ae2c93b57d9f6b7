"""Routes of a session's files: GET a file, a directory listing or a directory as tar.gz, PUT a file; and
of what a session with a workspace changed: GET its diff (a patch, or per-file numbers).

The API cannot read session directories (their workers own them), so every byte passes through
supervisord in bounded calls (sessions.getSessionFile, sessions.putSessionFile; see sessionfiles.py for
how a path is resolved). Files are sent as application/octet-stream with nosniff: what a worker wrote is
never served as a page.
"""
import base64
import os
import re
import tarfile
import xmlrpc.client
import zlib

import bottle

from .apihttp import ApiError, json_answer, query_bool, session_id_param
from .faults import Faults
from .sessionfiles import CHUNK_MAX

ARCHIVE_MAX_ENTRIES = 100_000
_UPLOAD_PATH = re.compile(r"\A/v1/sessions/[^/]+/files/.")
_NOT_SERVED = (Faults.INVALID_SPEC, Faults.NO_SUCH_PATH)  # an entry an archive skips
_FILE_HEADERS = {"Content-Type": "application/octet-stream", "X-Content-Type-Options": "nosniff",
                 "Content-Security-Policy": "sandbox"}


def is_upload(method, path):
    """True for a request whose body is a file upload (the server lets it be larger than other bodies)."""
    return method == "PUT" and bool(_UPLOAD_PATH.match(path or ""))


def add_routes(app, rpc, upload_max_bytes):
    """Put the files routes on `app`; `rpc()` gives this thread's supervisord proxy."""

    @app.get("/v1/sessions/<sid>/files")
    @app.get("/v1/sessions/<sid>/files/<path:path>")
    def get_files(sid, path=""):
        sid = session_id_param(sid)
        archive = bottle.request.query.get("archive")
        if archive not in (None, "tar.gz"):
            raise ApiError(400, "archive must be tar.gz, got %r" % archive[:40])
        found = rpc().sessions.getSessionFile(sid, path, 0, CHUNK_MAX)
        if found["type"] == "dir":
            if archive:
                name = (path.rstrip("/").rsplit("/", 1)[-1] or sid) + ".tar.gz"
                return bottle.HTTPResponse(_tar_gz(rpc, sid, path), status=200, headers=dict(
                    _FILE_HEADERS, **{"Content-Type": "application/gzip",
                                      "Content-Disposition": 'attachment; filename="%s"' % name}))
            entries = [dict(entry, size=int(entry["size"]), mtime=int(entry["mtime"])) for entry in found["entries"]]
            return json_answer(200, {"path": path, "entries": entries, "truncated": found["truncated"]})
        if archive:
            raise ApiError(400, "%s is a file; archive=tar.gz is for directories" % path)
        return bottle.HTTPResponse(_file_chunks(rpc, sid, path, found), status=200, headers=_FILE_HEADERS)

    @app.get("/v1/sessions/<sid>/diff")
    def get_diff(sid):
        sid = session_id_param(sid)
        stat = query_bool("stat")
        first = rpc().sessions.getSessionDiff(sid, 0, CHUNK_MAX)
        if stat:
            return json_answer(200, {"changes": first["changes"], "files": first["files"],
                                     "patchTruncated": first["truncated"]})
        chunks = _chunks(first, lambda offset: rpc().sessions.getSessionDiff(sid, offset, CHUNK_MAX))
        return bottle.HTTPResponse(chunks, status=200, headers=dict(_FILE_HEADERS, **{"Content-Type": "text/x-diff"}))

    @app.put("/v1/sessions/<sid>/files/<path:path>")
    def put_file(sid, path):
        sid = session_id_param(sid)
        length = bottle.request.environ.get("CONTENT_LENGTH") or ""
        if not length.isdigit():
            raise ApiError(411, "an upload needs a Content-Length")
        length = int(length)
        if length > upload_max_bytes:
            raise ApiError(413, "an upload may be at most %d bytes (FILES_UPLOAD_MAX_MB)" % upload_max_bytes)
        upload = os.urandom(8).hex()
        body = bottle.request.environ["wsgi.input"]
        written = offset = 0
        while True:
            chunk = body.read(min(CHUNK_MAX, length - offset))
            offset += len(chunk)
            final = offset >= length or not chunk
            written = rpc().sessions.putSessionFile(sid, path, upload, offset - len(chunk),
                                                    base64.b64encode(chunk).decode("ascii"), final)
            if final:
                break
        if written != length:
            raise ApiError(400, "the body ended after %d of its %d bytes" % (written, length))
        return json_answer(201, {"path": path, "size": int(written)})


def _chunks(first, read_from):
    """The bytes of a file or patch from its `first` part on, up to the size it had then: each further part
    is `read_from(offset)` (a getSessionFile or getSessionDiff answer)."""
    data = first["data"].data
    yield data
    offset, size = len(data), int(first["size"])
    while offset < size:
        part = read_from(offset)
        data = part.get("data") and part["data"].data
        if part.get("type", "file") != "file" or not data:
            return
        yield data
        offset += len(data)


def _file_chunks(rpc, sid, path, first):
    """The bytes of a file of the session directory, from its first chunk on."""
    return _chunks(first, lambda offset: rpc().sessions.getSessionFile(sid, path, offset, CHUNK_MAX))


def _tar_gz(rpc, sid, path):
    """A directory's files and directories as a gzipped tar, streamed a chunk at a time: links, special files
    and what the worker does not own are left out, as are entries past ARCHIVE_MAX_ENTRIES."""
    gz = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)   # the gzip format
    count, pending = 0, [""]
    while pending and count < ARCHIVE_MAX_ENTRIES:
        relative = pending.pop()
        for entry in rpc().sessions.getSessionFile(sid, _join(path, relative), 0, 0)["entries"]:
            if count >= ARCHIVE_MAX_ENTRIES:
                break
            member = _join(relative, entry["name"])
            if entry["type"] == "dir":
                pending.append(member)
                yield gz.compress(_header(member, tarfile.DIRTYPE, 0o755, 0, int(entry["mtime"])))
            elif entry["type"] == "file":
                for data in _file_member(rpc, sid, _join(path, member), member):
                    yield gz.compress(data)
            else:
                continue
            count += 1
    yield gz.compress(b"\0" * 2 * tarfile.BLOCKSIZE) + gz.flush()


def _header(member, kind, mode, size, mtime_ms):
    info = tarfile.TarInfo(member)
    info.type, info.mode, info.size, info.mtime = kind, mode, size, mtime_ms // 1000
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


def _file_member(rpc, sid, path, member):
    """One file's tar member: its header, then its bytes in chunks up to the size it had when opened (zeros
    where it shrank since), then the padding to a whole block. Nothing when it is no longer served."""
    try:
        first = rpc().sessions.getSessionFile(sid, path, 0, CHUNK_MAX)
    except xmlrpc.client.Fault as e:
        if e.faultCode in _NOT_SERVED:   # replaced by a link, or gone, since the listing
            return
        raise
    if first["type"] != "file":
        return
    size = int(first["size"])
    yield _header(member, tarfile.REGTYPE, 0o644, size, int(first["mtime"]))
    sent = 0
    for data in _file_chunks(rpc, sid, path, first):
        data = data[:size - sent]
        sent += len(data)
        yield data
    yield b"\0" * (size - sent + (-size) % tarfile.BLOCKSIZE)


def _join(directory, name):
    return "%s/%s" % (directory.rstrip("/"), name) if directory else name
