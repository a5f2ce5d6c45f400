"""golden.cycles.exp_cycles against FINN's get_exp_cycles() of the specialised node classes.

For StreamingDataWidthConverter and StreamingFIFO FINN reports 0; golden's definition (beats moved
per frame) is checked against FINN's own folded shapes instead.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import pytest

from golden.cycles import exp_cycles, swg_impl_style
from golden.errors import GoldenError
from golden.node import NodeView

try:
    from golden_helpers.cases import ALL_CASES, DWC_CASES, FIFO_CASES, SWG_CASES, Case
    from golden_helpers.finn_env import Finn, finn, hw_node
except ImportError:  # tests/ imported as a package
    from tests.golden_helpers.cases import ALL_CASES, DWC_CASES, FIFO_CASES, SWG_CASES, Case
    from tests.golden_helpers.finn_env import Finn, finn, hw_node

__all__ = ["finn"]  # the session fixture, re-exported for pytest

BEAT_CASES = DWC_CASES + FIFO_CASES
CYCLE_CASES = [c for c in ALL_CASES if c not in BEAT_CASES]


def _finn_op(finn: Finn, case: Case) -> Any:
    return finn.getCustomOp(hw_node(case.op_type, case.attrs, case.n_in, case.n_out, case.domain))


def _view(case: Case) -> NodeView:
    node = hw_node(case.op_type, case.attrs, case.n_in, case.n_out, case.domain)
    return NodeView.from_onnx(node, onnx.GraphProto())


@pytest.mark.parametrize("case", CYCLE_CASES, ids=[c.id for c in CYCLE_CASES])
def test_exp_cycles_match_finn(finn: Finn, case: Case) -> None:
    expected = int(_finn_op(finn, case).get_exp_cycles())
    assert expected > 0
    assert exp_cycles(_view(case)) == expected


@pytest.mark.parametrize("case", SWG_CASES, ids=[c.id for c in SWG_CASES])
def test_swg_impl_style_matches_finn(finn: Finn, case: Case) -> None:
    assert swg_impl_style(_view(case)) == _finn_op(finn, case).select_impl_style()


@pytest.mark.parametrize("case", BEAT_CASES, ids=[c.id for c in BEAT_CASES])
def test_dwc_fifo_cycles_are_beats(finn: Finn, case: Case) -> None:
    op = _finn_op(finn, case)
    assert int(op.get_exp_cycles()) == 0  # FINN has no model; golden counts beats instead
    beats_in = int(np.prod(op.get_folded_input_shape()[:-1]))
    beats_out = int(np.prod(op.get_folded_output_shape()[:-1]))
    assert exp_cycles(_view(case)) == max(beats_in, beats_out)


def test_cycles_by_hand() -> None:
    """MVAU 27x24 at SIMD 3, PE 4 over 8x8 pixels: (24/4) * (27/3) * 64 = 3456 cycles."""
    node = NodeView.make("MVAU_hls", dict(MW=27, MH=24, SIMD=3, PE=4, numInputVectors=[1, 8, 8]))
    assert exp_cycles(node) == 3456
    fifo = NodeView.make("StreamingFIFO_rtl", dict(folded_shape=[1, 4, 4, 3, 8], dataType="INT4"))
    assert exp_cycles(fifo) == 48


def test_unknown_op_has_no_cycle_model() -> None:
    with pytest.raises(GoldenError, match="VVAU"):
        exp_cycles(NodeView.make("VVAU_rtl", {}))
