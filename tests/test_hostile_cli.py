"""Standing harness (issue 11, items 7 and 8): hostile files through `inferops plan` and `drift check`.

Every case must end in exit 2 with exactly one line on stderr naming the file (and the field where
there is one), no traceback, and in bounded time: the bounded loaders (:mod:`inferops.safeload`) stop
billion-laughs documents, recursive aliases, deep nesting and endless files before anything expands.
The cases run in-process through the guarded entry points, so a crash shows up as exit 3, not as a
pass; one subprocess run per CLI checks the process-level contract (no traceback reaches stderr).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from drift.cli import main as drift_main
from inferops.__main__ import main as inferops_main
from inferops.exitcodes import EXIT_BAD_INPUT, EXIT_INTERNAL

ROOT = Path(__file__).resolve().parent.parent
DEV = (ROOT / "Pulumi.dev.yaml").read_text(encoding="utf-8")


def _one_line_error(err: str, *names: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {lines!r}"
    assert "Traceback" not in err
    for name in names:
        assert name in lines[0], f"{name!r} not named in {lines[0]!r}"
    return lines[0]


# --- hostile stack files through `inferops plan` ---------------------------------------------------

_LAUGHS = "lol0: &a0 [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"lol{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]\n" for i in range(1, 10)
)

# name -> (stack file text or bytes, text the one-line error must contain)
STACK_CASES: dict[str, tuple[str | bytes, str]] = {
    "recursive alias": ("config:\n  aws:tags: &t {self: *t}\n", "recursive YAML alias"),
    "recursive list alias": ("config:\n  aws:x: &l [1, *l]\n", "recursive YAML alias"),
    "5000-deep flow nesting": ("config:\n  aws:x: " + "[" * 5000 + "]" * 5000 + "\n", "nested deeper"),
    "deep block nesting": ("config:\n" + "".join("  " * (i + 1) + f"k{i}:\n" for i in range(100)), "nested deeper"),
    "billion laughs": ("config:\n  aws:x: 1\n" + _LAUGHS, "expands to more than"),
    "date in another namespace": ("config:\n  aws:since: 2024-01-01\n" + DEV[DEV.index("  aws:region") :], "date"),
    "binary": ("config:\n  gcp:blob: !!binary aGVsbG8=\n", "!!binary"),
    "set": ("config:\n  gcp:s: !!set {a, b}\n", "!!set"),
    "5000-digit integer": ("config:\n  aws:n: " + "9" * 5000 + "\n", "more than 20 digits"),
    "30-digit integer": ("config:\n  aws:n: " + "9" * 30 + "\n", "config.aws:n"),
    "infinity": ("config:\n  aws:n: .inf\n", "config.aws:n"),
    "lone surrogate": ('config:\n  aws:n: "\\ud800"\n', "surrogate"),
    "non-string key": ("config:\n  1: a\n", "not a string"),
    "utf-16": (DEV.encode("utf-16"), "UTF-16"),
    "latin-1": ("config:\n  aws:region: caf\xe9\n".encode("latin-1"), "not UTF-8"),
    "not a mapping": ("- a\n- b\n", "mapping"),
    "invalid yaml": ("config: [\n", "invalid YAML"),
    "control character": ("config:\n  aws:x: \x1b[31m\n", "invalid YAML"),
}


@pytest.mark.parametrize("case", sorted(STACK_CASES))
def test_hostile_stack_file_is_exit_2_with_one_line(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    content, expected = STACK_CASES[case]
    path = tmp_path / "Pulumi.hostile.yaml"
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    code = inferops_main(["plan", "--stack-file", str(path)])
    line = _one_line_error(capsys.readouterr().err, str(path))
    assert code == EXIT_BAD_INPUT, line
    assert expected in line


def test_unbounded_files_are_refused_without_reading_them(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # /dev/zero never ends: only a bounded read can turn it into an error.
    for argv, name in (
        (["plan", "--stack-file", "/dev/zero"], "/dev/zero"),
        (["plan", "--policy-pack-config", "/dev/zero"], "/dev/zero"),
        (["plan", "--compare", "/dev/zero"], "/dev/zero"),
        (["plan", "--stack-file", str(tmp_path)], str(tmp_path)),
    ):
        assert inferops_main(argv) == EXIT_BAD_INPUT
        line = _one_line_error(capsys.readouterr().err, name)
        assert "larger than" in line or "directory" in line


DEEP_JSON = "[" * 100_000 + "]" * 100_000


@pytest.mark.parametrize(
    ("option", "content", "expected"),
    [
        ("--compare", DEEP_JSON, "nested deeper"),
        ("--policy-pack-config", DEEP_JSON, "nested deeper"),
        ("--policy-pack-config", '{"a": ' + "1" * 5000 + "}", "digits"),
        ("--compare", '{"schema": "inferops.plan/v1", "functions": 3}', "functions: must be a list"),
        ("--compare", '{"schema": "inferops.plan/v1", "functions": [{"name": "a", "cost": []}]}', "functions[0]"),
        ("--compare", '{"schema": "inferops.plan/v1", "total": {"monthly_usd": "12"}}', "total.monthly_usd"),
        ("--compare", '{"schema": "inferops.plan/v1", "verdicts": [{"policy": 1}]}', "verdicts[0].policy"),
        ("--compare", '{"schema": "inferops.plan/v1", "total": {"monthly_usd": NaN}}', "NaN"),
    ],
)
def test_hostile_json_options_are_exit_2(
    option: str, content: str, expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "input.json"
    path.write_text(content)
    assert inferops_main(["plan", option, str(path)]) == EXIT_BAD_INPUT
    line = _one_line_error(capsys.readouterr().err, str(path))
    assert expected in line


def test_out_under_a_regular_file_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    stack = tmp_path / "Pulumi.ci.yaml"
    stack.write_text(DEV)
    code = inferops_main(["plan", "--stack-file", str(stack), "--out", str(blocker / "plan.md")])
    line = _one_line_error(capsys.readouterr().err, str(blocker / "plan.md"))
    assert code == EXIT_BAD_INPUT and "cannot write" in line
    assert blocker.read_text() == "x"


def test_an_unexpected_exception_is_exit_3_never_a_verdict(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import inferops.plan

    def boom(*args: object, **kwargs: object) -> None:
        raise KeyError("bug")

    monkeypatch.setattr(inferops.plan, "build_plan", boom)
    assert inferops_main(["plan"]) == EXIT_INTERNAL
    line = _one_line_error(capsys.readouterr().err, "internal error", "KeyError")
    assert "(exit 3)" in line


def test_subprocess_crash_is_exit_3_without_a_traceback() -> None:
    """Process level: a crash (a bug planted in the plan builder) is exit 3 and one line, no traceback."""
    code = (
        "import sys, inferops.plan as p; p.build_plan = lambda *a, **k: 1 / 0; "
        "from inferops.__main__ import main; sys.exit(main(['plan']))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "INFEROPS_DEBUG": ""},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == EXIT_INTERNAL, proc.stderr
    _one_line_error(proc.stderr, "inferops: internal error")


# --- hostile inputs through `drift check` ----------------------------------------------------------


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("hostile-drift")
    rng = np.random.default_rng(11)
    pq.write_table(pa.table({"a": rng.normal(size=300), "b": rng.normal(size=300)}), d / "ref.parquet")
    pq.write_table(pa.table({"a": rng.normal(1, 1, size=300), "b": rng.normal(size=300)}), d / "cur.parquet")
    raw = (d / "ref.parquet").read_bytes()
    (d / "trunc-head.parquet").write_bytes(raw[: len(raw) // 2])
    (d / "trunc-tail.parquet").write_bytes(raw[:-3])
    (d / "dup.csv").write_text("a,a,b\n1,2,3\n4,5,6\n")
    (d / "ok.csv").write_text("a,b\n1,3\n4,6\n2,2\n")
    struct = pa.table({"a": rng.normal(size=300), "b": pa.array([{"x": 1}] * 300)})
    pq.write_table(struct, d / "struct.parquet")
    (d / "one-ref.jsonl").write_text('{"a": 1.0, "b": 2.0}\n')
    (d / "one-cur.jsonl").write_text('{"a": 3.0, "b": 2.0}\n')
    (d / "surrogate.jsonl").write_text('{"\\ud800": 1.0, "b": 2.0}\n{"\\ud800": 2.0, "b": 3.0}\n')
    (d / "utf16.csv").write_bytes("a,b\n1,2\n3,4\n".encode("utf-16"))
    (d / "utf16le.csv").write_bytes("a,b\n1,2\n3,4\n".encode("utf-16-le"))
    (d / "latin1.csv").write_bytes("a,b\n1,caf\xe9\n2,th\xe9\n".encode("latin-1"))
    (d / "deep.json").write_text(DEEP_JSON)
    (d / "deep.yaml").write_text("tests: " + "[" * 5000 + "]" * 5000 + "\n")
    (d / "laughs.yaml").write_text(_LAUGHS)
    (d / "recursive.yaml").write_text("features: &f {a: *f}\n")
    (d / "date.yaml").write_text("features:\n  a: {threshold: 2024-01-01}\n")
    (d / "surrogate-key.json").write_text('{"features": {"\\ud800": {"kind": "numeric"}}}')
    (d / "file").write_text("x")
    return d


# name -> (argv after `check`, {placeholder}-formatted; text the error line must contain)
DRIFT_CASES: dict[str, tuple[list[str], str]] = {
    "truncated parquet reference": (["--reference", "{d}/trunc-head.parquet", "--current", "{d}/cur.parquet"], "parquet"),
    "truncated parquet current": (["--reference", "{d}/ref.parquet", "--current", "{d}/trunc-tail.parquet"], "parquet"),
    "duplicate csv header reference": (["--reference", "{d}/dup.csv", "--current", "{d}/ok.csv"], "twice"),
    "duplicate csv header current": (["--reference", "{d}/ok.csv", "--current", "{d}/dup.csv"], "twice"),
    "struct column only in current": (["--reference", "{d}/ref.parquet", "--current", "{d}/struct.parquet"], "'b'"),
    "struct column chunked": (["--reference", "{d}/ref.parquet", "--current", "{d}/struct.parquet", "--chunked"], "'b'"),
    "feature named \\ud800": (["--reference", "{d}/surrogate.jsonl", "--current", "{d}/surrogate.jsonl"], "surrogate"),
    "utf-16 with bom": (["--reference", "{d}/utf16.csv", "--current", "{d}/ok.csv"], "UTF-16"),
    "latin-1 values": (["--reference", "{d}/latin1.csv", "--current", "{d}/ok.csv"], "not UTF-8"),
    "utf-16 without bom": (["--reference", "{d}/ok.csv", "--current", "{d}/utf16le.csv"], "UTF-16"),
    "deep json config": (["--reference", "{d}/ok.csv", "--current", "{d}/ok.csv", "--config", "{d}/deep.json"], "deep"),
    "deep yaml config": (["--reference", "{d}/ok.csv", "--current", "{d}/ok.csv", "--config", "{d}/deep.yaml"], "deep"),
    "billion laughs config": (["--reference", "{d}/ok.csv", "--current", "{d}/ok.csv", "--config", "{d}/laughs.yaml"], "expands"),
    "recursive config": (["--reference", "{d}/ok.csv", "--current", "{d}/ok.csv", "--config", "{d}/recursive.yaml"], "recursive"),
    "date in config": (["--reference", "{d}/ok.csv", "--current", "{d}/ok.csv", "--config", "{d}/date.yaml"], "features.a.threshold"),
    "surrogate config key": (["--reference", "{d}/ok.csv", "--current", "{d}/ok.csv", "--config", "{d}/surrogate-key.json"], "surrogate"),
    "/dev/zero config": (["--reference", "{d}/ok.csv", "--current", "{d}/ok.csv", "--config", "/dev/zero"], "larger than"),
    "out under a regular file": (["--reference", "{d}/ok.csv", "--current", "{d}/ok.csv", "--out", "{d}/file/r.json"], "cannot write"),
    "plots under a regular file": (["--reference", "{d}/ref.parquet", "--current", "{d}/cur.parquet", "--plots", "{d}/file/p"], "cannot write"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(DRIFT_CASES))
def test_hostile_drift_input_is_exit_2_with_one_line(case: str, data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv, expected = DRIFT_CASES[case]
    code = drift_main(["check", *(a.format(d=data) for a in argv)])
    err = capsys.readouterr().err
    line = _one_line_error(err, "drift: error:")
    assert code == EXIT_BAD_INPUT, line
    assert expected in line


def test_one_row_inputs_with_chunked_give_a_verdict(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # kstwo's effective sample size rounded to 0 with one row each: NaN reached the report (exit 3).
    argv = ["check", "--reference", f"{data}/one-ref.jsonl", "--current", f"{data}/one-cur.jsonl", "--chunked"]
    assert drift_main(argv) in (0, 1)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    ("endpoint", "expected"),
    [
        ("not a url", "DRIFT_S3_ENDPOINT_URL"),
        ("ftp://example.com", "DRIFT_S3_ENDPOINT_URL"),
        ("http://[::1", "DRIFT_S3_ENDPOINT_URL"),
        ("https://example.com:99999", "DRIFT_S3_ENDPOINT_URL"),
        # Nothing listens on port 1 of loopback: a refused connection, bounded by the client's retries.
        ("http://127.0.0.1:1", "s3://bucket/ref.parquet: cannot open"),
    ],
)
def test_bad_s3_endpoint_is_exit_2(
    endpoint: str, expected: str, data: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("s3fs")
    monkeypatch.setenv("DRIFT_S3_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    code = drift_main(["check", "--reference", "s3://bucket/ref.parquet", "--current", f"{data}/cur.parquet"])
    line = _one_line_error(capsys.readouterr().err, expected)
    assert code == EXIT_BAD_INPUT, line


def test_drift_crash_is_exit_3_not_drift_found(
    data: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import drift.detect

    def boom(*args: object, **kwargs: object) -> None:
        raise ZeroDivisionError("bug")

    monkeypatch.setattr(drift.detect, "detect", boom)
    code = drift_main(["check", "--reference", f"{data}/ok.csv", "--current", f"{data}/ok.csv"])
    assert code == EXIT_INTERNAL
    _one_line_error(capsys.readouterr().err, "drift: internal error: ZeroDivisionError")


def test_remediate_crash_through_drift_main_is_exit_3(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    import drift.remediate_cli

    def boom(args: object) -> int:
        raise AttributeError("bug")

    monkeypatch.setattr(drift.remediate_cli, "run_remediate", boom)
    argv = ["remediate", "--stack", "dev", "--function", "f", "--report", str(tmp_path / "r.json")]
    assert drift_main(argv) == EXIT_INTERNAL
    _one_line_error(capsys.readouterr().err, "drift: internal error: AttributeError")


def test_remediate_crash_through_the_standalone_entry_is_exit_3(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """``python -m drift.remediate_cli`` is guarded too: a bug in remediation is exit 3, never 1."""
    import drift.remediate_cli

    def boom(*args: object, **kwargs: object) -> None:
        raise AttributeError("bug")

    monkeypatch.setattr(drift.remediate_cli, "remediate", boom)
    argv = ["remediate", "--stack", "dev", "--function", "f", "--report", str(tmp_path / "r.json")]
    assert drift.remediate_cli.main(argv) == EXIT_INTERNAL
    line = _one_line_error(capsys.readouterr().err, "drift: internal error: AttributeError")
    assert "(exit 3)" in line
    # usage errors stay exit 2, unguarded paths unchanged
    assert drift.remediate_cli.main(["remediate", "--stack", "dev"]) == EXIT_BAD_INPUT


def _tree_digest(path: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(path.rglob("*")):
        st = p.lstat()
        h.update(f"{p.relative_to(path)} {st.st_mode} {st.st_size} {st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def test_plan_and_check_write_nothing_into_git(tmp_path: Path, data: Path) -> None:
    """Both commands run from a Git work tree with a read-only ``.git`` and leave it untouched."""
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True, timeout=60)
    (tmp_path / "Pulumi.ci.yaml").write_text(DEV)
    git = tmp_path / ".git"
    before = _tree_digest(git)
    modes = {p: p.stat().st_mode for p in [git, *git.rglob("*")]}
    for p in modes:
        p.chmod(modes[p] & ~0o222)
    try:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        runs = [
            [sys.executable, "-m", "drift", "check", "--reference", f"{data}/ok.csv", "--current", f"{data}/ok.csv"],
            [sys.executable, "-m", "inferops", "plan", "--stack-file", "Pulumi.ci.yaml", "--out", "plan.md"],
        ]
        for argv in runs:
            proc = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False)
            assert proc.returncode == 0, proc.stderr
            assert "Traceback" not in proc.stderr
    finally:
        for p, mode in modes.items():
            p.chmod(mode)
    assert _tree_digest(git) == before
    assert (tmp_path / "plan.md").is_file()


# --- seeded generated inputs (bounded counts) -------------------------------------------------------

_YAML_PIECES = ["&a ", "*a", "<<: *a", "!!binary ", "!!set ", "2024-01-01", "{", "[", "]", "}", ": ", "\n  ", "- ",
                "\t", "\x00", "\ufeff", "'", '"', "\\ud800", "9" * 40, ".inf", "~", "? ", "|\n", "%YAML 1.1\n"]  # fmt: skip


def _mutate(text: str, rng: Any, pieces: list[str]) -> str:
    for _ in range(rng.randint(1, 4)):
        pos = rng.randrange(len(text))
        if rng.random() < 0.6:
            text = text[:pos] + rng.choice(pieces) + text[pos + rng.randint(0, 3) :]
        else:
            text = text[:pos] + text[pos + rng.randint(1, 8) :]
    return text


def test_generated_stack_files_load_or_fail_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """120 seeded mutations of the dev stack: each loads and validates, or is exit 2 with one line.

    Files that still validate are not planned (each plan runs the program and the pack, seconds each):
    the loader and the spec are what stand between a hostile file and the program.
    """
    import random

    from components.spec import SpecError, parse_stack_config
    from inferops.harness import StackFileError, load_stack_file

    rng = random.Random(1111)
    refused = 0
    for i in range(120):
        path = tmp_path / f"Pulumi.fuzz{i}.yaml"
        path.write_bytes(_mutate(DEV, rng, _YAML_PIECES).encode("utf-8", "surrogatepass"))
        try:
            parse_stack_config(load_stack_file(path))
        except (StackFileError, SpecError):
            refused += 1
            assert inferops_main(["plan", "--stack-file", str(path)]) == EXIT_BAD_INPUT
            _one_line_error(capsys.readouterr().err, str(path))
    assert refused > 30  # the mutations do reach the error paths


def test_generated_drift_inputs_are_a_verdict_or_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """80 seeded mutations of CSV and JSON Lines inputs: exit 0, 1 or 2 with one line, never 3."""
    import random

    rng = random.Random(2222)
    lines = [f"{i % 7},{(i * 37) % 11 / 3:.3f},{'abc'[i % 3]}" for i in range(40)]
    csv = "a,b,c\n" + "\n".join(lines) + "\n"
    jsonl = "".join(f'{{"a": {i % 7}, "b": {(i * 37) % 11 / 3:.3f}, "c": "{"abc"[i % 3]}"}}\n' for i in range(40))
    (tmp_path / "ref.csv").write_text(csv)
    (tmp_path / "ref.jsonl").write_text(jsonl)
    pieces = [",", "\n", '"', "\x00", "\xff", "NaN", "inf", "9" * 30, "{", "}", "[", ":", "a", "\\ud800", "a,a"]
    for i in range(80):
        suffix = "csv" if i % 2 else "jsonl"
        base = csv if suffix == "csv" else jsonl
        cur = tmp_path / f"cur{i}.{suffix}"
        cur.write_bytes(_mutate(base, rng, pieces).encode("utf-8", "surrogatepass"))
        ref = tmp_path / f"ref.{suffix}"
        argv = ["check", "--reference", str(ref), "--current", str(cur)] if i % 3 else [
            "check", "--reference", str(cur), "--current", str(ref), "--chunked"]  # fmt: skip
        code = drift_main(argv)
        err = capsys.readouterr().err
        assert code in (0, 1, EXIT_BAD_INPUT), err
        if code == EXIT_BAD_INPUT:
            _one_line_error(err, "drift: error:")
