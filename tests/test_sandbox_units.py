"""Fast tests of the sandbox's pieces: what gets bound read-only, bubblewrap's command line, cgroup layouts."""
import os

import pytest

from supervisor_sessions import sandbox
from supervisor_sessions.cgroups import Cgroups, parent_name


@pytest.mark.parametrize("path, prefix", [
    ("/opt/node/bin/node", "/opt/node"),
    ("/tmp/npm/lib/node_modules/@x/cli/cli.js", "/tmp/npm"),
    ("/root/.pyenv/shims", "/root/.pyenv"),
    ("/srv/venv/bin", "/srv/venv"),
    ("/bin/sh", None),
    ("/work/tools/fake_bin", None),
])
def test_the_installation_prefix_is_what_comes_before_bin_or_lib(path, prefix):
    assert sandbox.install_prefix(path) == prefix


@pytest.fixture
def installs(tmp_path):
    """An npm-like prefix whose bin/ links into its lib/, a venv whose python links into another prefix."""
    npm = tmp_path / "npm"
    (npm / "lib" / "node_modules" / "agent").mkdir(parents=True)
    (npm / "lib" / "node_modules" / "agent" / "cli.js").write_text("")
    (npm / "bin").mkdir()
    (npm / "bin" / "agent").symlink_to(npm / "lib" / "node_modules" / "agent" / "cli.js")
    python = tmp_path / "pythons" / "3.11"
    (python / "bin").mkdir(parents=True)
    (python / "bin" / "python3.11").write_text("")
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(python / "bin" / "python3.11")
    return tmp_path


def test_path_directories_bind_their_installations_and_what_their_links_resolve_into(installs):
    roots = sandbox.readonly_roots([str(installs / "npm" / "bin"), str(installs / "venv" / "bin"), "/usr/bin"],
                                   home="/nonexistent-home")
    assert roots == [str(installs / "npm"), str(installs / "pythons" / "3.11"), str(installs / "venv")]


def test_nothing_that_holds_or_lies_in_the_sessions_home_is_bound(installs):
    home = installs / "npm" / "sessions-home"
    home.mkdir()
    inside = home / "bin"
    inside.mkdir()
    roots = sandbox.readonly_roots([str(installs / "npm" / "bin"), str(inside)], protected=[str(home)],
                                   home="/nonexistent-home")
    assert str(installs / "npm") not in roots and str(inside) not in roots
    assert str(installs / "npm" / "bin") in roots  # narrowed to the PATH directory itself


def test_the_users_home_is_never_bound_whole(tmp_path):
    (tmp_path / "bin").mkdir()
    assert sandbox.readonly_roots([str(tmp_path / "bin")], home=str(tmp_path)) == [str(tmp_path / "bin")]


def test_nested_extra_and_relative_paths_collapse_to_the_outermost(installs):
    roots = sandbox.readonly_roots(["relative/bin", str(installs / "npm" / "bin")],
                                   extra=[str(installs / "npm" / "lib")], home="/nonexistent-home")
    assert roots == [str(installs / "npm")]


def test_the_command_line_binds_only_the_session_directory_writable(installs):
    argv = sandbox.bwrap_argv("/usr/bin/bwrap", "/s/sessions/x", [str(installs / "npm")], ["/dev/nvidia0"])
    assert argv[:7] == ["/usr/bin/bwrap", "--unshare-all", "--share-net", "--die-with-parent", "--new-session",
                        "--cap-drop", "ALL"]
    assert argv[-6:] == ["--bind", "/s/sessions/x", "/s/sessions/x", "--chdir", "/s/sessions/x", "--"]
    assert [argv[i + 1] for i, a in enumerate(argv) if a == "--bind"] == ["/s/sessions/x"]
    assert ["--ro-bind", str(installs / "npm"), str(installs / "npm")] == argv[argv.index(str(installs / "npm")) - 1:
                                                                            argv.index(str(installs / "npm")) + 2]
    assert ["--dev-bind", "/dev/nvidia0", "/dev/nvidia0"] == argv[argv.index("--dev-bind"):argv.index("--dev-bind") + 3]
    assert argv.index("--tmpfs") < argv.index(str(installs / "npm"))  # a root under /tmp lands on the tmpfs


def test_a_path_is_visible_inside_when_a_bound_root_or_a_system_directory_holds_it(installs):
    assert sandbox.visible_inside("/usr/bin/env", [])
    assert sandbox.visible_inside(str(installs / "npm" / "bin" / "agent"), [str(installs / "npm")])
    assert not sandbox.visible_inside(str(installs / "venv" / "bin" / "python"), [str(installs / "venv")])


def fake_hierarchy(root, controllers):
    for controller in controllers:
        os.makedirs(os.path.join(root, controller))
        open(os.path.join(root, controller, "cgroup.procs"), "w").close()


def test_v1_is_used_when_its_four_hierarchies_are_there(tmp_path):
    fake_hierarchy(str(tmp_path), ["memory", "pids", "cpu", "freezer"])
    groups, reason = Cgroups.detect("supervisor-sessions/x", root=str(tmp_path))
    assert reason is None and groups.version == 1
    assert groups.parent_dirs["memory"] == str(tmp_path / "memory" / "supervisor-sessions" / "x")


def test_without_usable_controllers_the_reason_says_what_is_missing(tmp_path):
    fake_hierarchy(str(tmp_path), ["memory", "cpu"])
    os.makedirs(tmp_path / "unified")
    (tmp_path / "unified" / "cgroup.controllers").write_text("io\n")
    groups, reason = Cgroups.detect("p", root=str(tmp_path))
    assert groups is None and "need memory, pids, cpu" in reason and "'memory', 'cpu'" in reason


def test_v2_is_preferred_where_its_controllers_are_usable(tmp_path):
    fake_hierarchy(str(tmp_path), ["memory", "pids", "cpu", "freezer"])
    (tmp_path / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    groups, _ = Cgroups.detect("p", root=str(tmp_path))
    assert groups.version == 2 and groups.to_spec() == {"version": 2, "parents": {"unified": str(tmp_path / "p")}}


def test_v1_limits_counters_and_removal_work_on_the_groups_files(tmp_path):
    fake_hierarchy(str(tmp_path), ["memory", "pids", "cpu", "freezer"])
    groups, _ = Cgroups.detect("p", root=str(tmp_path))
    groups.create("s", memory_mb=128, cpus=0.5, pids=32)
    assert (tmp_path / "memory" / "p" / "s" / "memory.limit_in_bytes").read_text() == str(128 << 20)
    assert (tmp_path / "cpu" / "p" / "s" / "cpu.cfs_quota_us").read_text() == "50000"
    assert (tmp_path / "pids" / "p" / "s" / "pids.max").read_text() == "32"
    (tmp_path / "memory" / "p" / "s" / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n")
    assert groups.oom_killed("s") == 2
    assert groups.pids("s") == [] and groups.pids("missing") == []
    assert not groups.remove("s")  # real cgroup directories vanish on rmdir; these hold files
    assert groups.remove("missing")


def test_every_instance_has_a_parent_group_of_its_own():
    assert parent_name("/a") != parent_name("/b") and parent_name("/a").startswith("supervisor-sessions/")
