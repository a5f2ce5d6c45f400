"""Results and reports shared by sim.graph and sim.network: the testbench's result files, the
report tables, and the split of wall-clock facts from the byte-reproducible reports."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any


def read_kv(path: Path) -> dict[str, list[str]] | None:
    """A result file of the testbench: `key value...` lines (frame_end repeats, collected)."""
    if not path.exists():
        return None
    out: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        key, *vals = line.split()
        out[key] = out.get(key, []) + vals if key == "frame_end" else vals
    return out


def kv_int(kv: dict[str, list[str]], key: str) -> int:
    return int(kv[key][0])


def row(cells: list[Any]) -> str:
    return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"


TIMING_KEYS = ("build", "run_seconds", "wall_seconds")  # wall-clock facts: not part of a report


def run_facts(exe: Path, cached: bool, build_s: float, run_s: float, run_error, t_start: float) -> dict:
    """How a simulation ran, in report order: the build (cached or not), run and wall-clock seconds
    (later moved to the timings file by ``split_timings``) and the run's error, if any."""
    return {
        "build": {"key": exe.parent.name, "cached": cached, "seconds": round(build_s, 2)},
        "run_seconds": round(run_s, 2),
        "run_error": run_error,
        "wall_seconds": round(time.monotonic() - t_start, 2),
    }


def first_failure(checks: list[tuple[str, bool]]) -> str:
    """The verdict of a run: the name of its first failed check in order of severity, else "pass"."""
    return next((name for name, failed in checks if failed), "pass")


def split_timings(report: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(report without wall-clock facts, those facts): reports are byte-identical across runs, the
    timings (and whether the build came from the cache) go to their own file."""
    return (
        {k: v for k, v in report.items() if k not in TIMING_KEYS},
        {k: report[k] for k in TIMING_KEYS if k in report},
    )
