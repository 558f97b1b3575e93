"""``--output`` onto things that are not regular files: symbolic links, named pipes, devices, empty paths."""

from __future__ import annotations

import os
import stat
import threading

import pytest

from pctce_cli import atomic
from pctce_cli.errors import UsageError


def test_a_symlink_is_followed_and_stays_a_link(tmp_path):
    target = tmp_path / "real.json"
    target.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    atomic.write_output(link, "new", "--output")
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.json", "real.json"]  # no temporary left


def test_a_dangling_symlink_creates_its_target(tmp_path):
    link = tmp_path / "link.json"
    link.symlink_to(tmp_path / "made.json")
    atomic.write_output(link, "x", "--output")
    assert link.is_symlink() and (tmp_path / "made.json").read_text() == "x"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")
def test_a_named_pipe_is_written_through(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    atomic.write_output(fifo, "through the pipe", "--output")
    reader.join(timeout=10)
    assert got == [b"through the pipe"]
    assert stat.S_ISFIFO(fifo.lstat().st_mode)  # still a pipe, not a file renamed onto it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe"]


@pytest.mark.skipif(not os.path.exists("/dev/null"), reason="no /dev/null")
def test_a_character_device_is_written_through_not_replaced():
    before = os.stat("/dev/null")
    atomic.write_output("/dev/null", "discarded", "--output")
    after = os.stat("/dev/null")
    assert stat.S_ISCHR(after.st_mode) and (after.st_ino, after.st_rdev) == (before.st_ino, before.st_rdev)
    assert not any(p.name.startswith(".null.") for p in os.scandir("/dev"))


def test_a_regular_file_is_still_replaced_atomically(tmp_path):
    f = tmp_path / "out.txt"
    f.write_text("old")
    inode = f.stat().st_ino
    atomic.write_output(f, "new", "--output")
    assert f.read_text() == "new" and f.stat().st_ino != inode  # renamed onto, not rewritten in place


@pytest.mark.parametrize("path", ["", "  "])
def test_an_empty_path_is_refused(path):
    with pytest.raises(UsageError, match=r"^--output '': expected a file path$"):
        atomic.write_output(path, "x", "--output")


def test_a_directory_is_refused(tmp_path):
    with pytest.raises(UsageError, match=r"is a directory, expected a file path$"):
        atomic.write_output(tmp_path, "x", "--out")


def test_dev_stdout_onto_a_pipe_reaches_the_reader(tmp_path):
    """``--output /dev/stdout`` with stdout a pipe: /dev/stdout is a link to a link to ``pipe:[…]``, written through."""
    import subprocess
    import sys

    code = "from pctce_cli import atomic; atomic.write_output('/dev/stdout', 'piped\\n', '--output')"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                       env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert r.returncode == 0, r.stderr
    assert r.stdout == "piped\n"
    assert sorted(tmp_path.iterdir()) == []
