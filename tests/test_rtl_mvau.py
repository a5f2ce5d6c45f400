"""RTL MatrixVectorActivation (sim/rtl/mvau.sv) against golden.

Covers folding in both dimensions (1 < SIMD < MW, 1 < PE < MH), the fully parallel case, a
single-beat input vector with many neuron folds, signed and unsigned inputs, 8-bit and narrow
weights, with and without thresholds. Every case runs two frame sizes (numInputVectors) on one
build: the frame interval must equal NF*SF*vectors exactly and the latency must not change.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from golden.node import NodeView
from sim.tb import nodes
from sim.tb.harness import check_module

Make = Callable[[list[int]], NodeView]

# name -> (simulator, node for numInputVectors vecs)
CASES: dict[str, tuple[str, Make]] = {
    # SF = 9, NF = 6; 8-bit weights; unsigned 4-bit activations in and out
    "mw27_simd3_mh24_pe4_uint4_int8w": (
        "verilator",
        lambda v: nodes.mvau(27, 24, 3, 4, "UINT4", "INT8", "UINT4", v, seed=1),
    ),
    # signed input, narrow 4-bit weights, no activation (accumulator out)
    "mw24_simd8_mh16_pe2_int4_narrow_noact": (
        "verilator",
        lambda v: nodes.mvau(24, 16, 8, 2, "INT4", "INT4", None, v, seed=2, narrow=True),
    ),
    # fully parallel: SF = NF = 1, one vector per cycle; signed 4-bit output (ActVal = -8)
    "mw16_simd16_mh8_pe8_int8_int4out": (
        "verilator",
        lambda v: nodes.mvau(16, 8, 16, 8, "INT8", "INT8", "INT4", v, seed=3),
    ),
    # one input beat per vector (SF = 1), twelve neuron folds replayed from the buffer
    "mw3_simd3_mh12_pe1_uint8_int2w": (
        "verilator",
        lambda v: nodes.mvau(3, 12, 3, 1, "UINT8", "INT2", "UINT2", v, seed=4),
    ),
    "mw8_simd2_mh4_pe2_icarus": (
        "icarus",
        lambda v: nodes.mvau(8, 4, 2, 2, "UINT2", "INT3", "UINT2", v, seed=5),
    ),
}

SLOW: dict[str, tuple[str, Make]] = {
    "mw64_simd16_mh32_pe8_uint4_int8w": (
        "verilator",
        lambda v: nodes.mvau(64, 32, 16, 8, "UINT4", "INT8", "UINT4", v, seed=6),
    ),
    "mw27_simd1_mh24_pe1_int8_noact": (
        "verilator",
        lambda v: nodes.mvau(27, 24, 1, 1, "INT8", "INT8", None, v, seed=7),
    ),
    "mw72_simd24_mh24_pe24_uint8_uint8w": (
        "verilator",
        lambda v: nodes.mvau(72, 24, 24, 24, "UINT8", "UINT8", "UINT4", v, seed=8),
    ),
}


def _run(sim: str, make: Make, work: Path) -> None:
    check_module("mvau", [make([1, 2, 2]), make([1, 3, 2])], work, sim=sim)


@pytest.mark.parametrize("name", list(CASES))
def test_mvau(name: str, tmp_path: Path) -> None:
    _run(*CASES[name], tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SLOW))
def test_mvau_slow(name: str, tmp_path: Path) -> None:
    _run(*SLOW[name], tmp_path)
