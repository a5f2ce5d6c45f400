"""The paper's detection heads (issue 14): EFM, GFM, CEM, SAM and SPP as records, their counts
against Tables 2 and 4, and every new head through the integer chain at small sizes: the
Brevitas model, export, hls lowering and folding, golden == FINN == qonnx == Brevitas with 0
mismatching integers; one EFM(SAM) detector's every node in RTL."""

from __future__ import annotations

import json
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
SLOW = pytest.mark.slow


EFM_SAM = ("csppeleenet-efm-sam", 64, 0.25)


@pytest.fixture(scope="module")
def efm_sam(tmp_path_factory: pytest.TempPathFactory):
    """One small EFM(SAM) detector's export and hls build, shared by its chain and RTL tests."""
    return chain(tmp_path_factory.mktemp("efm-sam"), *EFM_SAM)


def test_efm_sam_is_exact_through_the_chain(finn: Finn, efm_sam):
    """Maxout of three scales (an elementwise max), SAM's threshold sigmoid and multiply, pooled
    and upsampled projections."""
    check_chain_exact(finn, *efm_sam, "csppeleenet-efm-sam @64 x0.25", seed=14)


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
    check_chain_exact(finn, r, hw, f"{name} @{size} x{width}", seed=14)


def test_every_node_of_an_efm_sam_detector_runs_in_rtl(tmp_path: Path, efm_sam):
    """Bit-exact under full rate and random stalls, every interval == golden's RTL cycle model:
    the elementwise max (Maxout), the gate's thresholds and the multiply (SAM) among them."""
    ops = {"ElementwiseMax", "ElementwiseMul", "UpsampleNearestNeighbour", "Pool", "Thresholding"}
    check_every_node_in_rtl(efm_sam[1], tmp_path, ops)


def test_heads_study_reads_complete_runs_and_refuses_a_foreign_one(tmp_path: Path, capsys):
    """`python -m benchmarks.heads_qat` (the SAM and PRN studies of RESULTS.md) tabulates complete run
    directories without training again, and refuses a directory trained with another configuration."""
    from benchmarks.heads_qat import SCHEDULES, STUDIES, configs, main

    sched = SCHEDULES["short"]
    maps = {"csppeleenet-efm-sam": (0.5, 0.625), "csppeleenet-efm": (0.25, 0.375)}
    for m in STUDIES["sam"]:
        for cfg, last in zip(configs(m, 0, sched, tmp_path / "short"), maps[m], strict=True):
            run = Path(cfg.out)
            run.mkdir(parents=True)
            (run / "train.json").write_text(json.dumps({"config": cfg.identity()}))
            recs = [{"kind": "epoch", "epoch": e, "val_map50": last - 0.1 * (cfg.epochs - e),
                     "val_map50_95": 0.1, "seconds": 1.0} for e in range(1, cfg.epochs + 1)]  # fmt: skip
            (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    args = ["--study", "sam", "--seeds", "0", "--jobs", "1", "--out", str(tmp_path)]
    assert main(args) == 0
    md = (tmp_path / "heads_qat-short.md").read_text()
    assert "| `csppeleenet-efm-sam` | 0.500 | 0.500 | 0.625 | 0.625 |" in md
    assert "| `csppeleenet-efm` | 0.250 | 0.250 | 0.375 | 0.375 |" in md
    runs = json.loads((tmp_path / "heads_qat-short.json").read_text())["runs"]
    assert [e["map50"] for e in runs[0]["float"]] == pytest.approx([0.3, 0.4, 0.5])
    assert (tmp_path / "heads_qat-short.png").read_bytes()[:4] == b"\x89PNG"

    foreign = tmp_path / "short" / "csppeleenet-efm-seed0" / "w4a4" / "train.json"
    doc = json.loads(foreign.read_text())
    doc["config"]["lr"] = 1e-3
    foreign.write_text(json.dumps(doc))
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "csppeleenet-efm-seed0/w4a4 holds another configuration" in err and "'lr': (0.001, 0.0005)" in err
