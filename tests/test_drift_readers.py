"""Readers: formats, object stores (moto's S3 server on loopback), schema checks, chunking."""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from drift import readers
from drift.readers import DataError, Source


def _table(n: int = 300, seed: int = 7) -> dict[str, list]:
    rng = np.random.default_rng(seed)
    return {
        "timestamp": [f"2026-01-01T00:{i // 60 % 60:02d}:{i % 60:02d}Z" for i in range(n)],
        "model_version": ["1.0.0"] * n,
        "x": [round(float(v), 3) for v in rng.normal(size=n)],
        "k": [int(v) for v in rng.integers(0, 5, size=n)],
        "c": [str(v) for v in rng.choice(["a", "b", "c"], size=n)],
    }


def write(path: Path, cols: dict[str, list]) -> Path:
    """Write columns as CSV, JSON Lines or Parquet depending on the suffix (``.gz`` compresses)."""
    names = list(cols)
    n = len(cols[names[0]])
    if path.suffix == ".parquet":
        pq.write_table(pa.table(cols), path)
        return path
    if ".csv" in path.suffixes:

        def cell(v: object) -> str:
            return "" if v is None else str(v)

        text = "\n".join([",".join(names)] + [",".join(cell(cols[c][i]) for c in names) for i in range(n)]) + "\n"
    else:
        text = "\n".join(json.dumps({c: cols[c][i] for c in names}) for i in range(n)) + "\n"
    data = text.encode()
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


def load(path: Path | str, **kw: object) -> readers.Dataset:
    src = Source.open(str(path))
    plan = readers.plan_columns(readers.read_schema(src), src.uri, **kw)  # type: ignore[arg-type]
    return readers.read_dataset(src, plan)


# ---- formats ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["d.csv", "d.jsonl", "d.parquet", "d.csv.gz", "d.ndjson"])
def test_every_format_reads_the_same_values(tmp_path: Path, name: str) -> None:
    cols = _table()
    ds = load(write(tmp_path / name, cols))
    assert ds.n_rows == 300
    assert ds.kinds == {"x": "numeric", "k": "numeric", "c": "categorical"}
    assert ds.features["x"].dtype == np.float64
    np.testing.assert_array_equal(ds.features["x"], np.array(cols["x"]))
    np.testing.assert_array_equal(ds.features["k"], np.array(cols["k"], dtype=float))
    assert ds.features["c"].dtype == object
    assert list(ds.features["c"]) == cols["c"]
    assert ds.timestamps is not None and ds.timestamps.size == 300
    assert ds.timestamps[61] == np.datetime64("2026-01-01T00:01:01")


def test_columns_and_categorical_overrides(tmp_path: Path) -> None:
    ds = load(write(tmp_path / "d.csv", _table()), columns=["k", "c"], categorical=["k"])
    assert ds.kinds == {"k": "categorical", "c": "categorical"}
    assert set(ds.features["k"]) <= {"0", "1", "2", "3", "4"}


def test_small_batches_concatenate_to_the_whole(tmp_path: Path) -> None:
    path = write(tmp_path / "d.parquet", _table(1000))
    src = Source.open(str(path))
    plan = readers.plan_columns(readers.read_schema(src), src.uri)
    chunks = list(readers.iter_chunks(src, plan, batch_rows=128))
    assert len(chunks) == 8
    assert sum(c.rows for c in chunks) == 1000
    whole = readers.read_dataset(src, plan)
    small = readers.read_dataset(src, plan, batch_rows=128)
    for name in plan.features:
        np.testing.assert_array_equal(whole.features[name], small.features[name])


def test_partial_nulls_are_dropped_but_rows_counted(tmp_path: Path) -> None:
    cols = _table(50)
    cols["x"][3] = None
    cols["c"][4] = None
    for name in ("d.csv", "d.jsonl", "d.parquet"):
        ds = load(write(tmp_path / name, cols))
        assert ds.n_rows == 50, name
        assert ds.features["x"].size == 49 and ds.features["c"].size == 49, name


def test_categorical_values_share_one_object_per_category(tmp_path: Path) -> None:
    ds = load(write(tmp_path / "d.parquet", _table(500)))
    values = ds.features["c"]
    assert len({id(v) for v in values}) == 3  # memory: a pointer per row, not a string per row


# ---- schema checks: one-line errors naming file and column -------------------------------------------


def _error(path: Path | str, **kw: object) -> str:
    with pytest.raises(DataError) as info:
        load(path, **kw)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(str(path))
    return message


@pytest.mark.parametrize("name", ["e.csv", "e.jsonl", "e.parquet"])
def test_empty_file(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"")
    assert _error(path).endswith("empty file")


def test_header_only_csv_has_no_rows(tmp_path: Path) -> None:
    path = tmp_path / "h.csv"
    path.write_text("x,c\n")
    assert _error(path).endswith(": no rows")


def test_parquet_without_rows(tmp_path: Path) -> None:
    path = tmp_path / "z.parquet"
    pq.write_table(pa.table({"x": pa.array([], pa.float64())}), path)
    assert _error(path).endswith(": no rows")


@pytest.mark.parametrize("name", ["n.csv", "n.jsonl", "n.parquet"])
def test_all_null_column_is_read_not_rejected(tmp_path: Path, name: str) -> None:
    # detection reports a 100%-null column's missing share as it does a 99.9%-null one's, so the readers
    # hand it over (no values, the file's row count) instead of failing
    cols = _table(20)
    cols["x"] = [None] * 20
    ds = load(write(tmp_path / name, cols))
    assert ds.n_rows == 20 and len(ds.features["x"]) == 0
    assert ds.features.n_rows == 20  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", ["v.csv", "v.jsonl", "v.parquet"])
def test_non_numeric_value_in_numeric_column(tmp_path: Path, name: str) -> None:
    ref = write(tmp_path / f"ref_{name}", _table(20))
    cols = _table(20)
    cols["x"] = [str(v) for v in cols["x"]]
    cols["x"][7] = "oops"
    cur = write(tmp_path / name, cols)
    src = Source.open(str(ref))
    plan = readers.plan_columns(readers.read_schema(src), src.uri)
    with pytest.raises(DataError) as info:
        readers.read_dataset(Source.open(str(cur)), plan)
    message = str(info.value)
    assert message.startswith(str(cur)) and "column 'x'" in message and "non-numeric" in message
    if name != "v.jsonl":  # Arrow's JSON reader does not say which value
        assert "'oops'" in message


def test_non_numeric_value_past_the_first_block(tmp_path: Path) -> None:
    # The type is inferred from the first block; a bad value far below must still be caught.
    n = 120_000
    cols = {"x": [f"{i * 0.5}" for i in range(n)], "c": ["a"] * n}
    cols["x"][-3] = "n/a"
    path = write(tmp_path / "late.csv", cols)
    message = _error(path)
    assert "column 'x'" in message and "'n/a'" in message


@pytest.mark.parametrize("name", ["f.csv", "f.jsonl", "f.parquet"])
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_nan_and_infinity_are_rejected(tmp_path: Path, name: str, bad: float) -> None:
    cols = _table(20)
    cols["x"][2] = None  # a null before the bad value must not shift the record number
    cols["x"][5] = bad
    cols["x"][9] = bad
    what = "NaN" if bad != bad else "infinite"
    message = _error(write(tmp_path / name, cols))
    assert message.endswith(f": column 'x': {what} value in record 6 (2 NaN or infinite value(s) in records 1-20)")


def test_missing_column_in_current(tmp_path: Path) -> None:
    ref = write(tmp_path / "ref.csv", _table(20))
    cols = _table(20)
    del cols["c"]
    cur = write(tmp_path / "cur.parquet", cols)
    src = Source.open(str(ref))
    plan = readers.plan_columns(readers.read_schema(src), src.uri)
    with pytest.raises(DataError, match=r"cur\.parquet: missing column\(s\) 'c' present in the reference"):
        readers.read_dataset(Source.open(str(cur)), plan)


def test_unknown_requested_column(tmp_path: Path) -> None:
    assert "missing column(s) 'nope'" in _error(write(tmp_path / "d.csv", _table(5)), columns=["nope"])


def test_unsupported_column_type(tmp_path: Path) -> None:
    path = tmp_path / "l.parquet"
    pq.write_table(pa.table({"x": [1.0, 2.0], "v": [[1], [2]]}), path)
    assert "column 'v': unsupported type" in _error(path)


def test_timestamps_with_and_without_zone(tmp_path: Path) -> None:
    cols = _table(3)
    cols["timestamp"] = ["2026-01-01T02:00:00+02:00", "2026-01-01T00:00:01Z", "2026-01-01T00:00:02Z"]
    ds = load(write(tmp_path / "z.jsonl", cols))
    assert ds.timestamps is not None
    expected = ["2026-01-01T00:00:00", "2026-01-01T00:00:01", "2026-01-01T00:00:02"]
    assert list(ds.timestamps) == [np.datetime64(t, "ns") for t in expected]
    cols["timestamp"] = ["yesterday", "today", "now"]
    assert load(write(tmp_path / "words.jsonl", cols)).timestamps is None


def test_unknown_suffix_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="cannot tell the format"):
        Source.open(str(tmp_path / "data.xlsx"))
    with pytest.raises(DataError, match="no such file"):
        Source.open(str(tmp_path / "absent.csv"))
    (tmp_path / "dir.csv").mkdir()
    with pytest.raises(DataError, match="is a directory"):
        Source.open(str(tmp_path / "dir.csv"))


def test_explicit_format_overrides_suffix(tmp_path: Path) -> None:
    path = write(tmp_path / "d.csv", _table(10))
    os.rename(path, tmp_path / "d.log")
    src = Source.open(str(tmp_path / "d.log"), "csv")
    assert src.fmt == "csv"
    with pytest.raises(DataError, match="unknown format 'xml'"):
        Source.open(str(tmp_path / "d.log"), "xml")


def test_gcs_without_gcsfs_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "gcsfs", None)  # as if not installed: importing it raises ImportError
    with pytest.raises(DataError) as info:
        Source.open("gs://bucket/logs.parquet")
    assert str(info.value) == (
        "gs://bucket/logs.parquet: reading gs:// URIs needs the optional package gcsfs (pip install gcsfs)"
    )


def test_in_memory_estimate(tmp_path: Path) -> None:
    path = tmp_path / "big.parquet"
    pq.write_table(pa.table({"x": np.arange(100_000, dtype=float)}), path)
    assert Source.open(str(path)).in_memory_bytes() >= 800_000
    csv = write(tmp_path / "d.csv", _table(10))
    assert Source.open(str(csv)).in_memory_bytes() == csv.stat().st_size
    gz = write(tmp_path / "d.csv.gz", _table(10))
    assert Source.open(str(gz)).in_memory_bytes() == 5 * gz.stat().st_size


# ---- object store: moto's S3 server on loopback --------------------------------------------------------


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    pytest.importorskip("moto.server")
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_bucket(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    import boto3

    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "DRIFT_S3_ENDPOINT_URL": s3_endpoint,
    }.items():
        monkeypatch.setenv(key, value)
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    client.create_bucket(Bucket="logs")
    return "logs"


def test_s3_reads_match_local(tmp_path: Path, s3_bucket: str, s3_endpoint: str) -> None:
    import boto3

    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    cols = _table(400)
    for name in ("d.csv", "d.jsonl", "d.parquet"):
        local = write(tmp_path / name, cols)
        client.upload_file(str(local), s3_bucket, f"window/{name}")
        remote = load(f"s3://{s3_bucket}/window/{name}")
        here = load(local)
        assert remote.n_rows == 400
        for feature in ("x", "k", "c"):
            np.testing.assert_array_equal(remote.features[feature], here.features[feature])


def test_s3_errors_are_one_line(tmp_path: Path, s3_bucket: str, s3_endpoint: str) -> None:
    import boto3

    with pytest.raises(DataError, match=r"^s3://logs/absent\.parquet: no such file$"):
        Source.open(f"s3://{s3_bucket}/absent.parquet")
    cols = _table(20)
    cols["x"][2] = float("inf")
    local = write(tmp_path / "bad.parquet", cols)
    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1").upload_file(
        str(local), s3_bucket, "bad.parquet"
    )
    with pytest.raises(DataError, match=r"^s3://logs/bad\.parquet: column 'x': infinite value in record 3 "):
        load(f"s3://{s3_bucket}/bad.parquet")


# ---- Arrow categorical columns and column-wise Parquet reading ----------------------------------------


def _counts(values: object) -> dict[str, int]:
    from drift.stattests import CategoricalSample

    return CategoricalSample(values).counts


@pytest.mark.parametrize("name", ["d.csv", "d.jsonl", "d.parquet"])
def test_categorical_arrow_matches_object_arrays(tmp_path: Path, name: str) -> None:
    cols = _table(400)
    cols["c"][3] = None
    path = write(tmp_path / name, cols)
    src = Source.open(str(path))
    plan = readers.plan_columns(readers.read_schema(src), src.uri, categorical=["k"])
    plain = readers.read_dataset(src, plan, batch_rows=64)
    arrow = readers.read_dataset(src, plan, batch_rows=64, categorical_arrow=True)
    for col in ("c", "k"):
        assert isinstance(arrow.features[col], pa.ChunkedArray)
        assert arrow.features[col].type == readers.CATEGORICAL_ARROW_TYPE
        assert len(arrow.features[col]) == plain.features[col].size
        assert arrow.features[col].to_pylist() == list(plain.features[col])
        assert _counts(arrow.features[col]) == _counts(plain.features[col])
    np.testing.assert_array_equal(arrow.features["x"], plain.features["x"])
    assert arrow.n_rows == plain.n_rows == 400 and len(arrow.features["c"]) == 399


def test_parquet_with_row_groups_reads_like_csv(tmp_path: Path) -> None:
    # Local Parquet is read column by column; several row groups and nulls must give what the batch
    # readers give for the same rows.
    cols = _table(1000)
    for i in (0, 250, 999):
        cols["x"][i] = None
    cols["c"][500] = None
    pq.write_table(pa.table(cols), tmp_path / "d.parquet", row_group_size=128)
    write(tmp_path / "d.csv", cols)
    a, b = load(tmp_path / "d.parquet"), load(tmp_path / "d.csv")
    assert a.n_rows == b.n_rows == 1000
    np.testing.assert_array_equal(a.features["x"], b.features["x"])
    assert a.features["x"].size == 997
    assert list(a.features["c"]) == list(b.features["c"])
    np.testing.assert_array_equal(a.timestamps, b.timestamps)


def test_nan_in_a_later_row_group_names_its_record(tmp_path: Path) -> None:
    cols = _table(300)
    cols["x"][130] = None
    cols["x"][201] = float("nan")
    pq.write_table(pa.table(cols), tmp_path / "f.parquet", row_group_size=100)
    message = _error(tmp_path / "f.parquet")
    assert ": column 'x': NaN value in record 202 (1 NaN or infinite value(s) in records " in message


@pytest.mark.parametrize("name", ["p.csv", "p.jsonl", "p.parquet"])
def test_label_and_prediction_keep_their_nulls_row_by_row(tmp_path: Path, name: str) -> None:
    # label and prediction are paired row by row (performance): dropping their nulls separately would
    # shift one against the other, so they keep one entry per row; features drop theirs.
    n = 40
    cols = _table(n)
    cols["label"] = [i % 2 for i in range(n)]
    cols["prediction"] = [i % 2 for i in range(n)]
    cols["label"][0] = None
    cols["prediction"][n - 1] = None
    cols["x"][5] = None
    ds = load(write(tmp_path / name, cols))
    label, pred = ds.features["label"], ds.features["prediction"]
    assert len(label) == len(pred) == n
    assert isinstance(label, np.ma.MaskedArray) and label.mask.tolist() == [True] + [False] * (n - 1)
    assert pred.mask.tolist() == [False] * (n - 1) + [True]
    assert label[1:-1].tolist() == pred[1:-1].tolist()
    assert ds.features["x"].size == n - 1
    assert set(ds.features.all_columns) >= {"x", "c", "label", "prediction"}  # type: ignore[attr-defined]


def test_string_labels_keep_their_nulls(tmp_path: Path) -> None:
    cols = _table(10)
    cols["label"] = ["yes", None, "no", "yes", "no", "yes", "no", "yes", "no", "yes"]
    ds = load(write(tmp_path / "s.csv", cols))
    assert ds.features["label"].tolist() == cols["label"]
