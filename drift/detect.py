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
  * ``none`` otherwise. ADWIN change points locate changes; they do not change ``drifted`` or severity.
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
from scipy import stats

from drift import stattests
from drift.model import ChangePoint, DriftReport, FeatureResult, PerformanceResult
from drift.streaming import DEFAULT_DELTA, adwin

RESERVED_COLUMNS = ("timestamp", "model_id", "model_version", "prediction", "label")
#: Columns that identify a record rather than describe it: never tested, may be empty.
_ID_COLUMNS = ("timestamp", "model_id", "model_version")
CORRECTIONS = ("bonferroni", "holm", "none")
TASKS = ("auto", "classification", "regression")
#: default degradation thresholds: absolute drop for accuracy/AUC, relative increase for MAE.
PERFORMANCE_THRESHOLDS = {"accuracy": 0.05, "auc": 0.05, "mae": 0.10}
_MAX_CLASSES = 20  # an integer label with more distinct values than this is treated as a regression target
_SUMMARY_TOP = 10
#: Columns are tested in a thread pool (numpy's sort and Arrow's kernels release the GIL) once the larger
#: column pair has this many values; below it the pool's start-up costs more than it saves.
PARALLEL_MIN_VALUES = 200_000
#: At most this many columns in flight: each holds sorted copies of its two samples until it is done.
MAX_WORKERS = 4


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
    streaming_metric: str = "auto"
    streaming_delta: float = DEFAULT_DELTA

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
    "performance": {"task": "performance_task", "alpha": "performance_alpha", "threshold": "performance_threshold"},
    "streaming": {"metric": "streaming_metric", "delta": "streaming_delta"},
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


def detect(
    reference: Mapping[str, np.ndarray],
    current: Mapping[str, np.ndarray],
    *,
    kinds: Mapping[str, str] | None = None,
    config: DetectConfig | None = None,
    timestamps: np.ndarray | None = None,
) -> DriftReport:
    """Compare ``current`` with ``reference`` column by column; see the module docstring for the rules.

    ``timestamps`` are the current window's record times (else its ``timestamp`` column, if any); they
    order the records for ADWIN and name where a change began.

    Each feature column is fetched (``reference[name]``) once, when its test runs, and dropped after it:
    a mapping that reads columns lazily from a file (:class:`drift.readers.ParquetColumns`) never has
    more than a few columns in memory. Such a mapping may have an ``n_rows`` attribute, used instead of
    fetching every column to size the work.
    """
    cfg = config or DetectConfig()
    kinds = dict(kinds or {})
    _check_columns(reference, current)
    names = [c for c in reference if c not in RESERVED_COLUMNS]

    with_prediction = cfg.test_prediction and "prediction" in reference and "prediction" in current
    columns = names + (["prediction"] if with_prediction else [])

    def run(name: str) -> tuple[_Planned, float, float | None]:
        ref, cur = reference[name], current[name]
        _check_values("reference", name, ref)
        _check_values("current", name, cur)
        return _run_column(name, ref, cur, kinds, cfg)

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
    thresholds = _thresholds([(p, pv) for p, _, pv in raw], cfg)
    results = [_result(p, stat, pv, thresholds[id(p)]) for p, stat, pv in raw]
    features = results[: len(names)]
    prediction = results[len(names)] if with_prediction else None

    performance = _performance(reference, current, cfg)
    change_points = _change_points(current, cfg, performance, timestamps)
    n_ref = max([p.size_reference for p, _, _ in raw] + _reserved_sizes(reference), default=0)
    n_cur = max([p.size_current for p, _, _ in raw] + _reserved_sizes(current), default=0)
    return assemble_report(features, prediction, performance, change_points, cfg, n_ref, n_cur)


def assemble_report(
    features: list[FeatureResult],
    prediction: FeatureResult | None,
    performance: PerformanceResult | None,
    change_points: list[ChangePoint],
    cfg: DetectConfig,
    n_reference: int,
    n_current: int,
    binned: bool = False,
) -> DriftReport:
    """Apply the severity rules and build the report (shared with the binned path)."""
    tested = features + ([prediction] if prediction else [])
    drifted = [f for f in tested if f.drifted]
    kinds_found = []
    if drifted:
        kinds_found.append("data")
    if performance is not None and performance.drifted:
        kinds_found.append("performance")
    severity, reasons = severity_of(tested, performance, cfg)
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
    )


def severity_of(
    tested: list[FeatureResult], performance: PerformanceResult | None, cfg: DetectConfig
) -> tuple[str, list[str]]:
    """``(severity, reasons)`` by the rules in the module docstring."""
    reasons: list[str] = []
    drifted = [f for f in tested if f.drifted]
    if performance is not None and performance.drifted:
        reasons.append(
            f"performance: {performance.metric} fell from {performance.reference:.4g} to "
            f"{performance.current:.4g} (p={performance.p_value:.3g})"
        )
    if tested and len(drifted) / len(tested) >= cfg.major_share:
        reasons.append(f"{len(drifted)} of {len(tested)} columns drifted (>= {cfg.major_share:.0%})")
    for f in drifted:
        if f.returns == "distance" and f.statistic >= cfg.major_distance_factor * f.threshold:
            reasons.append(
                f"{f.feature}: {f.test} {f.statistic:.4g} >= {cfg.major_distance_factor:g} x threshold {f.threshold:g}"
            )
    if reasons:
        return "major", reasons
    if drifted:
        return "minor", [f"{len(drifted)} of {len(tested)} columns drifted: " + ", ".join(f.feature for f in drifted)]
    return "none", []


def _all_finite(arr: Any) -> bool:
    """Whether a floating Arrow array holds no NaN or infinity (nulls are not counted)."""
    import pyarrow.compute as pc

    return bool(pc.all(pc.is_finite(arr)).as_py() is not False)


def _check_columns(reference: Mapping[str, Any], current: Mapping[str, Any]) -> None:
    if not reference:
        raise ValueError("reference: no columns")
    if not current:
        raise ValueError("current: no columns")
    ref_f = {c for c in reference if c not in RESERVED_COLUMNS}
    cur_f = {c for c in current if c not in RESERVED_COLUMNS}
    if ref_f - cur_f:
        raise ValueError(f"current: missing feature column(s) {', '.join(sorted(ref_f - cur_f))}")
    if cur_f - ref_f:
        raise ValueError(f"reference: missing feature column(s) {', '.join(sorted(cur_f - ref_f))}")
    # Feature columns are checked when their test runs (detect's run()), so that a lazy mapping is not
    # read twice; the few columns with fixed roles are checked here.
    for side, data in (("reference", reference), ("current", current)):
        for name in RESERVED_COLUMNS:
            if name in data:
                _check_values(side, name, data[name])


def _check_values(side: str, name: str, arr: Any) -> None:
    if _is_arrow(arr):
        if len(arr) == 0 and name not in _ID_COLUMNS:
            raise ValueError(f"{side}: column {name!r} is empty")
        if pa.types.is_floating(arr.type) and len(arr) and not _all_finite(arr):
            raise ValueError(f"{side}: column {name!r} contains NaN or infinite values")
        return
    a = np.asarray(arr)
    if a.ndim != 1:
        raise ValueError(f"{side}: column {name!r} must be one-dimensional, got shape {a.shape}")
    if a.size == 0 and name not in _ID_COLUMNS:
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
    name: str, ref: Any, cur: Any, kinds: Mapping[str, str], cfg: DetectConfig
) -> tuple[_Planned, float, float | None]:
    """Prepare one column, run its test and summaries, then drop the samples.

    Sorted copies of a numeric column live only while its own test runs, so memory holds at most
    ``MAX_WORKERS`` columns' copies instead of every column's until the end.
    """
    p = _plan(name, ref, cur, kinds, cfg)
    p.size_reference, p.size_current = _size(ref), _size(cur)
    stat, pv = p.test.func(p.ref, p.cur, **_params(p.test, cfg))
    p.n_reference, p.n_current = p.ref.n, p.cur.n
    p.reference_summary, p.current_summary = summarize(p.ref), summarize(p.cur, p.ref)
    p.ref = p.cur = None
    return p, stat, pv


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
    return out


# ---- performance (concept drift) -----------------------------------------------------------------------


def _pairs(data: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray] | None:
    if "label" not in data or "prediction" not in data:
        return None
    y, p = _as_numpy(data["label"]), _as_numpy(data["prediction"])
    if y.size != p.size or y.size == 0:
        return None
    return y, p


def _task(y: np.ndarray, p: np.ndarray, cfg: DetectConfig) -> tuple[str, str]:
    """(task, metric) from config or the data."""
    numeric = y.dtype.kind in "iuf" and p.dtype.kind in "iuf"
    binary = numeric and bool(np.isin(np.unique(y), (0, 1)).all())
    scores = numeric and p.dtype.kind == "f" and not np.all(p == np.round(p)) and p.min() >= 0 and p.max() <= 1
    if cfg.performance_task == "regression":
        return "regression", "mae"
    if cfg.performance_task == "classification" or not numeric:
        return "classification", "auc" if binary and scores else "accuracy"
    if binary and scores:
        return "classification", "auc"
    integral = np.all(y == np.round(y)) and np.all(p == np.round(p))
    if integral and np.unique(np.concatenate([y, p])).size <= _MAX_CLASSES:
        return "classification", "accuracy"
    return "regression", "mae"


def _correct(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    if y.dtype.kind in "iufb" and p.dtype.kind in "iufb":
        return y == p
    return y.astype(str) == p.astype(str)


def _performance(
    reference: Mapping[str, Any], current: Mapping[str, Any], cfg: DetectConfig
) -> PerformanceResult | None:
    rp, cp = _pairs(reference), _pairs(current)
    if rp is None or cp is None:
        return None
    task, metric = _task(np.concatenate([rp[0], cp[0]]), np.concatenate([rp[1], cp[1]]), cfg)
    if metric == "auc" and not (_both_classes(rp[0]) and _both_classes(cp[0])):
        metric = "accuracy"  # AUC needs both classes in both windows
    thr = cfg.performance_threshold or PERFORMANCE_THRESHOLDS[metric]
    if metric == "auc":
        (r, vr), (c, vc) = auc_delong(rp[0], rp[1]), auc_delong(cp[0], cp[1])
        se = math.sqrt(vr + vc)
        pv = float(stats.norm.sf((r - c) / se)) if se > 0 else (0.0 if r > c else 1.0)
        test, degr = "delong", r - c
    elif metric == "accuracy":
        ok_r, ok_c = _correct(*rp), _correct(*cp)
        r, c = float(ok_r.mean()), float(ok_c.mean())
        table = [[int(ok_r.sum()), int(ok_r.size - ok_r.sum())], [int(ok_c.sum()), int(ok_c.size - ok_c.sum())]]
        pv = float(stats.fisher_exact(table, alternative="greater").pvalue)
        test, degr = "fisher_exact", r - c
    else:
        er = np.abs(rp[0].astype(np.float64) - rp[1].astype(np.float64))
        ec = np.abs(cp[0].astype(np.float64) - cp[1].astype(np.float64))
        r, c = float(er.mean()), float(ec.mean())
        if er.size < 2 or ec.size < 2 or (er.std() == 0 and ec.std() == 0):
            pv = 0.0 if c > r else 1.0
        else:
            pv = float(stats.ttest_ind(er, ec, equal_var=False, alternative="less").pvalue)
        test, degr = "welch_t", (c - r) / max(r, 1e-12)
    return PerformanceResult(
        metric=metric,
        reference=r,
        current=c,
        delta=c - r,
        test=test,
        p_value=pv,
        threshold=float(thr),
        drifted=bool(degr >= thr and pv < cfg.performance_alpha),
        degradation=float(degr),
        alpha=cfg.performance_alpha,
        task=task,
        n_reference=int(rp[0].size),
        n_current=int(cp[0].size),
    )


def _both_classes(y: np.ndarray) -> bool:
    return bool(np.any(y == 1) and np.any(y == 0))


def auc_delong(y: np.ndarray, score: np.ndarray) -> tuple[float, float]:
    """ROC AUC of ``score`` for binary ``y`` and its DeLong variance (DeLong et al., Biometrics 1988).

    Uses midranks (Sun and Xu, IEEE SPL 2014), so ties count one half, as in the Mann-Whitney U.
    """
    y = np.asarray(y).astype(bool)
    s = np.asarray(score, dtype=np.float64)
    pos, neg = s[y], s[~y]
    m, n = pos.size, neg.size
    r_all = stats.rankdata(np.concatenate([pos, neg]))
    r_pos, r_neg = stats.rankdata(pos), stats.rankdata(neg)
    v10 = (r_all[:m] - r_pos) / n  # per positive: share of negatives ranked below
    v01 = 1.0 - (r_all[m:] - r_neg) / m  # per negative: share of positives ranked above
    auc = float(v10.mean())
    var = (float(v10.var(ddof=1)) / m if m > 1 else 0.0) + (float(v01.var(ddof=1)) / n if n > 1 else 0.0)
    return auc, var


# ---- streaming -----------------------------------------------------------------------------------------


def _change_points(
    current: Mapping[str, Any], cfg: DetectConfig, performance: PerformanceResult | None, timestamps: np.ndarray | None
) -> list[ChangePoint]:
    metric = cfg.streaming_metric
    if metric == "none":
        return []
    values: np.ndarray | None = None
    vrange: tuple[float, float] | None = None
    if metric in ("auto", "error"):
        pairs = _pairs(current)
        if performance is not None and pairs is not None:
            y, p = pairs
            if performance.metric == "accuracy":
                values, vrange = (~_correct(y, p)).astype(np.float64), (0.0, 1.0)
            else:
                values = np.abs(y.astype(np.float64) - p.astype(np.float64))
            metric = "error"
        elif metric == "error":
            raise ValueError("streaming.metric 'error' needs label and prediction columns of equal length")
    if values is None:
        if metric == "auto":
            metric = "prediction"
            if "prediction" not in current or infer_kind(current["prediction"]) != "numeric":
                return []
        if metric not in current:
            raise ValueError(f"streaming.metric: no column {metric!r} in the current data")
        values = _as_numpy(current[metric])
        if infer_kind(values) != "numeric":
            raise ValueError(f"streaming.metric: column {metric!r} is not numeric")
        values = values.astype(np.float64)
    ts = timestamps if timestamps is not None else current.get("timestamp")
    order: np.ndarray | None = None
    if ts is not None:
        ts = _as_numpy(ts)
        if ts.size == values.size:
            order = np.argsort(ts, kind="stable")
            values = values[order]
        else:
            ts = None
    out = []
    for ch in adwin(values, delta=cfg.streaming_delta, value_range=vrange):
        out.append(
            ChangePoint(
                metric=metric,
                index=ch.start,
                timestamp=_ts(ts, order, ch.start),
                detected_index=ch.detected,
                detected_timestamp=_ts(ts, order, ch.detected),
                mean_before=ch.mean_before,
                mean_after=ch.mean_after,
            )
        )
    return out


def _ts(ts: np.ndarray | None, order: np.ndarray | None, i: int) -> str | None:
    if ts is None or order is None:
        return None
    v = ts[order[i]]
    if isinstance(v, np.datetime64):
        return str(np.datetime_as_string(v))
    return str(v)
