"""Benchmark `drift check` against Evidently, NannyML and a plain loop of scipy tests, in one run.

Data: reference and current tables of N rows x (20 numeric + 5 categorical) columns, written once as
Parquet (current has a mean shift in 5 numeric columns and a share change in 2 categorical ones).
Every tool runs in its own child process, so each one's peak resident memory (``VmHWM``, the
process image's high-water mark, read by the child at its end) is its own. Times are measured inside
the child after imports:

- ``sort``: the yardstick: ``np.sort`` of every numeric column of both tables (arrays already loaded);
- ``drift``: ``drift.cli.main(["check", ...])``: reading both Parquet files, detection, JSON report;
  the child's wall time (with interpreter start-up and imports) is printed too;
- ``drift-detect``: :func:`drift.detect.detect` alone on arrays already loaded;
- ``scipy``: a loop of ``ks_2samp`` (numeric) and ``chi2_contingency`` (categorical) on loaded arrays;
- ``evidently``: ``Report([DataDriftPreset()]).run(current, reference)`` on loaded pandas frames;
- ``nannyml``: ``UnivariateDriftCalculator(...).fit(reference).calculate(current)`` on loaded frames;
- ``read-sort`` and ``drift-process``: whole processes, timed from outside (interpreter start-up,
  imports, reading included): a Python process that reads both Parquet files with pyarrow and sorts
  every numeric column, and ``python -m drift check`` itself. Their ratio is issue 12's start-up target
  (``drift-process`` within 1.5x of ``read-sort``). Both run with the environment as given, so run it
  with ``PYTHONDONTWRITEBYTECODE=1`` to see what an image without compiled bytecode pays.

Evidently and NannyML pin an older pandas, so they run from a separate virtualenv (``--bench-python``,
default ``/work/venv-bench/bin/python``; see bench/requirements.txt). A tool that cannot be imported is
reported as unavailable and the others are still measured.

``--repeat N`` runs every tool N times (fresh child each time) and reports the median time, the range,
and the largest peak RSS: on a shared machine single runs vary by up to 2x.

Usage: ``python bench/drift_bench.py [--rows 100000 1000000] [--workdir DIR] [--repeat N]``. Not run in CI.
``--engine spark`` compares the local engine with ``drift check --engine spark`` at data-lake sizes
instead (bench/spark_bench.py: ``--rows 10000000 100000000``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
N_NUMERIC, N_CATEGORICAL = 20, 5
CATEGORIES = [f"cat_{i}" for i in range(12)]


# ---- data ----------------------------------------------------------------------------------------


def make_data(rows: int, workdir: Path) -> tuple[Path, Path, int]:
    """Write reference.parquet and current.parquet; return their paths and the data size in bytes.

    The data size is what the columns take as numpy arrays (float64 numeric, one 8-byte pointer per
    categorical value), for both tables together.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    ref_path, cur_path = workdir / f"reference_{rows}.parquet", workdir / f"current_{rows}.parquet"
    if not (ref_path.exists() and cur_path.exists()):
        rng = np.random.default_rng(2026)
        base_p = np.linspace(1.0, 2.0, len(CATEGORIES))
        base_p /= base_p.sum()
        for path, shifted in ((ref_path, False), (cur_path, True)):
            cols: dict[str, object] = {}
            for i in range(N_NUMERIC):
                shift = 0.25 if shifted and i < 5 else 0.0
                cols[f"num_{i}"] = rng.normal(shift, 1.0 + 0.1 * i, rows)
            for j in range(N_CATEGORICAL):
                p = base_p[::-1] if shifted and j < 2 else base_p
                cols[f"cat_{j}"] = pa.array(rng.choice(CATEGORIES, size=rows, p=p)).dictionary_encode()
            pq.write_table(pa.table(cols), path)
    return ref_path, cur_path, 2 * rows * (N_NUMERIC + N_CATEGORICAL) * 8


# ---- workers (run in child processes) ---------------------------------------------------------------


def _load_numpy(path: str) -> dict:
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    out = {}
    for name in table.column_names:
        col = table.column(name).combine_chunks()
        if name.startswith("cat_"):
            out[name] = col.dictionary.to_numpy(zero_copy_only=False)[col.indices.to_numpy()]
        else:
            out[name] = col.to_numpy()
    return out


def _load_pandas(path: str):
    import pandas as pd

    frame = pd.read_parquet(path)
    for name in frame.columns:
        if name.startswith("cat_"):
            frame[name] = frame[name].astype(str)
    return frame


def worker(tool: str, ref: str, cur: str, out_dir: str) -> dict:
    """Run one tool; return its timings in seconds (measured after imports)."""
    result: dict = {}
    if tool == "read-sort":
        import numpy as np
        import pyarrow.parquet as pq

        t0 = time.perf_counter()
        for path in (ref, cur):
            table = pq.read_table(path)
            for name in table.column_names:
                if name.startswith("num_"):
                    np.sort(table.column(name).to_numpy())
        result["seconds"] = time.perf_counter() - t0
    elif tool == "sort":
        import numpy as np

        a, b = _load_numpy(ref), _load_numpy(cur)
        t0 = time.perf_counter()
        for data in (a, b):
            for name, values in data.items():
                if name.startswith("num_"):
                    np.sort(values)
        result["seconds"] = time.perf_counter() - t0
    elif tool == "drift":
        sys.path.insert(0, str(ROOT))
        import pyarrow.parquet  # noqa: F401

        import drift.cli
        import drift.detect

        t0 = time.perf_counter()
        code = drift.cli.main(
            ["check", "--reference", ref, "--current", cur, "--out", os.path.join(out_dir, "drift_report.json")]
        )
        result["seconds"] = time.perf_counter() - t0
        result["exit_code"] = code
        with open(os.path.join(out_dir, "drift_report.json")) as handle:
            report = json.load(handle)
        result["drifted"] = sorted(f["feature"] for f in report["features"] if f["drifted"])
    elif tool == "drift-detect":
        sys.path.insert(0, str(ROOT))
        from drift.detect import detect

        a, b = _load_numpy(ref), _load_numpy(cur)
        t0 = time.perf_counter()
        report = detect(a, b)
        result["seconds"] = time.perf_counter() - t0
        result["drifted"] = sorted(f.feature for f in report.features if f.drifted)
    elif tool == "scipy":
        import numpy as np
        from scipy import stats

        a, b = _load_numpy(ref), _load_numpy(cur)
        t0 = time.perf_counter()
        drifted = []
        for name in a:
            if name.startswith("num_"):
                p = stats.ks_2samp(a[name], b[name]).pvalue
            else:
                cats = np.union1d(np.unique(a[name]), np.unique(b[name]))
                table = [[int(np.sum(x == c)) for c in cats] for x in (a[name], b[name])]
                p = stats.chi2_contingency(table).pvalue
            if p < 0.05 / len(a):
                drifted.append(name)
        result["seconds"] = time.perf_counter() - t0
        result["drifted"] = sorted(drifted)
    elif tool == "evidently":
        from evidently import Report
        from evidently.presets import DataDriftPreset

        ref_df, cur_df = _load_pandas(ref), _load_pandas(cur)
        t0 = time.perf_counter()
        snapshot = Report([DataDriftPreset()]).run(cur_df, ref_df)
        snapshot.dict()
        result["seconds"] = time.perf_counter() - t0
    elif tool == "nannyml":
        import nannyml as nml

        ref_df, cur_df = _load_pandas(ref), _load_pandas(cur)
        categorical = [c for c in ref_df.columns if c.startswith("cat_")]
        t0 = time.perf_counter()
        calc = nml.UnivariateDriftCalculator(
            column_names=list(ref_df.columns),
            treat_as_categorical=categorical,
            chunk_number=1,
            continuous_methods=["kolmogorov_smirnov", "wasserstein"],
            categorical_methods=["chi2", "jensen_shannon"],
        )
        calc.fit(ref_df)
        calc.calculate(cur_df).to_df()
        result["seconds"] = time.perf_counter() - t0
    elif tool == "drift-spark":  # --engine spark: bench/spark_bench.py
        sys.path.insert(0, str(ROOT / "bench"))
        from spark_bench import spark_worker

        master = os.environ.get("DRIFT_SPARK_BENCH_MASTER", "local[2]")
        result = spark_worker(ref, cur, out_dir, os.environ.get("DRIFT_SPARK_BENCH_DRIVER_MEMORY", "2g"), master)
    else:
        raise SystemExit(f"unknown tool {tool}")
    return result


# ---- orchestration -------------------------------------------------------------------------------


def peak_rss_bytes() -> int | None:
    """This process image's peak resident memory (Linux ``VmHWM``), else None.

    ``ru_maxrss`` from ``wait4`` is the fallback, but on Linux it carries the parent's resident size
    over ``fork``/``exec``, so it can overstate a small child of a big parent.
    """
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def run_child(python: str, tool: str, ref: Path, cur: Path, out_dir: Path, timeout: float) -> dict:
    """Run one worker in a child process; add its wall time and peak RSS (bytes)."""
    if tool == "drift-process":
        out = out_dir / "drift_process_report.json"
        cmd = [python, "-m", "drift", "check", "--reference", str(ref), "--current", str(cur), "--out", str(out)]
        start = time.perf_counter()
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False)
        wall = time.perf_counter() - start
        if proc.returncode not in (0, 1):
            return {"error": (proc.stderr.strip().splitlines() or ["no output"])[-1][:200]}
        report = json.loads(out.read_text())
        return {
            "seconds": wall,
            "wall": wall,
            "exit_code": proc.returncode,
            "drifted": sorted(f["feature"] for f in report["features"] if f["drifted"]),
        }
    cmd = [
        python,
        str(Path(__file__).resolve()),
        "--worker",
        tool,
        "--ref",
        str(ref),
        "--cur",
        str(cur),
        "--out-dir",
        str(out_dir),
    ]
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=ROOT)
        deadline = start + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                return {"error": f"timed out after {timeout:.0f} s"}
            time.sleep(0.05)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        lines = [line for line in out.read().splitlines() if line.startswith("{")]
        if not lines:
            tail = err.read().strip().splitlines()[-1:] or ["no output"]
            return {"error": tail[0][:200]}
    result = json.loads(lines[-1])
    result["wall"] = wall
    if not result.get("peak_rss"):
        result["peak_rss"] = usage.ru_maxrss * 1024  # kilobytes on Linux
    return result


def _fmt_time(r: dict) -> str:
    if "seconds" not in r:
        return r.get("error", "n/a")
    spread = f" ({r['seconds_min']:.2f}-{r['seconds_max']:.2f})" if r.get("runs", 1) > 1 else ""
    return f"{r['seconds']:8.2f} s{spread}"


def combine_runs(runs: list[dict]) -> dict:
    """One result from repeated runs: median time and wall time, their range, the largest peak RSS."""
    import statistics

    ok = [r for r in runs if "seconds" in r]
    if not ok:
        return runs[-1]
    out = dict(ok[len(ok) // 2])
    times = [r["seconds"] for r in ok]
    out.update(
        seconds=statistics.median(times),
        seconds_min=min(times),
        seconds_max=max(times),
        runs=len(ok),
        all_seconds=times,
    )
    walls = [r["wall"] for r in ok if "wall" in r]
    if walls:
        out["wall"] = statistics.median(walls)
    rss = [r["peak_rss"] for r in ok if r.get("peak_rss")]
    if rss:
        out["peak_rss"] = max(rss)
    return out


def main(argv: list[str] | None = None) -> int:
    """Parse options; either run one worker or the whole benchmark."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    p.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "drift-bench")
    p.add_argument("--python", default=sys.executable, help="interpreter for drift, sort and scipy")
    p.add_argument(
        "--bench-python", default="/work/venv-bench/bin/python", help="interpreter with evidently and nannyml installed"
    )
    p.add_argument(
        "--tools",
        nargs="+",
        default=["read-sort", "drift-process", "sort", "drift", "drift-detect", "scipy", "nannyml", "evidently"],
    )
    p.add_argument("--timeout", type=float, default=1200.0, help="seconds per tool run")
    p.add_argument("--repeat", type=int, default=1, help="runs per tool: median time, largest peak RSS")
    p.add_argument("--json", type=Path, help="also write all results here")
    p.add_argument(
        "--engine",
        choices=("local", "spark"),
        default="local",
        help="spark: the local engine against --engine spark at data-lake sizes (bench/spark_bench.py)",
    )
    p.add_argument("--spark-driver-memory", default="2g", help="with --engine spark: the driver JVM's heap")
    p.add_argument("--spark-master", default="local[2]", help="with --engine spark: the Spark master")
    p.add_argument("--concurrent", action="store_true", help="with --engine spark: run both engines at the same time")
    p.add_argument("--worker")
    p.add_argument("--ref")
    p.add_argument("--cur")
    p.add_argument("--out-dir")
    args = p.parse_args(argv)

    if args.worker:
        result = worker(args.worker, args.ref, args.cur, args.out_dir)
        result["peak_rss"] = peak_rss_bytes()
        print(json.dumps(result))
        return 0

    args.workdir.mkdir(parents=True, exist_ok=True)
    if args.engine == "spark":
        sys.path.insert(0, str(ROOT / "bench"))
        from spark_bench import run as run_spark_bench

        found = run_spark_bench(
            args.rows,
            args.workdir,
            args.python,
            args.timeout,
            args.spark_driver_memory,
            args.spark_master,
            args.concurrent,
        )
        if args.json:
            args.json.write_text(json.dumps(found, indent=2) + "\n")
        return 0
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{time.strftime('%Y-%m-%d')}"
    )
    everything: dict = {}
    for rows in args.rows:
        ref, cur, data_bytes = make_data(rows, args.workdir)
        print(
            f"\n== {rows:,} rows x ({N_NUMERIC} numeric + {N_CATEGORICAL} categorical), reference and current; "
            f"data {data_bytes / 2**20:.0f} MiB as arrays"
        )
        results: dict[str, dict] = {}
        for tool in args.tools:
            python = args.bench_python if tool in ("evidently", "nannyml") else args.python
            if not os.path.exists(python):
                results[tool] = {"error": f"unavailable: {python} not found"}
            else:
                results[tool] = combine_runs(
                    [run_child(python, tool, ref, cur, args.workdir, args.timeout) for _ in range(max(1, args.repeat))]
                )
            r = results[tool]
            rss = f"{r['peak_rss'] / 2**20:7.0f} MiB" if r.get("peak_rss") else ""
            wall = f"(wall {r['wall']:.2f} s with start-up)" if "wall" in r else ""
            print(f"  {tool:13s} {_fmt_time(r):>10s}  peak RSS {rss:>11s} {wall}", flush=True)
        print("  ratios:")
        whole, peer_wall = results.get("drift-process", {}).get("wall"), results.get("read-sort", {}).get("wall")
        if whole and peer_wall:
            print(f"    python -m drift check / read+sort process: {whole / peer_wall:6.2f}x  (target <= 1.5x)")
        base = results.get("sort", {}).get("seconds")
        ours = results.get("drift", {}).get("seconds")
        if base and ours:
            print(f"    drift check / np.sort of numeric columns: {ours / base:6.2f}x  (target <= 1.5x)")
        detect_s = results.get("drift-detect", {}).get("seconds")
        if base and detect_s:
            print(f"    detect() alone / np.sort:                 {detect_s / base:6.2f}x")
        for peer in ("evidently", "nannyml", "scipy"):
            theirs = results.get(peer, {}).get("seconds")
            if ours and theirs:
                target = "  (target >= 20x)" if peer == "evidently" else ""
                print(f"    {peer} / drift check:{'':{22 - len(peer)}s}{theirs / ours:7.1f}x faster{target}")
            elif peer in results:
                print(f"    {peer}: {results[peer].get('error', 'no time')}")
        planted = sorted([f"num_{i}" for i in range(5)] + ["cat_0", "cat_1"])
        for tool in ("drift-process", "drift", "drift-detect", "scipy"):
            if "drifted" in results.get(tool, {}):
                verdict = (
                    "the planted shifts exactly"
                    if results[tool]["drifted"] == planted
                    else f"{results[tool]['drifted']} (planted: {planted})"
                )
                print(f"    {tool} flagged {verdict}")
        if "peak_rss" in results.get("drift", {}):
            print(
                f"    drift check peak RSS / data size:         {results['drift']['peak_rss'] / data_bytes:6.2f}x "
                "(target <= 2x)"
            )
        everything[str(rows)] = {"data_bytes": data_bytes, "results": results}
    if args.json:
        args.json.write_text(json.dumps(everything, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
