"""RTL ElementwiseAdd, Max and Mul (sim/rtl/add.sv) against golden: two streams, mixed signedness."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from golden.node import NodeView
from sim.tb import nodes
from sim.tb.harness import check_module

# name -> (simulator, node for an image of h rows)
CASES: dict[str, tuple[str, Callable[[int], NodeView]]] = {
    "c24_pe4_int8_int8": ("verilator", lambda h: nodes.add([1, h, 3, 24], 4, "INT8", "INT8", "INT9")),
    # unsigned + signed: FINN widens by two bits
    "c27_pe27_uint4_int4": ("verilator", lambda h: nodes.add([1, h, 2, 27], 27, "UINT4", "INT4", "INT6")),
    "c3_pe1_uint8_icarus": ("icarus", lambda h: nodes.add([1, h, 2, 3], 1, "UINT8", "UINT8", "UINT9")),
    # ElementwiseMax (Maxout, the heads issue): unsigned against signed compares as numbers, not bits
    "max_c12_pe4_uint4_int4": (
        "verilator",
        lambda h: nodes.add([1, h, 3, 12], 4, "UINT4", "INT4", "INT5", op="ElementwiseMax"),
    ),
    "max_c5_pe5_int8_int8_icarus": (
        "icarus",
        lambda h: nodes.add([1, h, 2, 5], 5, "INT8", "INT8", "INT8", op="ElementwiseMax"),
    ),
    # ElementwiseMul (SAM's gate): codes times gate codes, and signed times unsigned
    "mul_c8_pe2_uint4_uint3": (
        "verilator",
        lambda h: nodes.add([1, h, 3, 8], 2, "UINT4", "UINT3", "UINT7", op="ElementwiseMul"),
    ),
    "mul_c6_pe3_int5_uint4_icarus": (
        "icarus",
        lambda h: nodes.add([1, h, 2, 6], 3, "INT5", "UINT4", "INT9", op="ElementwiseMul"),
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_add(name: str, tmp_path: Path) -> None:
    sim, make = CASES[name]
    check_module("add", [make(2), make(3)], tmp_path, sim=sim)
