"""Observed usage: the handler's capture records, and an OpenCost allocation export for Kubernetes.

Capture records (design.md, brief contract 4): ``request_id``, ``timestamp`` (ISO 8601 UTC),
``model_id``, ``model_version``, ``variant`` (``stable`` | ``canary``), features, ``prediction``,
``latency_ms``. FinOps reads ``timestamp``, ``latency_ms`` and, when present, ``model_id``,
``model_version``, ``variant``, ``function`` (the function name, when a shared sink holds several),
``memory_used_mb`` (the handler's reported peak memory) and ``cold_start``. Records are sampled at the
function's ``capture.samplePercent``; request counts are scaled back by it.

A ``--capture`` argument is ``URI`` or ``NAME=URI``. Records are bound to functions by the
``NAME=`` prefix, else by a ``function`` column, else by ``model_id`` when exactly one function of the
stack serves that model.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from drift.readers import DataError, one_line
from finops.focus import normalize_key
from finops.sources import Format, expand, read_table, utc_times

CAPTURE_FORMATS: tuple[Format, ...] = ("jsonl", "csv", "parquet")


@dataclass
class FunctionUsage:
    """One function's captured requests (sampled), column-wise."""

    time: np.ndarray  # datetime64[ms]
    latency_ms: np.ndarray  # float64
    variant: np.ndarray  # object: stable | canary
    model_version: np.ndarray  # object ("" unknown)
    memory_mb: np.ndarray | None  # float64 peak memory per request, when the handler reports it
    cold_start: np.ndarray | None  # bool
    sample_percent: float = 100.0

    @property
    def day(self) -> np.ndarray:
        """UTC day of each record."""
        return self.time.astype("datetime64[D]")

    @property
    def scale(self) -> float:
        """Requests per captured record."""
        return 100.0 / self.sample_percent if self.sample_percent > 0 else 1.0

    def requests_per_day(self) -> dict[np.datetime64, float]:
        """Estimated requests per UTC day (records scaled by the sampling rate)."""
        days, counts = np.unique(self.day, return_counts=True)
        return {d: float(c) * self.scale for d, c in zip(days, counts, strict=True)}


def _concat(parts: list[FunctionUsage]) -> FunctionUsage:
    mem = [p.memory_mb for p in parts]
    cold = [p.cold_start for p in parts]
    return FunctionUsage(
        time=np.concatenate([p.time for p in parts]),
        latency_ms=np.concatenate([p.latency_ms for p in parts]),
        variant=np.concatenate([p.variant for p in parts]),
        model_version=np.concatenate([p.model_version for p in parts]),
        memory_mb=np.concatenate(
            [m if m is not None else np.full(len(p.time), np.nan) for m, p in zip(mem, parts, strict=True)]
        )
        if any(m is not None for m in mem)
        else None,
        cold_start=np.concatenate(
            [c if c is not None else np.zeros(len(p.time), bool) for c, p in zip(cold, parts, strict=True)]
        )
        if any(c is not None for c in cold)
        else None,
        sample_percent=parts[0].sample_percent,
    )


def _strings(table: pa.Table, name: str, default: str = "") -> np.ndarray:
    if name not in table.column_names:
        return np.full(table.num_rows, default, dtype=object)
    col = table.column(name)
    if not pa.types.is_string(col.type):
        col = pc.cast(col, pa.string())
    return np.array([default if v is None else v for v in col.to_pylist()], dtype=object)


def _numbers(table: pa.Table, uri: str, name: str) -> np.ndarray:
    try:
        arr = np.asarray(pc.cast(table.column(name), pa.float64()).to_numpy(zero_copy_only=False), dtype=float)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        raise DataError(uri, f"column '{name}': not a number") from None
    if np.isinf(arr).any() or (arr[~np.isnan(arr)] < 0).any():
        raise DataError(uri, f"column '{name}': negative or infinite value")
    return arr


def parse_capture_arg(arg: str) -> tuple[str | None, str]:
    """``NAME=URI`` -> (NAME, URI); ``URI`` -> (None, URI). A URI's own ``=`` (query strings) is kept."""
    head, sep, tail = arg.partition("=")
    if sep and head and "/" not in head and ":" not in head:
        return head, tail
    return None, arg


def read_capture(
    args: Sequence[str],
    functions: Mapping[str, str],
    sample_percent: Mapping[str, float] | None = None,
) -> dict[str, FunctionUsage]:
    """Read capture files and bind them to functions.

    ``functions`` maps function name -> model id; ``sample_percent`` maps function name -> the
    ``capture.samplePercent`` it captures at (default 100). Raises :class:`DataError` for unreadable
    files, missing ``timestamp``/``latency_ms``, and records no function can be told for.
    """
    by_model: dict[str, list[str]] = {}
    for name, model in functions.items():
        by_model.setdefault(model, []).append(name)
    parts: dict[str, list[FunctionUsage]] = {}
    for arg in args:
        bound, uri = parse_capture_arg(arg)
        if bound is not None and bound not in functions:
            raise DataError(arg, f"--capture names function {bound!r}, which is not in the stack")
        for f in expand(uri, CAPTURE_FORMATS):
            table = read_table(f)
            if table.num_rows == 0:
                continue
            for name in ("timestamp", "latency_ms"):
                if name not in table.column_names:
                    raise DataError(f.uri, f"missing capture column '{name}'")
            if bound is not None:
                owners = np.full(table.num_rows, bound, dtype=object)
            elif "function" in table.column_names:
                owners = _strings(table, "function")
            elif "model_id" in table.column_names:
                models = _strings(table, "model_id")
                owners = np.empty(table.num_rows, dtype=object)
                for model in dict.fromkeys(models.tolist()):
                    names = by_model.get(model, [])
                    if len(names) != 1:
                        why = "no function" if not names else f"functions {', '.join(names)}"
                        raise DataError(
                            f.uri,
                            f"column 'model_id': {model!r} is served by {why} of the stack; "
                            "bind the file with --capture NAME=URI",
                        )
                    owners[models == model] = names[0]
            else:
                raise DataError(f.uri, "missing capture column 'model_id' (or bind the file with --capture NAME=URI)")
            unknown = sorted(set(owners.tolist()) - set(functions))
            if unknown:
                raise DataError(f.uri, f"column 'function': {unknown[0]!r} is not a function of the stack")
            time = utc_times(table.column("timestamp"), f.uri, "timestamp")
            latency = _numbers(table, f.uri, "latency_ms")
            if np.isnan(latency).any():
                raise DataError(f.uri, "column 'latency_ms': empty value")
            variant = _strings(table, "variant", "stable")
            bad = set(variant.tolist()) - {"stable", "canary"}
            if bad:
                raise DataError(f.uri, f"column 'variant': {sorted(bad)[0]!r} is not stable or canary")
            version = _strings(table, "model_version")
            memory = _numbers(table, f.uri, "memory_used_mb") if "memory_used_mb" in table.column_names else None
            cold = (
                np.asarray(
                    pc.fill_null(pc.cast(table.column("cold_start"), pa.bool_()), False).to_numpy(zero_copy_only=False)
                )
                if "cold_start" in table.column_names
                else None
            )
            for name in dict.fromkeys(owners.tolist()):
                m = owners == name
                parts.setdefault(name, []).append(
                    FunctionUsage(
                        time[m],
                        latency[m],
                        variant[m],
                        version[m],
                        None if memory is None else memory[m],
                        None if cold is None else cold[m],
                        float((sample_percent or {}).get(name, 100.0)),
                    )
                )
    return {name: _concat(p) for name, p in parts.items()}


# --- OpenCost ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Allocation:
    """One OpenCost allocation (a workload over one window) with its labels, normalised."""

    day: np.datetime64
    total_cost: float
    labels: dict[str, str]


def _opencost_key(key: str) -> str:
    """OpenCost sanitises label keys for Prometheus (``inferops.dev/function-name`` ->
    ``inferops_dev_function_name``); map both forms to the logical key (``function-name``)."""
    k = normalize_key(key)
    for prefix in ("label_", "annotation_"):
        k = k.removeprefix(prefix)
    k = k.removeprefix("inferops_dev_")
    return k.replace("_", "-")


def read_opencost(uris: Iterable[str]) -> list[Allocation]:
    """Read OpenCost ``/allocation`` responses (JSON, one file per query, ``step=1d`` windows).

    The response is ``{"code": 200, "data": [{"<name>": {"window": {"start": ...}, "totalCost": ...,
    "properties": {"labels": {...}, "annotations": {...}}}}, ...]}`` (opencost.io/docs/integrations/api:
    one map of allocations per step). Raises :class:`DataError` naming the file and field.
    """
    out: list[Allocation] = []
    for uri in uris:
        for f in expand(uri, ("jsonl",)):
            try:
                with f.open() as handle:
                    doc = json.loads(handle.read())
            except (OSError, ValueError) as exc:
                raise DataError(f.uri, f"not an OpenCost allocation response: {one_line(exc)}") from None
            steps = doc.get("data") if isinstance(doc, Mapping) else None
            if not isinstance(steps, list):
                raise DataError(f.uri, "field 'data': expected a list of allocation sets")
            for i, step in enumerate(steps):
                if not isinstance(step, Mapping):
                    raise DataError(f.uri, f"field 'data[{i}]': expected an object of allocations")
                for name, alloc in step.items():
                    where = f"data[{i}].{name}"
                    if not isinstance(alloc, Mapping):
                        raise DataError(f.uri, f"field '{where}': expected an allocation object")
                    try:
                        start = np.datetime64(str(alloc["window"]["start"]).replace("Z", ""), "D")
                        cost = float(alloc["totalCost"])
                    except (KeyError, TypeError, ValueError):
                        raise DataError(f.uri, f"field '{where}': needs window.start and totalCost") from None
                    props = alloc.get("properties") or {}
                    labels: dict[str, Any] = {}
                    for group in ("labels", "annotations"):
                        for k, v in (props.get(group) or {}).items():
                            labels.setdefault(_opencost_key(k), str(v))
                    out.append(Allocation(start, cost, labels))
    return out
