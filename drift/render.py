"""Drift reports as JSON, Markdown (a pull-request body) and one PNG plot per drifted feature.

Renderers take the report's ``to_dict()`` form, so extra fields added to the model later show up in
JSON untouched and are ignored by the Markdown renderer unless it knows them. Every file is written
atomically: a temporary file in the target directory, then ``os.replace``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from inferops.atomic import write_atomic

#: GitHub rejects pull-request bodies above 65,536 characters; stay well below.
MARKDOWN_LIMIT = 60_000
#: Categories shown in a categorical plot; the rest are summed into "(other)".
PLOT_TOP_CATEGORIES = 20
PLOT_BINS = 50


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` so readers see the old file or the new one, never a partial one."""
    write_atomic(path, data)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """UTF-8 text version of :func:`atomic_write_bytes`."""
    write_atomic(path, text)


def _report_dict(report: Any) -> dict[str, Any]:
    return report if isinstance(report, dict) else report.to_dict()


def _json_safe(value: Any) -> Any:
    # JSON has no NaN/Infinity; a statistic that came out non-finite is reported as null.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        return _json_safe(value.item())
    return value


def render_json(report: Any) -> str:
    """The report as pretty JSON (design.md fields plus the model's extras), newline-terminated."""
    return json.dumps(_json_safe(_report_dict(report)), indent=2, allow_nan=False) + "\n"


# ---------------------------------------------------------------------------------------------
# Markdown
# ---------------------------------------------------------------------------------------------


def _cell(value: Any) -> str:
    text = str(value)
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _num(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "n/a"
        if value == 0:
            return "0"
        if abs(value) < 1e-3 or abs(value) >= 1e5:
            return f"{value:.3g}"
        return f"{value:.4f}".rstrip("0").rstrip(".")
    return _cell(value)


def _feature_table(features: Sequence[Mapping[str, Any]]) -> list[str]:
    lines = [
        "| Feature | Kind | Test | Statistic | p-value | Threshold | Drifted |",
        "|---|---|---|---:|---:|---:|:---:|",
    ]
    for f in features:
        lines.append(
            f"| `{_cell(f.get('feature'))}` | {_cell(f.get('kind'))} | {_cell(f.get('test'))} | "
            f"{_num(f.get('statistic'))} | {_num(f.get('p_value'))} | {_num(f.get('threshold'))} | "
            f"{'**yes**' if f.get('drifted') else 'no'} |"
        )
    return lines


def _pct(value: Any) -> str:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return "n/a"
    pct = 100.0 * float(value)
    if pct == 0:
        return "0%"
    return f"{pct:.2g}%" if abs(pct) < 0.1 else f"{pct:.1f}%"


def _flag(value: Any) -> str:
    return "**yes**" if value else "no"


def _performance_section(perf: Mapping[str, Any]) -> list[str]:
    lines = [
        "### Model performance",
        "",
        "| Metric | Reference | Current | Change | Test | p-value | Threshold | Drifted |",
        "|---|---:|---:|---:|---|---:|---:|:---:|",
        f"| {_cell(perf.get('metric'))} | {_num(perf.get('reference'))} | {_num(perf.get('current'))} | "
        f"{_num(perf.get('delta'))} | {_cell(perf.get('test'))} | {_num(perf.get('p_value'))} | "
        f"{_num(perf.get('threshold'))} | {_flag(perf.get('drifted'))} |",
        "",
    ]
    rows_cur, matched = perf.get("rows_current"), perf.get("n_current")
    if rows_cur:
        lines += [
            f"Rows with both label and prediction: {_num(perf.get('n_reference'))} of "
            f"{_num(perf.get('rows_reference'))} (reference), {_num(matched)} of {_num(rows_cur)} (current).",
            "",
        ]
    source = perf.get("threshold_source")
    if source == "reference_chunks":
        lines += [
            f"Threshold: 3 x the standard deviation of {_cell(perf.get('metric'))} over "
            f"{_num(perf.get('reference_chunks'))} reference chunks of {_num(perf.get('chunk_rows'))} rows "
            f"({_num(perf.get('reference_chunk_std'))}), floored; each segment tested at "
            f"p < {_num(perf.get('segment_alpha'))}.",
            "",
        ]
    segments = [*(perf.get("chunks") or []), *(perf.get("after_change") or [])]
    if segments:
        lines += [
            "| Segment | Rows (time order) | From | Labelled rows | Value | Degradation | p-value | Drifted |",
            "|---|---|---|---:|---:|---:|---:|:---:|",
        ]
        for i, seg in enumerate(segments):
            kind = seg.get("kind")
            name = f"chunk {i + 1}" if kind == "chunk" else "after change point"
            lines.append(
                f"| {name} | {_num(seg.get('start'))}-{_num(seg.get('end'))} | "
                f"{_cell(seg.get('start_timestamp') or 'n/a')} | {_num(seg.get('n'))} | {_num(seg.get('value'))} | "
                f"{_num(seg.get('degradation'))} | {_num(seg.get('p_value'))} | {_flag(seg.get('drifted'))} |"
            )
        lines.append("")
    return lines


def _quality_section(q: Mapping[str, Any]) -> list[str]:
    missing = list(q.get("missing") or [])
    new = list(q.get("new_categories") or [])
    only = list(q.get("only_in_current") or [])
    if not (missing or new or only):
        return []
    lines = ["### Data quality", ""]
    if missing:
        lines += [
            "| Column | Missing (reference) | Missing (current) | p-value | Drifted |",
            "|---|---:|---:|---:|:---:|",
        ]
        for m in missing:
            lines.append(
                f"| `{_cell(m.get('column'))}` | {_pct(m.get('reference_share'))} | {_pct(m.get('current_share'))} | "
                f"{_num(m.get('p_value'))} | {_flag(m.get('drifted'))} |"
            )
        lines.append("")
    if new:
        lines += [
            "| Column | New categories (share of current values) | Total share | Drifted |",
            "|---|---|---:|:---:|",
        ]
        for c in new:
            cats = ", ".join(f"`{_cell(k)}` {_pct(v)}" for k, v in (c.get("categories") or {}).items())
            more = int(c.get("count") or 0) - len(c.get("categories") or {})
            if more > 0:
                cats += f" and {more} more"
            lines.append(
                f"| `{_cell(c.get('column'))}` | {cats} | {_pct(c.get('share'))} | {_flag(c.get('drifted'))} |"
            )
        lines.append("")
    if only:
        lines += [
            "Schema drift: column(s) only in the current data, not tested: "
            + ", ".join(f"`{_cell(c)}`" for c in only)
            + ".",
            "",
        ]
    return lines


def render_markdown(
    report: Any,
    *,
    reference: str | None = None,
    current: str | None = None,
    plots: Mapping[str, str] | None = None,
    limit: int = MARKDOWN_LIMIT,
) -> str:
    """The report as Markdown for a pull-request body or a CI job summary.

    Drifted features come first in a table; features without drift go in a collapsed section.
    ``plots`` maps feature names to image paths or URLs to link. The text is cut to ``limit``
    characters (with a note) so it always fits a GitHub pull request.
    """
    d = _report_dict(report)
    features = list(d.get("features") or [])
    drifted = [f for f in features if f.get("drifted")]
    steady = [f for f in features if not f.get("drifted")]
    severity = d.get("severity", "none")
    heading = f"## Drift check: {severity} drift" if d.get("drifted") else "## Drift check: no drift"
    lines = [heading, ""]
    sources = []
    if reference:
        sources.append(f"reference `{_cell(reference)}` ({_num(d.get('n_reference'))} rows)")
    else:
        sources.append(f"reference: {_num(d.get('n_reference'))} rows")
    if current:
        sources.append(f"current `{_cell(current)}` ({_num(d.get('n_current'))} rows)")
    else:
        sources.append(f"current: {_num(d.get('n_current'))} rows")
    lines.append(" · ".join(sources))
    lines.append("")
    kinds = d.get("drift_kinds") or []
    summary = f"**{len(drifted)} of {len(features)} features drifted**"
    if kinds:
        summary += f"; drift kinds: {', '.join(kinds)}"
    lines += [summary, ""]

    if drifted:
        lines += ["### Drifted features", "", *_feature_table(drifted), ""]
        if plots:
            for f in drifted:
                name = f.get("feature")
                if name in plots:
                    alt = _cell(name).replace("[", "\\[").replace("]", "\\]")
                    lines.append(f"![{alt}]({_link(plots[name])})")
            lines.append("")

    pred = d.get("prediction")
    if pred:
        lines += ["### Model output (prediction)", "", *_feature_table([{**pred, "feature": "prediction"}]), ""]
        if plots and pred.get("drifted") and "prediction" in plots:
            lines += [f"![prediction]({_link(plots['prediction'])})", ""]

    if d.get("binned"):
        bounds = [f.get("error_bound") for f in features if f.get("error_bound") is not None]
        note = "_Inputs were streamed in chunks: statistics come from binned sketches"
        if bounds:
            note += f" (largest error bound {_num(max(bounds))})"
        lines += [note + "._", ""]

    perf = d.get("performance")
    if perf:
        lines += _performance_section(perf)

    quality = d.get("data_quality")
    if quality:
        lines += _quality_section(quality)

    changes = d.get("change_points") or []
    if changes:
        lines += ["### Where the change began", "", "| Metric | Record index | Timestamp |", "|---|---:|---|"]
        for cp in changes:
            lines.append(
                f"| {_cell(cp.get('metric'))} | {_num(cp.get('index'))} | {_cell(cp.get('timestamp') or 'n/a')} |"
            )
        lines.append("")

    notes = d.get("notes") or []
    if notes:
        lines += ["### Not checked", "", *(f"- {_cell(n)}" for n in notes), ""]

    if steady:
        lines += [f"<details><summary>{len(steady)} features without drift</summary>", ""]
        lines += [*_feature_table(steady), "", "</details>", ""]

    text = "\n".join(lines).rstrip("\n") + "\n"
    if len(text) > limit:
        note = "\n_(report truncated to fit a pull-request body; see the JSON report for all features)_\n"
        cut = text.rfind("\n", 0, limit - len(note))
        text = text[: max(cut, 0)] + "\n" + note
        if "<details>" in text and "</details>" not in text:
            text += "\n</details>\n"
    return text


# ---------------------------------------------------------------------------------------------
# Plots
# ---------------------------------------------------------------------------------------------


def _link(target: str) -> str:
    """A Markdown link destination: a local path percent-encoded (spaces, parentheses), URLs as given."""
    if "://" in target:
        return target
    from urllib.parse import quote

    return quote(target.replace(os.sep, "/"), safe="/._-~")


def plot_filename(feature: str) -> str:
    """A safe, stable PNG file name for a feature name, distinct for distinct names.

    A name that is already a safe lowercase file name is kept (``amount.png``). Any other gets a
    digest of the exact name appended, so ``a b``, ``a_b`` and ``a/b`` (and ``A`` and ``a`` on a
    case-insensitive file system) never share a file.
    """
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", feature).strip("._")[:80] or "feature"
    if safe == feature and feature == feature.lower():
        return f"{safe}.png"
    digest = hashlib.sha256(feature.encode("utf-8", "surrogatepass")).hexdigest()[:10]
    return f"{safe}-{digest}.png"


def numeric_bins(reference: np.ndarray, current: np.ndarray, bins: int = PLOT_BINS) -> np.ndarray:
    """Shared bin edges over the central 99% of both samples, so the histograms are comparable.

    Heavy tails would squash everything into a few bins; values outside are counted in the end bins
    (see :func:`clipped_histogram`).
    """
    lo = float(min(np.quantile(reference, 0.005), np.quantile(current, 0.005)))
    hi = float(max(np.quantile(reference, 0.995), np.quantile(current, 0.995)))
    if hi <= lo:
        lo, hi = lo - 0.5, lo + 0.5
    return np.linspace(lo, hi, bins + 1)


def clipped_histogram(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts per bin, values beyond the edges counted in the first or last bin."""
    return np.histogram(np.clip(values, edges[0], edges[-1]), edges)[0]


def _figure():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, ax: Any, feature: str, subtitle: str, path: str | os.PathLike[str]) -> Path:
    """Title, legend and layout shared by every plot, then the PNG written atomically."""
    import io

    ax.set_title(f"{feature}: reference vs current" + (f"\n{subtitle}" if subtitle else ""), fontsize=10)
    ax.legend()
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    out = Path(path)
    atomic_write_bytes(out, buffer.getvalue())
    return out


def plot_numeric_binned(
    feature: str,
    edges: np.ndarray,
    ref_counts: np.ndarray,
    cur_counts: np.ndarray,
    path: str | os.PathLike[str],
    *,
    subtitle: str = "",
) -> Path:
    """Plot two binned distributions (as densities) over the same ``edges`` as a PNG."""
    plt = _figure()
    ref = np.asarray(ref_counts, dtype=float)
    cur = np.asarray(cur_counts, dtype=float)
    # Density (share per unit of x): bins of unequal width (quantile bins) stay comparable.
    widths = np.diff(np.asarray(edges, dtype=float))
    widths = np.where(widths > 0, widths, 1.0)
    ref_share = (ref / ref.sum() if ref.sum() else ref) / widths
    cur_share = (cur / cur.sum() if cur.sum() else cur) / widths
    fig, ax = plt.subplots(figsize=(7, 4))
    try:
        ax.stairs(ref_share, edges, fill=True, alpha=0.45, label="reference", color="#4c72b0")
        ax.stairs(cur_share, edges, fill=False, linewidth=1.8, label="current", color="#dd8452")
        ax.set_xlabel(feature)
        ax.set_ylabel("density")
        return _save(fig, ax, feature, subtitle, path)
    finally:
        plt.close(fig)


def plot_categorical_counts(
    feature: str,
    ref_counts: Mapping[str, int],
    cur_counts: Mapping[str, int],
    path: str | os.PathLike[str],
    *,
    subtitle: str = "",
    top: int = PLOT_TOP_CATEGORIES,
) -> Path:
    """Plot category shares of reference and current side by side as a PNG."""
    plt = _figure()
    ref_total = sum(ref_counts.values()) or 1
    cur_total = sum(cur_counts.values()) or 1
    names = sorted(
        set(ref_counts) | set(cur_counts),
        key=lambda c: -(ref_counts.get(c, 0) / ref_total + cur_counts.get(c, 0) / cur_total),
    )
    shown, rest = names[:top], names[top:]
    ref_share = [ref_counts.get(c, 0) / ref_total for c in shown]
    cur_share = [cur_counts.get(c, 0) / cur_total for c in shown]
    labels = [str(c) for c in shown]
    if rest:
        labels.append("(other)")
        ref_share.append(sum(ref_counts.get(c, 0) for c in rest) / ref_total)
        cur_share.append(sum(cur_counts.get(c, 0) for c in rest) / cur_total)
    x = np.arange(len(labels))
    fig, ax = plt.subplots(figsize=(max(6, 0.5 * len(labels) + 2), 4))
    try:
        ax.bar(x - 0.2, ref_share, width=0.4, label="reference", color="#4c72b0")
        ax.bar(x + 0.2, cur_share, width=0.4, label="current", color="#dd8452")
        ax.set_xticks(x, labels, rotation=45 if len(labels) > 6 else 0, ha="right" if len(labels) > 6 else "center")
        ax.set_ylabel("share of rows")
        return _save(fig, ax, feature, subtitle, path)
    finally:
        plt.close(fig)


def category_counts(values: np.ndarray) -> dict[str, int]:
    """Counts per category, keyed as the tests key them (Arrow hash counting, no sort of objects)."""
    from drift.stattests import CategoricalSample

    return dict(CategoricalSample(values).counts)


def _subtitle(f: Mapping[str, Any]) -> str:
    parts = [f"{f.get('test')} = {_num(f.get('statistic'))}"]
    if f.get("p_value") is not None:
        parts.append(f"p = {_num(f.get('p_value'))}")
    parts.append(f"threshold {_num(f.get('threshold'))}")
    return ", ".join(parts)


def write_plots(
    report: Any,
    out_dir: str | os.PathLike[str],
    *,
    reference: Mapping[str, np.ndarray] | None = None,
    current: Mapping[str, np.ndarray] | None = None,
    binned: Mapping[str, tuple[Any, Any, Any]] | None = None,
) -> dict[str, Path]:
    """Write one PNG per drifted feature (and drifted ``prediction``) into ``out_dir``; return ``{name: path}``.

    Values come from ``reference``/``current`` arrays, or, in the chunked mode, from ``binned``:
    ``{feature: (edges, ref_counts, cur_counts)}`` for numeric features (``edges`` None and counts as
    ``{category: count}`` dicts for categorical ones).
    """
    directory = Path(out_dir)
    directory.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    d = _report_dict(report)
    entries = list(d.get("features") or [])
    if d.get("prediction"):
        entries.append({**d["prediction"], "feature": "prediction"})  # output drift is plotted too
    for f in entries:
        if not f.get("drifted"):
            continue
        name = f["feature"]
        path = directory / plot_filename(name)
        subtitle = _subtitle(f)
        if binned is not None and name in binned:
            edges, ref_counts, cur_counts = binned[name]
            if edges is None:
                written[name] = plot_categorical_counts(name, ref_counts, cur_counts, path, subtitle=subtitle)
            else:
                written[name] = plot_numeric_binned(
                    name, np.asarray(edges), np.asarray(ref_counts), np.asarray(cur_counts), path, subtitle=subtitle
                )
            continue
        if reference is None or current is None or name not in reference or name not in current:
            continue
        from drift.detect import _as_numpy, _non_null  # nulls (kept in row-aligned columns) are not plotted

        ref, cur = _non_null(reference[name])[0], _non_null(current[name])[0]
        if f.get("kind") == "numeric":
            ref, cur = _as_numpy(ref), _as_numpy(cur)
            edges = numeric_bins(ref, cur)
            written[name] = plot_numeric_binned(
                name, edges, clipped_histogram(ref, edges), clipped_histogram(cur, edges), path, subtitle=subtitle
            )
        else:
            written[name] = plot_categorical_counts(
                name, category_counts(ref), category_counts(cur), path, subtitle=subtitle
            )
    return written
