"""Performance per time chunk from partition summaries (drift.chunk_summaries) against the local engine.

No Spark here: a window in time order is cut into "partitions" the way a range-partitioned sort leaves
it, each partition summarised by the same function the Spark workers run, the partial rows merged as the
engine's group-by does (drift.summaries.merge_partials), and the rule applied on the driver. On seeded
streams with a known change and without one, the chunks, thresholds, p-values, change points and the
segments after them equal the local engine's (accuracy and MAE exactly; AUC within the score bins' bound).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from drift import chunk_summaries as cs
from drift import performance as perf
from drift.detect import DetectConfig, detect
from drift.summaries import auc_error_bound, merge_partials
from tests.drift_streams import sea


def _batches(data: dict[str, np.ndarray], parts: int, rows_per_batch: int = 700) -> list[list[pa.RecordBatch]]:
    """The window (already in time order) as ``parts`` partitions of record batches, with ``_pid``."""
    n = data["label"].size
    table = pa.table(
        {
            cs.TS: pa.array(data["timestamp"].astype("datetime64[us]"), pa.timestamp("us", "UTC")),
            "label": pa.array(data["label"], mask=data.get("label_mask")),
            "prediction": pa.array(data["prediction"]),
        }
    )
    out = []
    for pid, idx in enumerate(np.array_split(np.arange(n), parts)):
        part = table.slice(int(idx[0]), int(idx.size)).append_column(cs.PID, pa.array([pid] * idx.size, pa.int64()))
        out.append(part.to_batches(max_chunksize=rows_per_batch))
    return out


def _window(
    data: dict[str, np.ndarray], parts: int, kinds: dict[str, str], metric: str, size_of, cfg=None, edges=None
) -> cs.ChunkedWindow:  # type: ignore[no-untyped-def]
    partitions = _batches(data, parts)
    counts = [b.to_pydict() for p in partitions for b in cs.count_batches(iter(p))]
    triples = [(c["pid"][0], c["rows"][0], c["pairs"][0]) for c in counts]
    pairs = sum(c["pairs"][0] for c in counts)
    spec = cs.ChunkSpec(
        kinds=kinds,
        metric=metric,
        segments=cs.segments_of(pairs, size_of(pairs)),
        offsets=cs.offsets_of(triples),
        edges=edges,
        block=cs.block_rows(pairs) if cfg is not None else 0,
    )
    merged = merge_partials(b for p in partitions for b in cs.summarize_chunk_batches(iter(p), spec))
    stats, seen = cs.stats_from_merged(merged, spec)
    assert seen == {pid: r for pid, r, _ in triples}
    out = cs.ChunkedWindow(
        stats=stats, rows=sum(c["rows"][0] for c in counts), pairs=pairs,
        labelled=sum(c["labelled"][0] for c in counts), chunk_size=size_of(pairs),
    )  # fmt: skip
    if cfg is not None:
        raw = cs.changes_of(cs.error_blocks(merged, spec.block), metric, cfg.streaming_delta, pairs)
        import dataclasses

        again = dataclasses.replace(spec, segments=cs.change_segments(raw, pairs), block=0)
        extra = merge_partials(b for p in partitions for b in cs.summarize_chunk_batches(iter(p), again))
        out.stats.update(cs.stats_from_merged(extra, again)[0])
        out.extra = {
            "changes": cs.change_points(raw, out.stats),
            "starts": [c.start for c in raw if c.mean_after > c.mean_before],
        }
    return out


def _chunked(ref, cur, kinds, metric, parts=(3, 4), edges=None):  # type: ignore[no-untyped-def]
    cfg = DetectConfig()
    settings = cs.settings_of(cfg)
    c = _window(cur, parts[1], kinds, metric, lambda n: cs.chunk_sizes(ref["label"].size, n, settings)[1], cfg, edges)
    r = _window(ref, parts[0], kinds, metric, lambda n: cs.chunk_sizes(n, c.pairs, settings)[0], edges=edges)
    task = perf.Task("regression" if metric == "mae" else "classification", metric, "1" if metric == "auc" else None)
    starts = c.extra["starts"]
    ev = cs.evaluate_chunks(r, c, task, settings, starts)
    assert ev is not None
    return cs.performance_result(ev, r, c, cfg, starts), c.extra["changes"], (r, c)


_SEGMENT_KEYS = ("kind", "start", "end", "n", "drifted")


def _instant(stamp: str | None) -> np.datetime64 | None:
    return None if stamp is None else np.datetime64(stamp, "ns")


def _assert_same(got, local, exact: bool = True) -> None:  # type: ignore[no-untyped-def]
    p = local.performance
    assert p is not None
    for key in ("metric", "drifted", "threshold_source", "reference_chunks", "chunk_rows", "segment_alpha",
                "n_reference", "n_current", "rows_current", "labelled_current"):  # fmt: skip
        assert getattr(got, key) == getattr(p, key), key
    tol = {"rel": 1e-9, "abs": 1e-12} if exact else {"abs": 0.003}
    for key in ("reference", "current", "threshold"):
        assert getattr(got, key) == pytest.approx(getattr(p, key), **tol), key
    for mine, theirs in ((got.chunks, p.chunks), (got.after_change, p.after_change)):
        assert len(mine) == len(theirs)
        for a, b in zip(mine, theirs, strict=True):
            assert {k: getattr(a, k) for k in _SEGMENT_KEYS} == {k: getattr(b, k) for k in _SEGMENT_KEYS}
            assert _instant(a.start_timestamp) == _instant(b.start_timestamp)
            assert _instant(a.end_timestamp) == _instant(b.end_timestamp)
            assert a.value == pytest.approx(b.value, **tol)
            if exact and b.p_value is not None:
                assert a.p_value == pytest.approx(b.p_value, rel=1e-6, abs=1e-300)


def test_sea_flip_chunks_change_point_and_segment_after_it_equal_the_local_engine() -> None:
    rng = np.random.default_rng(0)
    ref, cur = sea(10_000, rng), sea(10_000, rng, flip_at=5_000)
    got, changes, _ = _chunked(ref, cur, {"label": "categorical", "prediction": "categorical"}, "accuracy")
    local = detect(ref, cur)
    _assert_same(got, local)
    assert [i for i, c in enumerate(got.chunks) if c.drifted] == [5, 6, 7, 8, 9]
    (after,) = got.after_change
    assert after.drifted and 4_500 <= after.start <= 5_300
    assert [(c.index, c.detected_index, _instant(c.timestamp)) for c in changes] == [
        (c.index, c.detected_index, _instant(c.timestamp)) for c in local.change_points
    ]


@pytest.mark.parametrize("seed", range(8))
def test_no_shift_streams_agree_with_the_local_engine(seed: int) -> None:
    rng = np.random.default_rng(500 + seed)
    ref, cur = sea(6_000, rng), sea(6_000, rng)
    got, changes, _ = _chunked(ref, cur, {"label": "categorical", "prediction": "categorical"}, "accuracy")
    local = detect(ref, cur)
    _assert_same(got, local)
    assert len(changes) == len(local.change_points)


def _regression(n: int, rng: np.random.Generator, shift_at: int | None) -> dict[str, np.ndarray]:
    x = rng.normal(size=n)
    y = 2.0 * x + rng.normal(0, 1.0, n)
    noise = np.where(np.arange(n) >= (shift_at if shift_at is not None else n), 1.8, 1.0)
    pred = 2.0 * x + rng.normal(0, 0.2, n) * noise + (noise - 1.0)
    return {"timestamp": sea(n, rng)["timestamp"], "x": x, "label": y, "prediction": pred}


@pytest.mark.parametrize("shift_at", [None, 6_000])
def test_mae_per_chunk_equals_the_local_welch_tests(shift_at: int | None) -> None:
    rng = np.random.default_rng(3)
    ref, cur = _regression(10_000, rng, None), _regression(10_000, rng, shift_at)
    got, _, _ = _chunked(ref, cur, {"label": "numeric", "prediction": "numeric"}, "mae")
    local = detect(ref, cur, config=DetectConfig(performance_task="regression"))
    _assert_same(got, local)
    assert got.drifted is (shift_at is not None)
    if shift_at is not None:
        assert [i for i, c in enumerate(got.chunks) if c.drifted] == [6, 7, 8, 9]


def test_auc_per_chunk_within_the_score_bins_bound() -> None:
    rng = np.random.default_rng(5)

    def scored(n: int, d: np.ndarray) -> dict[str, np.ndarray]:
        y = rng.random(n) < 0.5
        s = rng.normal(size=n) + d * y
        return {
            "timestamp": sea(n, rng)["timestamp"],
            "label": y.astype(np.float64),
            "prediction": 1 / (1 + np.exp(-s)),
        }

    ref = scored(20_000, np.full(20_000, 2.0))
    cur = scored(20_000, np.where(np.arange(20_000) >= 14_000, 1.2, 2.0))
    edges = tuple(np.quantile(ref["prediction"], np.arange(1, 1000) / 1000))
    got, _, (_, c) = _chunked(ref, cur, {"label": "numeric", "prediction": "numeric"}, "auc", edges=edges)
    local = detect(ref, cur)
    assert local.performance is not None and local.performance.metric == "auc"
    _assert_same(got, local, exact=False)
    for chunk, mine, theirs in zip(c.chunks(), got.chunks, local.performance.chunks, strict=True):
        assert chunk.cells_pos is not None and chunk.cells_neg is not None
        assert abs(mine.value - theirs.value) <= auc_error_bound(chunk.cells_pos, chunk.cells_neg) + 1e-12
    assert [i for i, ch in enumerate(got.chunks) if ch.drifted] == [7, 8, 9]


def test_blocks_above_the_limit_place_the_change_within_one_block(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cs, "MAX_BLOCKS", 1_000)  # 10 rows a block on 10,000 rows
    rng = np.random.default_rng(0)
    ref, cur = sea(10_000, rng), sea(10_000, rng, flip_at=5_000)
    got, changes, _ = _chunked(ref, cur, {"label": "categorical", "prediction": "categorical"}, "accuracy")
    local = detect(ref, cur)
    assert [c.drifted for c in got.chunks] == [c.drifted for c in local.performance.chunks]  # type: ignore[union-attr]
    assert len(changes) == len(local.change_points) == 1
    assert abs(changes[0].index - local.change_points[0].index) <= 10 * 5  # ADWIN on block means
    assert changes[0].index % 10 == 0 and got.after_change[0].drifted
