"""The paper's other backbones (issue 13) at small sizes through the whole integer chain: the
Brevitas model, its export, the hls lowering and folding, golden on the folded graph == FINN's
python execution of the generic graph at every tensor == qonnx == Brevitas at the outputs and
every activation, 0 mismatching integers; then every node of the folded graph in its RTL module
(sim.graph). `make test` runs one model per family through the chain and the smallest through
the RTL; `make test-all` runs every model and every family's RTL."""

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


@pytest.mark.parametrize("name, size, width", CONFIGS)
def test_backbone_is_exact_through_the_chain(finn: Finn, tmp_path: Path, name: str, size: int, width: float):
    r, hw = chain(tmp_path, name, size, width)
    model = onnx.load(str(hw / "model.hw.onnx"))
    ops = {n.op_type.rsplit("_", 1)[0] for n in model.graph.node}
    assert ops <= set(OPS)
    spec = load_io_spec(hw / "io_spec.json")
    x = np.random.default_rng(13).integers(0, 256, (2, *spec.input.shape[1:]))
    tally = chain_tally(hw, r.net, finn, x)
    print(f"{name} @{size} x{width}: {tally}")
    assert tally.mismatches == 0, str(tally)
    assert tally.integers > 0


@pytest.mark.parametrize("name, size, width", RTL_CONFIGS)
def test_every_node_of_the_backbone_runs_in_rtl(tmp_path: Path, name: str, size: int, width: float):
    """Bit-exact under full rate and random stalls, every interval == golden's RTL cycle model."""
    from golden.vectors import write_vectors
    from sim.graph import simulate

    _, hw = chain(tmp_path, name, size, width)
    vectors = write_vectors(hw, tmp_path / "vectors", n=2, seed=0)
    report = simulate(hw, vectors, out_dir=tmp_path / "sim", progress=quiet)
    bad = [f"{e['name']} ({e['op_type']}): {e['verdict']}" for e in report["nodes"] if e["verdict"] != "pass"]
    assert report["summary"]["all_pass"] and not bad, bad[:8]
    ops = {e["op_type"].rsplit("_", 1)[0] for e in report["nodes"]}
    assert {"MVAU", "ConvolutionInputGenerator", "GlobalAccPool"} <= ops
    for e in report["nodes"]:
        assert e["mismatch_ints"] == 0
        assert all(iv == [e["exp_cycles"]] * (report["frames"] - 1) for iv in e["intervals"].values()), e
