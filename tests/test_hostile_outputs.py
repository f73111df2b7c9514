"""Issue 11, item 10: drift plots of look-alike feature names stay distinct; outputs respect the umask."""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from drift import render
from drift.cli import main as drift_main
from inferops.atomic import current_umask, write_atomic

LOOKALIKES = ["a b", "a_b", "a/b", "A_B", "a(b)"]


def test_lookalike_feature_names_get_distinct_plot_files() -> None:
    names = {render.plot_filename(n) for n in LOOKALIKES}
    assert len(names) == len(LOOKALIKES)
    assert all(re.fullmatch(r"[A-Za-z0-9_.-]+\.png", n) for n in names)
    # Case-insensitive file systems (macOS, Windows) must not merge them either.
    assert len({n.lower() for n in names}) == len(LOOKALIKES)


def test_drift_check_writes_one_plot_per_feature_and_links_each(tmp_path: Path) -> None:
    rng = np.random.default_rng(10)
    n = 400
    ref = {name: rng.normal(0, 1, n) for name in LOOKALIKES}
    cur = {name: rng.normal(3 + i, 1, n) for i, name in enumerate(LOOKALIKES)}  # every feature drifts
    pq.write_table(pa.table(ref), tmp_path / "ref.parquet")
    pq.write_table(pa.table(cur), tmp_path / "cur.parquet")
    out = tmp_path / "out dir" / "report.md"
    code = drift_main(
        [
            "check",
            "--reference",
            str(tmp_path / "ref.parquet"),
            "--current",
            str(tmp_path / "cur.parquet"),
            "--format",
            "markdown",
            "--out",
            str(out),
            "--plots",
            str(tmp_path / "out dir" / "plots (1)"),
        ]
    )
    assert code == 1
    pngs = sorted((tmp_path / "out dir" / "plots (1)").glob("*.png"))
    assert len(pngs) == len(LOOKALIKES)
    links = re.findall(r"!\[[^\n]*?\]\(([^)\s]+)\)", out.read_text())
    assert len(links) == len(LOOKALIKES) and len(set(links)) == len(LOOKALIKES)
    from urllib.parse import unquote

    # Every link resolves, relative to the report, to one of the files written.
    assert {(out.parent / unquote(link)).resolve() for link in links} == {p.resolve() for p in pngs}


@pytest.fixture
def umask_027() -> Iterator[None]:
    old = os.umask(0o027)
    try:
        yield
    finally:
        os.umask(old)


def test_current_umask_reads_without_changing(umask_027: None) -> None:
    assert current_umask() == 0o027
    assert current_umask() == 0o027


def test_new_files_respect_the_umask(tmp_path: Path, umask_027: None) -> None:
    target = tmp_path / "report.json"
    write_atomic(target, "{}")
    assert stat.S_IMODE(target.stat().st_mode) == 0o640  # 0666 & ~027; mkstemp alone gave 0600
    # a replaced file keeps its own mode, whatever the umask
    target.chmod(0o604)
    write_atomic(target, "{}")
    assert stat.S_IMODE(target.stat().st_mode) == 0o604


def test_drift_report_and_plots_respect_the_umask(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    pq.write_table(pa.table({"x": rng.normal(0, 1, 300)}), tmp_path / "ref.parquet")
    pq.write_table(pa.table({"x": rng.normal(4, 1, 300)}), tmp_path / "cur.parquet")
    old = os.umask(0o002)  # a shared group directory: the group must be able to write the report
    try:
        argv = ["check", "--reference", str(tmp_path / "ref.parquet"), "--current", str(tmp_path / "cur.parquet")]
        code = drift_main([*argv, "--out", str(tmp_path / "r.json"), "--plots", str(tmp_path / "p")])
    finally:
        os.umask(old)
    assert code == 1
    assert stat.S_IMODE((tmp_path / "r.json").stat().st_mode) == 0o664
    (png,) = (tmp_path / "p").glob("*.png")
    assert stat.S_IMODE(png.stat().st_mode) == 0o664
