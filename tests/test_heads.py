"""The paper's detection heads (issue 14): EFM, GFM, CEM, SAM and SPP as records, their counts
against Tables 2 and 4, and every new head through the integer chain at small sizes: the
Brevitas model, export, hls lowering and folding, golden == FINN == qonnx == Brevitas with 0
mismatching integers; one EFM(SAM) detector's every node in RTL."""

from __future__ import annotations

import json
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


EFM_SAM = ("csppeleenet-efm-sam", 64, 0.25)


@pytest.fixture(scope="module")
def efm_sam(tmp_path_factory: pytest.TempPathFactory):
    """One small EFM(SAM) detector's export and hls build, shared by its chain and RTL tests."""
    return chain(tmp_path_factory.mktemp("efm-sam"), *EFM_SAM)


def check_chain(finn: Finn, r, hw: Path, label: str) -> None:
    model = onnx.load(str(hw / "model.hw.onnx"))
    ops = {n.op_type.rsplit("_", 1)[0] for n in model.graph.node}
    assert ops <= set(OPS)
    spec = load_io_spec(hw / "io_spec.json")
    x = np.random.default_rng(14).integers(0, 256, (2, *spec.input.shape[1:]))
    tally = chain_tally(hw, r.net, finn, x)
    print(f"{label}: {tally}")
    assert tally.mismatches == 0, str(tally)
    assert tally.integers > 0


def test_efm_sam_is_exact_through_the_chain(finn: Finn, efm_sam):
    """Maxout of three scales (an elementwise max), SAM's threshold sigmoid and multiply, pooled
    and upsampled projections."""
    check_chain(finn, *efm_sam, "csppeleenet-efm-sam @64 x0.25")


@pytest.mark.parametrize(
    "name, size, width",
    [
        # the global context: a global pool, a 1x1 on one pixel, broadcast (upsample) and added
        ("csppeleenet-cem", 64, 0.25),
        # 4x4/4 pools and x4 upsampling of the all-scale fusion; SPP's 5/9/13 pools
        pytest.param("csppeleenet-gfm", 64, 0.25, marks=SLOW),
        pytest.param("csppeleenet-efm-spp", 64, 0.25, marks=SLOW),
        # the paper's sizes at full width
        pytest.param("cspdensenet-ref-efm-sam", 320, 1.0, marks=SLOW, id="cspdensenet-ref-efm-sam-full"),
        pytest.param("csppeleenet-cem-sam", 416, 1.0, marks=SLOW, id="csppeleenet-cem-sam-full"),
    ],
)
def test_head_is_exact_through_the_chain(finn: Finn, tmp_path: Path, name: str, size: int, width: float):
    r, hw = chain(tmp_path, name, size, width)
    if "-cem" in name:  # the FIFO analysis names the frame the global context makes a join wait
        folding = json.loads((hw / "report" / "estimates.json").read_text())["folding"]
        bufs = [b for b in folding["frame_buffers"] if b["waits_for"].startswith("GlobalAccPool")]
        assert bufs and all(b["frames"] >= 1.0 for b in bufs), folding["frame_buffers"]
        assert "## Frame buffers" in (hw / "report" / "report.md").read_text()
    check_chain(finn, r, hw, f"{name} @{size} x{width}")


def test_every_node_of_an_efm_sam_detector_runs_in_rtl(tmp_path: Path, efm_sam):
    """Bit-exact under full rate and random stalls, every interval == golden's RTL cycle model:
    the elementwise max (Maxout), the gate's thresholds and the multiply (SAM) among them."""
    from golden.vectors import write_vectors
    from sim.graph import simulate

    _, hw = efm_sam
    vectors = write_vectors(hw, tmp_path / "vectors", n=2, seed=0)
    report = simulate(hw, vectors, out_dir=tmp_path / "sim", progress=quiet)
    bad = [f"{e['name']} ({e['op_type']}): {e['verdict']}" for e in report["nodes"] if e["verdict"] != "pass"]
    assert report["summary"]["all_pass"] and not bad, bad[:8]
    ops = {e["op_type"].rsplit("_", 1)[0] for e in report["nodes"]}
    assert {"ElementwiseMax", "ElementwiseMul", "UpsampleNearestNeighbour", "Pool"} <= ops, ops
    for e in report["nodes"]:
        assert e["mismatch_ints"] == 0
        assert all(iv == [e["exp_cycles"]] * (report["frames"] - 1) for iv in e["intervals"].values()), e
