"""Rendering: ini_value, shell_join, every runtime's program section, and parse_group's tripwires."""
import os
import shlex
import sys

import pytest
from supervisor.options import ServerOptions

from supervisor_sessions import mcp
from supervisor_sessions.groups import ConfigRejected, parse_group
from supervisor_sessions.render import RUNTIME_SUFFIX, Renderer, ini_value, shell_join

TEMPLATES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "templates")
RENDERER = Renderer()
RUNTIMES = sorted(RENDERER.runtimes)
SESSION_ID = "0b5f2c1e-8d4a-4c3b-9e6f-2a1b3c4d5e6f"
GROUP = "sess-" + SESSION_ID
# Every hostile task holds the word "pwned", which no rendered config may contain.
HOSTILE_TASKS = [
    "line one\n[program:evil]\ncommand=/bin/pwned\n",
    "%(ENV_HOME)s pwned %(here)s %%",
    "pwned ; x",
    "pwned # x",
    ";pwned",
    "it's \"pwned\" `id` $(id) \\ \\n",
    "pwned ✓ é € 𝄞 \u2028 \u00a0 \u200b",
    "\r\npwned\r",
    "--help pwned",
]


def session_context(tmp_path, task, runtime_provider="gemini"):
    """The context createSession renders with (see rpcinterface.createSession); supervisor wants the log dir."""
    (tmp_path / "logs").mkdir(exist_ok=True)
    session_dir = str(tmp_path / "workspace" / "sessions" / SESSION_ID)
    command = [sys.executable, "-I", "-m", "supervisor_sessions.launch", session_dir + "/.session-launch.json"]
    return {"session_id": SESSION_ID, "group": GROUP, "session_dir": session_dir,
            "task_file": session_dir + "/.session-task", "log_file": str(tmp_path / "logs" / (SESSION_ID + ".log")),
            "agent": "coder", "task": task, "provider": runtime_provider, "name": "a name ; # %",
            "port": 41234, "command": command, "log_max_bytes": 50 * 1024 * 1024, "stop_wait_secs": 10}


# ---- ini_value and shell_join ------------------------------------------------------------------------------

@pytest.mark.parametrize("value", [
    "a\nb", "a\rb", "a\0b", "\n", "100%", "%(here)s", "%", " a", "a ", "\ta", "a\t", "\u00a0a", "", " ",
    "a ;b", "a #b", "a\t;b", "a\t#b", ";a", "#a", ";", "#",
])
def test_ini_value_refuses_what_supervisor_would_misread(value):
    with pytest.raises(ValueError):
        ini_value(value)


@pytest.mark.parametrize("value", ["a;b", "a#b", "a;#b", "/srv/x y/z", "sess-1", "'/a b/c' d", "✓", "a=b", "[x]"])
def test_ini_value_keeps_what_supervisor_reads_literally(value):
    assert ini_value(value) == value


def test_ini_value_accepts_what_is_not_a_string_by_its_text():
    assert ini_value(10) == "10"


@pytest.mark.parametrize("argv", [
    ["/bin/x", "it's", 'a "b"', "$HOME", "a b", "", "✓"],
    ["a\nb", "a\tb", "\\", "'", '"', "''", "`id`", "$(id)", "*", "~", "a;b", "a|b", "&", "#x", "-", "--"],
    ["𝄞 €", "\u2028", "%(ENV_HOME)s", "' '\"' \""],
])
def test_shell_join_round_trips_through_shlex(argv):
    assert shlex.split(shell_join(argv)) == argv


# ---- the runtimes ------------------------------------------------------------------------------------------

def test_the_runtimes_are_the_files_in_templates_runtimes():
    files = os.listdir(os.path.join(TEMPLATES, "runtimes"))
    assert RENDERER.runtimes == {f[:-len(RUNTIME_SUFFIX)] for f in files if f.endswith(RUNTIME_SUFFIX)}
    assert "agentic-flow" in RENDERER.runtimes and "shell" in RENDERER.runtimes


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("task", HOSTILE_TASKS)
def test_a_hostile_task_never_reaches_the_config_and_reaches_the_worker_verbatim(runtime, task, tmp_path):
    context = session_context(tmp_path, task)
    rendered = RENDERER.render(runtime, context)
    assert task not in rendered.ini and "pwned" not in rendered.ini and "evil" not in rendered.ini
    config = parse_group(ServerOptions(), rendered.ini, GROUP, str(tmp_path), context["command"])
    assert config.name == GROUP and len(config.process_configs) == 1
    assert shlex.split(config.process_configs[0].command) == context["command"]
    if runtime == "shell":
        assert context["task_file"] in rendered.argv and task not in rendered.argv
    else:
        assert rendered.argv.count(task) == 1


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_every_runtime_declares_its_secrets_and_mcp_forms_as_tuples_of_strings(runtime, tmp_path):
    rendered = RENDERER.render(runtime, session_context(tmp_path, "do it"))
    for declared in (rendered.secrets, rendered.mcp_forms, rendered.exclusive):
        assert isinstance(declared, tuple) and all(isinstance(item, str) and item for item in declared)
    assert set(rendered.mcp_forms) <= set(mcp.FORMS)
    assert rendered.argv and all(isinstance(a, str) for a in rendered.argv)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_every_runtime_renders_the_session_program_as_supervisor_reads_it(runtime, tmp_path):
    context = session_context(tmp_path, "do it")
    rendered = RENDERER.render(runtime, context)
    process = parse_group(ServerOptions(), rendered.ini, GROUP, str(tmp_path), context["command"]).process_configs[0]
    assert (process.name, process.directory, process.stdout_logfile) == (
        GROUP, context["session_dir"], context["log_file"])
    assert (process.autostart, process.autorestart, process.startsecs, process.startretries) == (False, False, 0, 0)
    assert (process.stopasgroup, process.killasgroup, process.redirect_stderr) == (True, True, True)
    assert (process.stopwaitsecs, process.exitcodes) == (10, [0])
    assert (process.stdout_logfile_maxbytes, process.stdout_logfile_backups) == (25 * 1024 * 1024, 1)


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("field, value", [
    ("session_dir", "/tmp/100%/s"), ("session_dir", "/tmp/a\nb"), ("log_file", "/tmp/x ;y.log"),
    ("log_file", "/tmp/x.log "), ("group", "sess-x\n[program:evil]"),
])
def test_a_path_supervisor_would_misread_is_refused_at_render_time(runtime, field, value, tmp_path):
    with pytest.raises(ValueError):
        RENDERER.render(runtime, dict(session_context(tmp_path, "do it"), **{field: value}))


def test_a_launcher_path_supervisor_would_misread_is_refused_at_render_time(tmp_path):
    context = session_context(tmp_path, "do it")
    with pytest.raises(ValueError):
        RENDERER.render("shell", dict(context, command=context["command"][:-1] + ["/tmp/x ;y/launch.json"]))


def test_an_overlay_adds_and_replaces_runtimes(tmp_path):
    runtimes = tmp_path / "runtimes"
    runtimes.mkdir()
    (runtimes / "mine.conf.j2").write_text(
        '{% extends "session.conf.j2" %}\n{% set argv = ["mine", task] %}\n{% set exclusive = ["gpu:0"] %}\n')
    (runtimes / "shell.conf.j2").write_text('{% extends "session.conf.j2" %}\n{% set argv = ["zsh", task_file] %}\n')
    renderer = Renderer(str(tmp_path))
    assert renderer.runtimes == RENDERER.runtimes | {"mine"}
    mine = renderer.render("mine", session_context(tmp_path, "do it"))
    assert (mine.argv, mine.exclusive, mine.secrets, mine.mcp_forms) == (["mine", "do it"], ("gpu:0",), (), ())
    assert renderer.render("shell", session_context(tmp_path, "x")).argv[0] == "zsh"


@pytest.mark.parametrize("declaration", ["", "{% set argv = [] %}", "{% set argv = ['x', 5] %}",
                                         "{% set argv = ['x'] %}{% set exclusive = [''] %}"])
def test_a_runtime_with_a_bad_declaration_is_refused(declaration, tmp_path):
    (tmp_path / "runtimes").mkdir()
    (tmp_path / "runtimes" / "bad.conf.j2").write_text('{% extends "session.conf.j2" %}\n' + declaration + "\n")
    with pytest.raises(ValueError):
        Renderer(str(tmp_path)).render("bad", session_context(tmp_path, "do it"))


# ---- parse_group's tripwires ----------------------------------------------------------------------------------

@pytest.mark.parametrize("text, command, words", [
    ("[program:sess-x]\ncommand=a\n[program:evil]\ncommand=b\n", None, "holds sections"),
    ("[program:sess-x]\ncommand=a\n[supervisord]\nuser=root\n", None, "holds sections"),
    ("[program:other]\ncommand=a\n", None, "holds sections"),
    ("", None, "holds sections"),
    ("[program:sess-x]\ncommand=a b\n", ["a", "c"], "does not round-trip"),
    ("[program:sess-x]\ncommand='a b'\n", ["a", "b"], "does not round-trip"),
    ("[program:sess-x]\ncommand=a ;b\n", ["a", ";b"], "does not round-trip"),
    ("[program:sess-x]\ncommand=/bin/%(ENV_NOPE_NOT_SET_ANYWHERE)s\n", None, "does not parse"),
    ("[program:sess-x]\ncommand=echo 100% done\n", None, "does not parse"),
    ("[program:sess-x]\n", None, "does not parse"),
    ("not an ini file", None, "does not parse"),
    ("[program:sess-x]\ncommand=a\nprocess_name=%(program_name)s_%(process_num)s\nnumprocs=2\n", None,
     "makes 2 processes"),
])
def test_parse_group_rejects_what_is_not_exactly_the_program_we_meant(text, command, words, tmp_path):
    with pytest.raises(ConfigRejected) as info:
        parse_group(ServerOptions(), text, "sess-x", str(tmp_path), command)
    assert words in str(info.value)


def test_parse_group_expands_here_and_the_environment_as_supervisord_would(tmp_path):
    options = ServerOptions()
    options.environ_expansions = {"ENV_TOOL": "/opt/tool"}
    text = "[program:sess-x]\ncommand=%(ENV_TOOL)s/run %(here)s/x\n"
    config = parse_group(options, text, "sess-x", str(tmp_path), ["/opt/tool/run", str(tmp_path) + "/x"])
    assert config.process_configs[0].command == "/opt/tool/run %s/x" % tmp_path
