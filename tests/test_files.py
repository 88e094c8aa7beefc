"""Durable output: atomic writes honour the umask, leave no debris on failure, never clobber with `exclusive`,
and only a dead writer's temp files are cleaned."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from pseval.files import (
    OutputError,
    check_writable,
    remove_stale_temp_files,
    temp_files,
    temp_path,
    write_atomic,
    write_json_atomic,
)


def test_files_honour_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        write_json_atomic({"a": 1}, tmp_path / "r.json")
    finally:
        os.umask(old)
    assert (tmp_path / "r.json").stat().st_mode & 0o777 == 0o644


def test_failed_write_leaves_no_debris_and_keeps_the_old_file(tmp_path):
    target = tmp_path / "r.json"
    write_json_atomic({"v": 1}, target)

    def disk_full(fh):
        fh.write("partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OutputError, match="no space left on device.*finished results are kept"):
        write_atomic(target, disk_full)
    assert target.read_text() == '{\n  "v": 1\n}' and temp_files(tmp_path) == []

    def crash(fh):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_atomic(tmp_path / "other.json", crash)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]


def test_exclusive_write_never_replaces(tmp_path):
    target = tmp_path / "cell.json"
    assert write_json_atomic({"first": True}, target, exclusive=True)
    assert not write_json_atomic({"first": False}, target, exclusive=True)
    assert '"first": true' in target.read_text() and temp_files(tmp_path) == []


def test_only_dead_writers_temp_files_are_removed(tmp_path):
    dead_pid = int(Path("/proc/sys/kernel/pid_max").read_text()) + 1  # no process can have it
    mine = temp_path(tmp_path / "live.json")
    mine.write_text("being written")
    stale = temp_path(tmp_path / "killed.json")
    stale = stale.with_name(stale.name.replace(f".pid{os.getpid()}.", f".pid{dead_pid}."))
    stale.write_text("debris")
    elsewhere = tmp_path / f".other.json.node-b.pid{dead_pid}.0123abcd.tmp"  # another host's live writer
    elsewhere.write_text("being written on node-b")
    assert remove_stale_temp_files(tmp_path) == 1
    assert mine.exists() and not stale.exists() and elsewhere.exists()


def test_check_writable_names_the_culprit(tmp_path):
    f = tmp_path / "a-file"
    f.write_text("")
    with pytest.raises(OutputError, match="a-file is not a folder"):
        check_writable(f / "x" / "r.json", is_dir=False)
    with pytest.raises(OutputError, match="exists and is a file"):
        check_writable(f, is_dir=True)
    check_writable(tmp_path / "new" / "deeper", is_dir=True)  # creatable: fine, and nothing is created
    assert not (tmp_path / "new").exists()
