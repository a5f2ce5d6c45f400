"""Results and reports shared by sim.graph and sim.network: the testbench's result files, the
report tables, and the split of wall-clock facts from the byte-reproducible reports."""

from __future__ import annotations

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


def split_timings(report: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(report without wall-clock facts, those facts): reports are byte-identical across runs, the
    timings (and whether the build came from the cache) go to their own file."""
    return (
        {k: v for k, v in report.items() if k not in TIMING_KEYS},
        {k: report[k] for k in TIMING_KEYS if k in report},
    )
