"""What can be checked of the image without a Docker engine: its steps, its install, its compose file."""
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def read(name):
    with open(os.path.join(ROOT, name)) as f:
        return f.read()


def instructions():
    """(instruction, argument) pairs of the Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", read("Dockerfile"))
    return [tuple(" ".join(line.split()).split(None, 1)) for line in text.splitlines()
            if line.strip() and not line.startswith("#")]


def test_the_image_runs_serve_as_root_exposes_only_9090_and_checks_health():
    steps = instructions()
    kinds = [kind for kind, _ in steps]
    assert steps[0][0] == "FROM" and re.match(r"(python:3[.\d]*-slim|debian:)", steps[0][1])
    assert "USER" not in kinds  # root: sessions run as their own users, the API as the service user
    assert [arg for kind, arg in steps if kind == "EXPOSE"] == ["9090"]
    assert "/health" in dict(steps)["HEALTHCHECK"]
    assert dict(steps)["CMD"] == '["supervisor-sessions", "serve"]'
    run = " ".join(arg for kind, arg in steps if kind == "RUN")
    assert "npm install -g --ignore-scripts agentic-flow@2" in run and "nodejs" in run


def test_the_images_install_step_gives_a_working_system_in_a_fresh_venv(make_system):
    pip_steps = [arg for kind, arg in instructions() if kind == "RUN" and "pip install" in arg]
    assert len(pip_steps) == 1 and "/app" in pip_steps[0]
    venv = tempfile.mkdtemp(prefix="ssimg")
    subprocess.run([sys.executable, "-m", "venv", venv], check=True, timeout=120)
    path = os.path.join(venv, "bin") + os.pathsep + os.environ["PATH"]
    step = subprocess.run(["bash", "-c", pip_steps[0].replace("/app", ROOT)], env=dict(os.environ, PATH=path),
                          capture_output=True, text=True, timeout=600)
    assert step.returncode == 0, step.stderr[-2000:]
    system = make_system(env={"PATH": path})
    system.start_with = [os.path.join(venv, "bin", "supervisor-sessions"), "serve"]
    system.start()
    assert system.run("echo from-the-image")["status"] == "completed"
    with open(os.path.join(system.home, "run", "supervisord.conf")) as f:
        assert os.path.join(venv, "share", "supervisor-sessions", "conf.d") in f.read()
    shutil.rmtree(venv)


def test_the_compose_file_names_only_variables_the_code_reads():
    compose = read("docker-compose.yml")
    names = set(re.findall(r"^\s+- ([A-Z_][A-Z0-9_]*)=", compose, re.M))
    assert {"MANAGEMENT_API_KEY", "SESSIONS_HOME"} <= names
    source = "".join(read(path) for path in glob.glob(os.path.join(ROOT, "supervisor_sessions", "*.py")))
    unread = sorted(n for n in names if '"%s"' % n not in source)
    assert unread == []
    assert re.findall(r"^\s+- \"(\d+):\d+\"", compose, re.M) == ["9090"]
    assert "seccomp=unconfined" in compose and "cgroup: private" in compose  # bubblewrap and cgroups work
