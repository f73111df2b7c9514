"""inferops.atomic.write_atomic: whole files or nothing, and never a device node replaced."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from inferops.atomic import write_atomic


def test_replaces_whole_file_keeping_mode(tmp_path: Path) -> None:
    p = tmp_path / "plan.json"
    p.write_text("old")
    os.chmod(p, 0o640)
    write_atomic(p, "new")
    assert p.read_text() == "new" and stat.S_IMODE(p.stat().st_mode) == 0o640
    assert [x.name for x in tmp_path.iterdir()] == ["plan.json"]


def test_parents_only_on_request(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        write_atomic(tmp_path / "a" / "b.json", b"x")
    assert list(tmp_path.iterdir()) == []
    write_atomic(tmp_path / "a" / "b.json", b"x", make_parents=True)
    assert (tmp_path / "a" / "b.json").read_bytes() == b"x"


def test_a_fifo_is_written_through_not_replaced(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        write_atomic(fifo, "through the pipe")
        assert os.read(reader, 100) == b"through the pipe"
    finally:
        os.close(reader)
    assert stat.S_ISFIFO(fifo.stat().st_mode)


def test_dev_null_stays_a_device() -> None:
    write_atomic("/dev/null", "discarded")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
