"""Benchmark of workspaces; run by hand (as root or not): .venv/bin/python bench/bench_workspace.py

Prints, side by side from one run against one system: the time from POST /v1/sessions to the session
`running` (its worker started) without a workspace, with a workspace of a small repository, and with one of
a repository of 5,000 files (--files) in 50 directories, three commits of history; p50 and p90 over
--rounds sessions each. Also the time from the end of the worker to the recorded changes (the session's
final status), with and without a workspace, for a worker that edits 100 files of the large repository.
"""
import argparse
import os
import platform
import shutil
import subprocess
import tempfile
import time

from benchlib import FINAL, System, pct

from supervisor_sessions.sdk import Client

SHELL = {"agent": "coder", "provider": "gemini", "runtime": "shell"}


def git(repo, *args):
    subprocess.run(["git", "-C", repo, "-c", "user.name=b", "-c", "user.email=b@e"] + list(args), check=True,
                   capture_output=True)


def make_repo(path, files):
    os.makedirs(path)
    git(path, "init", "-q", "-b", "main")
    for round_ in range(3):
        for i in range(files):
            directory = os.path.join(path, "d%02d" % (i % 50))
            os.makedirs(directory, exist_ok=True)
            with open(os.path.join(directory, "f%05d.txt" % i), "w") as f:
                f.write("line %d of file %d\n" % (round_, i) * 20)
        git(path, "add", "-A")
        git(path, "commit", "-q", "-m", "round %d" % round_)


def until(system, sid, statuses, poll=0.002):
    rpc = system.rpc()
    while True:
        record = rpc.sessions.getSession(sid)
        if record["status"] in statuses:
            return record
        time.sleep(poll)


def timed_sessions(system, rounds, task, workspace, measure):
    """`measure(sid, began)` (ms) of `rounds` sessions of `task`, each with `workspace` (or none), created
    through the SDK."""
    client = Client("http://127.0.0.1:%d" % system.port, system.key)
    out = []
    for _ in range(rounds):
        began = time.perf_counter()
        out.append(measure(client.create(task, workspace=workspace, **SHELL).session_id, began))
    return out


def to_running(system, rounds, workspace=None):
    """ms from POST to running (the worker itself started)."""
    def measure(sid, began):
        record = until(system, sid, {"running"} | FINAL)
        elapsed = (time.perf_counter() - began) * 1000
        assert record["status"] == "running", system.log(sid)
        system.rpc().sessions.stopSession(sid)
        until(system, sid, FINAL)
        return elapsed
    return timed_sessions(system, rounds, "sleep 30", workspace, measure)


def to_recorded(system, rounds, workspace=None):
    """ms from the worker's last act (the time it wrote down) to the session's final status."""
    def measure(sid, began):
        record = until(system, sid, FINAL)
        ended_at = time.time()
        with open(os.path.join(record["sessionDir"], "ended")) as f:
            return (ended_at - float(f.read())) * 1000
    return timed_sessions(system, rounds, "for f in d0*/f0000*.txt; do echo edit >> $f; done; "
                                          "date +%s.%N > $SESSION_DIR/ended", workspace, measure)


def row(name, values):
    return "%-44s p50 %7.1f ms   p90 %7.1f ms" % (name, pct(values, 50), pct(values, 90))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=15)
    options = parser.parse_args()
    roots = tempfile.mkdtemp(prefix="bench-ws-", dir="/tmp")
    os.chmod(roots, 0o755)
    small, large = os.path.join(roots, "small"), os.path.join(roots, "large")
    make_repo(small, 10)
    make_repo(large, options.files)
    system = System(env={"WORKSPACE_ROOTS": roots}).start()
    try:
        to_running(system, 2, {"repo": large})   # warm the page cache
        figures = [
            ("POST -> running, no workspace", to_running(system, options.rounds)),
            ("POST -> running, workspace of 10 files", to_running(system, options.rounds, {"repo": small})),
            ("POST -> running, workspace of %d files" % options.files,
             to_running(system, options.rounds, {"repo": large})),
            ("worker ended -> final status, no workspace", to_recorded(system, options.rounds)),
            ("worker ended -> final, %d files, 100 edited" % options.files,
             to_recorded(system, options.rounds, {"repo": large})),
        ]
    finally:
        system.stop()
        shutil.rmtree(roots, ignore_errors=True)
    print("machine: %s, %d cpus, Python %s, git %s" % (
        platform.machine(), os.cpu_count(), platform.python_version(),
        subprocess.run(["git", "--version"], capture_output=True, text=True).stdout.split()[-1]))
    for name, values in figures:
        print(row(name, values))


if __name__ == "__main__":
    main()
