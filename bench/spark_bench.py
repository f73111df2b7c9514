"""`drift check --engine spark` against the local engine, at data-lake sizes (10M, 100M rows), in one run.

``bench/drift_bench.py --engine spark`` hands over to this module. Data: reference and current tables of
N rows x (20 numeric + 5 categorical) columns, the layout of ``drift_bench.py`` (current: mean shift of
0.25 in 5 numeric columns, reversed shares in 2 categorical ones), written by pyarrow in batches of
1,048,576 rows (one row group each), so generating 100M rows never holds more than one batch. Numeric
columns are float32 (what feature pipelines usually log; 4 bytes a value keeps 100M x 2 tables at
about 17 GB on disk instead of 33 GB); the readers decode them as float64 either way.

Each tool runs in its own child process (``drift_bench.run_child``): the time is taken inside the child
around ``drift.cli.main(["check", ...])`` (reading both inputs, summaries, detection, JSON report), and
memory is each process's own high-water mark (``VmHWM``):

- ``drift``: the local engine. It switches itself to the chunked (binned, bounded-memory) mode when the
  inputs' estimated size is above a quarter of physical memory, as at 100M rows here.
- ``drift-spark``: ``--engine spark`` on a SparkSession in local mode (``local[2]``, driver heap
  ``--spark-driver-memory``, UI off). Three numbers: the Python driver (only summaries reach it), the
  JVM (in local mode the executors run inside the driver JVM, so this is bounded by its heap setting,
  not by the data) and the largest Python worker (``mapInArrow`` batches).

Usage: ``python bench/drift_bench.py --engine spark --rows 10000000 100000000 [--workdir DIR]``.
Not run in CI.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
N_NUMERIC, N_CATEGORICAL = 20, 5
N_CATEGORIES = 12
BATCH_ROWS = 1 << 20
PLANTED = sorted([f"num_{i}" for i in range(5)] + ["cat_0", "cat_1"])


def make_data(rows: int, workdir: Path) -> tuple[Path, Path, int]:
    """Write reference and current Parquet files of ``rows`` rows in batches; return paths and bytes on disk."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    workdir.mkdir(parents=True, exist_ok=True)
    paths = (workdir / f"spark_reference_{rows}.parquet", workdir / f"spark_current_{rows}.parquet")
    dictionary = pa.array([f"cat_{i}" for i in range(N_CATEGORIES)])
    base_p = np.linspace(1.0, 2.0, N_CATEGORIES)
    base_p /= base_p.sum()
    fields = [pa.field(f"num_{i}", pa.float32()) for i in range(N_NUMERIC)]
    fields += [pa.field(f"cat_{j}", pa.dictionary(pa.int32(), pa.string())) for j in range(N_CATEGORICAL)]
    schema = pa.schema(fields)
    for table_no, path in enumerate(paths):
        if path.exists():
            continue
        shifted = table_no == 1
        tmp = path.with_suffix(".parquet.tmp")
        with pq.ParquetWriter(tmp, schema) as writer:
            for batch_no, start in enumerate(range(0, rows, BATCH_ROWS)):
                n = min(BATCH_ROWS, rows - start)
                rng = np.random.default_rng([2026, table_no, batch_no])
                cols = []
                for i in range(N_NUMERIC):
                    shift = 0.25 if shifted and i < 5 else 0.0
                    values = rng.standard_normal(n, dtype=np.float32) * np.float32(1.0 + 0.1 * i) + np.float32(shift)
                    cols.append(pa.array(values))
                for j in range(N_CATEGORICAL):
                    p = base_p[::-1] if shifted and j < 2 else base_p
                    idx = np.searchsorted(np.cumsum(p)[:-1], rng.random(n)).astype(np.int32)
                    cols.append(pa.DictionaryArray.from_arrays(pa.array(idx), dictionary))
                writer.write_batch(pa.record_batch(cols, schema=schema), row_group_size=BATCH_ROWS)
        os.replace(tmp, path)
    return paths[0], paths[1], sum(p.stat().st_size for p in paths)


def _descendants(pid: int) -> list[int]:
    """Every live descendant of ``pid``, from the parent ids in /proc/*/stat."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                stat = handle.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])  # the command name may hold spaces and parentheses
        parents.setdefault(ppid, []).append(int(entry))
    out: list[int] = []
    todo = [pid]
    while todo:
        kids = parents.get(todo.pop(), [])
        out.extend(kids)
        todo.extend(kids)
    return out


def _hwm(pid: int) -> tuple[str, int] | None:
    """``(command name, VmHWM bytes)`` of a live process, else None."""
    try:
        with open(f"/proc/{pid}/status") as handle:
            status = handle.read()
    except OSError:
        return None
    name, hwm = "", 0
    for line in status.splitlines():
        if line.startswith("Name:"):
            name = line.split()[1]
        elif line.startswith("VmHWM:"):
            hwm = int(line.split()[1]) * 1024
    return name, hwm


def spark_worker(ref: str, cur: str, out_dir: str, driver_memory: str, master: str) -> dict:
    """Child process: ``drift check --engine spark`` on a local SparkSession; time and memory per process."""
    sys.path.insert(0, str(ROOT))
    import drift.cli
    from drift.spark import local_session

    spark = local_session(master=master, conf={"spark.driver.memory": driver_memory})
    jvm_pid = spark.sparkContext._gateway.proc.pid  # spark-submit execs the JVM, so this is the JVM
    out = os.path.join(out_dir, "drift_spark_report.json")
    t0 = time.perf_counter()
    code = drift.cli.main(["check", "--engine", "spark", "--reference", ref, "--current", cur, "--out", out])
    seconds = time.perf_counter() - t0
    jvm = _hwm(jvm_pid)
    workers = [h for h in (_hwm(p) for p in _descendants(jvm_pid)) if h and h[0].startswith("python")]
    spark.stop()
    with open(out) as handle:
        report = json.load(handle)
    return {
        "seconds": seconds,
        "exit_code": code,
        "drifted": sorted(f["feature"] for f in report["features"] if f["drifted"]),
        "jvm_peak_rss": jvm[1] if jvm else None,
        "worker_peak_rss": max((h[1] for h in workers), default=None),
        "workers": len(workers),
    }


def _mib(value: int | None) -> str:
    return f"{value / 2**20:,.0f} MiB" if value else "n/a"


def run(
    rows_list: list[int],
    workdir: Path,
    python: str,
    timeout: float,
    driver_memory: str,
    master: str,
    concurrent: bool = False,
) -> dict:
    """Generate the data, run the local and the Spark engine per size, print the table; return all results.

    ``concurrent`` runs the two engines at the same time (each in its own process, sharing the cores):
    on a machine shared with other work both then see the same load, and a long run takes about half.
    """
    import platform

    sys.path.insert(0, str(ROOT / "bench"))
    from drift_bench import run_child

    os.environ["DRIFT_SPARK_BENCH_DRIVER_MEMORY"] = driver_memory
    os.environ["DRIFT_SPARK_BENCH_MASTER"] = master
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{time.strftime('%Y-%m-%d %H:%M')}; spark master {master}, driver heap {driver_memory}"
    )
    everything: dict = {}
    for rows in rows_list:
        t0 = time.perf_counter()
        ref, cur, disk = make_data(rows, workdir)
        print(
            f"\n== {rows:,} rows x ({N_NUMERIC} numeric + {N_CATEGORICAL} categorical), reference and current; "
            f"{disk / 2**30:.1f} GiB of Parquet (ready after {time.perf_counter() - t0:.0f} s)",
            flush=True,
        )
        tools = ("drift", "drift-spark")
        if concurrent:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(max_workers=2) as pool:
                futures = {tool: pool.submit(run_child, python, tool, ref, cur, workdir, timeout) for tool in tools}
                found = {tool: f.result() for tool, f in futures.items()}
        else:
            found = {tool: run_child(python, tool, ref, cur, workdir, timeout) for tool in tools}
        results = {}
        for tool in tools:
            r = found[tool]
            results[tool] = r
            if "seconds" not in r:
                print(f"  {tool:12s} {r.get('error', 'failed')}", flush=True)
                continue
            mib = {k: _mib(r.get(k)) for k in ("peak_rss", "jvm_peak_rss", "worker_peak_rss")}
            extra = ""
            if tool == "drift-spark":
                extra = f", JVM {mib['jvm_peak_rss']}, largest Python worker {mib['worker_peak_rss']}"
            verdict = "planted shifts exactly" if r.get("drifted") == PLANTED else f"{r.get('drifted')}"
            print(
                f"  {tool:12s} {r['seconds']:8.1f} s (wall {r['wall']:.1f} s)  peak RSS: Python {mib['peak_rss']}"
                f"{extra}; flagged {verdict}",
                flush=True,
            )
        if "seconds" in results["drift"] and "seconds" in results["drift-spark"]:
            print(f"  spark / local time: {results['drift-spark']['seconds'] / results['drift']['seconds']:.2f}x")
        everything[str(rows)] = {"disk_bytes": disk, "results": results}
    return everything
