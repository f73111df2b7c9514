"""``drift window-size`` and ``drift stage-window`` (drift/window_size.py): the workflow's engine choice.

A window is sized from its listing with the check's partition pruning, without opening an object; the
engine is ``spark`` only above ``--max-bytes``; a staged copy holds the same records for the same window.
Bad input is exit 2 with one line; a size is never exit 1 (not a finding).
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import fsspec.implementations.local as fs_local
import pytest

import drift.cli
from drift import capture
from drift.window_size import measure, stage

SINCE, UNTIL = "2026-11-30T00:00:00Z", "2026-12-01T00:00:00Z"


def _records(hour: str, n: int, start: int = 0) -> bytes:
    lines = []
    for i in range(n):
        record = {"request_id": f"r{start + i}", "timestamp": f"2026-11-30T{hour}:{i % 60:02d}:00Z",
                  "model_version": "1", "prediction": 0.5, "x": i}  # fmt: skip
        lines.append(json.dumps(record) + "\n")
    return "".join(lines).encode()


def _capture(root: Path) -> dict[str, int]:
    """A Kubernetes-writer layout (dt=/hour=, .jsonl.gz) and Cloud Logging hour files; sizes in the window."""
    sizes = {}
    for hour in ("08", "09"):
        part = root / "dt=2026-11-30" / f"hour={hour}"
        part.mkdir(parents=True)
        (part / "part-0.jsonl.gz").write_bytes(gzip.compress(_records(hour, 50, start=int(hour) * 100)))
        sizes[f"dt=2026-11-30/hour={hour}/part-0.jsonl.gz"] = (part / "part-0.jsonl.gz").stat().st_size
    old = root / "dt=2026-10-01" / "hour=08"
    old.mkdir(parents=True)
    (old / "part-0.jsonl.gz").write_bytes(gzip.compress(_records("08", 500)))  # outside: pruned, not listed
    sink = root / "logs" / "2026" / "11" / "30"
    sink.mkdir(parents=True)
    (sink / "10:00:00_10:59:59_S0.json").write_bytes(_records("10", 5, start=100))
    sizes["logs/2026/11/30/10:00:00_10:59:59_S0.json"] = (sink / "10:00:00_10:59:59_S0.json").stat().st_size
    return sizes


def _window() -> capture.Window:
    return capture.Window.resolve(SINCE, UNTIL, None)


def test_size_is_the_listing_of_the_windows_partitions_and_no_object_is_opened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sizes = _capture(tmp_path / "cap")

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("window-size opened an object")

    monkeypatch.setattr(fs_local.LocalFileSystem, "_open", refuse)
    found = measure(str(tmp_path / "cap"), _window(), max_bytes=sum(sizes.values()))
    assert (found["files"], found["bytes"]) == (3, sum(sizes.values()))
    assert found["pruned"] >= 1 and found["engine"] == "local"  # at the limit: local
    assert measure(str(tmp_path / "cap"), _window(), max_bytes=sum(sizes.values()) - 1)["engine"] == "spark"
    assert "engine" not in measure(str(tmp_path / "cap"), _window())


def test_cli_prints_json_or_github_outputs_and_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sizes = _capture(tmp_path / "cap")
    args = ["window-size", "--capture", str(tmp_path / "cap"), "--since", SINCE, "--until", UNTIL]
    assert drift.cli.main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out == {"capture": str(tmp_path / "cap"), "since": SINCE, "until": UNTIL, "files": 3,
                   "bytes": sum(sizes.values()), "pruned": out["pruned"]}  # fmt: skip
    assert drift.cli.main([*args, "--max-bytes", "10", "--format", "github"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [f"since={SINCE}", f"until={UNTIL}", "files=3", f"bytes={sum(sizes.values())}",
                     f"pruned={out['pruned']}", "max_bytes=10", "engine=spark"]  # fmt: skip


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--capture", "/no/such/prefix", "--window", "24h"], "/no/such/prefix: no such capture location"),
        (["--window", "24h", "--since", SINCE], "--window: give either --window or --since/--until"),
        (["--window", "1 day"], "--window: expected a positive duration"),
        (["--since", SINCE], "--since: a capture window needs --since and --until"),
        (["--window", "24h", "--max-bytes", "1GiB"], "argument --max-bytes: expected a whole number of bytes"),
    ],
)
def test_bad_input_is_exit_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    _capture(tmp_path / "cap")
    args = ["window-size", "--capture", str(tmp_path / "cap"), *extra]
    if extra[0] == "--capture":
        args = ["window-size", *extra]
    try:
        code = drift.cli.main(args)
    except SystemExit as exc:  # argparse's usage errors
        code = int(exc.code or 0)
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


def test_staged_copy_has_the_same_records_for_the_window_and_no_colon_names(tmp_path: Path) -> None:
    _capture(tmp_path / "cap")
    copied = stage(str(tmp_path / "cap"), _window(), tmp_path / "staged")
    assert copied["files"] == 3
    names = sorted(str(p.relative_to(tmp_path / "staged")) for p in (tmp_path / "staged").rglob("*") if p.is_file())
    assert names == ["dt=2026-11-30/hour=08/part-0.jsonl.gz", "dt=2026-11-30/hour=09/part-0.jsonl.gz",
                     "logs/2026/11/30/10-00-00_10-59-59_S0.json"]  # fmt: skip
    original = list(capture.iter_records(str(tmp_path / "cap"), _window()))
    again = list(capture.iter_records(str(tmp_path / "staged"), _window()))
    assert len(original) == 105 and sorted(map(json.dumps, again)) == sorted(map(json.dumps, original))


def test_stage_refuses_a_folder_that_is_not_empty(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _capture(tmp_path / "cap")
    (tmp_path / "staged").mkdir()
    (tmp_path / "staged" / "keep.txt").write_text("mine")
    args = ["stage-window", "--capture", str(tmp_path / "cap"), "--since", SINCE, "--until", UNTIL]
    assert drift.cli.main([*args, "--to", str(tmp_path / "staged")]) == 2
    assert "--to" in capsys.readouterr().err and (tmp_path / "staged" / "keep.txt").read_text() == "mine"
    assert drift.cli.main([*args, "--to", str(tmp_path / "new")]) == 0
    assert json.loads(capsys.readouterr().out)["files"] == 3
