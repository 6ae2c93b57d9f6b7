"""README's first screen, followed literally on a fresh clone of this checkout: `make run`, the key file it
names, the dashboard it points the browser to, and each command of the quick tour. Marker `firstscreen`:
it installs a fresh virtualenv (minutes), so it runs in a stage of its own."""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.request

import pytest

from conftest import free_port, wait_for

pytestmark = pytest.mark.firstscreen
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def quick_tour():
    """The lines of the Quick tour's shell block, as README shows them."""
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        section = f.read().split("## Quick tour", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S).group(1)
    return [line for line in block.splitlines() if line.strip() and not line.lstrip().startswith("#")]


@pytest.fixture
def fresh_clone():
    if shutil.which("git") is None or shutil.which("make") is None:
        pytest.skip("git and make are needed to follow README on a fresh clone")
    top = tempfile.mkdtemp(prefix="first", dir="/tmp")
    os.chmod(top, 0o755)
    subprocess.run(["git", "clone", "-q", ROOT, os.path.join(top, "p")], check=True)
    home = os.path.join(top, "home")   # the user's HOME: serve's default SESSIONS_HOME lies under it
    os.makedirs(home)
    env = dict(os.environ, HOME=home, MANAGEMENT_API_PORT=str(free_port()), PYTHON=sys.executable)
    for name in ("SESSIONS_HOME", "MANAGEMENT_API_KEY", "XDG_DATA_HOME", "VIRTUAL_ENV"):
        env.pop(name, None)
    yield os.path.join(top, "p"), env
    shutil.rmtree(top, ignore_errors=True)


def test_readme_s_first_screen_works_on_a_fresh_clone(fresh_clone):
    checkout, env = fresh_clone
    lines = quick_tour()
    assert lines[0].startswith("make run &")
    install = subprocess.run(["make", "install"], cwd=checkout, env=env, capture_output=True, text=True, timeout=900)
    assert install.returncode == 0, install.stderr[-2000:]
    server = subprocess.Popen(["make", "run"], cwd=checkout, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        key_line = lines[1]
        key_file = os.path.expanduser(key_line.split()[1]).replace(os.path.expanduser("~"), env["HOME"], 1)
        wait_for(lambda: os.path.exists(key_file), timeout=60, message="the key file README names")
        url = "http://127.0.0.1:%s/" % env["MANAGEMENT_API_PORT"]
        wait_for(lambda: _get(url) is not None, timeout=60, message="the dashboard README points to")
        assert b"<title>supervisor-sessions</title>" in _get(url)
        sid = None
        for line in lines[2:]:
            command = line.split("  #")[0].strip()
            if sid:
                command = command.replace("<id>", sid)
            following = " events -f" in command   # the feed's follower runs until stopped
            try:
                done = subprocess.run(command, shell=True, cwd=checkout, env=env, capture_output=True, text=True,
                                      timeout=5 if following else 60)
            except subprocess.TimeoutExpired:
                assert following, command
                continue
            assert done.returncode == 0, (command, done.stdout, done.stderr)
            if " spawn " in command:
                sid = done.stdout.split()[0]
            if " tail -f " in command:
                assert "hello from %s" % sid in done.stdout
        assert sid is not None
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(60)


def _get(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.read()
    except OSError:
        return None
