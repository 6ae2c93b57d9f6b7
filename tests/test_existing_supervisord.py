"""README's "Into an existing supervisord", done literally: a supervisord of one's own (not started by
`serve`), its config written as README says, the package's conf.d included; then the API answers with the
key, `supervisor-sessions ctl` reaches it, and a session runs to its end."""
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import urllib.request

import pytest

from conftest import HERE, free_port, wait_for

ROOT = os.path.dirname(HERE)


def readme_section():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        text = f.read()
    return text.split("## Into an existing supervisord", 1)[1].split("\n## ", 1)[0]


def readme_ini():
    """The ini block of the section, as README shows it."""
    return re.search(r"```ini\n(.*?)```", readme_section(), re.S).group(1)


@pytest.fixture
def own_supervisord():
    """A supervisord of one's own: its own config (unix socket, rpcinterface, supervisorctl) plus README's
    lines, with /path/to and /srv/sessions put where this checkout and the test's home are."""
    home = tempfile.mkdtemp(prefix="own", dir="/tmp")
    os.chmod(home, 0o755)
    for directory in ("conf/sessions", "logs/sessions"):   # as README says to create them
        os.makedirs(os.path.join(home, directory))
    port = free_port()
    conf = os.path.join(home, "supervisord.conf")
    socket_path = os.path.join(home, "supervisor.sock")
    with open(conf, "w") as f:
        f.write("[unix_http_server]\nfile=%s\nchmod=0700\n\n"
                "[supervisord]\nlogfile=%s/supervisord.log\npidfile=%s/supervisord.pid\nnodaemon=true\n\n"
                "[rpcinterface:supervisor]\n"
                "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n\n"
                "[supervisorctl]\nserverurl=unix://%s\n\n" % (socket_path, home, home, socket_path))
        f.write(readme_ini().replace("/path/to/supervisor-sessions", ROOT).replace("/srv/sessions", home))
    env = dict(os.environ, SESSIONS_HOME=home, SUPERVISORD_CONFIG=conf, MANAGEMENT_API_PORT=str(port),
               MANAGEMENT_API_KEY="own-key-" + os.urandom(6).hex(),
               PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", os.defpath))
    proc = subprocess.Popen([sys.executable, "-m", "supervisor.supervisord", "-c", conf], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)
    yield {"home": home, "conf": conf, "port": port, "env": env, "key": env["MANAGEMENT_API_KEY"]}
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(30)


def http(setup, method, path, body=None):
    request = urllib.request.Request("http://127.0.0.1:%d%s" % (setup["port"], path), method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Authorization": "Bearer " + setup["key"],
                                              "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")
    except OSError:
        return None, None


def test_readme_s_existing_supervisord_section_works_as_written(own_supervisord):
    setup = own_supervisord
    assert "SUPERVISORD_CONFIG" in readme_section()
    wait_for(lambda: http(setup, "GET", "/v1/status")[0] == 200, timeout=30, message="the API of one's own")
    status, accepted = http(setup, "POST", "/v1/sessions", {"agent": "coder", "provider": "gemini",
                                                             "runtime": "shell", "task": "echo from-own"})
    assert status == 202, accepted

    def ended():
        record = http(setup, "GET", "/v1/sessions/" + accepted["sessionId"])[1]
        return record if record and record["status"] in ("completed", "failed") else None
    record = wait_for(ended, timeout=30, message="the session to end")
    assert record["status"] == "completed" and "from-own" in record["logTail"]
    listed = subprocess.run([sys.executable, "-m", "supervisor_sessions.cli", "ctl", "sessions", "list"],
                            env=setup["env"], capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0 and accepted["sessionId"] in listed.stdout, listed.stdout + listed.stderr
    assert http(dict(setup, key="wrong"), "GET", "/v1/status")[0] == 401
