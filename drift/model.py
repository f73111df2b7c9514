"""Result types of drift detection: plain, JSON-ready dataclasses.

``DriftReport.to_dict()`` produces the report object of the design contract (``drifted``, ``severity``,
``n_reference``, ``n_current``, ``features`` with ``feature``, ``kind``, ``test``, ``statistic``,
``p_value``, ``threshold``, ``drifted``) plus extra fields documented in ``docs/drift.md``. Key order is
fixed, so the same report always serialises to the same bytes. ``DriftReport.from_dict()`` is the inverse
and validates its input, raising ``ValueError`` that names the offending field.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

Kind = Literal["numeric", "categorical"]
Severity = Literal["none", "minor", "major"]

KINDS: tuple[str, ...] = ("numeric", "categorical")
SEVERITIES: tuple[str, ...] = ("none", "minor", "major")
DRIFT_KINDS: tuple[str, ...] = ("data", "performance")


@dataclass
class FeatureResult:
    """Outcome of one two-sample test on one column.

    ``drifted`` is ``p_value < threshold`` for p-value tests and ``statistic >= threshold`` for distance
    tests. ``error_bound`` is set only on the binned (out-of-memory) path: the true statistic lies in
    ``[statistic - error_bound, statistic + error_bound]`` (KS: ``[statistic, statistic + error_bound]``).
    """

    feature: str
    kind: Kind
    test: str
    statistic: float
    p_value: float | None
    threshold: float
    drifted: bool
    n_reference: int = 0
    n_current: int = 0
    returns: Literal["p_value", "distance"] = "p_value"
    error_bound: float | None = None
    reference_summary: dict[str, Any] = field(default_factory=dict)
    current_summary: dict[str, Any] = field(default_factory=dict)
    #: why the column was not tested (no values on one side); ``drifted`` is then false and the column's
    #: missing share is judged in ``DriftReport.data_quality``
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping with the contract's keys first."""
        out = {
            "feature": self.feature,
            "kind": self.kind,
            "test": self.test,
            "statistic": _finite(self.statistic),
            "p_value": None if self.p_value is None else _finite(self.p_value),
            "threshold": _finite(self.threshold),
            "drifted": bool(self.drifted),
            "n_reference": int(self.n_reference),
            "n_current": int(self.n_current),
            "returns": self.returns,
            "error_bound": None if self.error_bound is None else _finite(self.error_bound),
            "reference_summary": _plain(self.reference_summary),
            "current_summary": _plain(self.current_summary),
        }
        if self.note is not None:
            out["note"] = self.note
        return out

    @classmethod
    def from_dict(cls, d: Any, where: str = "feature") -> FeatureResult:
        """Validate and build; ``where`` prefixes field names in error messages."""
        _need_mapping(d, where)
        return cls(
            feature=_get(d, "feature", str, where),
            kind=_get_choice(d, "kind", KINDS, where),  # type: ignore[arg-type]
            test=_get(d, "test", str, where),
            statistic=_get_number(d, "statistic", where),
            p_value=_get_number(d, "p_value", where, optional=True),
            threshold=_get_number(d, "threshold", where),
            drifted=_get(d, "drifted", bool, where),
            n_reference=_get_int(d, "n_reference", where, default=0),
            n_current=_get_int(d, "n_current", where, default=0),
            returns=_get_choice(
                d,
                "returns",
                ("p_value", "distance"),
                where,  # type: ignore[arg-type]
                default="p_value" if d.get("p_value") is not None else "distance",
            ),
            error_bound=_get_number(d, "error_bound", where, optional=True),
            reference_summary=_get(d, "reference_summary", dict, where, default={}),
            current_summary=_get(d, "current_summary", dict, where, default={}),
            note=_get(d, "note", str, where, optional=True),
        )


@dataclass
class PerformanceSegment:
    """One tested stretch of the current window: the whole window, a chunk, or the part after a change.

    ``start``/``end`` are positions in the window's time order (end exclusive); ``n`` counts its rows with
    both label and prediction. ``value``/``degradation``/``p_value`` are null where the metric is
    undefined (one class only, fewer than 30 rows).
    """

    kind: str
    start: int
    end: int
    n: int
    value: float | None
    degradation: float | None
    p_value: float | None
    drifted: bool
    start_timestamp: str | None = None
    end_timestamp: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping."""
        return {
            "kind": self.kind,
            "start": int(self.start),
            "end": int(self.end),
            "start_timestamp": self.start_timestamp,
            "end_timestamp": self.end_timestamp,
            "n": int(self.n),
            "value": None if self.value is None else _finite(self.value),
            "degradation": None if self.degradation is None else _finite(self.degradation),
            "p_value": None if self.p_value is None else _finite(self.p_value),
            "drifted": bool(self.drifted),
        }

    @classmethod
    def from_dict(cls, d: Any, where: str = "segment") -> PerformanceSegment:
        """Validate and build; ``where`` prefixes field names in error messages."""
        _need_mapping(d, where)
        return cls(
            kind=_get(d, "kind", str, where),
            start=_get_int(d, "start", where),
            end=_get_int(d, "end", where),
            n=_get_int(d, "n", where),
            value=_get_number(d, "value", where, optional=True),
            degradation=_get_number(d, "degradation", where, optional=True),
            p_value=_get_number(d, "p_value", where, optional=True),
            drifted=_get(d, "drifted", bool, where),
            start_timestamp=_get(d, "start_timestamp", str, where, optional=True),
            end_timestamp=_get(d, "end_timestamp", str, where, optional=True),
        )


@dataclass
class PerformanceResult:
    """Model quality on reference vs current (concept drift).

    ``delta`` is ``current - reference``. ``degradation`` is the quantity compared with ``threshold``:
    the absolute drop for accuracy/AUC, the relative increase for MAE. ``drifted`` requires both
    ``degradation >= threshold`` and a one-sided test with ``p_value < alpha``.
    """

    metric: str
    reference: float
    current: float
    delta: float
    test: str
    p_value: float | None
    threshold: float
    drifted: bool
    degradation: float = 0.0
    alpha: float = 0.05
    task: str = "classification"
    n_reference: int = 0
    n_current: int = 0
    #: rows of each window, and rows with a label: ``n_*`` count the rows having both label and prediction
    rows_reference: int = 0
    rows_current: int = 0
    labelled_reference: int = 0
    labelled_current: int = 0
    positive_label: str | None = None
    #: where ``threshold`` came from: reference_chunks (std_multiplier x their std, floored), config, fallback
    threshold_source: str = "fallback"
    reference_chunk_std: float | None = None
    reference_chunks: int = 0
    chunk_rows: int = 0
    #: each segment's test is at this level (alpha / number of segments tested)
    segment_alpha: float = 0.05
    chunks: list[PerformanceSegment] = field(default_factory=list)
    after_change: list[PerformanceSegment] = field(default_factory=list)
    #: other metrics of both windows, for information: {"accuracy": {"reference": .., "current": ..}, ...}
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        ev: Any,
        *,
        alpha: float,
        test: str,
        pairs: tuple[int, int],
        rows: tuple[int, int],
        labelled: tuple[int, int],
        chunks: list[PerformanceSegment],
        after_change: list[PerformanceSegment],
        metrics: dict[str, dict[str, float]] | None = None,
    ) -> PerformanceResult:
        """The result of ``drift.performance.evaluate`` (an ``Evaluation``), whichever engine counted.

        ``pairs``, ``rows`` and ``labelled`` are ``(reference, current)``; the segments are the caller's,
        which knows their timestamps.
        """
        task = ev.task
        return cls(
            metric=task.metric,
            reference=ev.reference,
            current=ev.current,
            delta=ev.current - ev.reference,
            test=test,
            p_value=ev.p_value,
            threshold=ev.threshold,
            drifted=ev.drifted,
            degradation=float(ev.window.degradation or 0.0),
            alpha=alpha,
            task=task.task,
            n_reference=pairs[0],
            n_current=pairs[1],
            rows_reference=rows[0],
            rows_current=rows[1],
            labelled_reference=labelled[0],
            labelled_current=labelled[1],
            positive_label=task.positive,
            threshold_source=ev.threshold_source,
            reference_chunk_std=ev.reference_chunk_std,
            reference_chunks=ev.reference_chunks,
            chunk_rows=ev.chunk_rows,
            segment_alpha=ev.segment_alpha,
            chunks=chunks,
            after_change=after_change,
            metrics=metrics or {},
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping with the contract's keys first."""
        return {
            "metric": self.metric,
            "reference": _finite(self.reference),
            "current": _finite(self.current),
            "delta": _finite(self.delta),
            "test": self.test,
            "p_value": None if self.p_value is None else _finite(self.p_value),
            "threshold": _finite(self.threshold),
            "drifted": bool(self.drifted),
            "degradation": _finite(self.degradation),
            "alpha": _finite(self.alpha),
            "task": self.task,
            "n_reference": int(self.n_reference),
            "n_current": int(self.n_current),
            "rows_reference": int(self.rows_reference),
            "rows_current": int(self.rows_current),
            "labelled_reference": int(self.labelled_reference),
            "labelled_current": int(self.labelled_current),
            "positive_label": self.positive_label,
            "threshold_source": self.threshold_source,
            "reference_chunk_std": None if self.reference_chunk_std is None else _finite(self.reference_chunk_std),
            "reference_chunks": int(self.reference_chunks),
            "chunk_rows": int(self.chunk_rows),
            "segment_alpha": _finite(self.segment_alpha),
            "chunks": [c.to_dict() for c in self.chunks],
            "after_change": [c.to_dict() for c in self.after_change],
            "metrics": {k: {s: _finite(x) for s, x in v.items()} for k, v in self.metrics.items()},
        }

    @classmethod
    def from_dict(cls, d: Any, where: str = "performance") -> PerformanceResult:
        """Validate and build; ``where`` prefixes field names in error messages."""
        _need_mapping(d, where)
        return cls(
            metric=_get(d, "metric", str, where),
            reference=_get_number(d, "reference", where),
            current=_get_number(d, "current", where),
            delta=_get_number(d, "delta", where),
            test=_get(d, "test", str, where),
            p_value=_get_number(d, "p_value", where, optional=True),
            threshold=_get_number(d, "threshold", where),
            drifted=_get(d, "drifted", bool, where),
            degradation=_get_number(d, "degradation", where, default=0.0),
            alpha=_get_number(d, "alpha", where, default=0.05),
            task=_get(d, "task", str, where, default="classification"),
            n_reference=_get_int(d, "n_reference", where, default=0),
            n_current=_get_int(d, "n_current", where, default=0),
            rows_reference=_get_int(d, "rows_reference", where, default=0),
            rows_current=_get_int(d, "rows_current", where, default=0),
            labelled_reference=_get_int(d, "labelled_reference", where, default=0),
            labelled_current=_get_int(d, "labelled_current", where, default=0),
            positive_label=_get(d, "positive_label", str, where, optional=True),
            threshold_source=_get(d, "threshold_source", str, where, default="fallback"),
            reference_chunk_std=_get_number(d, "reference_chunk_std", where, optional=True),
            reference_chunks=_get_int(d, "reference_chunks", where, default=0),
            chunk_rows=_get_int(d, "chunk_rows", where, default=0),
            segment_alpha=_get_number(d, "segment_alpha", where, default=0.05),
            chunks=[
                PerformanceSegment.from_dict(c, f"{where}.chunks[{i}]")
                for i, c in enumerate(_get(d, "chunks", list, where, default=[]))
            ],
            after_change=[
                PerformanceSegment.from_dict(c, f"{where}.after_change[{i}]")
                for i, c in enumerate(_get(d, "after_change", list, where, default=[]))
            ],
            metrics=_get(d, "metrics", dict, where, default={}),
        )


@dataclass
class MissingShare:
    """The share of rows without a value in one column, reference vs current."""

    column: str
    reference_share: float
    current_share: float
    change: float  # current - reference
    p_value: float
    threshold: float  # |change| must reach it
    drifted: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping."""
        return {
            "column": self.column,
            "reference_share": _finite(self.reference_share),
            "current_share": _finite(self.current_share),
            "change": _finite(self.change),
            "p_value": _finite(self.p_value),
            "threshold": _finite(self.threshold),
            "drifted": bool(self.drifted),
        }

    @classmethod
    def from_dict(cls, d: Any, where: str = "missing") -> MissingShare:
        """Validate and build."""
        _need_mapping(d, where)
        return cls(
            column=_get(d, "column", str, where),
            reference_share=_get_number(d, "reference_share", where),
            current_share=_get_number(d, "current_share", where),
            change=_get_number(d, "change", where),
            p_value=_get_number(d, "p_value", where),
            threshold=_get_number(d, "threshold", where),
            drifted=_get(d, "drifted", bool, where),
        )


@dataclass
class NewCategories:
    """Categories of one column never seen in the reference, with their share of the current values."""

    column: str
    share: float
    threshold: float
    drifted: bool
    categories: dict[str, float] = field(default_factory=dict)  # the most frequent ones, with shares
    count: int = 0  # how many distinct new categories

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping."""
        return {
            "column": self.column,
            "share": _finite(self.share),
            "threshold": _finite(self.threshold),
            "drifted": bool(self.drifted),
            "count": int(self.count),
            "categories": {str(k): _finite(v) for k, v in self.categories.items()},
        }

    @classmethod
    def from_dict(cls, d: Any, where: str = "new_categories") -> NewCategories:
        """Validate and build."""
        _need_mapping(d, where)
        return cls(
            column=_get(d, "column", str, where),
            share=_get_number(d, "share", where),
            threshold=_get_number(d, "threshold", where),
            drifted=_get(d, "drifted", bool, where),
            count=_get_int(d, "count", where, default=0),
            categories=_get(d, "categories", dict, where, default={}),
        )


@dataclass
class DataQuality:
    """Data quality of the current window against the reference; ``drifted`` if any part is a finding."""

    drifted: bool = False
    missing: list[MissingShare] = field(default_factory=list)
    new_categories: list[NewCategories] = field(default_factory=list)
    #: columns present only in the current data (schema drift): never tested, always a finding
    only_in_current: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping."""
        return {
            "drifted": bool(self.drifted),
            "missing": [m.to_dict() for m in self.missing],
            "new_categories": [c.to_dict() for c in self.new_categories],
            "only_in_current": list(self.only_in_current),
        }

    @classmethod
    def from_dict(cls, d: Any, where: str = "data_quality") -> DataQuality:
        """Validate and build."""
        _need_mapping(d, where)
        return cls(
            drifted=_get(d, "drifted", bool, where),
            missing=[
                MissingShare.from_dict(m, f"{where}.missing[{i}]")
                for i, m in enumerate(_get(d, "missing", list, where, default=[]))
            ],
            new_categories=[
                NewCategories.from_dict(m, f"{where}.new_categories[{i}]")
                for i, m in enumerate(_get(d, "new_categories", list, where, default=[]))
            ],
            only_in_current=[str(c) for c in _get(d, "only_in_current", list, where, default=[])],
        )


@dataclass
class ChangePoint:
    """A change in a time-ordered metric found by ADWIN inside the current window.

    ``index`` is the 0-based position, in time order, of the first record after the change;
    ``detected_index`` is where the alarm was raised (always ``>= index``). ``timestamp`` and
    ``detected_timestamp`` are the records' timestamps as ISO strings when timestamps were given.
    """

    metric: str
    index: int
    timestamp: str | None
    detected_index: int = 0
    detected_timestamp: str | None = None
    mean_before: float = 0.0
    mean_after: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping."""
        return {
            "metric": self.metric,
            "index": int(self.index),
            "timestamp": self.timestamp,
            "detected_index": int(self.detected_index),
            "detected_timestamp": self.detected_timestamp,
            "mean_before": _finite(self.mean_before),
            "mean_after": _finite(self.mean_after),
        }

    @classmethod
    def from_dict(cls, d: Any, where: str = "change_point") -> ChangePoint:
        """Validate and build; ``where`` prefixes field names in error messages."""
        _need_mapping(d, where)
        return cls(
            metric=_get(d, "metric", str, where),
            index=_get_int(d, "index", where),
            timestamp=_get(d, "timestamp", str, where, optional=True),
            detected_index=_get_int(d, "detected_index", where, default=0),
            detected_timestamp=_get(d, "detected_timestamp", str, where, optional=True),
            mean_before=_get_number(d, "mean_before", where, default=0.0),
            mean_after=_get_number(d, "mean_after", where, default=0.0),
        )


@dataclass
class DriftReport:
    """The whole outcome of comparing a current window with a reference.

    ``drift_kinds`` lists ``"data"`` when any feature (or the ``prediction`` output) drifted and
    ``"performance"`` when model quality dropped; remediation reads it. ``prediction`` is the output-drift
    test of the ``prediction`` column, kept apart from ``features`` (which are model inputs only).
    ``severity_reasons`` explains the severity in words. ``data_quality`` holds missing shares, new
    categories and columns only in the current data (a finding there is data drift); ``notes`` says what
    could not be checked and why.
    """

    drifted: bool
    severity: Severity
    n_reference: int
    n_current: int
    features: list[FeatureResult]
    performance: PerformanceResult | None = None
    change_points: list[ChangePoint] = field(default_factory=list)
    drift_kinds: list[str] = field(default_factory=list)
    prediction: FeatureResult | None = None
    correction: str = "bonferroni"
    alpha: float = 0.05
    severity_reasons: list[str] = field(default_factory=list)
    binned: bool = False
    data_quality: DataQuality | None = None
    #: what could not be checked and why (e.g. no current row has both label and prediction)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of design.md plus extra fields, in a fixed key order."""
        return {
            "drifted": bool(self.drifted),
            "severity": self.severity,
            "n_reference": int(self.n_reference),
            "n_current": int(self.n_current),
            "features": [f.to_dict() for f in self.features],
            "drift_kinds": list(self.drift_kinds),
            "performance": None if self.performance is None else self.performance.to_dict(),
            "prediction": None if self.prediction is None else self.prediction.to_dict(),
            "change_points": [c.to_dict() for c in self.change_points],
            "correction": self.correction,
            "alpha": _finite(self.alpha),
            "severity_reasons": list(self.severity_reasons),
            "binned": bool(self.binned),
            "data_quality": None if self.data_quality is None else self.data_quality.to_dict(),
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, d: Any) -> DriftReport:
        """Build from a parsed JSON report; raises ``ValueError`` naming the first bad field."""
        where = "report"
        _need_mapping(d, where)
        feats = _get(d, "features", list, where)
        perf = d.get("performance")
        pred = d.get("prediction")
        kinds = _get(d, "drift_kinds", list, where, default=[])
        for i, k in enumerate(kinds):
            if k not in DRIFT_KINDS:
                raise ValueError(f"report: field 'drift_kinds[{i}]' must be one of {list(DRIFT_KINDS)}, got {k!r}")
        cps = _get(d, "change_points", list, where, default=[])
        reasons = _get(d, "severity_reasons", list, where, default=[])
        dq = d.get("data_quality")
        return cls(
            drifted=_get(d, "drifted", bool, where),
            severity=_get_choice(d, "severity", SEVERITIES, where),  # type: ignore[arg-type]
            n_reference=_get_int(d, "n_reference", where),
            n_current=_get_int(d, "n_current", where),
            features=[FeatureResult.from_dict(f, f"features[{i}]") for i, f in enumerate(feats)],
            performance=None if perf is None else PerformanceResult.from_dict(perf),
            change_points=[ChangePoint.from_dict(c, f"change_points[{i}]") for i, c in enumerate(cps)],
            drift_kinds=[str(k) for k in kinds],
            prediction=None if pred is None else FeatureResult.from_dict(pred, "prediction"),
            correction=_get(d, "correction", str, where, default="bonferroni"),
            alpha=_get_number(d, "alpha", where, default=0.05),
            severity_reasons=[str(r) for r in reasons],
            binned=_get(d, "binned", bool, where, default=False),
            data_quality=None if dq is None else DataQuality.from_dict(dq),
            notes=[str(n) for n in _get(d, "notes", list, where, default=[])],
        )


# ---- helpers ---------------------------------------------------------------------------------------

_MISSING = object()


def _finite(x: float) -> float:
    # JSON has no NaN/inf; a non-finite statistic is a bug upstream, so fail loudly here.
    v = float(x)
    if not math.isfinite(v):
        raise ValueError(f"non-finite value {v!r} cannot be written to a drift report")
    return v


def _plain(obj: Any) -> Any:
    """Convert numpy scalars and nested containers to plain JSON types with sorted-as-given order."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalar
        return obj.item()
    return obj


def _need_mapping(d: Any, where: str) -> None:
    if not isinstance(d, dict):
        raise ValueError(f"{where}: must be an object, got {type(d).__name__}")


def _get(d: dict, key: str, typ: type, where: str, *, default: Any = _MISSING, optional: bool = False) -> Any:
    if key not in d:
        if default is not _MISSING:
            return default
        if optional:
            return None
        raise ValueError(f"{where}: missing field '{key}'")
    v = d[key]
    if v is None and optional:
        return None
    # bool is a subclass of int; reject it where an int or str is wanted and vice versa.
    if not isinstance(v, typ) or (typ is not bool and isinstance(v, bool)):
        raise ValueError(f"{where}: field '{key}' must be of type {typ.__name__}, got {type(v).__name__}")
    return v


def _get_number(d: dict, key: str, where: str, *, default: Any = _MISSING, optional: bool = False) -> Any:
    if key not in d:
        if default is not _MISSING:
            return default
        if optional:
            return None
        raise ValueError(f"{where}: missing field '{key}'")
    v = d[key]
    if v is None and optional:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(float(v)):
        raise ValueError(f"{where}: field '{key}' must be a finite number, got {v!r}")
    return float(v)


def _get_int(d: dict, key: str, where: str, *, default: Any = _MISSING) -> int:
    v = _get(d, key, int, where, default=default)
    if v < 0:
        raise ValueError(f"{where}: field '{key}' must be >= 0, got {v}")
    return int(v)


def _get_choice(d: dict, key: str, choices: tuple[str, ...], where: str, *, default: Any = _MISSING) -> str:
    v = _get(d, key, str, where, default=default)
    if v not in choices:
        raise ValueError(f"{where}: field '{key}' must be one of {list(choices)}, got {v!r}")
    return v
