"""`drift check --engine spark` against the local engine, on PySpark in local mode (``local[2]``).

Same data, same verdicts: every feature's (and the prediction's) test and verdict are equal, every
statistic is within the binned path's documented bound (docs/drift.md, "Binned path": the exact KS lies
in ``[statistic, statistic + error_bound]``, the exact Wasserstein within ``error_bound``; categorical
tests are exact), for drift and no-drift windows, numeric and categorical columns with missing values,
small (KS, chi-square) and large (Wasserstein, Jensen-Shannon) samples, Parquet, JSON Lines and CSV.

One SparkSession serves the whole test session (UI off, 2 shuffle partitions); a timer cancels any Spark
job still running after JOB_TIMEOUT seconds, so no test can hang on the cluster.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest

try:
    import pyspark  # noqa: F401
except ImportError:  # pragma: no cover - CI installs requirements-spark.txt (make test)
    if os.environ.get("CI"):
        raise
    pytest.skip("pyspark is not installed (pip install -r requirements-spark.txt)", allow_module_level=True)

import drift.cli
from drift import spark as drift_spark

JOB_TIMEOUT = 240.0


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    session = drift_spark.local_session(
        master="local[2]",
        app_name="inferops-drift-tests",
        conf={
            "spark.sql.shuffle.partitions": "2",
            "spark.driver.memory": "1g",
            "spark.ui.showConsoleProgress": "false",
        },
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(autouse=True)
def _bounded(spark: Any) -> Iterator[None]:
    timer = threading.Timer(JOB_TIMEOUT, spark.sparkContext.cancelAllJobs)
    timer.daemon = True
    timer.start()
    yield
    timer.cancel()


# ---- data ----------------------------------------------------------------------------------------------


def _window(seed: int, n: int, drift: bool) -> pa.Table:
    """Inference records: 3 numeric features, 2 categorical, prediction (score) and label, with nulls."""
    rng = np.random.default_rng(seed)
    amount = rng.lognormal(0.5 if drift else 0.0, 1.0, n)
    age = rng.integers(18, 80, n).astype(np.float64)
    score = rng.normal(0.0, 1.0, n)
    shares = [0.2, 0.2, 0.3, 0.3] if drift else [0.4, 0.3, 0.2, 0.1]
    country = rng.choice(["DE", "FR", "US", "NL"], n, p=shares).astype(object)
    if drift:
        country[rng.random(n) < 0.1] = "BR"  # a category the reference never saw
    device = rng.choice(["ios", "android", "web"], n).astype(object)
    label = rng.integers(0, 2, n).astype(np.float64)
    signal = (label - 0.5) * (0.6 if drift else 2.0)
    prediction = 1.0 / (1.0 + np.exp(-(signal + rng.normal(0, 1, n))))
    age_mask = rng.random(n) < 0.07
    device[rng.random(n) < 0.05] = None
    return pa.table(
        {
            "timestamp": pa.array([f"2026-01-12T05:{i // 600 % 60:02d}:{i % 60:02d}Z" for i in range(n)]),
            "model_id": pa.array(["fraud"] * n),
            "amount": pa.array(amount),
            "age": pa.array(age, mask=age_mask),
            "score": pa.array(score),
            "country": pa.array(country.tolist(), pa.string()),
            "device": pa.array(device.tolist(), pa.string()),
            "prediction": pa.array(prediction),
            "label": pa.array(label),
        }
    )


def _write(table: pa.Table, path: Path) -> str:
    if path.suffix == ".parquet":
        pq.write_table(table, path, row_group_size=max(1, table.num_rows // 3))
    elif path.suffix == ".csv":
        pcsv.write_csv(table, path, pcsv.WriteOptions(quoting_style="needed"))
    else:
        with open(path, "w") as handle:
            for row in table.to_pylist():
                handle.write(json.dumps(row) + "\n")
    return str(path)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("spark-data")
    out = {}
    for size, n, seed in (("large", 6000, 1), ("small", 600, 4)):
        out[f"{size}-ref.parquet"] = _write(_window(seed, n, False), root / f"{size}-ref.parquet")
        out[f"{size}-same.parquet"] = _write(_window(seed + 10, n, False), root / f"{size}-same.parquet")
        out[f"{size}-drift.parquet"] = _write(_window(seed + 20, n, True), root / f"{size}-drift.parquet")
    for suffix in (".csv", ".jsonl"):
        out[f"ref{suffix}"] = _write(_window(1, 3000, False), root / f"ref{suffix}")
        out[f"drift{suffix}"] = _write(_window(3, 3000, True), root / f"drift{suffix}")
    return out


# ---- comparing the engines -----------------------------------------------------------------------------


def _run(engine: str, ref: str, cur: str, tmp: Path, *extra: str) -> tuple[int, dict[str, Any], str]:
    out = tmp / f"report-{engine}.json"
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = drift.cli.main(
            ["check", "--engine", engine, "--reference", ref, "--current", cur, "--out", str(out), *extra]
        )
    report = json.loads(out.read_text()) if out.exists() and code in (0, 1) else {}
    return code, report, err.getvalue()


def _assert_within_bound(spark_f: dict[str, Any], local_f: dict[str, Any]) -> None:
    name = local_f["feature"]
    assert spark_f["feature"] == name
    assert spark_f["test"] == local_f["test"], name
    assert spark_f["drifted"] == local_f["drifted"], (name, spark_f, local_f)
    assert spark_f["n_reference"] == local_f["n_reference"] and spark_f["n_current"] == local_f["n_current"], name
    s, exact, bound = spark_f["statistic"], local_f["statistic"], spark_f["error_bound"]
    if spark_f["test"] == "ks":
        assert s - 1e-12 <= exact <= s + bound + 1e-12, (name, s, exact, bound)
        # at most the largest bin mass: about 1/1000 for continuous columns, a value's share for discrete
        # ones (age: 62 values, edges on them)
        assert bound <= 0.03
    elif spark_f["test"] == "wasserstein":
        assert abs(s - exact) <= bound + 1e-12, (name, s, exact, bound)
    else:  # categorical tests are exact
        assert bound is None
        assert s == pytest.approx(exact, rel=1e-9, abs=1e-12), name
        if local_f["p_value"] is not None:
            assert spark_f["p_value"] == pytest.approx(local_f["p_value"], rel=1e-6, abs=1e-300), name


def _compare(ref: str, cur: str, tmp: Path, *extra: str) -> tuple[dict[str, Any], dict[str, Any]]:
    code_l, local, err_l = _run("local", ref, cur, tmp, *extra)
    code_s, spark, err_s = _run("spark", ref, cur, tmp, *extra)
    assert code_l in (0, 1), err_l
    assert code_s == code_l, err_s
    assert [f["feature"] for f in spark["features"]] == [f["feature"] for f in local["features"]]
    for spark_f, local_f in zip(spark["features"], local["features"], strict=True):
        _assert_within_bound(spark_f, local_f)
    _assert_within_bound(spark["prediction"], local["prediction"])
    assert (spark["drifted"], spark["severity"], spark["drift_kinds"]) == (
        local["drifted"],
        local["severity"],
        local["drift_kinds"],
    )
    assert (spark["n_reference"], spark["n_current"]) == (local["n_reference"], local["n_current"])
    sp, lp = spark["performance"], local["performance"]
    assert (sp["metric"], sp["test"], sp["drifted"]) == (lp["metric"], lp["test"], lp["drifted"])
    assert sp["reference"] == pytest.approx(lp["reference"], abs=0.002)  # AUC on score bins: within 0.002 here
    assert sp["current"] == pytest.approx(lp["current"], abs=0.002)
    assert spark["binned"] is True
    return spark, local


@pytest.mark.parametrize("size", ["large", "small"])
def test_same_verdicts_without_drift(spark: Any, data: dict[str, str], tmp_path: Path, size: str) -> None:
    report, _ = _compare(data[f"{size}-ref.parquet"], data[f"{size}-same.parquet"], tmp_path)
    assert not report["drifted"]
    tests = {f["feature"]: f["test"] for f in report["features"]}
    if size == "large":
        assert tests == {"amount": "wasserstein", "age": "wasserstein", "score": "wasserstein",
                         "country": "jensenshannon", "device": "jensenshannon"}  # fmt: skip
    else:
        assert tests == {"amount": "ks", "age": "ks", "score": "ks", "country": "chisquare", "device": "chisquare"}


@pytest.mark.parametrize("size", ["large", "small"])
def test_same_verdicts_with_drift(spark: Any, data: dict[str, str], tmp_path: Path, size: str) -> None:
    report, _ = _compare(data[f"{size}-ref.parquet"], data[f"{size}-drift.parquet"], tmp_path)
    drifted = sorted(f["feature"] for f in report["features"] if f["drifted"])
    assert drifted == ["amount", "country"]
    assert report["performance"]["drifted"] is True and report["performance"]["metric"] == "auc"
    country = next(f for f in report["features"] if f["feature"] == "country")
    assert country["current_summary"]["new_categories"] == ["BR"]


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_text_formats_read_through_spark(spark: Any, data: dict[str, str], tmp_path: Path, suffix: str) -> None:
    report, _ = _compare(data[f"ref{suffix}"], data[f"drift{suffix}"], tmp_path)
    assert sorted(f["feature"] for f in report["features"] if f["drifted"]) == ["amount", "country"]


def test_config_and_column_options_are_honoured(spark: Any, data: dict[str, str], tmp_path: Path) -> None:
    config = tmp_path / "drift.yaml"
    # KS on a shifted column (p far below alpha) and a clear no-drift one (score, p far above): a p-value
    # within the KS bound's reach of the threshold could flip (drift-spark.md), these cannot.
    config.write_text(
        "features:\n  age: {kind: categorical}\n  amount: {test: ks}\n  score: {threshold: 0.2}\ncorrection: holm\n"
    )
    report, _ = _compare(
        data["large-ref.parquet"], data["large-drift.parquet"], tmp_path, "--config", str(config),
        "--columns", "age,amount,score,country,prediction,label",
    )  # fmt: skip
    kinds = {f["feature"]: (f["kind"], f["test"], f["threshold"]) for f in report["features"]}
    assert kinds == {"age": ("categorical", "jensenshannon", 0.1), "amount": ("numeric", "ks", 0.05),
                     "score": ("numeric", "wasserstein", 0.2), "country": ("categorical", "jensenshannon", 0.1)}  # fmt: skip
    assert [f["feature"] for f in report["features"] if f["drifted"]] == ["amount", "country"]


def test_driver_collects_summaries_bounded_by_columns_and_bins(
    spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from drift import chunk_summaries as cs
    from drift import spark_chunks

    collected: dict[str, list[int]] = {"windows": [], "chunks": []}
    phase = ["windows"]
    real, real_chunked = drift_spark._to_arrow, spark_chunks.chunked_performance

    def counting(df: Any) -> Any:
        table = real(df)
        collected[phase[0]].append(table.num_rows)
        return table

    def chunked(*args: Any, **kwargs: Any) -> Any:
        phase[0] = "chunks"
        try:
            return real_chunked(*args, **kwargs)
        finally:
            phase[0] = "windows"

    monkeypatch.setattr(drift_spark, "_to_arrow", counting)
    monkeypatch.setattr(spark_chunks, "chunked_performance", chunked)
    monkeypatch.setattr(cs, "MAX_BLOCKS", 256)  # the error stream's blocks stop at 256 whatever the rows
    sizes = {}
    for n in (2_000, 40_000):
        ref = _write(_window(1, n, False), tmp_path / f"ref{n}.parquet")
        cur = _write(_window(2, n, False), tmp_path / f"cur{n}.parquet")
        for rows in collected.values():
            rows.clear()
        report, windows = drift_spark.check(spark, ref, cur)
        assert not report.drifted
        sizes[n] = sum(collected["windows"])
        edges = {name: len(s.edges) for name, s in windows["reference"].sketches.items() if hasattr(s, "edges")}
        # per numeric column: its bins and edges, moments, range; categories; per column nulls; the
        # score cells of both classes; a few fixed rows; both windows
        bound = 2 * (sum(2 * e + 1 + 4 for e in edges.values()) + 8 + 9 + 2 * 2 * (2 * edges["prediction"] + 1) + 20)
        assert sizes[n] <= bound
        # per time chunk (both windows): per segment its counts, first and last row per partition, the
        # score cells of both classes; the error blocks; one count row per partition (at most 8 here)
        perf = report.performance
        assert perf is not None and perf.metric == "auc" and len(perf.chunks) >= 4
        segments = 2 + len(perf.chunks) + perf.reference_chunks + 3 * len(report.change_points)
        parts = 8
        chunk_bound = segments * (2 + 2 * parts + 2 * (2 * edges["prediction"] + 1)) + 256 + parts + 4 * parts
        assert len(collected["chunks"]) >= 4 and sum(collected["chunks"]) <= chunk_bound
    assert sizes[40_000] <= max(sizes[2_000] * 3, 1)  # grows with distinct bins filled, not with rows


def test_envelopes_unwrap_into_records(spark: Any, data: dict[str, str], tmp_path: Path) -> None:
    from pyspark.sql import functions as F  # noqa: N812

    records = pq.read_table(data["large-drift.parquet"]).to_pylist()
    envelopes = tmp_path / "firehose.jsonl"
    with open(envelopes, "w") as handle:
        for i, row in enumerate(records):
            handle.write(json.dumps({"id": str(i), "logGroup": "/aws/lambda/fraud", "message": json.dumps(row)}) + "\n")
    ref_df = drift_spark.read_logs(spark, data["large-ref.parquet"])
    schema = ref_df.schema

    def unwrap(df: Any) -> Any:
        return df.select(F.from_json("message", schema).alias("r")).select("r.*")

    drift_spark.register_unwrap("test-firehose", unwrap)
    wrapped, _ = drift_spark.check(
        spark, data["large-ref.parquet"], str(envelopes), unwrap=drift_spark.UNWRAPPERS["test-firehose"]
    )  # the reference is a plain snapshot (reference_unwrap=None), the current window captured envelopes
    plain, _ = drift_spark.check(spark, data["large-ref.parquet"], data["large-drift.parquet"])
    assert wrapped.to_dict() == plain.to_dict()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        ("missing", "missing column(s) 'age' present in the reference"),
        ("text", "column 'amount': non-numeric value 'lots' in a numeric column"),
        ("nan", "column 'amount': 1 NaN or infinite value(s)"),
        ("null", "column 'device': all values are null"),
        ("nofile", "no such file"),
        ("nofile-jsonl", "no such file"),  # read with the reference's schema: listed only when the job runs
    ],
)
def test_bad_current_windows_exit_2_with_one_line(
    spark: Any, data: dict[str, str], tmp_path: Path, make: str, message: str
) -> None:
    table = _window(2, 500, False)
    path = tmp_path / "cur.csv"
    if make == "missing":
        _write(table.drop_columns(["age"]), path)
    elif make in ("text", "nan"):
        _write(table, path)
        lines = path.read_text().splitlines()
        head = lines[0].split(",")
        cells = lines[7].split(",")
        cells[head.index('"amount"') if '"amount"' in head else head.index("amount")] = (
            "lots" if make == "text" else "NaN"
        )
        lines[7] = ",".join(cells)
        path.write_text("\n".join(lines) + "\n")
    elif make == "null":
        _write(table.set_column(6, "device", pa.nulls(500, pa.string())), path)
    else:
        path = tmp_path / ("missing.jsonl" if make == "nofile-jsonl" else "missing.csv")
    reference = data["ref.jsonl"] if make == "nofile-jsonl" else data["ref.csv"]
    code, _, err = _run("spark", reference, str(path), tmp_path)
    assert code == 2
    assert err.strip().splitlines() == [f"drift: error: {path}: {message}"]


# ---- captured windows (drift check --capture URI --engine spark) --------------------------------------


def _capture_layouts() -> dict[str, Any]:
    from tests import test_drift_capture as tc

    def writer(records: list[dict[str, Any]], hour: int) -> tuple[str, bytes]:
        # functions/capture.py's object_path layout: gzip JSON lines of plain records
        key = f"model_version=2.2.0/date=2026-01-12/hour={hour:02d}/pod-a-{hour:02d}0000-0.jsonl.gz"
        return key, gzip.compress("".join(tc._line(r) + "\n" for r in records).encode())

    return {
        "records": tc.firehose_extracted,
        "azure-diagnostics": tc.azure_diagnostics,
        "cloud-logging": tc.cloud_logging,
        "writer": writer,
    }


def _write_capture(root: Path, layout: Any) -> None:
    from tests import test_drift_capture as tc

    shifted = tc.handler_records(5, 28.0, seed=2)
    steady = tc.handler_records(6, 20.0, seed=3)
    # the last batch of hour 05 arrives in hour 06's object; one batch is delivered twice (at least once)
    objects = dict([layout(shifted[:-50], 5), layout(shifted[-50:] + steady + steady[:50], 6)])
    objects.update([layout(tc.handler_records(9, 20.0, seed=4), 9)])  # outside both windows: pruned
    for key, body in objects.items():
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)


@pytest.mark.parametrize("layout", ["records", "azure-diagnostics", "writer"])  # cloud-logging: below
def test_captured_window_same_verdicts_and_counts(spark: Any, tmp_path: Path, layout: str) -> None:
    from tests import test_drift_capture as tc

    root = tmp_path / "capture"
    _write_capture(root, _capture_layouts()[layout])
    ref = str(tc._write_reference(tmp_path))
    for since, until, expected in (("05", "06", 1), ("06", "07", 0)):
        window = ["--capture", str(root), "--since", f"2026-01-12T{since}:00:00Z", "--until", f"2026-01-12T{until}:00Z"]
        reports = {}
        for engine in ("local", "spark"):
            out = tmp_path / f"{engine}-{since}.json"
            err = io.StringIO()
            with contextlib.redirect_stderr(err):
                code = drift.cli.main(["check", "--engine", engine, *window, "--reference", ref, "--out", str(out)])
            assert code == expected, (engine, err.getvalue())
            reports[engine] = json.loads(out.read_text())
        local, spark_r = reports["local"], reports["spark"]
        assert spark_r["capture"].pop("engine") == "spark"
        assert spark_r["capture"] == local["capture"]
        assert local["capture"]["records"] == tc.N and local["capture"]["duplicates"] == (50 if since == "06" else 0)
        # hour 05's window reads the objects of hours 05 and 06 (arrival slack), hour 06's only hour 06's
        unwrapped = 2 * tc.N + 50 if since == "05" else tc.N + 100
        assert local["capture"]["layouts"] == {"records" if layout == "writer" else layout: unwrapped}
        assert local["capture"]["files"] == (2 if since == "05" else 1)
        assert (spark_r["n_reference"], spark_r["n_current"]) == (local["n_reference"], local["n_current"])
        assert [f["feature"] for f in spark_r["features"]] == [f["feature"] for f in local["features"]]
        for spark_f, local_f in zip(spark_r["features"], local["features"], strict=True):
            _assert_within_bound(spark_f, local_f)
        assert (spark_r["drifted"], spark_r["severity"]) == (local["drifted"], local["severity"])
        drifted = [f["feature"] for f in spark_r["features"] if f["drifted"]]
        assert drifted == (["amount"] if expected else [])


def _both_engines(tmp_path: Path, *argv: str) -> tuple[int, dict[str, Any], dict[str, Any]]:
    """The same ``drift check`` with both engines: its exit code (asserted equal) and both reports."""
    reports, codes = {}, {}
    for engine in ("local", "spark"):
        out = tmp_path / f"{engine}-{uuid.uuid4().hex[:6]}.json"
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            codes[engine] = drift.cli.main(["check", "--engine", engine, *argv, "--out", str(out)])
        assert codes[engine] in (0, 1), (engine, err.getvalue())
        reports[engine] = json.loads(out.read_text())
    assert codes["spark"] == codes["local"]
    local, spark_r = reports["local"], reports["spark"]
    assert spark_r["capture"].pop("engine") == "spark"
    assert spark_r["capture"] == local["capture"]
    assert (spark_r["n_reference"], spark_r["n_current"]) == (local["n_reference"], local["n_current"])
    assert [f["feature"] for f in spark_r["features"]] == [f["feature"] for f in local["features"]]
    for spark_f, local_f in zip(spark_r["features"], local["features"], strict=True):
        _assert_within_bound(spark_f, local_f)
    assert (spark_r["drifted"], spark_r["severity"], spark_r["drift_kinds"]) == (
        local["drifted"],
        local["severity"],
        local["drift_kinds"],
    )
    return codes["local"], local, spark_r


def test_cloud_logging_objects_are_read_in_the_executors(
    spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Hadoop cannot open the sink's "HH:00:00_HH:59:59_S0.json" names (HADOOP-3257; drift.spark_capture.
    # hadoop_opens): the executors read them with drift.capture's own unwrap. Broken here, in the driver
    # process: the check still succeeds, so no record was unwrapped (nor object read) on the driver.
    from drift import capture, spark_capture
    from tests import test_drift_capture as tc

    root = tmp_path / "capture"
    _write_capture(root, tc.cloud_logging)
    key, body = tc.cloud_logging_stderr(5)  # a LogEntry that is not a record: a skipped line
    (root / key).parent.mkdir(parents=True, exist_ok=True)
    (root / key).write_bytes(gzip.compress(body))  # gzip'd without a .gz suffix: found by its magic bytes
    ref = str(tc._write_reference(tmp_path))
    window = ["--capture", str(root), "--since", "2026-01-12T05:00:00Z", "--until", "2026-01-12T06:00:00Z"]
    code, local, _ = _both_engines(tmp_path, *window, "--reference", ref)
    assert code == 1 and local["capture"]["skipped_lines"] == 1 and local["capture"]["files"] == 3

    def broken(*_: Any, **__: Any) -> Any:
        raise AssertionError("read on the driver")

    monkeypatch.setattr(capture, "unwrap", broken)
    monkeypatch.setattr(spark_capture, "object_records", broken)
    out = tmp_path / "executors.json"
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert drift.cli.main(["check", "--engine", "spark", *window, "--reference", ref, "--out", str(out)]) == 1, (
            err.getvalue()
        )
    assert json.loads(out.read_text())["capture"]["layouts"] == local["capture"]["layouts"]


def test_executor_reader_on_fake_gcs(tmp_path: Path, gcs_env: str) -> None:
    # What each executor runs for a gs:// sink object (drift.spark_capture.object_records: gcsfs, then
    # drift.capture.unwrap), against fake-gcs-server on loopback: the local engine's records and
    # skipped lines, object by object. (Through Spark in the suite on local files, above: the session
    # is started before the emulator, so its Python workers cannot be pointed at it reliably.)
    from drift import capture, spark_capture
    from tests import test_drift_capture as tc

    objects = dict([tc.cloud_logging(tc.handler_records(5, 20.0, seed=2)[:120], 5), tc.cloud_logging_stderr(6)])
    uri = tc._upload_gcs(gcs_env, objects)
    fs, listing = capture.list_window(uri, None)
    assert len(listing.files) == 2 and not all(spark_capture.hadoop_opens(p) for p in listing.files)
    got = [r for p in listing.files for r in spark_capture.object_records(fs.unstrip_protocol(p))]
    stats = capture.ReadStats()
    expected = list(capture.iter_records(uri, None, stats))
    assert [json.loads(r) for r, layout in got if layout == "cloud-logging"] == expected
    assert len(got) == len(expected) + stats.skipped_lines and stats.skipped_lines == 1


def _variant_traffic(canary_shift: float, seed: int) -> list[dict[str, Any]]:
    """One stream of traffic split 75/25 between the variants; the canary's amount shifted or not."""
    from tests import test_drift_capture as tc

    rng = np.random.default_rng(seed)
    stable = tc.handler_records(5, 20.0, seed, rows=tc._rows(rng, 900, 20.0))
    canary_rows = tc._rows(rng, 300, 20.0)
    for row in canary_rows:
        row["amount"] = round(row["amount"] + canary_shift, 2)
    return stable + tc.handler_records(5, 20.0, seed, rows=canary_rows, variant="canary", version="2.3.0")


def _labels(records: list[dict[str, Any]], seed: int) -> list[dict[str, Any]]:
    """Delayed outcomes of 400 records: 50 of them late (10 days), 40 % wrong, 20 for no record, and
    one request labelled twice (the later file's label counts)."""
    from datetime import datetime, timedelta

    rng = np.random.default_rng(seed)
    out = []
    for i, r in enumerate(records[:400]):
        at = datetime.fromisoformat(r["timestamp"].replace("Z", "+00:00")) + timedelta(days=10 if i >= 350 else 1)
        wrong = rng.random() < 0.4
        label = 1 - r["prediction"] if wrong else r["prediction"]
        out.append({"request_id": r["request_id"], "label": label, "timestamp": at.isoformat()})
    out += [{"request_id": f"gone-{i}", "label": 1, "timestamp": "2026-01-13T00:00:00Z"} for i in range(20)]
    out.append({**out[0], "label": 1 - out[0]["label"]})
    return out


def _write_labels(root: Path, labels: list[dict[str, Any]]) -> str:
    root.mkdir(parents=True)
    (root / "day1.jsonl").write_text("".join(json.dumps(x) + "\n" for x in labels[:200]))
    (root / "day2.jsonl").write_text("".join(json.dumps(x) + "\n" for x in labels[200:]))
    return str(root)


def test_compare_variants_and_labels_same_verdicts_as_local(spark: Any, tmp_path: Path) -> None:
    from tests import test_drift_capture as tc

    window = ["--since", "2026-01-12T05:00Z", "--until", "2026-01-12T06:00Z"]
    # --compare-variants on the Kubernetes writer's files: a shifted canary (one like the stable: below)
    uri = str(tmp_path / "k8s")
    _write_capture_records(uri, _variant_traffic(8.0, 7))
    code, local, spark_r = _both_engines(tmp_path, "--capture", uri, *window, "--compare-variants")
    assert code == 1 and local["capture"]["variants"] == {"stable": 900, "canary": 300}
    assert [f["feature"] for f in spark_r["features"]] == ["amount", "age", "country", "device"]
    assert [f["feature"] for f in spark_r["features"] if f["drifted"]] == ["amount"]

    # --labels on Cloud Logging sink files (read in the executors): concept drift, inputs unchanged
    records = tc.handler_records(5, 20.0, seed=9)
    root = tmp_path / "gcs"
    for key, body in (tc.cloud_logging(records[:250], 5), tc.cloud_logging(records[250:], 6)):
        (root / key).parent.mkdir(parents=True, exist_ok=True)
        (root / key).write_bytes(body)
    labels = _write_labels(tmp_path / "labels", _labels(records, 9))
    ref = str(tc._write_reference(tmp_path, labels=True))
    code, local, spark_r = _both_engines(
        tmp_path, "--capture", str(root), *window, "--reference", ref, "--labels", labels
    )
    assert local["capture"]["labels"] == {"total": 421, "matched": 350, "late": 50, "unmatched": 20,
                                          "grace_hours": 168.0}  # fmt: skip
    assert code == 1 and local["n_current"] == 350 and not [f for f in local["features"] if f["drifted"]]
    sp, lp = spark_r["performance"], local["performance"]
    assert (sp["metric"], sp["test"], sp["drifted"], sp["n_current"]) == (lp["metric"], lp["test"], True, 350)
    assert sp["current"] == pytest.approx(lp["current"], abs=1e-9)  # accuracy: exact

    # both at once: labelled records only, split by variant; the canary's inputs as the stable's
    traffic = _variant_traffic(0.0, 11)
    uri = str(tmp_path / "k8s-labels")
    _write_capture_records(uri, traffic)
    labels = _write_labels(tmp_path / "labels-v", _labels(traffic[:300] + traffic[900:1100], 11))
    code, local, spark_r = _both_engines(
        tmp_path, "--capture", uri, *window, "--compare-variants", "--labels", labels, "--label-grace", "12d"
    )
    assert local["capture"]["variants"] == {"stable": 300, "canary": 100}
    assert local["capture"]["labels"]["late"] == 0 and local["capture"]["labels"]["matched"] == 400
    assert not [f for f in spark_r["features"] if f["drifted"]]
    assert spark_r["performance"]["drifted"] == local["performance"]["drifted"]
    assert spark_r["performance"]["current"] == pytest.approx(local["performance"]["current"], abs=1e-9)


def _write_capture_records(uri: str, records: list[dict[str, Any]]) -> None:
    from functions import capture as fcap

    writer = fcap.BatchWriter.for_uri(uri, host="pod-a")
    for r in records:
        assert writer.offer(r)
    writer.close()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--compare-variants", "--reference", "REF"], "the reference is the window's stable records"),
        (["--labels", "LABELS-NO-ID"], "missing column(s) 'request_id' (labels need request_id, label)"),
        (["--labels", "LABELS-EMPTY"], "no labels (expected rows with request_id and label)"),
        (["--cloud-logging-corrupt"], "05:00:00_05:59:59_S0.json: not gzip or truncated"),
        (["--compare-variants"], "no canary records in"),
        (["--since", "2026-01-12T05:00:00Z", "--until", "2026-01-12T04:00:00Z"], None),
        (["--capture-missing"], "no such capture location"),
        (["--since", "2026-02-01T00:00:00Z", "--until", "2026-02-02T00:00:00Z"], "no capture records"),
    ],
)
def test_bad_captured_windows_exit_2_with_one_line(
    spark: Any, tmp_path: Path, extra: list[str], message: str | None
) -> None:
    from tests import test_drift_capture as tc

    root = tmp_path / "capture"
    _write_capture(root, _capture_layouts()["cloud-logging" if extra == ["--cloud-logging-corrupt"] else "writer"])
    if extra == ["--cloud-logging-corrupt"]:
        (root / "run.googleapis.com/stdout/2026/01/12/05:00:00_05:59:59_S0.json").write_bytes(b"\x1f\x8b not gzip")
        extra = []
    ref = str(tc._write_reference(tmp_path))
    if "--labels" in extra:
        rows = [{"id": "x", "label": 1}] if extra[-1] == "LABELS-NO-ID" else [{"request_id": None, "label": 1}]
        (tmp_path / "labels.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        extra = [*extra[:-1], str(tmp_path / "labels.jsonl")]
    if "REF" in extra:
        extra = [ref if e == "REF" else e for e in extra]
    uri = str(tmp_path / "nowhere") if extra == ["--capture-missing"] else str(root)
    extra = [] if extra == ["--capture-missing"] else extra
    argv = ["check", "--engine", "spark", "--capture", uri, "--out", str(tmp_path / "r.json")]
    if "--compare-variants" not in extra:
        argv += ["--reference", ref]
    if "--since" not in extra:
        argv += ["--since", "2026-01-12T05:00:00Z", "--until", "2026-01-12T06:00:00Z"]
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = drift.cli.main([*argv, *extra])
    lines = err.getvalue().strip().splitlines()
    assert code == 2 and len(lines) == 1, lines
    assert lines[0].startswith("drift: error: ")
    assert message is None or message in lines[0], lines
    assert not (tmp_path / "r.json").exists()


# ---- performance per time chunk (drift.spark_chunks) ------------------------------------------------------


def _sea_file(path: Path, n: int, seed: int, flip_at: int | None) -> str:
    """A SEA stream (tests/drift_streams.py) written in shuffled row order with ISO timestamps."""
    from tests.drift_streams import sea

    data = sea(n, np.random.default_rng(seed), flip_at=flip_at)
    stamps = [f"{s}Z" for s in np.datetime_as_string(data.pop("timestamp"))]
    table = pa.table({"timestamp": pa.array(stamps), **{k: pa.array(v) for k, v in data.items()}})
    order = np.random.default_rng(seed + 1).permutation(n)  # the engines must put the rows in time order
    pq.write_table(table.take(order), path, row_group_size=n // 3)
    return str(path)


@pytest.mark.parametrize("flip_at", [5_000, None])
def test_performance_per_time_chunk_same_as_local(spark: Any, tmp_path: Path, flip_at: int | None) -> None:
    ref = _sea_file(tmp_path / "ref.parquet", 10_000, 0, None)
    cur = _sea_file(tmp_path / "cur.parquet", 10_000, 7, flip_at)
    code_l, local, err_l = _run("local", ref, cur, tmp_path)
    code_s, spark_r, err_s = _run("spark", ref, cur, tmp_path)
    assert code_s == code_l == (1 if flip_at else 0), (err_l, err_s)
    lp, sp = local["performance"], spark_r["performance"]
    for key in ("reference", "current", "p_value", "threshold", "reference_chunk_std"):
        assert sp[key] == pytest.approx(lp[key], rel=1e-9, abs=1e-300), key
    same = ("metric", "test", "drifted", "threshold_source", "reference_chunks", "chunk_rows", "segment_alpha",
            "n_reference", "n_current", "rows_current", "labelled_current", "degradation")  # fmt: skip
    assert {k: sp[k] for k in same} == {k: lp[k] for k in same}
    for part in ("chunks", "after_change"):
        assert len(sp[part]) == len(lp[part])
        for s_seg, l_seg in zip(sp[part], lp[part], strict=True):
            assert {k: v for k, v in s_seg.items() if k != "p_value"} == {
                k: v for k, v in l_seg.items() if k != "p_value"
            }
            assert s_seg["p_value"] == pytest.approx(l_seg["p_value"], rel=1e-9, abs=1e-300)
    assert spark_r["change_points"] == local["change_points"]
    flagged = [i for i, c in enumerate(sp["chunks"]) if c["drifted"]]
    if flip_at:
        assert flagged == [5, 6, 7, 8, 9] and spark_r["change_points"] and sp["after_change"][0]["drifted"]
        assert "performance" in spark_r["drift_kinds"]
    else:
        assert flagged == [] and not sp["drifted"]


def test_captured_window_with_labels_is_chunked_in_record_time(spark: Any, tmp_path: Path) -> None:
    # capture objects hold records in arrival order, not time order: the chunks follow the records' time
    from tests.drift_streams import sea, timestamps

    rng = np.random.default_rng(0)
    ref, cur = sea(6_000, rng), sea(6_000, rng, flip_at=3_000)
    stamps = [f"{s}Z" for s in np.datetime_as_string(timestamps(6_000, "2026-01-12T05:00:00"))]
    features = ("x0", "x1", "x2", "label", "prediction")
    reference = pa.table({"timestamp": stamps, **{k: ref[k] for k in features}})
    pq.write_table(reference, tmp_path / "ref.parquet")
    root = tmp_path / "capture"
    for hour in (5, 6):
        rows = [i for i in np.random.default_rng(hour).permutation(6_000) if stamps[i][11:13] == f"{hour:02d}"]
        lines = [
            json.dumps(
                {
                    "request_id": f"r{i}",
                    "timestamp": stamps[i],
                    "model_version": "1",
                    "variant": "stable",
                    **{k: cur[k][i].item() for k in features},
                }
            )
            for i in rows
        ]
        part = root / "date=2026-01-12" / f"hour={hour:02d}"
        part.mkdir(parents=True)
        (part / "a.jsonl.gz").write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    window = ["--capture", str(root), "--since", "2026-01-12T05:00:00Z", "--until", "2026-01-12T07:00:00Z"]
    reports = {}
    for engine in ("local", "spark"):
        out = tmp_path / f"{engine}.json"
        args = ["check", "--engine", engine, *window, "--reference", str(tmp_path / "ref.parquet"), "--out", str(out)]
        assert drift.cli.main(args) == 1
        reports[engine] = json.loads(out.read_text())
    lp, sp = reports["local"]["performance"], reports["spark"]["performance"]
    assert [c["drifted"] for c in sp["chunks"]] == [c["drifted"] for c in lp["chunks"]] == [False] * 5 + [True] * 5
    assert [(c["start"], c["end"], c["value"]) for c in sp["chunks"]] == [
        (c["start"], c["end"], c["value"]) for c in lp["chunks"]
    ]
    assert reports["spark"]["change_points"] == reports["local"]["change_points"] != []


def test_variant_schema_fields_become_record_types() -> None:
    # schema_of_variant_agg's text (Spark 4: "OBJECT<name: TYPE, ...>", names with odd characters in
    # backticks), as drift.spark_capture.infer_variant_schemas reads it for --compare-variants.
    from pyspark.sql import types as T  # noqa: N812

    from drift.spark_capture import variant_fields

    found = variant_fields(
        "OBJECT<a: DECIMAL(21,1), b: STRING, c: BIGINT, d: BOOLEAN, e: VOID, `x, y`: OBJECT<p: INT, q: STRING>, "
        "f: DOUBLE, g: ARRAY<BIGINT>>"
    )
    assert found == {
        "a": T.DoubleType(), "b": T.StringType(), "c": T.DoubleType(), "d": T.BooleanType(), "e": T.NullType(),
        "x, y": T.StructType([]), "f": T.DoubleType(), "g": T.StructType([]),
    }  # fmt: skip
    assert variant_fields(None) == {} and variant_fields("BIGINT") == {}
