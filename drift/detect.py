"""Drift detection: pick a test per column, correct for multiple tests, add concept drift and severity.

Columns (design.md): ``timestamp``, ``model_id``, ``model_version``, ``prediction`` and ``label`` have
fixed roles (the inference handler writes ``model_id`` on every record); every other column is a model
input feature. ``prediction`` is tested like a feature (output drift) and
reported in ``DriftReport.prediction``; it belongs to the multiple-testing family and its drift counts
as data drift. Kinds come from ``kinds`` / the config file, else from the dtype (numeric dtypes ->
numeric; bool, str, object -> categorical). Columns may have different lengths (readers drop nulls per
column); pairing ``prediction`` with ``label`` (performance) and with timestamps needs equal lengths and
is skipped otherwise.

Selection (as Evidently does, cut-off 1,000 rows on the smaller sample): small samples use p-value tests
(``ks`` numeric, ``chisquare`` categorical) at ``alpha`` corrected over the family; large samples use
distances with fixed thresholds (``wasserstein`` / reference std >= 0.1 numeric, ``jensenshannon`` >= 0.1
categorical), because with a million rows a p-value flags shifts nobody cares about. A per-feature
override in the config file replaces the test and/or the threshold.

Multiple testing: the family is every p-value test that uses the default threshold (an explicit
threshold in the config is used as given). ``bonferroni``: each threshold is ``alpha / m``. ``holm``:
the k-th smallest p-value (1-based) is compared with ``alpha / (m - k + 1)`` until the first
non-rejection; that threshold is reported for the rest. ``none``: ``alpha``.

Severity rules (``DetectConfig.major_share`` and ``major_distance_factor``):
  * ``major`` if performance drift is found; or the drifted share of tested columns (features plus
    prediction) is >= ``major_share`` (0.5); or a distance test is >= ``major_distance_factor`` (2) times
    its threshold;
  * ``minor`` if anything else drifted;
  * ``minor`` also for a data-quality finding (missing shares, new categories, schema drift);
  * ``none`` otherwise. An ADWIN change point of the error splits the window: the segment after it is
    tested for performance drift; change points of other metrics only locate changes.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from drift import performance, stattests
from drift.model import (
    ChangePoint,
    DataQuality,
    DriftReport,
    FeatureResult,
    MissingShare,
    NewCategories,
    PerformanceResult,
    PerformanceSegment,
)
from drift.performance import auc_delong  # noqa: F401  (re-exported: part of this module's API)
from drift.streaming import DEFAULT_DELTA, adwin

#: Columns with fixed roles, never tested as features: record identity, label, prediction and its score.
RESERVED_COLUMNS = ("timestamp", "model_id", "model_version", "request_id", "prediction", "probability", "label")
#: Columns that identify a record rather than describe it: never tested, may be empty.
_ID_COLUMNS = ("timestamp", "model_id", "model_version", "request_id")
CORRECTIONS = ("bonferroni", "holm", "none")
TASKS = ("auto", "classification", "regression")
#: thresholds used when the reference is too small to measure its chunk-to-chunk variability.
PERFORMANCE_THRESHOLDS = performance.FALLBACK_THRESHOLDS
_MAX_CLASSES = 20  # an integer label with more distinct values than this is treated as a regression target
_SUMMARY_TOP = 10
#: Columns are tested in a thread pool (numpy's sort and Arrow's kernels release the GIL) once the larger
#: column pair has this many values; below it the pool's start-up costs more than it saves.
PARALLEL_MIN_VALUES = 200_000
#: At most this many columns in flight: each holds sorted copies of its two samples until it is done.
MAX_WORKERS = 4


class ConfigMismatchError(ValueError):
    """The detection config asks for something the data cannot give (bad input: exit 2, not a bug)."""


@dataclass
class FeatureOverride:
    """Per-feature settings from the config file; ``None`` keeps the default."""

    test: str | None = None
    threshold: float | None = None
    kind: str | None = None


@dataclass
class DetectConfig:
    """Everything :func:`detect` can be told; the defaults are the documented rules."""

    alpha: float = 0.05
    correction: str = "bonferroni"
    large_sample_cutoff: int = 1000
    numeric_small_test: str = "ks"
    numeric_large_test: str = "wasserstein"
    categorical_small_test: str = "chisquare"
    categorical_large_test: str = "jensenshannon"
    bins: int = stattests.DEFAULT_BINS
    features: dict[str, FeatureOverride] = field(default_factory=dict)
    test_prediction: bool = True
    major_share: float = 0.5
    major_distance_factor: float = 2.0
    performance_task: str = "auto"
    performance_alpha: float = 0.05
    performance_threshold: float | None = None
    performance_metric: str = "auto"
    performance_positive_label: str | None = None
    performance_chunks: int = 10
    performance_min_chunk_rows: int = 500
    performance_std_multiplier: float = 3.0
    performance_min_degradation: float | None = None
    streaming_metric: str = "auto"
    streaming_delta: float = DEFAULT_DELTA
    quality_missing_threshold: float = 0.05
    quality_new_category_share: float = 0.01

    def __post_init__(self) -> None:
        self.validate()

    def validate(self, where: str = "drift config") -> None:
        """Raise ``ValueError`` naming the first bad key."""

        def bad(key: str, msg: str) -> ValueError:
            return ValueError(f"{where}: key '{key}': {msg}")

        for key in ("alpha", "performance_alpha"):
            if not 0.0 < getattr(self, key) < 1.0:
                raise bad(key, f"must be in (0, 1), got {getattr(self, key)}")
        if not 0.0 < self.streaming_delta < 1.0:
            raise bad("streaming_delta", f"must be in (0, 1), got {self.streaming_delta}")
        if self.correction not in CORRECTIONS:
            raise bad("correction", f"must be one of {', '.join(CORRECTIONS)}, got {self.correction!r}")
        if self.performance_task not in TASKS:
            raise bad("performance_task", f"must be one of {', '.join(TASKS)}, got {self.performance_task!r}")
        if self.large_sample_cutoff < 0:
            raise bad("large_sample_cutoff", "must be >= 0")
        if self.bins < 2:
            raise bad("bins", f"must be >= 2, got {self.bins}")
        if not 0.0 < self.major_share <= 1.0:
            raise bad("major_share", f"must be in (0, 1], got {self.major_share}")
        if self.major_distance_factor < 1.0:
            raise bad("major_distance_factor", f"must be >= 1, got {self.major_distance_factor}")
        if self.performance_threshold is not None and self.performance_threshold <= 0:
            raise bad("performance_threshold", "must be > 0")
        if self.performance_metric not in performance.METRICS:
            raise bad("performance_metric", f"must be one of {', '.join(performance.METRICS)}")
        if self.performance_chunks < 1:
            raise bad("performance_chunks", f"must be >= 1, got {self.performance_chunks}")
        if self.performance_min_chunk_rows < performance.MIN_SEGMENT_ROWS:
            raise bad("performance_min_chunk_rows", f"must be >= {performance.MIN_SEGMENT_ROWS}")
        if not self.performance_std_multiplier > 0:
            raise bad("performance_std_multiplier", "must be > 0")
        if self.performance_min_degradation is not None and self.performance_min_degradation < 0:
            raise bad("performance_min_degradation", "must be >= 0")
        if not 0.0 < self.quality_missing_threshold <= 1.0:
            raise bad("quality_missing_threshold", f"must be in (0, 1], got {self.quality_missing_threshold}")
        if not 0.0 <= self.quality_new_category_share < 1.0:
            raise bad("quality_new_category_share", f"must be in [0, 1), got {self.quality_new_category_share}")
        for key, kind in (
            ("numeric_small_test", "numeric"),
            ("numeric_large_test", "numeric"),
            ("categorical_small_test", "categorical"),
            ("categorical_large_test", "categorical"),
        ):
            try:
                stattests.get_stattest(getattr(self, key), kind)
            except ValueError as exc:
                raise bad(key, str(exc)) from None
        for name, ov in self.features.items():
            k = f"features.{name}"
            if ov.kind is not None and ov.kind not in ("numeric", "categorical"):
                raise bad(f"{k}.kind", f"must be numeric or categorical, got {ov.kind!r}")
            if ov.test is not None:
                try:
                    stattests.get_stattest(ov.test, ov.kind)
                except ValueError as exc:
                    raise bad(f"{k}.test", str(exc)) from None
            if ov.threshold is not None and not (ov.threshold > 0 and math.isfinite(ov.threshold)):
                raise bad(f"{k}.threshold", f"must be a positive number, got {ov.threshold}")


# ---- config file ---------------------------------------------------------------------------------------

_SECTIONS: dict[str, dict[str, str]] = {
    # file section -> {file key: DetectConfig attribute}
    "": {
        "alpha": "alpha",
        "correction": "correction",
        "large_sample_cutoff": "large_sample_cutoff",
        "bins": "bins",
        "test_prediction": "test_prediction",
    },
    "tests": {
        "numeric_small": "numeric_small_test",
        "numeric_large": "numeric_large_test",
        "categorical_small": "categorical_small_test",
        "categorical_large": "categorical_large_test",
    },
    "severity": {"major_share": "major_share", "major_distance_factor": "major_distance_factor"},
    "performance": {
        "task": "performance_task",
        "alpha": "performance_alpha",
        "threshold": "performance_threshold",
        "metric": "performance_metric",
        "positive_label": "performance_positive_label",
        "chunks": "performance_chunks",
        "min_chunk_rows": "performance_min_chunk_rows",
        "std_multiplier": "performance_std_multiplier",
        "min_degradation": "performance_min_degradation",
    },
    "streaming": {"metric": "streaming_metric", "delta": "streaming_delta"},
    "quality": {"missing_threshold": "quality_missing_threshold", "new_category_share": "quality_new_category_share"},
}
_TYPES = {f.name: f.type for f in fields(DetectConfig)}


def load_detect_config(path: str | Path) -> DetectConfig:
    """Read overrides from a YAML or JSON file (format in docs/drift.md).

    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` naming the file and the key for
    anything else wrong: syntax, unknown keys, wrong types, invalid values.
    """
    from inferops import safeload

    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(str(p))
    # Bounded size, UTF-8, bounded nesting and aliases, plain values only (one line naming the file).
    text = safeload.read_text(p, what="drift config")
    where = safeload.escape(str(p))
    if p.suffix.lower() == ".json":
        data = safeload.loads_json(text, where) if text.strip() else {}
    else:
        data = safeload.loads_yaml(text, where)
    return config_from_mapping({} if data is None else data, where=str(p))


def config_from_mapping(data: Any, where: str = "drift config") -> DetectConfig:
    """Build a :class:`DetectConfig` from a parsed mapping; ``ValueError`` names ``where`` and the key."""
    if not isinstance(data, dict):
        raise ValueError(f"{where}: the top level must be a mapping, got {type(data).__name__}")
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key == "features":
            kwargs["features"] = _overrides(value, where)
        elif key in _SECTIONS and key != "":
            if not isinstance(value, dict):
                raise ValueError(f"{where}: key '{key}': must be a mapping")
            for sub, subval in value.items():
                if sub not in _SECTIONS[key]:
                    raise ValueError(f"{where}: unknown key '{key}.{sub}'; valid: {', '.join(_SECTIONS[key])}")
                attr = _SECTIONS[key][sub]
                kwargs[attr] = _typed(subval, attr, f"{key}.{sub}", where)
        elif key in _SECTIONS[""]:
            kwargs[_SECTIONS[""][key]] = _typed(value, _SECTIONS[""][key], key, where)
        else:
            valid = [*_SECTIONS[""], "features", *(k for k in _SECTIONS if k)]
            raise ValueError(f"{where}: unknown key '{key}'; valid: {', '.join(valid)}")
    try:
        return DetectConfig(**kwargs)  # validation runs in __post_init__
    except ValueError as exc:
        msg = str(exc).replace("drift config:", f"{where}:", 1)
        # name the key as written in the file, not the attribute
        for section, keys in _SECTIONS.items():
            for file_key, attr in keys.items():
                shown = f"{section}.{file_key}" if section else file_key
                msg = msg.replace(f"key '{attr}'", f"key '{shown}'", 1)
        raise ValueError(msg) from None


def _typed(value: Any, attr: str, key: str, where: str) -> Any:
    t = str(_TYPES[attr])
    if t == "bool":
        ok = isinstance(value, bool)
    elif t == "int":
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif t == "str":
        ok = isinstance(value, str)
    elif t == "str | None":
        ok = value is None or isinstance(value, str)
    elif "float" in t:
        ok = (isinstance(value, (int, float)) and not isinstance(value, bool)) or (value is None and "None" in t)
        if ok and value is not None:
            value = float(value)
    else:  # pragma: no cover - every attribute is one of the above
        ok = True
    if not ok:
        raise ValueError(f"{where}: key '{key}': expected {t.replace(' | None', ' or null')}, got {value!r}")
    return value


def _overrides(value: Any, where: str) -> dict[str, FeatureOverride]:
    if not isinstance(value, dict):
        raise ValueError(f"{where}: key 'features': must be a mapping of feature name to settings")
    out: dict[str, FeatureOverride] = {}
    for name, spec in value.items():
        if not isinstance(spec, dict):
            raise ValueError(f"{where}: key 'features.{name}': must be a mapping with test/threshold/kind")
        for k in spec:
            if k not in ("test", "threshold", "kind"):
                raise ValueError(f"{where}: unknown key 'features.{name}.{k}'; valid: test, threshold, kind")
        test, thr, kind = spec.get("test"), spec.get("threshold"), spec.get("kind")
        if test is not None and not isinstance(test, str):
            raise ValueError(f"{where}: key 'features.{name}.test': expected a string, got {test!r}")
        if kind is not None and not isinstance(kind, str):
            raise ValueError(f"{where}: key 'features.{name}.kind': expected a string, got {kind!r}")
        if thr is not None and (isinstance(thr, bool) or not isinstance(thr, (int, float))):
            raise ValueError(f"{where}: key 'features.{name}.threshold': expected a number, got {thr!r}")
        out[str(name)] = FeatureOverride(test=test, threshold=None if thr is None else float(thr), kind=kind)
    return out


# ---- detection -----------------------------------------------------------------------------------------


def infer_kind(values: Any) -> str:
    """numeric for integer/float dtypes, categorical for bool, strings and objects (numpy or Arrow)."""
    if _is_arrow(values):
        t = values.type
        return "numeric" if pa.types.is_integer(t) or pa.types.is_floating(t) else "categorical"
    return "numeric" if np.asarray(values).dtype.kind in "iuf" else "categorical"


def _is_arrow(values: Any) -> bool:
    return isinstance(values, (pa.Array, pa.ChunkedArray))


def _as_numpy(values: Any) -> np.ndarray:
    """A column as numpy (Arrow dictionary columns decoded: only for the few columns paired row by row)."""
    if _is_arrow(values):
        if pa.types.is_dictionary(values.type):
            values = values.cast(values.type.value_type)
        return values.to_numpy(zero_copy_only=False)
    return np.asarray(values)


def _size(values: Any) -> int:
    return len(values) if _is_arrow(values) else int(np.asarray(values).size)


@dataclass
class _Planned:
    name: str
    kind: str
    test: stattests.StatTest
    threshold: float | None  # None: default (alpha for p-value tests, corrected later)
    ref: Any  # the prepared samples, dropped (None) once the column's test and summaries are done
    cur: Any
    n_reference: int = 0  # values tested (nulls dropped by the readers)
    n_current: int = 0
    size_reference: int = 0  # length of the column as given
    size_current: int = 0
    reference_summary: dict[str, Any] = field(default_factory=dict)
    current_summary: dict[str, Any] = field(default_factory=dict)
    note: str | None = None  # why the column was not tested


def detect(
    reference: Mapping[str, np.ndarray],
    current: Mapping[str, np.ndarray],
    *,
    kinds: Mapping[str, str] | None = None,
    config: DetectConfig | None = None,
    timestamps: np.ndarray | None = None,
    reference_timestamps: np.ndarray | None = None,
) -> DriftReport:
    """Compare ``current`` with ``reference`` column by column; see the module docstring for the rules.

    ``timestamps`` are the current window's record times (else its ``timestamp`` column, if any); they
    order the records for the performance chunks and ADWIN and name where a change began.
    ``reference_timestamps`` (else the reference's ``timestamp`` column) order the reference's chunks.

    Columns may hold nulls (``None`` in object arrays, numpy masked arrays, Arrow nulls): each column is
    tested on its values and its missing share is compared (``data_quality``). ``label``,
    ``prediction`` and ``probability`` are paired row by row, so they must have one entry per row
    (nulls included); a mapping's ``n_rows`` attribute gives the window's rows when its feature columns
    had their nulls dropped (the readers), else the longest column does.

    Each feature column is fetched (``reference[name]``) once, when its test runs, and dropped after it:
    a mapping that reads columns lazily from a file (:class:`drift.readers.ParquetColumns`) never has
    more than a few columns in memory. A mapping may have an ``all_columns`` attribute (every column of
    its file, read or not), used to report columns present only in the current data.
    """
    cfg = config or DetectConfig()
    kinds = dict(kinds or {})
    only_in_current = _check_columns(reference, current)
    names = [c for c in reference if c not in RESERVED_COLUMNS]
    rows = (_window_rows(reference), _window_rows(current))

    with_prediction = cfg.test_prediction and "prediction" in reference and "prediction" in current
    columns = names + (["prediction"] if with_prediction else [])

    def run(name: str) -> tuple[_Planned, float, float | None]:
        return _run_column(name, reference[name], current[name], kinds, cfg, rows)

    largest = _rows_hint(reference) + _rows_hint(current)
    workers = min(MAX_WORKERS, _cpus(), len(columns))
    if workers > 1 and largest >= PARALLEL_MIN_VALUES:
        # Results come back in column order, so the first bad column raises first, as sequentially;
        # columns not started yet are then cancelled rather than read and tested for nothing.
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="drift") as pool:
            try:
                raw = list(pool.map(run, columns))
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)
                raise
    else:
        raw = [run(name) for name in columns]
    thresholds = _thresholds([(p, pv) for p, _, pv in raw if p.note is None], cfg)
    results = [_result(p, stat, pv, thresholds.get(id(p), 0.0)) for p, stat, pv in raw]
    features = results[: len(names)]
    prediction = results[len(names)] if with_prediction else None

    notes: list[str] = []
    ref_ts = reference_timestamps if reference_timestamps is not None else reference.get("timestamp")
    cur_ts = timestamps if timestamps is not None else current.get("timestamp")
    perf, change_points = _performance(reference, current, cfg, rows, (ref_ts, cur_ts), notes)
    if perf is None:
        if cfg.streaming_metric == "error":
            raise ConfigMismatchError("streaming.metric 'error' needs label and prediction columns paired row by row")
        change_points = _column_change_points(current, cfg, cur_ts)
    elif cfg.streaming_metric not in ("auto", "error"):
        change_points = _column_change_points(current, cfg, cur_ts)
    quality = _quality([p for p, _, _ in raw], only_in_current, cfg)
    n_ref = max([rows[0], *_reserved_sizes(reference)])
    n_cur = max([rows[1], *_reserved_sizes(current)])
    return assemble_report(
        features, prediction, perf, change_points, cfg, n_ref, n_cur, data_quality=quality, notes=notes
    )


def assemble_report(
    features: list[FeatureResult],
    prediction: FeatureResult | None,
    performance: PerformanceResult | None,
    change_points: list[ChangePoint],
    cfg: DetectConfig,
    n_reference: int,
    n_current: int,
    binned: bool = False,
    data_quality: DataQuality | None = None,
    notes: list[str] | None = None,
) -> DriftReport:
    """Apply the severity rules and build the report (shared with the binned path).

    Data-quality findings (missing shares, new categories, columns only in the current data) are data
    drift: ``drift_kinds`` gets ``"data"`` (remediation knows ``data`` and ``performance`` only).
    """
    tested = features + ([prediction] if prediction else [])
    drifted = [f for f in tested if f.drifted]
    kinds_found = []
    if drifted or (data_quality is not None and data_quality.drifted):
        kinds_found.append("data")
    if performance is not None and performance.drifted:
        kinds_found.append("performance")
    severity, reasons = severity_of(tested, performance, cfg, data_quality)
    return DriftReport(
        drifted=bool(kinds_found),
        severity=severity,  # type: ignore[arg-type]  # severity_of returns one of the three levels
        n_reference=n_reference,
        n_current=n_current,
        features=features,
        performance=performance,
        change_points=change_points,
        drift_kinds=kinds_found,
        prediction=prediction,
        correction=cfg.correction,
        alpha=cfg.alpha,
        severity_reasons=reasons,
        binned=binned,
        data_quality=data_quality,
        notes=list(notes or []),
    )


def severity_of(
    tested: list[FeatureResult],
    performance: PerformanceResult | None,
    cfg: DetectConfig,
    data_quality: DataQuality | None = None,
) -> tuple[str, list[str]]:
    """``(severity, reasons)`` by the rules in the module docstring."""
    reasons: list[str] = []
    drifted = [f for f in tested if f.drifted]
    if performance is not None and performance.drifted:
        window = performance.degradation >= performance.threshold and (
            performance.p_value is not None and performance.p_value < performance.segment_alpha
        )
        where = ["the whole window"] if window else []
        chunks = [str(i + 1) for i, c in enumerate(performance.chunks) if c.drifted]
        if chunks:
            where.append(f"chunk{'s' if len(chunks) > 1 else ''} {', '.join(chunks)} of {len(performance.chunks)}")
        where += [f"after the change at row {c.start}" for c in performance.after_change if c.drifted]
        what = (
            f"{performance.metric} {performance.current:.4g} vs {performance.reference:.4g} "
            f"(p={performance.p_value:.3g}); drifted in {'; '.join(where) or 'a segment'}"
        )
        reasons.append(f"performance: {what} (threshold {performance.threshold:.3g})")
    if tested and len(drifted) / len(tested) >= cfg.major_share:
        reasons.append(f"{len(drifted)} of {len(tested)} columns drifted (>= {cfg.major_share:.0%})")
    for f in drifted:
        if f.returns == "distance" and f.statistic >= cfg.major_distance_factor * f.threshold:
            reasons.append(
                f"{f.feature}: {f.test} {f.statistic:.4g} >= {cfg.major_distance_factor:g} x threshold {f.threshold:g}"
            )
    if reasons:
        return "major", reasons
    minor = []
    if drifted:
        minor.append(f"{len(drifted)} of {len(tested)} columns drifted: " + ", ".join(f.feature for f in drifted))
    if data_quality is not None and data_quality.drifted:
        minor += _quality_reasons(data_quality)
    return ("minor", minor) if minor else ("none", [])


def _quality_reasons(q: DataQuality) -> list[str]:
    out = []
    for m in q.missing:
        if m.drifted:
            out.append(f"{m.column}: missing share {m.reference_share:.1%} -> {m.current_share:.1%}")
    for c in q.new_categories:
        if c.drifted:
            out.append(f"{c.column}: {c.count} new categories, {c.share:.1%} of the current values")
    if q.only_in_current:
        out.append("schema: column(s) only in the current data: " + ", ".join(q.only_in_current))
    return out


def _all_finite(arr: Any) -> bool:
    """Whether a floating Arrow array holds no NaN or infinity (nulls are not counted)."""
    import pyarrow.compute as pc

    return bool(pc.all(pc.is_finite(arr)).as_py() is not False)


def _check_columns(reference: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """Raise for a feature missing from the current data; return the columns only the current data has."""
    if not reference:
        raise ValueError("reference: no columns")
    if not current:
        raise ValueError("current: no columns")
    ref_f = {c for c in reference if c not in RESERVED_COLUMNS}
    cur_f = {c for c in current if c not in RESERVED_COLUMNS}
    if ref_f - cur_f:
        raise ValueError(f"current: missing feature column(s) {', '.join(sorted(ref_f - cur_f))}")
    ref_all = set(getattr(reference, "all_columns", None) or reference)
    cur_all = list(getattr(current, "all_columns", None) or current)
    only_in_current = [c for c in cur_all if c not in ref_all and c not in RESERVED_COLUMNS]
    # Feature columns are checked when their test runs (detect's run()), so that a lazy mapping is not
    # read twice; the few columns with fixed roles are checked here.
    for side, data in (("reference", reference), ("current", current)):
        for name in RESERVED_COLUMNS:
            if name in data:
                _check_values(side, name, _non_null(data[name])[0], allow_empty=name in ("label", "probability"))
    return sorted(only_in_current)


def _check_values(side: str, name: str, arr: Any, allow_empty: bool = False) -> None:
    """Reject NaN/infinity and wrong shapes; an empty column too, unless it may be (ids, all-null labels)."""
    allow_empty = allow_empty or name in _ID_COLUMNS
    if isinstance(arr, np.ma.MaskedArray):
        arr = np.asarray(arr.data)[~np.ma.getmaskarray(arr)]
    if _is_arrow(arr):
        if len(arr) == 0 and not allow_empty:
            raise ValueError(f"{side}: column {name!r} is empty")
        if pa.types.is_floating(arr.type) and len(arr) and not _all_finite(arr):
            raise ValueError(f"{side}: column {name!r} contains NaN or infinite values")
        return
    a = np.asarray(arr)
    if a.ndim != 1:
        raise ValueError(f"{side}: column {name!r} must be one-dimensional, got shape {a.shape}")
    if a.size == 0 and not allow_empty:
        raise ValueError(f"{side}: column {name!r} is empty")
    if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
        raise ValueError(f"{side}: column {name!r} contains NaN or infinite values")


def _reserved_sizes(data: Mapping[str, Any]) -> list[int]:
    return [_size(data[name]) for name in RESERVED_COLUMNS if name in data]


def _rows_hint(data: Mapping[str, Any]) -> int:
    """Rows of the longest column, from ``data.n_rows`` when a lazy mapping provides it."""
    hint = getattr(data, "n_rows", None)
    if isinstance(hint, int):
        return hint
    return max((_size(v) for v in data.values()), default=0)


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _run_column(
    name: str, ref: Any, cur: Any, kinds: Mapping[str, str], cfg: DetectConfig, rows: tuple[int, int]
) -> tuple[_Planned, float, float | None]:
    """Prepare one column, run its test and summaries, then drop the samples.

    Nulls are dropped first (their share is judged as data quality); a column without any value on one
    side is reported untested, the same way whether 99.9% or 100% of it is missing. Sorted copies of a
    numeric column live only while its own test runs, so memory holds at most ``MAX_WORKERS`` columns'
    copies instead of every column's until the end.
    """
    ref_v, _ = _non_null(ref)
    cur_v, _ = _non_null(cur)
    _check_values("reference", name, ref_v, allow_empty=True)
    _check_values("current", name, cur_v, allow_empty=True)
    empty = [side for side, v in (("reference", ref_v), ("current", cur_v)) if _size(v) == 0]
    if empty:
        return _untested(name, ref_v, cur_v, kinds, cfg, rows, empty), 0.0, None
    p = _plan(name, ref_v, cur_v, kinds, cfg)
    p.size_reference, p.size_current = rows
    stat, pv = p.test.func(p.ref, p.cur, **_params(p.test, cfg))
    p.n_reference, p.n_current = p.ref.n, p.cur.n
    p.reference_summary, p.current_summary = summarize(p.ref), summarize(p.cur, p.ref)
    p.ref = p.cur = None
    return p, stat, pv


def _untested(
    name: str, ref: Any, cur: Any, kinds: Mapping[str, str], cfg: DetectConfig, rows: tuple[int, int], empty: list
) -> _Planned:
    ov = cfg.features.get(name, FeatureOverride())
    kind = kinds.get(name) or ov.kind
    if kind is None:
        present = [v for v in (ref, cur) if _size(v)]
        kind = "numeric" if present and all(infer_kind(v) == "numeric" for v in present) else "categorical"
    test = stattests.get_stattest(
        ov.test or getattr(cfg, f"{kind}_small_test"), kind if kind in ("numeric", "categorical") else None
    )
    p = _Planned(name, kind, test, ov.threshold, None, None)
    p.size_reference, p.size_current = rows
    p.n_reference, p.n_current = _size(ref), _size(cur)
    p.note = f"not tested: no values in the {' and '.join(empty)} data"
    return p


def _plan(name: str, ref: np.ndarray, cur: np.ndarray, kinds: Mapping[str, str], cfg: DetectConfig) -> _Planned:
    ov = cfg.features.get(name, FeatureOverride())
    kind = kinds.get(name) or ov.kind
    if kind is None:
        kind = "numeric" if infer_kind(ref) == "numeric" and infer_kind(cur) == "numeric" else "categorical"
    if kind not in ("numeric", "categorical"):
        raise ValueError(f"kinds: column {name!r}: unknown kind {kind!r}; valid: categorical, numeric")
    ref_s = _sample(ref, kind, name, "reference")
    cur_s = _sample(cur, kind, name, "current")
    if ov.test is not None:
        try:
            test = stattests.get_stattest(ov.test, kind)
        except ValueError as exc:
            raise ValueError(f"features.{name}.test: {exc}") from None
    else:
        large = min(ref_s.n, cur_s.n) > cfg.large_sample_cutoff
        key = f"{kind}_{'large' if large else 'small'}_test"
        test = stattests.get_stattest(getattr(cfg, key), kind)
    return _Planned(name, kind, test, ov.threshold, ref_s, cur_s)


def _sample(values: np.ndarray, kind: str, name: str, side: str) -> Any:
    try:
        return stattests.make_sample(values, kind)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{side}: column {name!r}: {exc}") from None


def _params(test: stattests.StatTest, cfg: DetectConfig) -> dict[str, Any]:
    return {"bins": cfg.bins} if test.name in ("psi", "jensenshannon") else {}


def _thresholds(tested: list[tuple[_Planned, float | None]], cfg: DetectConfig) -> dict[int, float]:
    out: dict[int, float] = {}
    family: list[tuple[_Planned, float]] = []
    for p, pv in tested:
        if p.threshold is not None:
            out[id(p)] = p.threshold
        elif p.test.returns == "distance":
            out[id(p)] = p.test.default_threshold
        else:
            family.append((p, float(pv if pv is not None else 1.0)))
    m = len(family)
    if cfg.correction == "none" or m == 0:
        out.update({id(p): cfg.alpha for p, _ in family})
    elif cfg.correction == "bonferroni":
        out.update({id(p): cfg.alpha / m for p, _ in family})
    else:  # holm step-down
        stop_thr = None
        for k, (p, pv) in enumerate(sorted(family, key=lambda x: x[1])):
            thr = cfg.alpha / (m - k)
            if stop_thr is None and not pv < thr:
                stop_thr = thr  # first non-rejection: later hypotheses keep this threshold, so none pass
            out[id(p)] = thr if stop_thr is None else stop_thr
    return out


def _result(p: _Planned, stat: float, pv: float | None, threshold: float) -> FeatureResult:
    if p.note is not None:
        return FeatureResult(
            feature=p.name,
            kind=p.kind,  # type: ignore[arg-type]
            test=p.test.name,
            statistic=0.0,
            p_value=None,
            threshold=float(threshold),
            drifted=False,
            n_reference=p.n_reference,
            n_current=p.n_current,
            returns=p.test.returns,
            note=p.note,
        )
    return FeatureResult(
        feature=p.name,
        kind=p.kind,  # type: ignore[arg-type]  # "numeric" or "categorical", checked when planned
        test=p.test.name,
        statistic=float(stat),
        p_value=None if pv is None else float(pv),
        threshold=float(threshold),
        drifted=p.test.is_drift(stat, pv, threshold),
        n_reference=p.n_reference,
        n_current=p.n_current,
        returns=p.test.returns,
        reference_summary=p.reference_summary,
        current_summary=p.current_summary,
    )


def summarize(sample: Any, reference: Any = None) -> dict[str, Any]:
    """Small description of a sample for reports: moments for numeric, top shares for categorical."""
    if isinstance(sample, stattests.NumericSample):
        s = sample.sorted
        return {
            "mean": sample.mean,
            "std": sample.std,
            "min": float(s[0]),
            "median": float(sample.quantiles(np.array([0.5]))[0]),
            "max": float(s[-1]),
        }
    shares = sample.shares()
    out: dict[str, Any] = {"categories": len(shares), "top_shares": dict(list(shares.items())[:_SUMMARY_TOP])}
    if reference is not None:
        new = sorted(set(sample.counts) - set(reference.counts), key=lambda c: (-sample.counts[c], c))
        out["new_categories"] = new[:_SUMMARY_TOP]
        out["new_share"] = sum(sample.counts[c] for c in new) / sample.n
        out["new_category_shares"] = {c: sample.counts[c] / sample.n for c in new[:_SUMMARY_TOP]}
        out["new_category_count"] = len(new)
    return out


# ---- nulls and row pairing ------------------------------------------------------------------------------


def _window_rows(data: Mapping[str, Any]) -> int:
    """Rows of a window: ``data.n_rows`` when the mapping knows it (readers), else the longest column.

    Readers drop nulls from feature columns, so a column's missing share is ``1 - values / rows``.
    """
    hint = getattr(data, "n_rows", None)
    if isinstance(hint, int):
        return hint
    return max((_size(v) for v in data.values()), default=0)


def _null_mask(values: Any) -> np.ndarray | None:
    """Where a column holds nulls (None, Arrow nulls, masked entries), or None when it holds none."""
    if _is_arrow(values):
        if values.null_count == 0:
            return None
        return np.asarray(values.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    if isinstance(values, np.ma.MaskedArray):
        mask = np.ma.getmaskarray(values)
        return mask if mask.any() else None
    a = np.asarray(values)
    if a.dtype.kind == "O" and a.size:
        mask = np.asarray(a == None, dtype=bool)  # noqa: E711  (elementwise comparison with None)
        return mask if mask.any() else None
    return None


def _non_null(values: Any) -> tuple[Any, int]:
    """``(values without nulls, null count)``; Arrow stays Arrow (dictionary arrays are cheap to count)."""
    if _is_arrow(values):
        nulls = values.null_count
        return (values.drop_null() if nulls else values), int(nulls)
    if isinstance(values, np.ma.MaskedArray):
        mask = np.ma.getmaskarray(values)
        return np.asarray(values.data)[~mask], int(mask.sum())
    found = _null_mask(values)
    if found is None:
        return values, 0
    return np.asarray(values)[~found], int(found.sum())


def _aligned(data: Mapping[str, Any], name: str, n_rows: int) -> tuple[np.ndarray, np.ndarray] | str | None:
    """``(values, valid)`` of a column that has one entry per row; a note when it cannot be paired."""
    if name not in data:
        return None
    raw = data[name]
    size = _size(raw)
    mask = _null_mask(raw)
    if size != n_rows:
        return (
            f"cannot pair {name!r} with the other columns row by row: it has {size} entries for {n_rows} "
            "rows (nulls dropped before detection; pass nulls as None, masked or Arrow nulls)"
        )
    values = np.asarray(raw.data) if isinstance(raw, np.ma.MaskedArray) else _as_numpy(raw)
    valid = np.ones(size, dtype=bool) if mask is None else ~mask
    if values.dtype.kind == "O" and mask is not None:
        values = values.copy()
        # Nulls of an object column: a placeholder of the column's own type keeps it homogeneous.
        fill = values[valid][0] if valid.any() else ""
        values[~valid] = fill
    return values, valid


@dataclass
class _Rows:
    """One window's label, class prediction and score, aligned row by row in time order."""

    label: np.ndarray
    pred: np.ndarray | None  # the prediction column as given (classes, scores or regression values)
    score: np.ndarray | None  # the probability column
    valid: np.ndarray  # label and prediction (and probability, when given) present
    labelled: int
    n_rows: int
    order: np.ndarray | None  # time order of the window's rows (None: row order)
    timestamps: np.ndarray | None  # in time order


def _is_numeric(a: np.ndarray) -> bool:
    return a.dtype.kind in "iuf"


def _score_like(a: np.ndarray) -> bool:
    """A float prediction that is not a class: at least one non-integral value."""
    return a.dtype.kind == "f" and bool(np.any(a != np.round(a)))


def _window_pairs(data: Mapping[str, Any], n_rows: int, timestamps: Any, notes: list[str], side: str) -> _Rows | None:
    lab = _aligned(data, "label", n_rows)
    pred = _aligned(data, "prediction", n_rows)
    prob = _aligned(data, "probability", n_rows)
    for got in (lab, pred, prob):
        if isinstance(got, str):
            notes.append(f"performance: {side}: {got}")
            return None
    if lab is None or (pred is None and prob is None):
        return None
    assert not isinstance(lab, str) and not isinstance(pred, str) and not isinstance(prob, str)
    y, y_ok = lab
    valid = y_ok.copy()
    labelled = int(y_ok.sum())
    cls: np.ndarray | None = None
    score: np.ndarray | None = None
    if prob is not None and _is_numeric(prob[0]):
        score = prob[0].astype(np.float64)
        valid &= prob[1]
    if pred is not None:
        cls = pred[0]
        valid &= pred[1]
    order = None
    ts = None
    if timestamps is not None:
        ts_all = _as_numpy(timestamps)
        if ts_all.size == n_rows:
            order = np.argsort(ts_all, kind="stable")
            ts = ts_all[order]
    if order is not None:
        y, valid = y[order], valid[order]
        cls = None if cls is None else cls[order]
        score = None if score is None else score[order]
    return _Rows(y, cls, score, valid, labelled, n_rows, order, ts)


def _task(ref: _Rows, cur: _Rows, cfg: DetectConfig) -> performance.Task | str:
    """What to measure, from config and data; a note (str) when nothing can be measured."""
    y = np.concatenate([ref.label[ref.valid], cur.label[cur.valid]])
    preds = [r.pred[r.valid] for r in (ref, cur) if r.pred is not None]
    pred = np.concatenate(preds) if len(preds) == 2 else None
    has_score = ref.score is not None and cur.score is not None
    numeric_y = _is_numeric(y)
    regression = cfg.performance_task == "regression"
    if cfg.performance_task == "auto" and numeric_y and pred is not None and _is_numeric(pred):
        integral = bool(np.all(y == np.round(y)) and np.all(pred == np.round(pred)))
        binary = bool(np.isin(np.unique(y), (0, 1)).all())
        small = np.unique(np.concatenate([y, pred])).size <= _MAX_CLASSES
        regression = not (binary or (integral and small))
    if regression:
        if not (numeric_y and pred is not None and _is_numeric(pred)):
            return "regression needs numeric label and prediction columns"
        if cfg.performance_metric not in ("auto", "mae"):
            return f"metric {cfg.performance_metric!r} is a classification metric, the task is regression"
        return performance.Task("regression", "mae")
    if pred is not None and _is_numeric(pred) and _score_like(pred):
        # A non-integral prediction of a classifier is its score (probability, log-odds): AUC, no classes.
        for r in (ref, cur):
            if r.score is None:
                r.score = None if r.pred is None else r.pred.astype(np.float64)
            r.pred = None
        has_score, pred = True, None
    keys = sorted(set(performance.class_keys(y).tolist()))
    positive = None
    if len(keys) == 2 or (len(keys) == 1 and cfg.performance_positive_label is not None):
        ref_keys = performance.class_keys(ref.label[ref.valid])
        positive = performance.positive_class(keys, ref_keys, cfg.performance_positive_label)
    metric = cfg.performance_metric
    if metric == "auto":
        metric = "auc" if has_score and positive is not None else "accuracy"
    if metric in ("auc", "f1") and positive is None:
        return f"metric {metric!r} needs a two-class label; found {len(keys)} classes"
    if metric == "auc" and not has_score:
        return "metric 'auc' needs scores (a 'probability' column or a score-valued 'prediction')"
    if metric in ("accuracy", "f1") and pred is None:
        return f"metric {metric!r} needs class predictions in 'prediction'"
    return performance.Task("classification", metric, positive)


def _to_pairs(rows: _Rows, task: performance.Task) -> performance.Pairs:
    keep = np.flatnonzero(rows.valid)
    if task.task == "regression":
        y = rows.label[keep].astype(np.float64)
        pred = None if rows.pred is None else rows.pred[keep].astype(np.float64)
    else:
        y = performance.class_keys(rows.label[keep])
        pred = None if rows.pred is None else performance.class_keys(rows.pred[keep])
    score = None if rows.score is None else rows.score[keep]
    return performance.Pairs(y, pred, score, keep, rows.n_rows, rows.labelled)


def _settings(cfg: DetectConfig) -> performance.Settings:
    return performance.Settings(
        alpha=cfg.performance_alpha,
        threshold=cfg.performance_threshold,
        chunks=cfg.performance_chunks,
        min_chunk_rows=cfg.performance_min_chunk_rows,
        std_multiplier=cfg.performance_std_multiplier,
        min_degradation=cfg.performance_min_degradation,
    )


def _secondary_metrics(ref: performance.Pairs, cur: performance.Pairs, task: performance.Task) -> dict:
    out: dict[str, dict[str, float]] = {}
    for metric in ("accuracy", "f1", "auc", "mae"):
        if metric == task.metric:
            continue
        if metric == "mae" and task.task != "regression":
            continue
        if task.task == "regression" and metric != "mae":
            continue
        if metric in ("accuracy", "f1") and ref.pred is None:
            continue
        if metric in ("f1", "auc") and task.positive is None:
            continue
        if metric == "auc" and ref.score is None:
            continue
        t = performance.Task(task.task, metric, task.positive)
        r, c = performance._measure(ref, t), performance._measure(cur, t)
        if r is not None and c is not None:
            out[metric] = {"reference": r.value, "current": c.value}
    return out


def _segment(seg: performance.Segment, ts: np.ndarray | None) -> PerformanceSegment:
    def stamp(i: int) -> str | None:
        if ts is None or not 0 <= i < ts.size:
            return None
        return _stamp(ts[i])

    return PerformanceSegment(
        kind=seg.kind,
        start=seg.start,
        end=seg.end,
        n=seg.n,
        value=seg.value,
        degradation=seg.degradation,
        p_value=seg.p_value,
        drifted=seg.drifted,
        start_timestamp=stamp(seg.start),
        end_timestamp=stamp(seg.end - 1),
    )


def _performance(
    reference: Mapping[str, Any],
    current: Mapping[str, Any],
    cfg: DetectConfig,
    rows: tuple[int, int],
    timestamps: tuple[Any, Any],
    notes: list[str],
) -> tuple[PerformanceResult | None, list[ChangePoint]]:
    """Concept drift and the error stream's change points (module docstring of drift.performance)."""
    ref_rows = _window_pairs(reference, rows[0], timestamps[0], notes, "reference")
    cur_rows = _window_pairs(current, rows[1], timestamps[1], notes, "current")
    if ref_rows is None or cur_rows is None:
        return None, []
    for side, r in (("reference", ref_rows), ("current", cur_rows)):
        if not r.valid.any():
            notes.append(
                f"performance: {side}: no row has both label and prediction "
                f"({r.labelled} of {r.n_rows} rows labelled); not computed"
            )
            return None, []
    task = _task(ref_rows, cur_rows, cfg)
    if isinstance(task, str):
        notes.append(f"performance: {task}; not computed")
        return None, []
    ref_p, cur_p = _to_pairs(ref_rows, task), _to_pairs(cur_rows, task)
    if task.metric == "auc" and not all(
        np.any(p.y == task.positive) and np.any(p.y != task.positive) for p in (ref_p, cur_p)
    ):
        if ref_p.pred is None or cfg.performance_metric == "auc":
            notes.append("performance: AUC needs both classes in both windows; not computed")
            return None, []
        task = performance.Task(task.task, "accuracy", task.positive)  # AUC undefined: fall back
    changes = _error_change_points(cur_p, task, cfg, cur_rows.timestamps)
    rises = [i for c, i in changes if c.mean_after > c.mean_before]
    ev = performance.evaluate(ref_p, cur_p, task, _settings(cfg), rises)
    if ev is None:
        notes.append(f"performance: {task.metric} is undefined on one of the windows (one class only)")
        return None, [c for c, _ in changes]
    ts = cur_rows.timestamps
    result = PerformanceResult.of(
        ev,
        alpha=cfg.performance_alpha,
        test=performance.TEST_NAMES[task.metric],
        pairs=(ref_p.n, cur_p.n),
        rows=(ref_rows.n_rows, cur_rows.n_rows),
        labelled=(ref_rows.labelled, cur_rows.labelled),
        chunks=[_segment(c, ts) for c in ev.chunks],
        after_change=[_segment(c, ts) for c in ev.after_change],
        metrics=_secondary_metrics(ref_p, cur_p, task),
    )
    return result, [c for c, _ in changes]


def _error_change_points(
    cur: performance.Pairs, task: performance.Task, cfg: DetectConfig, ts: np.ndarray | None
) -> list[tuple[ChangePoint, int]]:
    """ADWIN on the per-row error of the labelled rows; ``(change point, its position among them)``."""
    if cfg.streaming_metric not in ("auto", "error"):
        return []
    values, vrange = performance.error_stream(cur, task)
    out = []
    for ch in adwin(values, delta=cfg.streaming_delta, value_range=vrange):
        start, detected = int(cur.rows[ch.start]), int(cur.rows[min(ch.detected, cur.n - 1)])
        out.append(
            (
                ChangePoint(
                    metric="error",
                    index=start,
                    timestamp=None if ts is None else _stamp(ts[start]),
                    detected_index=detected,
                    detected_timestamp=None if ts is None else _stamp(ts[detected]),
                    mean_before=ch.mean_before,
                    mean_after=ch.mean_after,
                ),
                int(ch.start),
            )
        )
    return out


def _stamp(v: Any) -> str:
    if isinstance(v, np.datetime64):
        return str(np.datetime_as_string(v))
    return str(v)


# ---- data quality --------------------------------------------------------------------------------------


def _quality(planned: list[_Planned], only_in_current: list[str], cfg: DetectConfig) -> DataQuality:
    """Missing shares, new categories and schema drift (rules in docs/drift.md, "Data quality")."""
    from drift import performance as perf

    compared = [p for p in planned if p.size_reference and p.size_current]
    m = max(1, len(compared))
    missing: list[MissingShare] = []
    for p in compared:
        r_null, c_null = p.size_reference - p.n_reference, p.size_current - p.n_current
        r_share, c_share = r_null / p.size_reference, c_null / p.size_current
        if r_null == 0 and c_null == 0:
            continue
        change = c_share - r_share
        # Two-sided Fisher exact test on nulls x window: twice the one-sided tail in the observed direction.
        if change >= 0:
            one = perf.fisher_greater(c_null, p.n_current, r_null, p.n_reference)
        else:
            one = perf.fisher_greater(r_null, p.n_reference, c_null, p.n_current)
        pv = min(1.0, 2.0 * one)
        drifted = abs(change) >= cfg.quality_missing_threshold and pv < cfg.alpha / m
        missing.append(MissingShare(p.name, r_share, c_share, change, pv, cfg.quality_missing_threshold, drifted))
    new: list[NewCategories] = []
    for p in planned:
        summary = p.current_summary
        if p.kind != "categorical" or not summary.get("new_categories"):
            continue
        share = float(summary.get("new_share", 0.0))
        # A category of share s is absent from n reference values with probability (1 - s)^n: only
        # when that is below alpha is "new" evidence of a change and not of a small reference.
        unseen = (1.0 - share) ** p.n_reference
        drifted = share > cfg.quality_new_category_share and unseen < cfg.alpha
        new.append(
            NewCategories(
                column=p.name,
                share=share,
                threshold=cfg.quality_new_category_share,
                drifted=drifted,
                categories=dict(summary.get("new_category_shares", {})),
                count=int(summary.get("new_category_count", len(summary["new_categories"]))),
            )
        )
    drifted = bool(only_in_current) or any(x.drifted for x in missing) or any(x.drifted for x in new)
    return DataQuality(drifted=drifted, missing=missing, new_categories=new, only_in_current=list(only_in_current))


# ---- change points on a column --------------------------------------------------------------------------


def _column_change_points(current: Mapping[str, Any], cfg: DetectConfig, timestamps: Any) -> list[ChangePoint]:
    """ADWIN on a numeric column (``streaming.metric``: a column, ``prediction`` or ``auto`` without labels)."""
    metric = cfg.streaming_metric
    if metric in ("none", "error"):
        return []
    if metric == "auto":
        metric = "prediction"
        if "prediction" not in current or infer_kind(current["prediction"]) != "numeric":
            return []
    if metric not in current:
        raise ConfigMismatchError(f"streaming.metric: no column {metric!r} in the current data")
    raw = current[metric]
    if infer_kind(raw) != "numeric" and not isinstance(raw, np.ma.MaskedArray):
        raise ConfigMismatchError(f"streaming.metric: column {metric!r} is not numeric")
    n_rows = _window_rows(current)
    got = _aligned(current, metric, n_rows)
    if got is None or isinstance(got, str):
        values, _ = _non_null(raw)
        values = _as_numpy(values).astype(np.float64)
        order = None
        ts = None
    else:
        values, valid = got
        order = np.arange(n_rows)
        ts = None
        if timestamps is not None:
            ts_all = _as_numpy(timestamps)
            if ts_all.size == n_rows:
                order = np.argsort(ts_all, kind="stable")
                ts = ts_all[order]
        keep = order[valid[order]]
        values = values[keep].astype(np.float64)
        order = np.flatnonzero(valid[order])  # positions in time order of the kept values
    out = []
    for ch in adwin(values, delta=cfg.streaming_delta):
        start = int(order[ch.start]) if order is not None else ch.start
        det = int(order[min(ch.detected, len(order) - 1)]) if order is not None else ch.detected
        out.append(
            ChangePoint(
                metric=metric,
                index=start,
                timestamp=None if ts is None else _stamp(ts[start]),
                detected_index=det,
                detected_timestamp=None if ts is None else _stamp(ts[det]),
                mean_before=ch.mean_before,
                mean_after=ch.mean_after,
            )
        )
    return out
