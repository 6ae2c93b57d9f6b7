"""Workers are untrusted code: each test is a worker script that attacks something outside its session,
and the test asserts that the attack failed. Run as root (own user per session, cgroups) and as an
unprivileged user (bubblewrap through user namespaces; the root-only parts skip, saying so)."""
import json
import os
import shutil
import signal
import socket
import subprocess
import pwd
import stat
import sys
import tempfile

import pytest

import supervisor_sessions
from supervisor_sessions import identity
from supervisor_sessions.settings import resource_dir

from conftest import FINAL, System, pids_matching, scripted_claude_overlay, wait_for

CODE_PATHS = [sys.prefix, sys.base_prefix, os.path.dirname(os.path.abspath(supervisor_sessions.__file__))]
SECRETS = {"SECRET_TOKEN": "s3cr3t-of-the-operator", "ANTHROPIC_API_KEY": "anthropic-key-of-the-operator"}
NOBODY = 65534
ROOT = os.geteuid() == 0


def _unprivileged_system(home):
    """serve started as an unprivileged user: as root, nobody (through setpriv); else the user we are."""
    system = System(home=home, env=dict(SECRETS, MCP_CONFIG=os.path.join(home, "mcp.json"),
                                        WORKSPACE_ROOTS=os.path.join(home, "repos")))
    if ROOT:
        if shutil.which("setpriv") is None:
            pytest.skip("setpriv (util-linux) is needed to start serve as an unprivileged user")
        blocked = identity.blocked_path(NOBODY, NOBODY, CODE_PATHS)
        if blocked:
            pytest.skip("nobody cannot reach this checkout or its Python through %s" % blocked)
        os.chown(home, NOBODY, NOBODY)
        system.start_with = ["setpriv", "--reuid=%d" % NOBODY, "--regid=%d" % NOBODY, "--clear-groups"] \
            + system.start_with
    return system


@pytest.fixture(scope="module", params=["root", "unprivileged"])
def sandboxed(request):
    """A system with operator secrets in its environment and an mcp.json that asks for them."""
    home = tempfile.mkdtemp(prefix="sbx", dir="/tmp")
    os.chmod(home, 0o755)
    with open(os.path.join(home, "mcp.json"), "w") as f:
        json.dump({"mcpServers": {"leak": {"command": "true", "args": [
            "${MANAGEMENT_API_KEY}", "${SECRET_TOKEN}", "${ANTHROPIC_API_KEY}"]}}}, f)
    scripted_claude_overlay(os.path.join(home, "templates"))   # its claude-code is a script (resume tests)
    os.makedirs(os.path.join(home, "repos"), 0o755)
    if request.param == "root":
        if not ROOT:
            pytest.skip("the root mode (own users, cgroups) needs the tests to run as root")
        system = System(home=home, env=dict(SECRETS, MCP_CONFIG=os.path.join(home, "mcp.json"),
                                            WORKSPACE_ROOTS=os.path.join(home, "repos")))
    else:
        system = _unprivileged_system(home)
    system.mode = request.param
    system.start()
    system.isolation = system.rpc().sessions.getIsolation()
    if not system.isolation["enforced"]["namespaces"]:
        system.stop()
        pytest.skip("no sandbox on this machine: %s" % system.isolation["notEnforced"].get("namespaces"))
    yield system
    system.stop()
    shutil.rmtree(home, ignore_errors=True)


def attack(system, script, timeout=30, **spec):
    """Run `script` as a shell worker to its end; return (record, what the worker printed)."""
    record = system.run(script + "\necho end-of-attack", timeout=timeout, **spec)
    log = "".join(line for line in system.log(record["sessionId"]).splitlines(True)
                  if not line.startswith("supervisor-sessions: "))
    assert "end-of-attack" in log, log
    return record, log


@pytest.fixture
def victim(sandboxed):
    """Another live session with a secret in its directory and in its environment."""
    record = sandboxed.spawn("echo victim-file-secret > mine.txt; exec sleep 60",
                             env={"VICTIM_SECRET": "victim-env-secret"})
    running = sandboxed.wait_status(record["sessionId"], {"running"})
    wait_for(lambda: os.path.exists(os.path.join(record["sessionDir"], "mine.txt")), message="the victim's file")
    yield running
    sandboxed.rpc().sessions.stopSession(record["sessionId"])
    sandboxed.wait_status(record["sessionId"], FINAL)


def test_isolation_is_reported_with_reasons_for_what_is_not_enforced(sandboxed):
    report = sandboxed.isolation
    assert report["sandbox"] == "bubblewrap" and report["root"] == (sandboxed.mode == "root")
    for part, enforced in report["enforced"].items():
        assert bool(enforced) or report["notEnforced"].get(part), part
    status, body, _ = sandboxed.http("GET", "/v1/status")
    assert status == 200 and body["isolation"] == report


def test_a_worker_cannot_read_the_api_key(sandboxed):
    _, log = attack(sandboxed, "cat %s/.management-api-key %s/run/api-key; env" % (sandboxed.home, sandboxed.home))
    assert sandboxed.key not in log


def test_a_worker_cannot_read_supervisords_environment(sandboxed):
    _, log = attack(sandboxed, "cat /proc/%d/environ; for p in /proc/[0-9]*; do cat $p/environ; done"
                    % sandboxed.supervisord_pid())
    assert not [value for value in SECRETS.values() if value in log]


def test_a_worker_cannot_speak_to_supervisords_socket(sandboxed):
    _, log = attack(sandboxed, "python3 -c \"import socket; s = socket.socket(socket.AF_UNIX); s.connect('%s'); "
                    "print('socket-open')\"; ls -la %s/run" % (sandboxed.socket, sandboxed.home))
    assert "socket-open" not in log and "supervisor.sock" not in log


def test_a_worker_cannot_read_the_change_feed_the_webhook_secret_or_the_apis_events(sandboxed, victim):
    with open(os.path.join(sandboxed.home, "run", "webhook-secret")) as f:
        secret = f.read().strip()
    script = ("cat {h}/state/events.jsonl {h}/run/webhook-secret {h}/webhooks/state.json; ls -R {h}/state\n"
              "python3 -c \"import urllib.request as u\ntry:\n    print(u.urlopen('http://127.0.0.1:{port}"
              "/v1/events?since=0').read())\nexcept Exception as e:\n    print('refused', e)\"")
    _, log = attack(sandboxed, script.format(h=sandboxed.home, port=sandboxed.port))
    assert "victim-file-secret" not in log and victim["sessionId"] not in log   # the victim's task, its id
    assert secret not in log and "401" in log


def test_a_worker_cannot_read_or_write_another_session(sandboxed, victim):
    other = victim["sessionDir"]
    state = os.path.join(sandboxed.home, "state", "sessions", victim["sessionId"])
    _, log = attack(sandboxed, "cat %s/mine.txt; ls %s; echo injected > %s/mine.txt; cat %s/*; cat %s; "
                    "echo listed $(ls %s/workspace/sessions)" % (other, other, other, state,
                                                                 sandboxed.home + "/logs/sessions/*", sandboxed.home))
    assert "victim-file-secret" not in log
    assert victim["sessionId"] not in log.split("listed ")[1].split("\n")[0]
    with open(os.path.join(other, "mine.txt")) as f:
        assert f.read() == "victim-file-secret\n"


def test_a_worker_cannot_read_another_workers_environment(sandboxed, victim):
    _, log = attack(sandboxed, "cat /proc/%d/environ; cat /proc/*/environ" % victim["pid"])
    assert "victim-env-secret" not in log


def test_a_worker_cannot_signal_supervisord_the_api_or_another_worker(sandboxed, victim):
    api = sandboxed.rpc().supervisor.getProcessInfo("management-api")["pid"]
    targets = [sandboxed.supervisord_pid(), api, victim["pid"]]
    _, log = attack(sandboxed, "; ".join("kill -9 %d && echo killed-%d" % (pid, pid) for pid in targets))
    assert "killed-" not in log
    for pid in targets:
        os.kill(pid, 0)  # still there
    assert sandboxed.rpc().sessions.getSession(victim["sessionId"])["status"] == "running"


def test_a_worker_binds_only_its_own_port(sandboxed):
    if not sandboxed.isolation["enforced"]["landlockTcpBind"]:
        pytest.skip(sandboxed.isolation["notEnforced"]["landlockTcpBind"])
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        other_port = probe.getsockname()[1]
    script = ("python3 -c \"import os, socket\nfor port in (int(os.environ['SESSION_PORT']), %d):\n"
              "    s = socket.socket()\n    try:\n        s.bind(('127.0.0.1', port)); print('bound', port)\n"
              "    except OSError as e:\n        print('refused', port, e.errno)\"" % other_port)
    record, log = attack(sandboxed, script)
    assert "bound %d" % record["port"] in log and "refused %d" % other_port in log


def test_a_worker_cannot_change_our_code_or_templates(sandboxed):
    package = os.path.dirname(os.path.abspath(supervisor_sessions.__file__))
    targets = [os.path.join(package, "evil.py"), os.path.join(resource_dir("templates"), "runtimes", "evil.conf.j2"),
               os.path.join(package, "launch.py")]
    _, log = attack(sandboxed, "; ".join("echo evil >> %s && echo wrote-%d" % (t, i) for i, t in enumerate(targets)))
    assert "wrote-" not in log
    assert not os.path.exists(targets[0]) and not os.path.exists(targets[1])
    with open(targets[2]) as f:
        assert "evil" not in f.read()


def test_mcp_placeholders_never_hand_out_the_operators_secrets(sandboxed):
    record, log = attack(sandboxed, "cat .mcp.json")
    assert '"leak"' in log
    assert sandboxed.key not in log and not [v for v in SECRETS.values() if v in log]


def test_session_files_of_ours_are_private(sandboxed):
    record = sandboxed.run("echo hello")
    state = os.path.join(sandboxed.home, "state", "sessions", record["sessionId"])
    assert stat.S_IMODE(os.stat(os.path.join(sandboxed.home, "state")).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(os.path.join(state, "meta.json")).st_mode) == 0o600
    log_file = os.path.join(sandboxed.home, "logs", "sessions", record["sessionId"] + ".log")
    assert stat.S_IMODE(os.stat(log_file).st_mode) == 0o640


def test_a_forged_meta_or_config_in_a_session_directory_changes_nothing_after_a_restart(sandboxed):
    marker = os.path.join(tempfile.gettempdir(), "forged-%d" % os.getpid())
    forged = {"sessionId": "%s", "status": "queued", "task": "touch " + marker, "runtime": "shell",
              "pid": sandboxed.supervisord_pid(), "logFile": sandboxed.home + "/.management-api-key"}
    script = ("printf '%%s' '%s' | sed \"s/%%s/$SESSION_ID/\" > .session-meta.json; cp .session-meta.json meta.json; "
              "printf '[program:evil]\\ncommand=touch %s\\nautostart=true\\n' > .session-program.conf; "
              "cp .session-program.conf program.conf" % (json.dumps(forged), marker))
    record, _ = attack(sandboxed, script)
    before = sandboxed.rpc().sessions.getSession(record["sessionId"])
    sandboxed.stop()
    sandboxed.start()
    after = sandboxed.rpc().sessions.getSession(record["sessionId"])
    assert after == before and after["status"] == "completed"
    text, _, _ = sandboxed.rpc().sessions.tailSessionLog(record["sessionId"], 0, 65536)
    assert sandboxed.key not in text
    assert "evil" not in {p["name"] for p in sandboxed.rpc().supervisor.getAllProcessInfo()}
    assert not os.path.exists(marker)


@pytest.mark.parametrize("escape", [
    "( setsid sleep {tag} & ) ; exec sleep 300",
    "python3 -c \"import os, subprocess\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
    "        subprocess.Popen(['sleep', '{tag}']).wait()\n    os._exit(0)\nos.wait()\" ; exec sleep 300",
    "( while :; do ( sleep {tag} & ) ; sleep 0.05; done ) & exec sleep 300",
], ids=["setsid", "double-fork-daemon", "pid-hopper"])
def test_nothing_a_worker_forked_outlives_its_delete(sandboxed, escape):
    tag = "%d%d" % (4242, os.getpid() % 10000)
    record = sandboxed.spawn(escape.format(tag=tag))
    sid = record["sessionId"]
    sandboxed.wait_status(sid, {"running"})
    wait_for(lambda: pids_matching("sleep %s" % tag), message="the escaped child to start")
    status, body, _ = sandboxed.http("DELETE", "/v1/sessions/%s?purge=true" % sid)
    assert status == 200 and body["purged"] is True, body
    try:
        wait_for(lambda: not pids_matching("sleep %s" % tag), timeout=10, message="every escaped child to be gone")
    finally:
        for pid in pids_matching("sleep %s" % tag):
            os.kill(pid, signal.SIGKILL)


# ---- limits (cgroups: root) ---------------------------------------------------------------------------------

@pytest.fixture
def limited(sandboxed):
    if not sandboxed.isolation["enforced"]["limits"]:
        pytest.skip("limits are not enforced here: %s" % sandboxed.isolation["notEnforced"].get("limits"))
    return sandboxed


def test_a_worker_over_its_memory_limit_fails_for_memory_while_another_runs_on(limited):
    neighbour = limited.spawn("exec sleep 60")
    record = limited.run("python3 -c \"b = bytearray(600 * 1024 * 1024); print('got-it')\"", timeout=60,
                         limits={"memoryMB": 128})
    assert record["status"] == "failed" and "memory" in record["reason"] and "128 MB" in record["reason"], record
    assert record["cause"] == "oom"
    assert record["limits"]["memoryMB"] == 128
    assert "got-it\n" not in limited.log(record["sessionId"]).replace("print('got-it')", "")
    assert limited.rpc().sessions.getSession(neighbour["sessionId"])["status"] == "running"
    limited.rpc().sessions.stopSession(neighbour["sessionId"])


def test_a_worker_cannot_fork_past_its_pids_limit(limited):
    script = ("python3 -c \"import os, signal\nchildren = []\nfor _ in range(60):\n    try:\n"
              "        pid = os.fork()\n    except OSError:\n        break\n    if pid == 0:\n        signal.pause()\n"
              "    children.append(pid)\nprint('forked', len(children))\nfor pid in children:\n"
              "    os.kill(pid, 9)\"")
    _, log = attack(limited, script, limits={"pids": 16})
    assert 0 < int(log.split("forked ")[1].split()[0]) < 16


def test_a_worker_gets_no_more_cpu_than_its_limit(limited):
    script = ("python3 -c \"import time\nstart = time.monotonic()\nwhile time.monotonic() - start < 2: pass\n"
              "print('cpu-share', time.process_time() / (time.monotonic() - start))\"")
    _, log = attack(limited, script, limits={"cpus": 0.2})
    share = float(log.split("cpu-share ")[1].split()[0])
    assert share < 0.4


def test_limits_are_echoed_in_the_record_and_given_to_the_worker(limited):
    record, log = attack(limited, "echo budget $SESSION_MEMORY_MB $SESSION_CPUS $SESSION_PIDS",
                         limits={"memoryMB": 300, "cpus": 0.5, "pids": 64})
    assert record["limits"] == {"memoryMB": 300, "cpus": 0.5, "pids": 64}
    assert "budget 300 0.5 64" in log


@pytest.fixture
def as_root(sandboxed):
    if not sandboxed.isolation["enforced"]["identity"]:
        pytest.skip(sandboxed.isolation["notEnforced"]["identity"])
    return sandboxed


def test_each_live_session_runs_as_its_own_user(as_root, victim):
    record, log = attack(as_root, "id -u")
    assert record["uid"] != victim["uid"] and int(log.split()[0]) == record["uid"] != 0
    assert os.stat(victim["sessionDir"]).st_uid == victim["uid"]
    assert stat.S_IMODE(os.stat(victim["sessionDir"]).st_mode) == 0o700


def skip_unless_the_service_user_can_run_our_code():
    service = pwd.getpwnam("supervisor-sessions")
    blocked = identity.blocked_path(service.pw_uid, service.pw_gid, CODE_PATHS)
    if blocked:
        pytest.skip("the service user cannot reach our code through %s: serve keeps the API root" % blocked)


def test_the_api_and_cleanup_run_as_the_service_user(as_root):
    skip_unless_the_service_user_can_run_our_code()
    rpc = as_root.rpc()
    service = os.stat(as_root.socket).st_uid
    assert service != 0
    for name in ("management-api", "session-cleanup"):
        status = "/proc/%d/status" % rpc.supervisor.getProcessInfo(name)["pid"]
        with open(status) as f:
            uids = [line.split()[1:] for line in f if line.startswith("Uid:")][0]
        assert set(uids) == {str(service)}, name


def test_the_meta_copy_in_a_session_directory_is_never_written_through_a_link_the_worker_planted(sandboxed):
    victim_file = os.path.join(tempfile.mkdtemp(prefix="victim", dir="/tmp"), "precious")
    with open(victim_file, "w") as f:
        f.write("precious\n")
    record, _ = attack(sandboxed, "for name in .session-meta.json ..session-meta.json.tmp; do rm -f $name; "
                                     "ln -s %s $name; done" % victim_file)
    copy = os.path.join(record["sessionDir"], ".session-meta.json")
    assert not os.path.islink(copy)
    with open(copy) as f:
        assert json.load(f)["status"] == "completed"
    with open(victim_file) as f:
        assert f.read() == "precious\n"
    shutil.rmtree(os.path.dirname(victim_file))


def test_the_oom_killer_picks_workers_before_supervisord_and_the_api(sandboxed):
    record = sandboxed.spawn("exec sleep 60")
    running = sandboxed.wait_status(record["sessionId"], {"running"})

    def score(pid):
        with open("/proc/%d/oom_score_adj" % pid) as f:
            return int(f.read())
    api = sandboxed.rpc().supervisor.getProcessInfo("management-api")["pid"]
    # supervisord and the API keep what serve could give them (lower, where the kernel lets root lower it)
    wait_for(lambda: score(running["pid"]) == 500, message="the launcher to raise the worker's score")
    assert score(running["pid"]) > max(score(sandboxed.supervisord_pid()), score(api))
    sandboxed.rpc().sessions.stopSession(record["sessionId"])


def test_one_parent_cgroup_caps_all_sessions_together(limited):
    from supervisor_sessions.cgroups import Cgroups, parent_name
    from supervisor_sessions.settings import memory_mb
    groups, _ = Cgroups.detect(parent_name(limited.home))
    record = limited.spawn("exec sleep 60")
    running = limited.wait_status(record["sessionId"], {"running"})
    wait_for(lambda: running["pid"] in groups.pids(record["sessionId"]), message="the worker in its cgroup")
    parent = groups.parent_dirs["memory" if groups.version == 1 else "unified"]
    with open(os.path.join(parent, "memory.limit_in_bytes" if groups.version == 1 else "memory.max")) as f:
        assert int(f.read()) == memory_mb() * 85 // 100 * 2 ** 20
    limited.rpc().sessions.stopSession(record["sessionId"])
    limited.wait_status(record["sessionId"], FINAL)
    wait_for(lambda: not os.path.exists(os.path.join(parent, record["sessionId"])), timeout=10,
             message="the session's cgroup to be removed")


def test_a_runtime_installed_where_the_sandbox_cannot_show_it_fails_saying_which_path(sandboxed):
    hidden = os.path.join(sandboxed.home, "bin")  # inside SESSIONS_HOME: never bound into a sandbox
    os.makedirs(hidden, exist_ok=True)
    program = os.path.join(hidden, "agentic-flow")
    with open(program, "w") as f:
        f.write("#!/bin/sh\necho should-not-run\n")
    os.chmod(program, 0o755)
    record = sandboxed.run("x", runtime="agentic-flow", env={"PATH": hidden + ":/usr/bin:/bin"})
    log = sandboxed.log(record["sessionId"])
    assert record["status"] == "failed" and record["exitCode"] == 127
    assert "%s is not inside the sandbox" % program in log and "should-not-run" not in log


@pytest.mark.skipif(not ROOT, reason="binding a port below 1024 needs root")
def test_under_root_the_api_binds_a_privileged_port_then_runs_as_the_service_user(make_system):
    for port in range(1000, 900, -1):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
                break
            except OSError:
                continue
    system = make_system(env={"MANAGEMENT_API_PORT": str(port)})
    system.port = port
    system.start()
    skip_unless_the_service_user_can_run_our_code()
    assert system.http("GET", "/v1/sessions")[0] == 200
    api = system.rpc().supervisor.getProcessInfo("management-api")["pid"]
    assert os.stat("/proc/%d" % api).st_uid == os.stat(system.socket).st_uid != 0


def resume_of(system, first_script, second_script):
    """Run a scripted claude worker that reports an agent session, then one resuming it; their records."""
    first = system.run("""printf '{"type":"system","subtype":"init","session_id":"agent-1"}\\n'\n""" + first_script,
                       runtime="claude-code")
    assert first["agentSessionId"] == "agent-1", system.log(first["sessionId"])
    return first, system.run(second_script, runtime="claude-code", resumeFrom=first["sessionId"], timeout=30)


@pytest.mark.parametrize("name, target", [(".mcp.json", "file"), (".session-task", "file"),
                                          (".gemini/settings.json", "file"), (".codex", "dir"),
                                          (".agentic-flow", "dir"), (".claude", "dir")])
def test_a_resumed_session_writes_nothing_through_links_its_ended_worker_left(sandboxed, name, target):
    victim = tempfile.mkdtemp(prefix="victim", dir="/tmp")
    os.chmod(victim, 0o777)   # writable by every user outside the sandbox, invisible inside it
    precious = os.path.join(victim, "precious")
    with open(precious, "w") as f:
        f.write("precious\n")
    os.chmod(precious, 0o666)
    plant = "rm -rf {name}; mkdir -p $(dirname {name}); ln -s {target} {name}; ls -l {name}".format(
        name=name, target=precious if target == "file" else victim)
    first, resumed = resume_of(sandboxed, plant, "echo resumed")
    assert "-> " in sandboxed.log(first["sessionId"])   # the link was planted
    log = sandboxed.log(resumed["sessionId"])
    with open(precious) as f:
        assert f.read() == "precious\n"
    assert os.listdir(victim) == ["precious"], log
    assert resumed["status"] == "completed" and "resumed" in log \
        or resumed["status"] == "failed" and "cannot write the worker's config into its directory" in log, log
    shutil.rmtree(victim)


@pytest.mark.skipif(not ROOT, reason="planting a hard link to a file of root's needs root")
def test_a_resumed_session_gets_no_copy_of_what_its_ended_worker_did_not_own(sandboxed):
    secret_dir = tempfile.mkdtemp(prefix="secret", dir=os.path.dirname(sandboxed.home))
    secret = os.path.join(secret_dir, "root-only")
    with open(secret, "w") as f:
        f.write("root-secret\n")
    os.chmod(secret, 0o600)
    first = sandboxed.run("""printf '{"type":"system","subtype":"init","session_id":"agent-2"}\\n'; mkfifo fifo""",
                          runtime="claude-code")
    os.link(secret, os.path.join(first["sessionDir"], "stolen"))  # as a worker might where links are not protected
    resumed = sandboxed.run("cat stolen; ls; echo resumed", runtime="claude-code", resumeFrom=first["sessionId"])
    log = sandboxed.log(resumed["sessionId"])
    assert resumed["status"] == "completed" and "resumed" in log, log
    assert "root-secret" not in log and not os.path.lexists(os.path.join(resumed["sessionDir"], "stolen"))
    assert "2 left out" in log   # the link and the FIFO
    shutil.rmtree(secret_dir)


def test_the_files_api_serves_no_link_a_worker_planted_and_uploads_through_none(sandboxed):
    """Links to the API key, the service's state and a writable directory outside: reads are refused,
    archives leave them out, an upload through them lands nowhere."""
    outside = tempfile.mkdtemp(prefix="outside", dir="/tmp")
    os.chmod(outside, 0o777)
    record, _ = attack(sandboxed, "ln -s %s/run/api-key key; ln -s %s/state state; ln -s %s out; echo mine > mine"
                       % (sandboxed.home, sandboxed.home, outside))
    files = "/v1/sessions/%s/files/" % record["sessionId"]
    for path in ("key", "state/events.jsonl", "out"):
        status, body, _ = sandboxed.http("GET", files + path)
        assert status == 400 and "is a symbolic link" in body["message"], (path, body)
    status, body, _ = sandboxed.http("PUT", files + "out/planted", raw=b"payload")
    assert status == 400 and os.listdir(outside) == [], body
    status, archive, _ = sandboxed.http("GET", files[:-1] + "?archive=tar.gz")
    assert status == 200 and sandboxed.key not in archive
    assert sandboxed.http("GET", files + "mine")[1] == "mine\n"
    shutil.rmtree(outside)


def test_the_files_api_serves_no_file_its_worker_does_not_own(sandboxed):
    if sandboxed.mode != "root":
        pytest.skip("unprivileged, workers share the service's uid: what keeps them from linking its files is "
                    "the sandbox, which hides them (test_a_worker_cannot_read_the_api_key)")
    record, _ = attack(sandboxed, "true")
    os.link(os.path.join(sandboxed.home, "run", "api-key"), os.path.join(record["sessionDir"], "stolen"))
    status, body, _ = sandboxed.http("GET", "/v1/sessions/%s/files/stolen" % record["sessionId"])
    assert status == 400 and "is not the session worker's" in body["message"] and sandboxed.key not in str(body)


def test_git_that_a_worker_rigged_in_its_clone_runs_only_inside_its_sandbox(sandboxed):
    """Hooks, core.fsmonitor, a clean filter and an external diff planted in the clone run when we record
    the changes (git on the worker's clone), as the worker in its sandbox: nothing outside it is reached,
    and the source repository keeps its config and hooks."""
    repo = tempfile.mkdtemp(prefix="src", dir=os.path.join(sandboxed.home, "repos"))
    for command in (["init", "-q", "-b", "main"], ["commit", "-q", "--allow-empty", "-m", "first"]):
        subprocess.run(["git", "-C", repo, "-c", "user.name=t", "-c", "user.email=t@e"] + command, check=True)
    os.chmod(repo, 0o755)
    with open(os.path.join(repo, ".git", "config")) as f:
        config = f.read()
    hooks = sorted(os.listdir(os.path.join(repo, ".git", "hooks")))
    outside = tempfile.mkdtemp(prefix="outside", dir="/tmp")
    os.chmod(outside, 0o777)   # anyone may write here, outside the sandbox
    rig = ("git config core.fsmonitor 'touch {o}/fsmonitor; false'; git config filter.x.clean 'touch {o}/filter; cat'; "
           "git config diff.external 'touch {o}/diff'; echo '* filter=x' > .gitattributes; "
           "printf '#!/bin/sh\\ntouch {o}/hook\\n' > .git/hooks/post-commit; chmod +x .git/hooks/post-commit; "
           "echo work > work.txt; echo rigged").format(o=outside)
    record = sandboxed.rpc().sessions.createSession({
        "agent": "coder", "provider": "gemini", "runtime": "shell", "task": rig,
        "workspace": {"repo": repo, "commit": True}})
    ended = sandboxed.wait_status(record["sessionId"], FINAL, 60)
    log = sandboxed.log(record["sessionId"])
    assert ended["status"] == "completed" and "rigged" in log, log
    assert os.listdir(outside) == [], log
    assert ended["changes"]["files"] >= 2, ended   # recorded all the same
    with open(os.path.join(repo, ".git", "config")) as f:
        assert f.read() == config
    assert sorted(os.listdir(os.path.join(repo, ".git", "hooks"))) == hooks
    shutil.rmtree(outside)
