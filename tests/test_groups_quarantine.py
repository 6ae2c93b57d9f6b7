"""quarantine_broken_configs: confs supervisord could not read leave the include glob before it starts."""
import os
import sys

import pytest

from supervisor_sessions.groups import quarantine_broken_configs
from supervisor_sessions.render import Renderer

GOOD_ID = "0b5f2c1e-8d4a-4c3b-9e6f-2a1b3c4d5e6f"
PERCENT_ID = "11111111-1111-4111-8111-111111111111"
GARBAGE_ID = "22222222-2222-4222-a222-222222222222"
BINARY_ID = "33333333-3333-4333-b333-333333333333"
OTHER_ID = "44444444-4444-4444-9444-444444444444"


def rendered_conf(tmp_path, session_id):
    """A session conf as createSession writes it."""
    session_dir = str(tmp_path / "sessions" / session_id)
    (tmp_path / "logs").mkdir(exist_ok=True)
    return Renderer().render("agentic-flow", {
        "session_id": session_id, "group": "sess-" + session_id, "session_dir": session_dir,
        "task_file": session_dir + "/.session-task", "log_file": str(tmp_path / "logs" / (session_id + ".log")),
        "agent": "coder", "task": "do it", "provider": "gemini", "name": "", "port": 4000,
        "command": [sys.executable, "-I", "-m", "supervisor_sessions.launch", session_dir + "/.session-launch.json"],
        "log_max_bytes": 1024 * 1024, "stop_wait_secs": 10}).ini


BROKEN = {
    "sess-%s.conf" % PERCENT_ID: "[program:sess-%s]\ncommand=echo 100%% done\n" % PERCENT_ID,
    "sess-%s.conf" % GARBAGE_ID: "\x00garbage without a section = \n[[[",
    "sess-%s.conf" % BINARY_ID: b"[program:sess-" + BINARY_ID.encode() + b"]\ncommand=\xff\xfe\n",
    "sess-%s.conf" % OTHER_ID: "[program:sess-%s]\ncommand=true\n" % GOOD_ID,
    "notes.conf": "[program:notes]\ncommand=true\n",
    "sess-not-a-uuid.conf": "[program:sess-not-a-uuid]\ncommand=true\n",
}


def write(path, content):
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")


@pytest.fixture
def conf_dir(tmp_path):
    directory = tmp_path / "conf" / "sessions"
    directory.mkdir(parents=True)
    (directory / ("sess-%s.conf" % GOOD_ID)).write_text(rendered_conf(tmp_path, GOOD_ID))
    return directory


def test_broken_and_wrongly_named_confs_are_quarantined_and_the_good_one_stays(conf_dir, tmp_path):
    good = (conf_dir / ("sess-%s.conf" % GOOD_ID)).read_text()
    for name, content in BROKEN.items():
        write(conf_dir / name, content)
    (conf_dir / "README").write_text("not a conf: outside the include glob")
    quarantine = tmp_path / "conf" / "quarantine"
    logged = []
    moved = quarantine_broken_configs(str(conf_dir), str(quarantine), logged.append)
    assert sorted(os.listdir(quarantine)) == sorted(BROKEN)
    assert sorted(moved) == sorted(str(quarantine / name) for name in BROKEN)
    assert sorted(os.listdir(conf_dir)) == ["README", "sess-%s.conf" % GOOD_ID]
    assert (conf_dir / ("sess-%s.conf" % GOOD_ID)).read_text() == good
    for name, content in BROKEN.items():  # moved as they were
        assert (quarantine / name).read_bytes() == (content if isinstance(content, bytes) else content.encode())


def test_each_moved_conf_is_logged_once_with_its_path(conf_dir, tmp_path):
    for name, content in BROKEN.items():
        write(conf_dir / name, content)
    quarantine = tmp_path / "quarantine"
    logged = []
    quarantine_broken_configs(str(conf_dir), str(quarantine), logged.append)
    assert len(logged) == len(BROKEN)
    for name in BROKEN:
        lines = [line for line in logged if str(conf_dir / name) in line]
        assert len(lines) == 1 and str(quarantine / name) in lines[0]


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_one_broken_conf_among_good_ones_is_the_only_one_moved(name, conf_dir, tmp_path):
    write(conf_dir / name, BROKEN[name])
    quarantine = tmp_path / "quarantine"
    logged = []
    assert quarantine_broken_configs(str(conf_dir), str(quarantine), logged.append) == [str(quarantine / name)]
    assert os.listdir(conf_dir) == ["sess-%s.conf" % GOOD_ID] and len(logged) == 1


def test_with_only_good_confs_nothing_moves_and_no_quarantine_is_made(conf_dir, tmp_path):
    logged = []
    assert quarantine_broken_configs(str(conf_dir), str(tmp_path / "quarantine"), logged.append) == []
    assert logged == [] and not (tmp_path / "quarantine").exists()
    assert os.listdir(conf_dir) == ["sess-%s.conf" % GOOD_ID]


def test_a_conf_already_in_quarantine_is_replaced_by_the_newer_one(conf_dir, tmp_path):
    quarantine = tmp_path / "quarantine"
    quarantine.mkdir()
    name = "sess-%s.conf" % GARBAGE_ID
    (quarantine / name).write_text("older")
    (conf_dir / name).write_text("newer garbage")
    quarantine_broken_configs(str(conf_dir), str(quarantine), lambda line: None)
    assert (quarantine / name).read_text() == "newer garbage" and not (conf_dir / name).exists()
