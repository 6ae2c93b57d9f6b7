"""A session's files over HTTP against a real system: upload and download, listings and tar.gz archives, and
every way out of the session directory refused (`..`, encoded or not, absolute paths, links, FIFOs, files
of another user, uploads through planted links). See test_sandbox.py for the same attacks by sandboxed
workers in both modes."""
import http.client
import io
import os
import tarfile

import pytest

from conftest import FINAL

ROOT = os.geteuid() == 0


def request(system, method, path, body=None, headers=None):
    """(status, headers {lower-case name: value}, raw body bytes) of one request with the API key."""
    return system.raw(method, path, body, headers)


def files_url(sid, path=""):
    return "/v1/sessions/%s/files/%s" % (sid, path)


@pytest.fixture(scope="module")
def made(system):
    """An ended session whose worker left files, a directory, links in and out, a FIFO and a deep file."""
    record = system.run("mkdir -p sub/deeper; printf 'one' > a.txt; printf 'two' > sub/b.txt; "
                        "printf 'three' > sub/deeper/c.bin; ln -s /etc/passwd passwd-link; ln -s sub sub-link; "
                        "ln -s a.txt a-link; mkfifo fifo")
    assert record["status"] == "completed", system.log(record["sessionId"])
    return record


def test_an_upload_then_a_download_gives_the_same_bytes(system, made):
    data = os.urandom(3 * 1024 * 1024 + 17)   # several chunks through supervisord
    status, _, body = request(system, "PUT", files_url(made["sessionId"], "up/loaded.bin"), data)
    assert status == 201, body
    status, headers, got = request(system, "GET", files_url(made["sessionId"], "up/loaded.bin"))
    assert status == 200 and got == data
    assert headers["content-type"] == "application/octet-stream" and headers["x-content-type-options"] == "nosniff"
    with open(os.path.join(made["sessionDir"], "up", "loaded.bin"), "rb") as f:
        assert f.read() == data


def test_an_upload_replaces_a_file_and_an_empty_upload_makes_an_empty_file(system, made):
    sid = made["sessionId"]
    assert request(system, "PUT", files_url(sid, "again.txt"), b"first")[0] == 201
    assert request(system, "PUT", files_url(sid, "again.txt"), b"2nd")[2] == b'{"path": "again.txt", "size": 3}'
    assert request(system, "GET", files_url(sid, "again.txt"))[2] == b"2nd"
    assert request(system, "PUT", files_url(sid, "empty"), b"")[0] == 201
    assert request(system, "GET", files_url(sid, "empty"))[2] == b""


def test_a_directory_lists_its_entries_by_type_without_following_links(system, made):
    status, body, _ = system.http("GET", files_url(made["sessionId"], "sub"))
    assert status == 200
    assert [(e["name"], e["type"], e["size"]) for e in body["entries"]] == [("b.txt", "file", 3), ("deeper", "dir", 0)]
    top = {e["name"]: e["type"] for e in system.http("GET", "/v1/sessions/%s/files" % made["sessionId"])[1]["entries"]}
    assert top["passwd-link"] == top["sub-link"] == top["a-link"] == "link" and top["fifo"] == "other"
    assert body["truncated"] is False


def test_a_directory_as_tar_gz_holds_its_files_and_directories_but_no_link_or_fifo(system, made):
    status, headers, body = request(system, "GET", "/v1/sessions/%s/files?archive=tar.gz" % made["sessionId"])
    assert status == 200 and headers["content-type"] == "application/gzip"
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert tar.extractfile("sub/deeper/c.bin").read() == b"three"
        assert tar.extractfile("a.txt").read() == b"one"
    assert members["sub"].isdir() and members["sub/deeper"].isdir()
    assert not {"passwd-link", "sub-link", "a-link", "fifo"} & set(members)
    assert all(m.isfile() or m.isdir() for m in members.values())
    status, _, body = request(system, "GET", "/v1/sessions/%s/files/sub?archive=tar.gz" % made["sessionId"])
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as tar:
        assert sorted(tar.getnames()) == ["b.txt", "deeper", "deeper/c.bin"]


@pytest.mark.parametrize("path, code, words", [
    ("../../state", 400, "goes up with '..'"),
    ("%2e%2e/%2e%2e/etc/passwd", 400, "goes up with '..'"),
    ("sub/..%2f..%2f..%2fetc", 400, "goes up with '..'"),
    ("/etc/passwd", 400, "is absolute"),
    ("passwd-link", 400, "is a symbolic link"),
    ("sub-link/b.txt", 400, "sub-link is a symbolic link"),
    ("fifo", 400, "is not a regular file or a directory"),
    ("nothing-here", 404, "no such file or directory"),
    ("a.txt/below", 404, "no such file or directory"),
])
def test_a_path_out_of_the_session_directory_or_to_what_is_not_a_file_is_refused(system, made, path, code, words):
    status, body, _ = system.http("GET", files_url(made["sessionId"], path))
    assert status == code and words in body["message"], body
    assert body["error"] == {400: "invalid_request", 404: "not_found"}[code]


@pytest.mark.parametrize("path", ["passwd-link", "sub-link/new.txt", "../escape.txt", "/tmp/escape.txt", "sub"])
def test_an_upload_never_goes_through_a_link_or_out_of_the_directory(system, made, path):
    status, body, _ = system.http("PUT", files_url(made["sessionId"], path), raw=b"payload")
    if path == "passwd-link":   # the link itself is replaced, /etc/passwd untouched
        assert status == 201 and not os.path.islink(os.path.join(made["sessionDir"], "passwd-link"))
    else:
        assert status == 400, body
    with open("/etc/passwd", "rb") as f:
        assert b"payload" not in f.read()
    assert not os.path.exists(os.path.join(made["sessionDir"], "sub", "new.txt"))
    assert not os.path.exists("/tmp/escape.txt")


@pytest.mark.skipif(not ROOT, reason="a file of another user in the session directory needs root to make")
def test_a_file_the_worker_does_not_own_is_not_served(system, made):
    other = os.path.join(made["sessionDir"], "not-theirs")
    with open(other, "w") as f:
        f.write("someone else's")
    os.chown(other, 12345, 12345)
    status, body, _ = system.http("GET", files_url(made["sessionId"], "not-theirs"))
    assert status == 400 and "is not the session worker's" in body["message"]


def test_an_upload_stays_under_the_limit_whether_its_length_is_declared_or_chunked(make_system):
    system = make_system(env={"FILES_UPLOAD_MAX_MB": "1"}).start()
    sid = system.run("true")["sessionId"]
    status, _, body = request(system, "PUT", files_url(sid, "big"), b"x" * (1024 * 1024 + 1))
    assert status == 413 and b"at most 1048576 bytes" in body, body
    assert request(system, "PUT", files_url(sid, "fits"), b"x" * (1024 * 1024))[0] == 201
    chunked = http.client.HTTPConnection("127.0.0.1", system.port, timeout=30)   # a body of unknown length
    chunked.putrequest("PUT", files_url(sid, "chunked"))
    chunked.putheader("Authorization", "Bearer " + system.key)
    chunked.putheader("Transfer-Encoding", "chunked")
    chunked.endheaders(b"5\r\nhello\r\n0\r\n\r\n")
    assert chunked.getresponse().status == 201
    chunked.close()
    assert request(system, "GET", files_url(sid, "chunked"))[2] == b"hello"


def test_a_running_worker_can_use_a_file_uploaded_to_it(system):
    record = system.spawn("while [ ! -f go ]; do sleep 0.05; done; cat go; echo more >> go; cat go")
    sid = record["sessionId"]
    system.wait_status(sid, {"running"})
    assert request(system, "PUT", files_url(sid, "go"), b"uploaded\n")[0] == 201
    ended = system.wait_status(sid, FINAL)
    assert ended["status"] == "completed" and "uploaded\nuploaded\nmore\n" in system.log(sid), system.log(sid)


def test_files_of_an_unknown_session_are_a_404(system):
    status, body, _ = system.http("GET", files_url("00000000-0000-4000-8000-000000000000", "x"))
    assert status == 404 and body["error"] == "not_found"
    assert system.http("GET", files_url("not-a-session", "x"))[0] == 404


def test_the_rpc_reads_files_in_bounded_chunks(system, made):
    rpc = system.rpc()
    found = rpc.sessions.getSessionFile(made["sessionId"], "sub/deeper/c.bin", 1, 3)
    assert (found["type"], found["size"], found["data"].data) == ("file", 5, b"hre")
