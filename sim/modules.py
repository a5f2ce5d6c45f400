"""The RTL library's modules and the files each one needs (used by lint, area and the tests)."""

from __future__ import annotations

from pathlib import Path

RTL_DIR = Path(__file__).resolve().parent / "rtl"

# Helper modules first, then each top-level module with everything it instantiates.
_DEPS: dict[str, list[str]] = {
    "ram_1r1w": [],
    "rom": [],
    "axis_skid": [],
    "credit_fifo": [],
    "widen": [],
    "threshold_compare": [],
    "swg_pointwise": ["axis_skid"],
    "swg_window": ["ram_1r1w", "credit_fifo"],
    "swg_parallel": ["ram_1r1w", "axis_skid"],
    "fifo": ["credit_fifo", "ram_1r1w"],
    "dwc": [],
    "fmpad": ["axis_skid"],
    "swg": ["swg_pointwise", "swg_window", "swg_parallel", "axis_skid", "ram_1r1w", "credit_fifo"],
    "thresholding": ["threshold_compare", "rom", "credit_fifo"],
    "mvau": ["threshold_compare", "rom", "ram_1r1w", "credit_fifo"],
    "pool": ["axis_skid"],
    "concat": ["widen", "axis_skid"],
    "split": ["axis_skid"],
    "dup": ["axis_skid"],
    "add": ["axis_skid"],
    "upsample": ["ram_1r1w", "credit_fifo"],
}

# The FINN layers (top-level modules with FINN ports); the rest are building blocks.
LAYERS: tuple[str, ...] = (
    "mvau",
    "swg",
    "fmpad",
    "thresholding",
    "pool",
    "concat",
    "split",
    "dup",
    "add",
    "upsample",
    "dwc",
    "fifo",
)
MODULES: tuple[str, ...] = tuple(_DEPS)


def rtl_file(module: str) -> Path:
    return RTL_DIR / f"{module}.sv"


def sources(module: str) -> list[Path]:
    """The module's file and those of every module it instantiates, top first."""
    if module not in _DEPS:
        raise KeyError(f"no RTL module {module!r}; known: {', '.join(MODULES)}")
    return [rtl_file(module)] + [rtl_file(d) for d in _DEPS[module]]
