"""Benchmark of the offline plan on generated stacks of 10, 100 and 1,000 functions.

Prints, per size: wall time and peak memory (RSS of a fresh child process) of a whole plan, time per
function, and the ratio time(1000)/time(100) (target: at most 11, i.e. linear). Then the policy pack's
time per resource against a pack with a single empty policy, both started the way the engine starts
them and measured in the same run on the same resources (target: at most 3x).

Run: ``.venv/bin/python bench/plan_bench.py [--sizes 10 100 1000]``. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import copy
import json
import resource
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ruamel.yaml import YAML  # noqa: E402

from inferops.harness import load_stack_file  # noqa: E402


def generated_stack(n: int) -> dict[str, Any]:
    """The dev stack's four functions, repeated with unique names until there are ``n``."""
    config = load_stack_file(ROOT / "Pulumi.dev.yaml")
    templates = config["inferops:functions"]
    functions = []
    for i in range(n):
        fn = copy.deepcopy(templates[i % len(templates)])
        fn["name"] = f"{fn['name'][:20]}-{i}"
        functions.append(fn)
    config["inferops:functions"] = functions
    return config


def write_stack(config: dict[str, Any], directory: Path, n: int) -> Path:
    """Write a stack file ``Pulumi.bench<n>.yaml``."""
    path = directory / f"Pulumi.bench{n}.yaml"
    with path.open("w") as handle:
        YAML().dump({"config": config}, handle)
    return path


def time_plan(stack_file: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one ``inferops plan`` in a fresh process."""
    code = textwrap.dedent(
        f"""
        import resource, sys, time
        sys.path.insert(0, {str(ROOT)!r})
        from inferops.__main__ import main
        t = time.perf_counter()
        out = {str(stack_file) + ".plan.json"!r}
        rc = main(["plan", "--stack-file", {str(stack_file)!r}, "--format", "json", "--out", out])
        print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, rc)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    return float(out[0]), float(out[1])


EMPTY_PACK_MAIN = """
from pulumi_policy import EnforcementLevel, PolicyPack, ResourceValidationPolicy

PolicyPack(name="empty", enforcement_level=EnforcementLevel.ADVISORY, policies=[
    ResourceValidationPolicy(name="noop", description="does nothing", validate=lambda args, report: None),
])
"""


def pack_time_per_resource(pack_dir: Path, resources: list[Any], rounds: int) -> float:
    """Seconds per Analyze call, averaged over ``rounds`` passes over ``resources``."""
    from inferops.analyzer import PolicyPackProcess

    with PolicyPackProcess(pack_dir) as pack:
        for r in resources[:20]:  # warm-up: first calls pay for lazy imports in the pack
            pack.analyze(r)
        start = time.perf_counter()
        for _ in range(rounds):
            for r in resources:
                pack.analyze(r)
        return (time.perf_counter() - start) / (rounds * len(resources))


def main() -> None:
    """Run the benchmark and print a table of measurements and ratios."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    results: dict[int, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        print(f"{'functions':>9}  {'wall s':>8}  {'peak MiB':>8}  {'ms/function':>11}")
        for n in args.sizes:
            wall, rss = time_plan(write_stack(generated_stack(n), tmpdir, n))
            results[n] = (wall, rss)
            print(f"{n:>9}  {wall:>8.2f}  {rss:>8.0f}  {1000 * wall / n:>11.1f}")
        if 100 in results and 1000 in results:
            ratio = results[1000][0] / results[100][0]
            print(f"time(1000)/time(100) = {ratio:.2f} (target <= 11: {'ok' if ratio <= 11 else 'MISSED'})")

        from inferops.harness import run_program

        run = run_program(ROOT / "Pulumi.dev.yaml")
        custom = [r for r in run.resources if r.custom]
        empty = tmpdir / "empty-pack"
        empty.mkdir()
        (empty / "PulumiPolicy.yaml").write_text("runtime: python\nversion: 0.0.1\n")
        (empty / "__main__.py").write_text(EMPTY_PACK_MAIN)
        ours = pack_time_per_resource(ROOT / "policies", custom, args.rounds)
        peer = pack_time_per_resource(empty, custom, args.rounds)
        print(
            f"pack: {1e3 * ours:.3f} ms/resource, empty pack: {1e3 * peer:.3f} ms/resource, "
            f"ratio {ours / peer:.2f} (target <= 3: {'ok' if ours / peer <= 3 else 'MISSED'})"
        )
    print(json.dumps({"maxrss_parent_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


if __name__ == "__main__":
    main()
