"""A full disk under SESSIONS_HOME: creation is refused clearly and nothing that exists is damaged."""
import os
import subprocess
import tempfile

import pytest

from conftest import FINAL

SHELL = {"agent": "coder", "provider": "gemini", "runtime": "shell"}


@pytest.fixture
def small_home():
    home = tempfile.mkdtemp(prefix="ssfull", dir="/tmp")
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", home], capture_output=True).returncode:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    yield home
    subprocess.run(["umount", "-l", home], capture_output=True)
    os.rmdir(home)


def fill(path):
    """Write zeros into `path` until the file system is full."""
    with open(path, "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass


def test_a_full_disk_refuses_new_sessions_and_keeps_the_old_ones(make_system, small_home):
    system = make_system(home=small_home).start()
    kept = system.run("echo kept")
    filler = os.path.join(small_home, "filler")
    fill(filler)
    status, body, _ = system.http("POST", "/v1/sessions", dict(SHELL, task="echo new"))
    assert status in (503, 507) and body["error"] and body["message"]
    assert "No space left" in body["message"] or status == 503
    status, again, _ = system.http("GET", "/v1/sessions/" + kept["sessionId"])
    assert status == 200 and again["status"] == "completed" and again["logTail"] == "kept"
    assert system.meta(kept["sessionId"])["status"] == "completed"
    assert [s["sessionId"] for s in system.http("GET", "/v1/sessions")[1]["sessions"]] == [kept["sessionId"]]
    os.unlink(filler)
    assert system.run("echo after")["status"] in FINAL
