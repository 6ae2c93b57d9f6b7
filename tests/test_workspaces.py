"""Workspaces against a real system and real git repositories made here: a session works in a clone on a
branch of its own; what it changed comes back as a patch, numbers and a branch in the source, whose own
working tree and index are never touched."""
import http.server
import os
import shutil
import subprocess
import tempfile
import threading

import pytest

from conftest import FINAL, System, wait_for

ROOT = os.geteuid() == 0


def git(repo, *args, **kwargs):
    """git in `repo` with a fixed identity; its stdout."""
    return subprocess.run(["git", "-C", str(repo), "-c", "user.name=test", "-c", "user.email=test@example.com"]
                          + list(args), check=True, capture_output=True, text=True, **kwargs).stdout


def make_repo(path, files):
    """A git repository at `path` whose first commit holds `files` ({name: text}); its HEAD."""
    os.makedirs(path)
    git(path, "init", "-q", "-b", "main")
    for name, text in files.items():
        os.makedirs(os.path.dirname(os.path.join(path, name)) or path, exist_ok=True)
        with open(os.path.join(path, name), "w") as f:
            f.write(text)
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "first")
    return git(path, "rev-parse", "HEAD").strip()


def snapshot(repo):
    """What a user of the source sees: its status, HEAD, index and config."""
    with open(os.path.join(repo, ".git", "index"), "rb") as f:
        index = f.read()
    with open(os.path.join(repo, ".git", "config")) as f:
        config = f.read()
    return git(repo, "status", "--porcelain", "--ignored"), git(repo, "rev-parse", "HEAD"), index, config


@pytest.fixture(scope="module")
def roots():
    directory = tempfile.mkdtemp(prefix="wsroots", dir="/tmp")
    os.chmod(directory, 0o755)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="module")
def ws(roots):
    system = System(env={"WORKSPACE_ROOTS": roots}).start()
    yield system
    system.stop()


@pytest.fixture
def repo(roots):
    path = tempfile.mkdtemp(prefix="repo", dir=roots)
    os.rmdir(path)
    make_repo(path, {"a.txt": "one\n", "b.txt": "two\n", "src/keep.py": "print('keep')\n"})
    with open(os.path.join(path, ".env"), "w") as f:
        f.write("TOKEN=from-the-source\n")   # untracked, as a user's secrets are
    return path


def run(system, repo, task, timeout=60, **workspace):
    record = system.rpc().sessions.createSession({"agent": "coder", "provider": "gemini", "runtime": "shell",
                                                  "task": task, "workspace": dict(workspace, repo=repo)})
    return system.wait_status(record["sessionId"], FINAL, timeout)


EDITS = ("pwd; echo changed >> a.txt; git rm -q b.txt; mkdir -p new; echo fresh > new/c.txt; git add new; "
         "git -c user.name=w -c user.email=w@x commit -q -m 'the worker'; echo loose > d.txt; "
         "printf '\\000\\001' > e.bin")


def test_what_a_worker_changes_comes_back_as_a_patch_numbers_and_a_branch_and_the_source_is_untouched(ws, repo, tmp_path):
    before = snapshot(repo)
    base = git(repo, "rev-parse", "HEAD").strip()
    record = run(ws, repo, EDITS)
    sid = record["sessionId"]
    assert record["status"] == "completed", ws.log(sid)
    work = record["workspace"]["path"]
    assert work + "\n" in ws.log(sid)   # the worker's working directory is the clone
    assert record["workspace"]["base"] == base and record["workspace"]["branch"] == "sessions/" + sid
    assert record["changes"] == {"files": 5, "insertions": 3, "deletions": 1, "commits": 1}
    assert snapshot(repo) == before
    assert git(repo, "log", "--format=%s", "sessions/" + sid).splitlines() == ["the worker", "first"]
    assert record["workspace"]["exported"] is True
    status, stat, _ = ws.http("GET", "/v1/sessions/%s/diff?stat=true" % sid)
    assert status == 200 and stat["changes"] == record["changes"]
    assert {f["path"]: (f["insertions"], f["deletions"], f["binary"]) for f in stat["files"]} == {
        "a.txt": (1, 0, False), "b.txt": (0, 1, False), "new/c.txt": (1, 0, False), "d.txt": (1, 0, False),
        "e.bin": (0, 0, True)}
    status, patch, headers = ws.http("GET", "/v1/sessions/%s/diff" % sid)
    assert status == 200 and dict(headers)["Content-Type"] == "text/x-diff"
    # The patch is exactly the change: applied to the base, it gives the worker's tree.
    check = tmp_path / "check"
    git(tmp_path, "clone", "-q", repo, str(check))
    git(check, "checkout", "-q", base)
    (tmp_path / "p.diff").write_bytes(ws_patch_bytes(ws, sid))
    git(check, "apply", "--binary", str(tmp_path / "p.diff"))
    assert tree(check) == tree(work)


def ws_patch_bytes(system, sid):
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", system.port, timeout=30)
    conn.request("GET", "/v1/sessions/%s/diff" % sid, headers={"Authorization": "Bearer " + system.key})
    try:
        return conn.getresponse().read()
    finally:
        conn.close()


def tree(top):
    """{relative path: bytes} of the files of a working tree, .git left out."""
    found = {}
    for parent, dirs, files in os.walk(top):
        dirs[:] = [d for d in dirs if d != ".git"]
        for name in files:
            with open(os.path.join(parent, name), "rb") as f:
                found[os.path.relpath(os.path.join(parent, name), top)] = f.read()
    return found


def test_two_sessions_on_one_repository_do_not_see_each_other(ws, repo):
    first = ws.rpc().sessions.createSession({
        "agent": "coder", "provider": "gemini", "runtime": "shell", "workspace": {"repo": repo},
        "task": "echo first > mine.txt; while [ ! -e ../go ]; do sleep 0.05; done; ls"})
    wait_for(lambda: os.path.exists(os.path.join(first["workspace"]["path"], "mine.txt")), timeout=30,
             message="the first session's file")
    second = run(ws, repo, "ls; test ! -e mine.txt && echo isolated; echo second > theirs.txt")
    assert second["status"] == "completed" and "isolated" in ws.log(second["sessionId"])
    assert ws.http("PUT", "/v1/sessions/%s/files/go" % first["sessionId"], raw=b"")[0] == 201
    first = ws.wait_status(first["sessionId"], FINAL, 30)
    assert "theirs.txt" not in ws.log(first["sessionId"])
    files = lambda record: [f["path"] for f in ws.http("GET", "/v1/sessions/%s/diff?stat=true"
                                                       % record["sessionId"])[1]["files"]]
    assert files(first) == ["mine.txt"] and files(second) == ["theirs.txt"]


def test_include_copies_untracked_files_that_never_reach_the_diff_and_setup_runs_first(ws, repo):
    record = run(ws, repo, "cat .env; cat deps/ready; echo work > w.txt", include=[".env"],
                 setup="echo setting-up; mkdir deps; echo installed > deps/ready; echo '/deps' >> .git/info/exclude")
    log = ws.log(record["sessionId"])
    assert record["status"] == "completed", log
    assert log.index("setting-up") < log.index("TOKEN=from-the-source") < log.index("installed")
    files = [f["path"] for f in ws.http("GET", "/v1/sessions/%s/diff?stat=true" % record["sessionId"])[1]["files"]]
    assert files == ["w.txt"]   # not the included .env, nor what setup chose to ignore
    assert b"TOKEN" not in ws_patch_bytes(ws, record["sessionId"])


def test_a_failing_setup_fails_the_session_with_its_output_and_the_worker_never_runs(ws, repo):
    record = run(ws, repo, "echo the-worker-ran", setup="echo npm-says-no >&2; exit 3")
    log = ws.log(record["sessionId"])
    assert (record["status"], record["cause"]) == ("failed", "setup"), record
    assert "exit code 3" in record["reason"] and "npm-says-no" in log and "the-worker-ran" not in log


def test_an_unknown_ref_fails_the_session_saying_what_git_said(ws, repo):
    record = run(ws, repo, "echo the-worker-ran", ref="no-such-branch")
    assert (record["status"], record["cause"]) == ("failed", "workspace")
    assert "no-such-branch" in record["reason"] and "the-worker-ran" not in ws.log(record["sessionId"])


def test_commit_true_commits_what_was_left_on_the_session_s_branch(ws, repo):
    record = run(ws, repo, "echo loose > loose.txt; echo more >> a.txt", commit=True)
    sid = record["sessionId"]
    assert record["changes"]["commits"] == 1 and record["changes"]["files"] == 2
    assert git(repo, "log", "-1", "--format=%s", "sessions/" + sid).strip() == \
        "session %s: work left uncommitted" % sid
    assert git(repo, "show", "sessions/%s:loose.txt" % sid) == "loose\n"
    assert git(repo, "status", "--porcelain") == "?? .env\n"


def test_a_named_branch_and_ref_are_used(ws, repo):
    git(repo, "checkout", "-q", "-b", "feature")
    with open(os.path.join(repo, "f.txt"), "w") as f:
        f.write("feature\n")
    git(repo, "add", "f.txt")
    git(repo, "commit", "-q", "-m", "feature")
    git(repo, "checkout", "-q", "main")
    record = run(ws, repo, "cat f.txt; git branch --show-current", ref="feature", branch="agent/try-1")
    assert "feature\nagent/try-1\n" in ws.log(record["sessionId"]), (record["status"], record.get("cause"), record.get("reason"))
    assert record["workspace"]["base"] == git(repo, "rev-parse", "feature").strip()
    status, answer, _ = ws.http("POST", "/v1/sessions", {"agent": "coder", "provider": "gemini", "runtime": "shell",
                                                          "task": "true", "workspace": {"repo": repo, "branch": "main"}})
    assert status == 400 and "main exists" in answer["message"]


def test_a_stopped_worker_leaves_a_clone_that_a_purge_removes(ws, repo):
    record = ws.rpc().sessions.createSession({"agent": "coder", "provider": "gemini", "runtime": "shell",
                                              "workspace": {"repo": repo}, "task": "echo half > half.txt; sleep 600"})
    sid = record["sessionId"]
    wait_for(lambda: os.path.exists(os.path.join(record["workspace"]["path"], "half.txt")), timeout=30,
             message="the worker's first file")
    ws.rpc().sessions.stopSession(sid)
    stopped = ws.wait_status(sid, FINAL, 30)
    assert stopped["status"] == "stopped"
    assert ws.http("DELETE", "/v1/sessions/%s?purge=true" % sid)[0] == 200
    assert not os.path.exists(record["sessionDir"])
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1
    assert git(repo, "status", "--porcelain") == "?? .env\n"


@pytest.mark.parametrize("workspace, words", [
    ({"repo": "/etc"}, "is not under WORKSPACE_ROOTS"),
    ({"repo": "/tmp/../etc/ssl"}, "is not under WORKSPACE_ROOTS"),
    ({"repo": "file:///etc"}, "must be an absolute path"),
    ({"repo": "ext::sh -c touch% /tmp/pwned"}, "must be an absolute path"),
    ({"repo": "https://example.com/r.git", "include": [".env"]}, "not of a URL"),
    ({"repo": "{repo}", "ref": "--upload-pack=touch /tmp/pwned"}, "must be a git ref name"),
    ({"repo": "{repo}", "include": ["../../etc/passwd"]}, "paths inside the repository"),
    ({"repo": "{repo}", "setup": 5}, "'workspace.setup' must be a shell command"),
    ({"repo": "{repo}", "extra": 1}, "'workspace' must be a struct"),
    ({"repo": "{roots}"}, "is not a git working tree"),
])
def test_a_workspace_that_may_not_be_used_is_a_400_saying_why(ws, repo, roots, workspace, words):
    workspace = {k: v.format(repo=repo, roots=roots) if isinstance(v, str) else v for k, v in workspace.items()}
    status, answer, _ = ws.http("POST", "/v1/sessions", {"agent": "coder", "provider": "gemini", "runtime": "shell",
                                                          "task": "true", "workspace": workspace})
    assert status == 400 and words in answer["message"], answer
    assert not os.path.exists("/tmp/pwned")


def test_a_link_under_the_roots_to_a_repository_elsewhere_is_refused(ws, roots, tmp_path):
    outside = str(tmp_path / "outside")
    make_repo(outside, {"x": "x\n"})
    os.symlink(outside, os.path.join(roots, "sneaky"))
    status, answer, _ = ws.http("POST", "/v1/sessions", {"agent": "coder", "provider": "gemini", "runtime": "shell",
                                                          "task": "true", "workspace": {"repo": roots + "/sneaky"}})
    assert status == 400 and "is not under WORKSPACE_ROOTS" in answer["message"]


def test_without_workspace_roots_no_local_repository_may_be_used(make_system, repo):
    system = make_system().start()
    status, answer, _ = system.http("POST", "/v1/sessions", {"agent": "coder", "provider": "gemini",
                                                              "runtime": "shell", "task": "true",
                                                              "workspace": {"repo": repo}})
    assert status == 400 and "WORKSPACE_ROOTS is empty" in answer["message"]


def test_a_session_without_a_workspace_has_no_diff(ws):
    sid = ws.run("true")["sessionId"]
    status, answer, _ = ws.http("GET", "/v1/sessions/%s/diff" % sid)
    assert status == 409 and "has no workspace" in answer["message"]


def test_a_live_session_s_diff_is_a_409_until_it_ends(ws, repo):
    record = ws.rpc().sessions.createSession({"agent": "coder", "provider": "gemini", "runtime": "shell",
                                              "workspace": {"repo": repo}, "task": "sleep 600"})
    sid = record["sessionId"]
    ws.wait_status(sid, {"running"}, 30)
    status, answer, _ = ws.http("GET", "/v1/sessions/%s/diff" % sid)
    assert status == 409 and "its changes are recorded when it ends" in answer["message"]
    ws.rpc().sessions.stopSession(sid)
    ws.wait_status(sid, FINAL, 30)


def test_supervisorctl_sessions_diff_prints_the_patch_and_the_numbers(ws, repo):
    sid = run(ws, repo, "echo changed >> a.txt")["sessionId"]
    patch = ws.ctl("sessions", "diff", sid)
    assert patch.returncode == 0 and "+changed" in patch.stdout and "a/a.txt" in patch.stdout
    numbers = ws.ctl("sessions", "diff", "--stat", sid)
    assert "+1 -0" in numbers.stdout and "1 files, +1 -0, 0 commits" in numbers.stdout


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def served_repo(tmp_path):
    """A bare repository served over HTTP (git's dumb protocol, from a plain file server); its URL."""
    source = str(tmp_path / "src")
    make_repo(source, {"remote.txt": "from the network\n"})
    bare = tmp_path / "www" / "r.git"
    subprocess.run(["git", "clone", "-q", "--bare", source, str(bare)], check=True)
    git(bare, "update-server-info")
    handler = lambda *args, **kwargs: _Quiet(*args, directory=str(tmp_path / "www"), **kwargs)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield "http://127.0.0.1:%d/r.git" % server.server_address[1], source, bare
    server.shutdown()
    server.server_close()


def test_a_url_is_cloned_into_a_shared_cache_then_fetched_for_the_next_session(ws, served_repo):
    url, source, bare = served_repo
    first = run(ws, url, "cat remote.txt; git remote get-url origin; echo mine > mine.txt")
    assert first["status"] == "completed", ws.log(first["sessionId"])
    assert "from the network\n%s\n" % url in ws.log(first["sessionId"])
    stat = ws.http("GET", "/v1/sessions/%s/diff?stat=true" % first["sessionId"])[1]
    assert [f["path"] for f in stat.get("files", ())] == ["mine.txt"], stat
    with open(os.path.join(source, "later.txt"), "w") as f:
        f.write("pushed later\n")
    git(source, "add", "later.txt")
    git(source, "commit", "-q", "-m", "later")
    git(source, "push", "-q", str(bare), "main")
    git(bare, "update-server-info")
    second = run(ws, url, "cat later.txt")
    assert "pushed later" in ws.log(second["sessionId"]), ws.log(second["sessionId"])
    caches = os.listdir(os.path.join(ws.home, "state", "workspace-cache"))
    assert len([name for name in caches if name.endswith(".git")]) == 1


def test_the_disk_workspaces_take_is_in_status_and_metrics(ws, repo):
    record = run(ws, repo, "head -c 300000 /dev/urandom > big.bin")
    assert record["workspace"]["diskBytes"] > 300000
    status = ws.http("GET", "/v1/status")[1]["workspaces"]
    assert status["sessions"] >= 1 and status["diskBytes"] >= record["workspace"]["diskBytes"]

    def metrics_agree():   # the same figure, once no session of an earlier test is still settling
        shown = ws.http("GET", "/v1/status")[1]["workspaces"]["diskBytes"]
        metrics = ws.http("GET", "/metrics")[1]
        line = [l for l in metrics.splitlines() if l.startswith("sessions_workspace_disk_bytes ")][0]
        return float(line.split()[1]) == shown
    wait_for(metrics_agree, timeout=20, message="/metrics to show what /v1/status shows")


def test_a_worker_cannot_change_the_source_s_objects_through_its_clone(ws, repo):
    objects = {}
    for parent, _, files in os.walk(os.path.join(repo, ".git", "objects")):
        for name in files:
            with open(os.path.join(parent, name), "rb") as f:
                objects[os.path.join(parent, name)] = f.read()
    record = run(ws, repo, "for f in $(find .git/objects -type f); do chmod u+w $f 2>/dev/null; "
                           "printf x >> $f 2>/dev/null && echo WROTE; rm -f $f; done; echo tried")
    assert "tried" in ws.log(record["sessionId"])
    for path, data in objects.items():
        with open(path, "rb") as f:
            assert f.read() == data, path
    git(repo, "fsck", "--strict")


def test_a_source_whose_objects_only_its_owner_may_read_still_makes_a_working_clone(ws, roots):
    path = tempfile.mkdtemp(prefix="private", dir=roots)
    os.rmdir(path)
    mask = os.umask(0o077)
    try:
        make_repo(path, {"p.txt": "private\n"})
    finally:
        os.umask(mask)
    os.chmod(path, 0o755)
    for parent, dirs, _ in os.walk(path):   # the directories may be passed, the files stay 0600 / 0400
        for name in dirs:
            os.chmod(os.path.join(parent, name), 0o755)
    record = run(ws, path, "cat p.txt; git log --oneline | wc -l; echo more >> p.txt; "
                           "git -c user.name=w -c user.email=w@x commit -qam more")
    assert record["status"] == "completed", ws.log(record["sessionId"])
    assert record["changes"]["commits"] == 1 and "private\n1\n" in ws.log(record["sessionId"])


def test_a_clone_left_without_its_session_is_removed_and_named_at_the_next_start(make_system, roots, repo):
    first = make_system(env={"WORKSPACE_ROOTS": roots}).start()
    record = run(first, repo, "echo work > w.txt")
    first.stop()
    shutil.rmtree(os.path.join(first.home, "state", "sessions", record["sessionId"]))   # as a crash may leave it
    second = make_system(home=first.home, env={"WORKSPACE_ROOTS": roots}).start()
    assert not os.path.exists(record["sessionDir"])
    with open(os.path.join(second.home, "logs", "supervisord.log")) as f:
        assert "removed the directory of session %s" % record["sessionId"] in f.read()
    assert git(repo, "status", "--porcelain") == "?? .env\n"
