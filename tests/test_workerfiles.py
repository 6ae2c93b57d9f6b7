"""Files in a directory a worker owns: writes that never go through a link it planted, and the copy a resumed
session starts from, which takes only what the worker owned and never follows or opens what it should not."""
import os
import stat

import pytest

from supervisor_sessions.workerfiles import COPY_MAX_DEPTH, TooLarge, copy_tree, open_dir, write_file

ME = os.geteuid()
ROOT = ME == 0


def tree(root):
    """{relative path: what it is} of everything under `root`, links not followed."""
    found = {}
    for parent, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(parent, name)
            relative = os.path.relpath(path, root)
            if os.path.islink(path):
                found[relative] = "-> " + os.readlink(path)
            elif os.path.isdir(path):
                found[relative] = "dir"
            else:
                with open(path, "rb") as f:
                    found[relative] = f.read()
    return found


@pytest.fixture
def dirs(tmp_path):
    source, target = tmp_path / "old", tmp_path / "new"
    source.mkdir()
    target.mkdir()
    return source, target


def test_files_directories_and_links_are_copied_links_as_links(dirs, tmp_path):
    source, target = dirs
    (source / "notes.txt").write_bytes(b"remember\n")
    (source / "sub" / "deeper").mkdir(parents=True)
    (source / "sub" / "deeper" / "tool.sh").write_bytes(b"#!/bin/sh\n")
    os.chmod(source / "sub" / "deeper" / "tool.sh", 0o755)
    outside = tmp_path / "outside"
    outside.write_bytes(b"not to be copied")
    os.symlink(str(outside), source / "link-out")
    os.symlink("notes.txt", source / "link-in")
    assert copy_tree(str(source), str(target), [ME]) == (2, 0)
    assert tree(str(target)) == {"notes.txt": b"remember\n", "sub": "dir", "sub/deeper": "dir",
                                 "sub/deeper/tool.sh": b"#!/bin/sh\n", "link-out": "-> " + str(outside),
                                 "link-in": "-> notes.txt"}
    assert os.stat(target / "sub" / "deeper" / "tool.sh").st_mode & 0o777 == 0o755


def test_fifos_sockets_and_what_another_user_owns_are_left_out_without_waiting(dirs):
    source, target = dirs
    os.mkfifo(source / "fifo")   # opening it to read would wait for a writer for ever
    (source / "mine").write_bytes(b"mine")
    (source / "theirs").write_bytes(b"a hard link to what the worker could not read")
    owners = [ME]
    if ROOT:
        os.chown(source / "theirs", 12345, 12345)
    else:
        owners = [ME + 1]   # not ours: everything is someone else's
    files, left_out = copy_tree(str(source), str(target), owners)
    copied = tree(str(target))
    assert "fifo" not in copied and "theirs" not in copied
    if ROOT:
        assert (files, left_out) == (1, 2) and copied == {"mine": b"mine"}
    else:
        assert (files, left_out, copied) == (0, 3, {})


@pytest.mark.skipif(not ROOT, reason="giving the copy to another user needs root")
def test_what_is_copied_belongs_to_the_new_worker(dirs):
    source, target = dirs
    (source / "d").mkdir()
    (source / "d" / "f").write_bytes(b"x")
    os.symlink("f", source / "d" / "l")
    copy_tree(str(source), str(target), [ME], owner=(23456, 23457))
    for path in (target / "d", target / "d" / "f"):
        assert (os.stat(path).st_uid, os.stat(path).st_gid) == (23456, 23457)
    assert os.lstat(target / "d" / "l").st_uid == 23456


def test_a_copy_past_its_byte_limit_stops(dirs):
    source, target = dirs
    (source / "big").write_bytes(b"x" * 5000)
    with pytest.raises(TooLarge):
        copy_tree(str(source), str(target), [ME], max_bytes=4999)


def test_a_byte_limit_counts_all_files_together(dirs):
    source, target = dirs
    for name in "abc":
        (source / name).write_bytes(b"x" * 100)
    with pytest.raises(TooLarge):
        copy_tree(str(source), str(target), [ME], max_bytes=250)
    other = target.parent / "other"
    other.mkdir()
    assert copy_tree(str(source), str(other), [ME], max_bytes=300) == (3, 0)


def test_names_the_target_holds_already_stay_the_target_s(dirs):
    source, target = dirs
    (source / ".session-meta.json").write_bytes(b"old")
    os.symlink("/etc", source / "taken-link")
    (target / ".session-meta.json").write_bytes(b"new")
    (target / "taken-link").write_bytes(b"ours")
    copy_tree(str(source), str(target), [ME])
    assert tree(str(target)) == {".session-meta.json": b"new", "taken-link": b"ours"}


def test_a_tree_deeper_than_the_limit_is_cut_there(dirs):
    source, target = dirs
    fd = os.open(str(source), os.O_RDONLY)
    for _ in range(COPY_MAX_DEPTH + 5):   # by descriptor: the path would pass PATH_MAX
        os.mkdir("d", dir_fd=fd)
        child = os.open("d", os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = child
    os.close(fd)
    assert copy_tree(str(source), str(target), [ME]) == (0, 1)


@pytest.mark.skipif(ROOT, reason="root reads what its owner made unreadable")
def test_what_its_owner_made_unreadable_is_left_out(dirs):
    source, target = dirs
    (source / "locked").write_bytes(b"x")
    os.chmod(source / "locked", 0)
    (source / "open").write_bytes(b"y")
    assert copy_tree(str(source), str(target), [ME]) == (1, 1)


def test_write_file_never_writes_through_a_planted_link(tmp_path):
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "config.toml").write_bytes(b"precious")
    worker = tmp_path / "worker"
    worker.mkdir()
    os.symlink(str(victim), worker / ".codex")                        # a directory link
    os.symlink(str(victim / "config.toml"), worker / ".mcp.json")     # a file link
    with pytest.raises(OSError):
        write_file(str(worker), ".codex/config.toml", b"ours")
    write_file(str(worker), ".mcp.json", b"ours")                     # replaces the link itself
    assert (victim / "config.toml").read_bytes() == b"precious" and os.listdir(victim) == ["config.toml"]
    assert not os.path.islink(worker / ".mcp.json") and (worker / ".mcp.json").read_bytes() == b"ours"
    assert stat.S_IMODE(os.stat(worker / ".mcp.json").st_mode) == 0o600


def test_write_file_makes_missing_directories_and_open_dir_refuses_dot_dot(tmp_path):
    write_file(str(tmp_path), "a/b/c.json", b"{}")
    assert (tmp_path / "a" / "b" / "c.json").read_bytes() == b"{}"
    with pytest.raises(OSError):
        open_dir(str(tmp_path), "a/../..")
