"""The paper's other backbones (issue 13) at small sizes through the whole integer chain: the
Brevitas model, its export, the hls lowering and folding, golden on the folded graph == FINN's
python execution of the generic graph at every tensor == qonnx == Brevitas at the outputs and
every activation, 0 mismatching integers; then every node of the folded graph in its RTL module
(sim.graph). `make test` runs one model per family through the chain and the smallest through
the RTL; `make test-all` runs every model and every family's RTL."""

from __future__ import annotations

from pathlib import Path

import pytest

try:
    from golden_helpers.chain import check_chain_exact, check_every_node_in_rtl
    from golden_helpers.chain import small_build as chain
    from golden_helpers.finn_env import Finn, finn
except ImportError:  # tests/ imported as a package
    from tests.golden_helpers.chain import check_chain_exact, check_every_node_in_rtl
    from tests.golden_helpers.chain import small_build as chain
    from tests.golden_helpers.finn_env import Finn, finn

__all__ = ["finn"]

# (model, size, width): the smallest inputs whose every activation stays alive under calibration
SLOW = pytest.mark.slow
CONFIGS = [
    # stem block, two-way dense layers, CSP split, average pools, global sum
    ("csppeleenet", 96, 0.25),
    pytest.param("peleenet", 96, 0.25, marks=SLOW),
    pytest.param("csppeleenet-ref", 64, 0.25, marks=SLOW),
    ("resnet10", 64, 0.25),  # signed residual branches, strided shortcuts onto fewer channels
    ("cspresnet10", 64, 0.25),  # signed branches into concats (mixed signedness)
    # grouped 3x3 (4 groups of 4 channels): split trees, per-group windows and MVAUs, concat trees
    ("cspresnext50", 64, 0.125),
    pytest.param("resnext50", 64, 0.125, marks=SLOW),
    # the paper's sizes at full width (make test-all)
    *(
        pytest.param(n, s, 1.0, marks=SLOW, id=f"{n}-full")
        for n, s in (
            ("csppeleenet", 224),
            ("peleenet", 224),
            ("csppeleenet-ref", 224),
            ("resnet10", 256),
            ("cspresnet10", 256),
            ("cspresnext50", 256),
            ("resnext50", 256),
        )
    ),
]
RTL_CONFIGS = [
    ("resnet10", 64, 0.25),
    pytest.param("csppeleenet", 96, 0.25, marks=SLOW),
    pytest.param("cspresnext50", 64, 0.125, marks=SLOW),
]


@pytest.mark.parametrize("name, size, width", CONFIGS)
def test_backbone_is_exact_through_the_chain(finn: Finn, tmp_path: Path, name: str, size: int, width: float):
    r, hw = chain(tmp_path, name, size, width)
    check_chain_exact(finn, r, hw, f"{name} @{size} x{width}", seed=13)


@pytest.mark.parametrize("name, size, width", RTL_CONFIGS)
def test_every_node_of_the_backbone_runs_in_rtl(tmp_path: Path, name: str, size: int, width: float):
    """Bit-exact under full rate and random stalls, every interval == golden's RTL cycle model."""
    _, hw = chain(tmp_path, name, size, width)
    check_every_node_in_rtl(hw, tmp_path, {"MVAU", "ConvolutionInputGenerator", "GlobalAccPool"})
