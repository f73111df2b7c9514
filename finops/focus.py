"""FOCUS 1.0-1.2 billing exports: CSV, gzip CSV and Parquet, many files, normalised column-wise.

Columns read (FOCUS names; every one below is mandatory in FOCUS 1.0, 1.1 and 1.2 except ``Tags``,
which FOCUS makes conditional on the provider supporting tags, and all three clouds do):
``BilledCost``, ``EffectiveCost``, ``BillingCurrency``, ``ChargeCategory``, ``ChargeClass``,
``ChargePeriodStart``, ``ChargePeriodEnd``, ``ServiceName``, ``Tags``. Optional: ``ConsumedQuantity``
and ``ConsumedUnit`` (request counts and GB-seconds), ``ProviderName``/``ServiceProviderName``,
``ResourceId``. A missing mandatory column is a :class:`~drift.readers.DataError` naming the file and
the column (the CLI exits 2 with that line).

Attribution uses ``EffectiveCost`` (FOCUS: amortised, after discounts: what the usage really cost);
``BilledCost`` is kept for the invoice view.

``ChargeCategory`` (FOCUS 1.0-1.2 allowed values ``Usage``, ``Purchase``, ``Tax``, ``Credit``,
``Adjustment``) is kept per row, and ``ChargeClass = Correction`` rows (FOCUS: a correction of a
charge invoiced in a previous billing period) are flagged, so usage, purchases, taxes, credits and
corrections are reported apart and never blended into the usage trend.

``Tags`` arrives in a different shape from each provider; :func:`parse_tags` accepts all of them:

* AWS Data Exports "FOCUS 1.2 with AWS columns" (and 1.0): a map of tag key to value; user-defined
  cost allocation tags carry the ``user:`` prefix (``user:function-name``), AWS-generated ones
  ``aws:``. In Parquet it is a ``map<string,string>``, in CSV a JSON object.
  (docs.aws.amazon.com/cur/latest/userguide/table-dictionary-focus-1-2-aws.html; the CUR 2.0 tag
  map it derives from: docs.aws.amazon.com/cur/latest/userguide/table-dictionary-cur2-resource-tags.html)
* Azure Cost Management FocusCost exports: a JSON object string, ``{"function-name": "..."}``; Azure
  tag names are case-insensitive, so keys are compared lower-cased. Older Cost Management exports
  wrote the object without its braces (``"a": "b","c": "d"``); that form is accepted too.
  (learn.microsoft.com/azure/cost-management-billing/dataset-schema/cost-usage-details-focus)
* Google Cloud's FOCUS BigQuery export, saved as Parquet or CSV: an array of ``{key, value}`` records
  (``ARRAY<STRUCT<key STRING, value STRING, ...>>`` in BigQuery, a ``list<struct>`` in Parquet, a
  JSON array in CSV); a JSON object is accepted as well.
* Kubernetes metadata keys are prefixed ``inferops.dev/`` (design.md); the prefix is removed.

Rows are bucketed by the UTC day of ``ChargePeriodStart`` (FOCUS timestamps are UTC).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from drift.readers import DataError
from finops.sources import InputFile, expand_all, read_table, utc_times

MANDATORY = (
    "BilledCost",
    "EffectiveCost",
    "BillingCurrency",
    "ChargeCategory",
    "ChargeClass",
    "ChargePeriodStart",
    "ChargePeriodEnd",
    "ServiceName",
    "Tags",
)
#: FOCUS 1.0-1.2 ChargeCategory values, lower-cased.
CATEGORIES = ("usage", "purchase", "tax", "credit", "adjustment")
_STRING_COLUMNS = ("Tags", "ChargeClass", "ChargeCategory", "BillingCurrency", "ServiceName", "ConsumedUnit")
_KEY_PREFIXES = ("user:", "inferops.dev/")


class FocusError(DataError):
    """A FOCUS file that cannot be used; one line naming the file and the column."""


@dataclass
class Charges:
    """Normalised FOCUS rows of one or more files, column-wise (numpy arrays of equal length)."""

    day: np.ndarray  # datetime64[D], UTC day of ChargePeriodStart
    cost: np.ndarray  # float64, EffectiveCost
    billed: np.ndarray  # float64, BilledCost
    category: np.ndarray  # object: usage | purchase | tax | credit | adjustment
    correction: np.ndarray  # bool: ChargeClass == Correction
    service: np.ndarray  # object
    quantity: np.ndarray  # float64, ConsumedQuantity (nan when absent)
    unit: np.ndarray  # object, ConsumedUnit lower-cased ("" when absent)
    tag_index: np.ndarray  # int64 index into tag_sets
    tag_sets: list[dict[str, str]]
    provider: np.ndarray  # object
    files: list[str] = field(default_factory=list)
    currency: str | None = None

    @property
    def n_rows(self) -> int:
        """Number of charge rows."""
        return int(self.cost.shape[0])

    @classmethod
    def empty(cls) -> Charges:
        """No rows."""
        e = np.array([], dtype=object)
        return cls(
            np.array([], dtype="datetime64[D]"),
            np.array([], dtype=float),
            np.array([], dtype=float),
            e,
            np.array([], dtype=bool),
            e,
            np.array([], dtype=float),
            e,
            np.array([], dtype=np.int64),
            [],
            e,
        )


# --- tags -------------------------------------------------------------------------------------------------


def normalize_key(key: str) -> str:
    """``user:function-name`` / ``inferops.dev/function-name`` / ``Function-Name`` -> ``function-name``."""
    k = str(key).strip().lower()
    for prefix in _KEY_PREFIXES:
        if k.startswith(prefix):
            k = k[len(prefix) :]
    return k


def _pairs(value: Any, where: str) -> Iterable[tuple[Any, Any]]:
    if isinstance(value, Mapping):
        return value.items()
    if isinstance(value, list):
        out = []
        for item in value:
            if isinstance(item, Mapping) and "key" in item:
                out.append((item["key"], item.get("value")))
            elif isinstance(item, tuple | list) and len(item) == 2:  # Arrow map entries
                out.append((item[0], item[1]))
            else:
                raise ValueError(f"{where}: an array of tags must hold {{key, value}} records")
        return out
    raise ValueError(f"{where}: expected a JSON object or an array of {{key, value}} records")


def parse_tags(value: Any, where: str = "Tags") -> dict[str, str]:
    """One ``Tags`` cell in any provider's representation -> ``{normalised key: value}``.

    ``None`` and empty strings are no tags. Raises ``ValueError`` (message naming ``where``) for text
    that is neither JSON nor Azure's brace-less object form.
    """
    if value is None:
        return {}
    if isinstance(value, str):
        text = value.strip()
        if not text or text in ("{}", "[]", "null"):
            return {}
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            try:  # older Azure exports: the object without its braces
                value = json.loads("{" + text + "}")
            except json.JSONDecodeError:
                raise ValueError(f"{where}: not a JSON object or array: {text[:60]!r}") from None
        if isinstance(value, str):  # a JSON string holding the JSON object (double-encoded CSV exports)
            return parse_tags(value, where)
    out: dict[str, str] = {}
    for k, v in _pairs(value, where):
        if k is None or v is None:
            continue
        key = normalize_key(k)
        # the user: form wins over an unprefixed duplicate: it is the tag the user set
        if key not in out or str(k).lower().startswith("user:"):
            out[key] = str(v)
    return out


# --- columns ----------------------------------------------------------------------------------------------


def _column(table: pa.Table, name: str) -> pa.ChunkedArray | None:
    if name in table.column_names:
        return table.column(name)
    lower = {c.lower(): c for c in table.column_names}
    real = lower.get(name.lower())
    return table.column(real) if real else None


def _floats(col: pa.ChunkedArray, f: InputFile, name: str, *, required: bool = True) -> np.ndarray:
    """A numeric column as float64; ``required``: FOCUS allows no empty value (costs), else NaN marks one."""
    try:
        arr = pc.cast(col, pa.float64()) if col.type != pa.float64() else col
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        raise FocusError(f.uri, f"column '{name}': not a number") from None
    out = np.asarray(arr.to_numpy(zero_copy_only=False), dtype=float)
    if required and np.isnan(out).any():
        row = int(np.flatnonzero(np.isnan(out))[0]) + 1
        raise FocusError(f.uri, f"column '{name}': empty value in row {row} (FOCUS requires a number)")
    if np.isinf(out).any():
        row = int(np.flatnonzero(np.isinf(out))[0]) + 1
        raise FocusError(f.uri, f"column '{name}': infinite value in row {row}")
    return out


def _strings(col: pa.ChunkedArray | None, n: int) -> np.ndarray:
    if col is None:
        return np.full(n, "", dtype=object)
    if not pa.types.is_string(col.type) and not pa.types.is_large_string(col.type):
        col = pc.cast(col, pa.string())
    return np.array([("" if v is None else v) for v in col.to_pylist()], dtype=object)


def _days(col: pa.ChunkedArray, f: InputFile, name: str) -> np.ndarray:
    """UTC days of a FOCUS timestamp column."""
    try:
        return utc_times(col, f.uri, name).astype("datetime64[D]")
    except DataError as exc:
        raise FocusError(f.uri, exc.message) from None


def _tags(col: pa.ChunkedArray, f: InputFile) -> tuple[np.ndarray, list[dict[str, str]]]:
    """Parse each distinct Tags value once: billing rows repeat the same few tag sets many times."""
    values = col.to_pylist()
    index: dict[Any, int] = {}
    sets: list[dict[str, str]] = []
    out = np.empty(len(values), dtype=np.int64)
    for i, v in enumerate(values):
        key = v if isinstance(v, str | None) else json.dumps(v, sort_keys=True, default=str)
        pos = index.get(key)
        if pos is None:
            try:
                sets.append(parse_tags(v, "column 'Tags'"))
            except ValueError as exc:
                raise FocusError(f.uri, f"{exc} (row {i + 1})") from None
            pos = index[key] = len(sets) - 1
        out[i] = pos
    return out, sets


def read_file(f: InputFile) -> Charges:
    """Read and validate one FOCUS file."""
    table = read_table(f, csv_strings=_STRING_COLUMNS)
    for name in MANDATORY:
        if _column(table, name) is None:
            raise FocusError(f.uri, f"missing mandatory FOCUS column '{name}'")
    n = table.num_rows
    if n == 0:
        return Charges.empty()

    def col(name: str) -> pa.ChunkedArray:
        c = _column(table, name)
        assert c is not None
        return c

    category = np.array([c.lower() for c in _strings(col("ChargeCategory"), n)], dtype=object)
    bad = [c for c in dict.fromkeys(category.tolist()) if c not in CATEGORIES]
    if bad:
        raise FocusError(
            f.uri, f"column 'ChargeCategory': unknown value {bad[0]!r} (FOCUS allows {', '.join(CATEGORIES)})"
        )
    currency = {c for c in _strings(col("BillingCurrency"), n).tolist() if c}
    if len(currency) > 1:
        raise FocusError(f.uri, f"column 'BillingCurrency': more than one currency ({', '.join(sorted(currency))})")
    charge_class = _strings(col("ChargeClass"), n)
    provider_col = _column(table, "ServiceProviderName") or _column(table, "ProviderName")
    quantity_col = _column(table, "ConsumedQuantity")
    tag_index, tag_sets = _tags(col("Tags"), f)
    _days(col("ChargePeriodEnd"), f, "ChargePeriodEnd")  # validated: mandatory and non-null
    return Charges(
        day=_days(col("ChargePeriodStart"), f, "ChargePeriodStart"),
        cost=_floats(col("EffectiveCost"), f, "EffectiveCost"),
        billed=_floats(col("BilledCost"), f, "BilledCost"),
        category=category,
        correction=np.array([c.lower() == "correction" for c in charge_class], dtype=bool),
        service=_strings(col("ServiceName"), n),
        quantity=_floats(quantity_col, f, "ConsumedQuantity", required=False)
        if quantity_col is not None
        else np.full(n, np.nan),
        unit=np.array([u.lower() for u in _strings(_column(table, "ConsumedUnit"), n)], dtype=object),
        tag_index=tag_index,
        tag_sets=tag_sets,
        provider=_strings(provider_col, n),
        files=[f.uri],
        currency=next(iter(currency), None),
    )


def concat(parts: list[Charges]) -> Charges:
    """One :class:`Charges` of many; tag-set indexes are re-based."""
    parts = [p for p in parts if p.n_rows] or [Charges.empty()]
    offsets = np.cumsum([0] + [len(p.tag_sets) for p in parts[:-1]])
    currencies = {p.currency for p in parts if p.currency}
    return Charges(
        day=np.concatenate([p.day for p in parts]),
        cost=np.concatenate([p.cost for p in parts]),
        billed=np.concatenate([p.billed for p in parts]),
        category=np.concatenate([p.category for p in parts]),
        correction=np.concatenate([p.correction for p in parts]),
        service=np.concatenate([p.service for p in parts]),
        quantity=np.concatenate([p.quantity for p in parts]),
        unit=np.concatenate([p.unit for p in parts]),
        tag_index=np.concatenate([p.tag_index + off for p, off in zip(parts, offsets, strict=True)]),
        tag_sets=[s for p in parts for s in p.tag_sets],
        provider=np.concatenate([p.provider for p in parts]),
        files=[u for p in parts for u in p.files],
        currency=next(iter(currencies)) if len(currencies) == 1 else None,
    )


def read_focus(uris: Iterable[str]) -> Charges:
    """Read every FOCUS file the URIs name (files, directories, globs; local or object store).

    Raises :class:`~drift.readers.DataError` for a missing or unreadable file, a missing mandatory column,
    an unknown charge category or mixed currencies across files.
    """
    files = expand_all(uris, ("csv", "parquet"))
    parts = [read_file(f) for f in files]
    currencies = {p.currency: p.files[0] for p in parts if p.currency}
    if len(currencies) > 1:
        (c1, f1), (c2, f2) = sorted(currencies.items())[:2]
        raise FocusError(f2, f"column 'BillingCurrency': {c2} here but {c1} in {f1}; one report needs one currency")
    out = concat(parts)
    out.files = [f.uri for f in files]
    return out
