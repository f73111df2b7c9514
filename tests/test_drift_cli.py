"""`python -m drift check`: exit codes through a real subprocess, golden report, errors, outputs."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest

from drift.cli import main

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "examples" / "drift"
REF = str(SAMPLE / "reference.csv")
CUR = str(SAMPLE / "current.jsonl")
STABLE = str(SAMPLE / "stable.parquet")


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m drift`` as a user would, from the repository root."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "drift", *args],
        cwd=ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def assert_close(actual: Any, expected: Any, path: str = "report") -> None:
    """Structural equality with a relative tolerance on floats (BLAS/libm may differ in the last bits)."""
    if isinstance(expected, float) and not isinstance(expected, bool):
        assert isinstance(actual, int | float) and math.isclose(actual, expected, rel_tol=1e-9, abs_tol=1e-12), (
            f"{path}: {actual} != {expected}"
        )
    elif isinstance(expected, dict):
        assert isinstance(actual, dict) and list(actual) == list(expected), f"{path}: keys differ"
        for key in expected:
            assert_close(actual[key], expected[key], f"{path}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), f"{path}: lengths differ"
        for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
            assert_close(a, e, f"{path}[{i}]")
    else:
        assert actual == expected, f"{path}: {actual!r} != {expected!r}"


# ---- exit codes through subprocesses ---------------------------------------------------------------


def test_exit_1_and_golden_report_on_the_sample(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    proc = run_cli("check", "--reference", REF, "--current", CUR, "--out", str(out))
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout == "" and proc.stderr == ""
    report = json.loads(out.read_text())
    assert_close(report, json.loads((SAMPLE / "expected_report.json").read_text()))
    # The facts the sample was built to show (see make_sample.py), independent of the golden file.
    drifted = {f["feature"] for f in report["features"] if f["drifted"]}
    assert drifted == {"amount", "country"}
    assert report["performance"]["drifted"] is True
    assert report["severity"] == "major" and report["n_reference"] == report["n_current"] == 2000


def test_exit_0_without_drift_markdown_to_stdout() -> None:
    proc = run_cli("check", "--reference", REF, "--current", STABLE, "--format", "markdown")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("## Drift check: no drift\n")
    assert proc.stderr == ""


def test_exit_2_on_bad_input_is_one_line_without_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("amount,age,country,device,prediction,label\n1.0,30,US,ios,1,1\nnan,31,US,ios,0,0\n")
    out = tmp_path / "report.json"
    proc = run_cli("check", "--reference", REF, "--current", str(bad), "--out", str(out))
    assert proc.returncode == 2
    assert (
        proc.stderr == f"drift: error: {bad}: column 'amount': NaN value in record 2 "
        "(1 NaN or infinite value(s) in records 1-2)\n"
    )
    assert not out.exists()


def test_exit_2_on_usage_error() -> None:
    proc = run_cli("check", "--reference", REF)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("drift: error: ")
    assert "--current" in proc.stderr


# ---- in-process: errors ----------------------------------------------------------------------------


def _fail(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    code = main(["check", *args])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("drift: error: "), err
    return err.strip()


def test_bad_inputs_each_give_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    assert _fail(capsys, "--reference", REF, "--current", str(empty)) == f"drift: error: {empty}: empty file"

    missing = tmp_path / "missing.parquet"
    pq.write_table(pa.table({"amount": [1.0, 2.0], "age": [3.0, 4.0]}), missing)
    err = _fail(capsys, "--reference", REF, "--current", str(missing))
    assert (
        err == f"drift: error: {missing}: missing column(s) 'country', 'device', 'prediction', 'label' "
        "present in the reference"
    )

    text = tmp_path / "text.csv"
    text.write_text("amount,age,country,device,prediction,label\n1.0,30,US,ios,1,1\nlots,31,US,ios,0,0\n")
    err = _fail(capsys, "--reference", REF, "--current", str(text))
    assert err == f"drift: error: {text}: column 'amount': non-numeric value 'lots' in a numeric column"

    # A column without values is not bad input but a data-quality finding (as 99.9% null would be):
    # exit 1, the column untested, its missing share 0% -> 100% in the report.
    nulls = tmp_path / "nulls.csv"
    nulls.write_text("amount,age,country,device,prediction,label\n1.0,,US,ios,1,1\n2.0,,GB,web,0,0\n")
    out = tmp_path / "nulls.json"
    assert main(["check", "--reference", REF, "--current", str(nulls), "--out", str(out)]) == 1
    report = json.loads(out.read_text())
    age = next(f for f in report["features"] if f["feature"] == "age")
    assert not age["drifted"] and age["note"] == "not tested: no values in the current data"
    missing = {m["column"]: m for m in report["data_quality"]["missing"]}
    assert missing["age"]["current_share"] == 1.0 and missing["age"]["drifted"]

    assert (
        _fail(capsys, "--reference", str(tmp_path / "nope.csv"), "--current", CUR)
        == f"drift: error: {tmp_path / 'nope.csv'}: no such file"
    )


def test_bad_config_and_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "drift.yaml"
    config.write_text("alpha: 7\n")
    err = _fail(capsys, "--reference", REF, "--current", CUR, "--config", str(config))
    assert str(config) in err and "alpha" in err
    err = _fail(capsys, "--reference", REF, "--current", CUR, "--config", str(tmp_path / "absent.yaml"))
    assert err == f"drift: error: {tmp_path / 'absent.yaml'}: no such file"
    with pytest.raises(SystemExit) as info:
        main(["check", "--reference", REF, "--current", CUR, "--chunk-rows", "0"])
    assert info.value.code == 2
    assert capsys.readouterr().err.startswith("drift: error: argument --chunk-rows: expected a positive integer")


def test_config_the_data_cannot_satisfy_is_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # A config asking for a column the current data lacks is the user's input, not a bug: exit 2 with
    # one line (exit 3 would page someone; exit 1 would open a remediation pull request).
    config = tmp_path / "drift.yaml"
    config.write_text("streaming:\n  metric: no-such-column\n")
    err = _fail(capsys, "--reference", REF, "--current", CUR, "--config", str(config))
    assert err == "drift: error: streaming.metric: no column 'no-such-column' in the current data"


def test_failed_run_keeps_the_previous_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report.json"
    out.write_text("previous")
    _fail(capsys, "--reference", REF, "--current", str(tmp_path / "absent.csv"), "--out", str(out))
    assert out.read_text() == "previous"
    # Missing folders are created; a file where a folder should be is an error.
    assert main(["check", "--reference", REF, "--current", CUR, "--out", str(tmp_path / "new" / "r.json")]) == 1
    assert json.loads((tmp_path / "new" / "r.json").read_text())["drifted"] is True
    err = _fail(capsys, "--reference", REF, "--current", CUR, "--out", str(out / "r.json"))
    assert err.startswith(f"drift: error: {out / 'r.json'}: cannot write:")


def test_remediate_subcommand_is_registered(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("drift.remediate_cli")
    with pytest.raises(SystemExit) as info:
        main(["remediate", "--help"])
    assert info.value.code == 0
    assert "--stack" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "remediate" in capsys.readouterr().out


# ---- in-process: outputs ---------------------------------------------------------------------------


def test_config_overrides_reach_detection(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "drift.json"
    config.write_text(
        json.dumps(
            {"features": {"amount": {"test": "ks"}, "age": {"threshold": 0.5}, "device": {"kind": "categorical"}}}
        )
    )
    out = tmp_path / "r.json"
    assert main(["check", "--reference", REF, "--current", STABLE, "--config", str(config), "--out", str(out)]) == 0
    features = {f["feature"]: f for f in json.loads(out.read_text())["features"]}
    assert features["amount"]["test"] == "ks" and features["amount"]["p_value"] is not None
    assert features["age"]["threshold"] == 0.5
    # A kind forced in the config decides how the reader decodes the column.
    config.write_text(json.dumps({"features": {"age": {"kind": "categorical"}}}))
    main(["check", "--reference", REF, "--current", STABLE, "--config", str(config), "--out", str(out)])
    features = {f["feature"]: f for f in json.loads(out.read_text())["features"]}
    assert features["age"]["kind"] == "categorical" and features["age"]["test"] in ("chisquare", "jensenshannon")


def test_plots_and_markdown_links(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report.md"
    code = main(
        [
            "check",
            "--reference",
            REF,
            "--current",
            CUR,
            "--format",
            "markdown",
            "--out",
            str(out),
            "--plots",
            str(tmp_path / "plots"),
        ]
    )
    assert code == 1
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == ["amount.png", "country.png", "prediction.png"]
    md = out.read_text()
    assert "![amount](plots/amount.png)" in md and "![country](plots/country.png)" in md
    assert "![prediction](plots/prediction.png)" in md


def test_columns_option_limits_the_features(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["check", "--reference", REF, "--current", CUR, "--columns", "age,device"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0
    assert [f["feature"] for f in report["features"]] == ["age", "device"]


def test_progress_bar_only_when_asked_or_on_a_terminal(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--reference", REF, "--current", STABLE, "--out", str(tmp_path / "a.json")]) == 0
    assert capsys.readouterr().err == ""  # stderr is not a terminal under pytest
    assert (
        main(["check", "--reference", REF, "--current", STABLE, "--out", str(tmp_path / "b.json"), "--progress"]) == 0
    )
    assert "reading stable.parquet" in capsys.readouterr().err


def test_sample_script_is_reproducible(tmp_path: Path) -> None:
    sys.path.insert(0, str(SAMPLE))
    try:
        import make_sample
    finally:
        sys.path.remove(str(SAMPLE))
    make_sample.main(str(tmp_path))
    for name in ("reference.csv", "current.jsonl"):
        assert (tmp_path / name).read_bytes() == (SAMPLE / name).read_bytes(), name
    assert pq.read_table(tmp_path / "stable.parquet").equals(pq.read_table(SAMPLE / "stable.parquet"))


# ---- object store through the CLI -------------------------------------------------------------------


def test_s3_inputs_through_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("moto.server")
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        for key, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL_S3": endpoint,
        }.items():
            monkeypatch.setenv(key, value)
        monkeypatch.delenv("DRIFT_S3_ENDPOINT_URL", raising=False)
        client = boto3.client("s3", endpoint_url=endpoint)
        client.create_bucket(Bucket="inference-logs")
        client.upload_file(REF, "inference-logs", "fraud/reference.csv")
        client.upload_file(CUR, "inference-logs", "fraud/current.jsonl")
        out = tmp_path / "r.json"
        code = main(
            [
                "check",
                "--reference",
                "s3://inference-logs/fraud/reference.csv",
                "--current",
                "s3://inference-logs/fraud/current.jsonl",
                "--out",
                str(out),
            ]
        )
        assert code == 1, capsys.readouterr().err
        assert_close(json.loads(out.read_text()), json.loads((SAMPLE / "expected_report.json").read_text()))
        err = _fail(
            capsys,
            "--reference",
            "s3://inference-logs/fraud/reference.csv",
            "--current",
            "s3://inference-logs/fraud/absent.jsonl",
        )
        assert err == "drift: error: s3://inference-logs/fraud/absent.jsonl: no such file"
    finally:
        server.stop()


def test_numeric_only_table_in_memory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(11)
    ref, cur = tmp_path / "r.parquet", tmp_path / "c.parquet"
    pq.write_table(pa.table({"x": rng.normal(0, 1, 5000), "y": rng.normal(0, 1, 5000)}), ref)
    pq.write_table(pa.table({"x": rng.normal(0.5, 1, 5000), "y": rng.normal(0, 1, 5000)}), cur)
    assert main(["check", "--reference", str(ref), "--current", str(cur)]) == 1
    report = json.loads(capsys.readouterr().out)
    assert [f["drifted"] for f in report["features"]] == [True, False]


# ---- chunked (bounded-memory) mode --------------------------------------------------------------------


def _mixed_tables(tmp_path: Path, rows: int = 20_000) -> tuple[Path, Path]:
    rng = np.random.default_rng(5)
    ref, cur = tmp_path / "ref.parquet", tmp_path / "cur.parquet"
    cats = np.array(["a", "b", "c", "d"])
    pq.write_table(
        pa.table({"x": rng.normal(0, 1, rows), "y": rng.exponential(1, rows), "c": cats[rng.integers(0, 4, rows)]}),
        ref,
        row_group_size=2_000,
    )
    pq.write_table(
        pa.table(
            {
                "x": rng.normal(0.3, 1, rows),
                "y": rng.exponential(1, rows),
                "c": rng.choice(cats, rows, p=[0.4, 0.2, 0.2, 0.2]),
            }
        ),
        cur,
        row_group_size=2_000,
    )
    return ref, cur


def test_chunked_mode_agrees_with_in_memory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ref, cur = _mixed_tables(tmp_path)
    config = tmp_path / "ks.json"
    config.write_text(json.dumps({"tests": {"numeric_large": "ks", "categorical_large": "chisquare"}}))
    common = ["check", "--reference", str(ref), "--current", str(cur), "--config", str(config)]
    assert main([*common, "--out", str(tmp_path / "exact.json")]) == 1
    assert (
        main(
            [
                *common,
                "--out",
                str(tmp_path / "binned.json"),
                "--chunked",
                "--chunk-rows",
                "2000",
                "--plots",
                str(tmp_path / "plots"),
            ]
        )
        == 1
    )
    exact = {f["feature"]: f for f in json.loads((tmp_path / "exact.json").read_text())["features"]}
    binned_report = json.loads((tmp_path / "binned.json").read_text())
    binned = {f["feature"]: f for f in binned_report["features"]}
    assert binned_report["binned"] is True and binned_report["n_reference"] == 20_000
    assert {n for n, f in exact.items() if f["drifted"]} == {n for n, f in binned.items() if f["drifted"]} == {"x", "c"}
    for name in ("x", "y"):
        # The documented bound: the exact KS statistic lies in [binned, binned + error_bound].
        lo, bound = binned[name]["statistic"], binned[name]["error_bound"]
        assert lo - 1e-12 <= exact[name]["statistic"] <= lo + bound + 1e-12, name
        assert bound < 0.01
    assert binned["c"]["statistic"] == pytest.approx(exact["c"]["statistic"], rel=1e-9)  # counts are exact
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == ["c.png", "x.png"]


def test_memory_budget_switches_to_chunks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ref, cur = _mixed_tables(tmp_path, rows=5_000)
    assert main(["check", "--reference", str(ref), "--current", str(cur), "--memory-budget", "1"]) == 1
    assert json.loads(capsys.readouterr().out)["binned"] is False  # 2 x 5,000 rows fit in 1 MiB
    ref, cur = _mixed_tables(tmp_path, rows=60_000)
    assert main(["check", "--reference", str(ref), "--current", str(cur), "--memory-budget", "1"]) == 1
    assert json.loads(capsys.readouterr().out)["binned"] is True


def test_chunked_mode_checks_inputs_too(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ref, cur = _mixed_tables(tmp_path, rows=5_000)
    bad = tmp_path / "bad.parquet"
    table = pq.read_table(cur)
    x = table.column("x").to_numpy().copy()
    x[4_321] = np.inf
    pq.write_table(table.set_column(0, "x", pa.array(x)), bad, row_group_size=1_000)
    err = _fail(capsys, "--reference", str(ref), "--current", str(bad), "--chunked", "--chunk-rows", "1000")
    assert (
        err == f"drift: error: {bad}: column 'x': infinite value in record 4322 "
        "(1 NaN or infinite value(s) in records 4001-5000)"
    )


def _peak_rss_mib(*args: str) -> float:
    # VmHWM is this process image's peak RSS; ru_maxrss would include the forking pytest process.
    code = (
        "import re, sys; from drift.cli import main; rc = main(sys.argv[1:]); "
        "print(int(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1)) / 1024); "
        "sys.exit(0 if rc in (0, 1) else rc)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=300,
        check=True,
    )
    return float(proc.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc for VmHWM")
def test_chunked_mode_bounds_memory(tmp_path: Path) -> None:
    # 2 x 1.5M rows x 4 float64 columns = 96 MiB of values; chunks of 50k rows are 1.6 MiB.
    rng = np.random.default_rng(9)
    rows = 1_500_000
    paths = []
    for name, shift in (("ref", 0.0), ("cur", 0.1)):
        path = tmp_path / f"{name}.parquet"
        pq.write_table(
            pa.table({f"v{i}": rng.normal(shift, 1, rows) for i in range(4)}),
            path,
            row_group_size=50_000,
            compression="none",
        )
        paths.append(str(path))
    common = ["check", "--reference", paths[0], "--current", paths[1], "--out", str(tmp_path / "r.json")]
    in_memory = _peak_rss_mib(*common)
    chunked = _peak_rss_mib(*common, "--chunked", "--chunk-rows", "50000")
    assert in_memory - chunked > 60, (in_memory, chunked)


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_progress_bar_appears_when_stderr_is_a_terminal(tmp_path: Path) -> None:
    import fcntl
    import pty
    import struct
    import termios

    leader, follower = pty.openpty()
    # A new pseudo-terminal is 0 columns wide, where tqdm draws nothing; give it a real size.
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    try:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "drift",
                "check",
                "--reference",
                REF,
                "--current",
                STABLE,
                "--out",
                str(tmp_path / "r.json"),
            ],
            cwd=ROOT,
            stderr=follower,
            stdout=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            timeout=120,
            check=False,
        )
        os.close(follower)
        follower = -1
        seen = b""
        while True:
            try:
                data = os.read(leader, 65536)
            except OSError:  # EIO once the terminal's other end is closed and drained
                break
            if not data:
                break
            seen += data
    finally:
        if follower != -1:
            os.close(follower)
        os.close(leader)
    assert proc.returncode == 0
    assert b"reading reference.csv" in seen and b"reading stable.parquet" in seen


# ---- local Parquet read column by column, inside detect() ---------------------------------------------


def _log_tables(tmp_path: Path, rows: int = 6_000) -> dict[str, Path]:
    rng = np.random.default_rng(21)
    paths: dict[str, Path] = {}
    for name, shift, err in (("ref", 0.0, 0.1), ("cur", 0.4, 0.25)):
        label = rng.integers(0, 2, rows)
        cols = {
            "timestamp": [f"2026-11-01T{i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}Z" for i in range(rows)],
            "model_id": ["fraud-scorer"] * rows,
            "model_version": ["2.2.0"] * rows,
            "x": rng.normal(shift, 1, rows),
            "y": rng.exponential(1, rows),
            "c": rng.choice(["a", "b", "c"], rows, p=[0.5, 0.3, 0.2]),
            "prediction": np.where(rng.random(rows) < err, 1 - label, label),
            "label": label,
        }
        table = pa.table(cols)
        pq.write_table(table, tmp_path / f"{name}.parquet", row_group_size=1_000)
        pcsv.write_csv(table, tmp_path / f"{name}.csv")
        paths[name], paths[f"{name}_csv"] = tmp_path / f"{name}.parquet", tmp_path / f"{name}.csv"
    return paths


def test_lazy_parquet_report_equals_eager_reading(tmp_path: Path) -> None:
    p = _log_tables(tmp_path)
    out = {kind: tmp_path / f"{kind}.json" for kind in ("lazy", "csv", "progress")}
    assert (
        main(
            [
                "check",
                "--reference",
                str(p["ref"]),
                "--current",
                str(p["cur"]),
                "--out",
                str(out["lazy"]),
                "--plots",
                str(tmp_path / "plots"),
            ]
        )
        == 1
    )
    assert (
        main(["check", "--reference", str(p["ref_csv"]), "--current", str(p["cur_csv"]), "--out", str(out["csv"])]) == 1
    )
    assert (
        main(
            [
                "check",
                "--reference",
                str(p["ref"]),
                "--current",
                str(p["cur"]),
                "--out",
                str(out["progress"]),
                "--progress",
            ]
        )
        == 1
    )  # with a progress bar the files are read up front
    lazy, csv, progress = (json.loads(out[k].read_text()) for k in ("lazy", "csv", "progress"))
    assert lazy == csv == progress
    assert [f["feature"] for f in lazy["features"]] == ["x", "y", "c"]
    assert lazy["n_reference"] == lazy["n_current"] == 6_000
    assert lazy["performance"]["metric"] == "accuracy" and lazy["performance"]["drifted"]
    assert {f["feature"] for f in lazy["features"] if f["drifted"]} == {"x"}
    assert sorted(f.name for f in (tmp_path / "plots").iterdir()) == ["x.png"]  # plots read the column again


def test_lazy_parquet_errors_are_the_readers_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = _log_tables(tmp_path, rows=3_000)
    table = pq.read_table(p["cur"])
    y = table.column("y").to_numpy().copy()
    y[2_345] = np.nan
    bad = tmp_path / "bad.parquet"
    pq.write_table(table.set_column(table.schema.get_field_index("y"), "y", pa.array(y)), bad, row_group_size=1_000)
    err = _fail(capsys, "--reference", str(p["ref"]), "--current", str(bad))
    assert err.startswith(f"drift: error: {bad}: column 'y': NaN value in record 2346 (1 NaN or infinite value(s)")
    empty = tmp_path / "null.parquet"
    pq.write_table(table.set_column(table.schema.get_field_index("c"), "c", pa.nulls(3_000, pa.string())), empty)
    out = tmp_path / "null.json"
    assert main(["check", "--reference", str(p["ref"]), "--current", str(empty), "--out", str(out)]) == 1
    quality = json.loads(out.read_text())["data_quality"]
    assert [(m["column"], m["current_share"], m["drifted"]) for m in quality["missing"]] == [("c", 1.0, True)]
    assert not (tmp_path / "r.json").exists()
