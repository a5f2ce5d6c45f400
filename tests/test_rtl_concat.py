"""RTL StreamingConcat (sim/rtl/concat.sv) against golden: 2 to 4 inputs of mixed datatypes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from golden.node import NodeView
from sim.tb import nodes
from sim.tb.harness import check_module

# name -> (simulator, node for numInputVectors vecs)
CASES: dict[str, tuple[str, Callable[[list[int]], NodeView]]] = {
    # channel counts 3, 24, 27; unsigned and signed inputs widened to the common output type
    "c3_24_27_simd3_mixed": (
        "verilator",
        lambda v: nodes.concat([3, 24, 27], 3, ["UINT4", "INT4", "UINT8"], v),
    ),
    "c24_24_simd8_uint4": ("verilator", lambda v: nodes.concat([24, 24], 8, ["UINT4", "UINT4"], v)),
    # four inputs, each a single beat per pixel
    "c3x4_simd3_int8": ("verilator", lambda v: nodes.concat([3, 3, 3, 3], 3, ["INT8"] * 4, v)),
    "c8_16_simd4_icarus": ("icarus", lambda v: nodes.concat([8, 16], 4, ["UINT2", "INT3"], v)),
}


@pytest.mark.parametrize("name", list(CASES))
def test_concat(name: str, tmp_path: Path) -> None:
    sim, make = CASES[name]
    check_module("concat", [make([1, 2, 2]), make([1, 3, 2])], tmp_path, sim=sim)
