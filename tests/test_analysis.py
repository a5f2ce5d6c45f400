"""Counts against the paper (Wang et al. 2019), with the conventions of DESIGN.md."""

import json
from pathlib import Path

import pytest

from hwcsp.analysis import analyze, model_stats
from hwcsp.arch import Arch, ClassifierHead, CSPDenseStage, build_graph
from hwcsp.net import CSPNet

PAPER = json.loads((Path(__file__).parents[1] / "hwcsp" / "data" / "paper_tables.json").read_text())
COCO = {r["model"]: r for r in PAPER["coco_detectors"]}
IMAGENET = {r["model"]: r for r in PAPER["imagenet"]}
RECON = PAPER["reconstruction"]


def rel(a: float, b: float) -> float:
    return abs(a - b) / b


def test_darknet_ref_imagenet_row():
    s = model_stats("darknet-ref", 256)
    row = IMAGENET["darknet-ref"]
    assert rel(s.params / 1e6, row["params_M"]) < 0.01
    assert rel(s.bflops, row["bflops"]) < 0.01


def test_darknet_ref_prn_is_yolov3_tiny_prn():
    s = model_stats("darknet-ref-prn", 416)
    assert rel(s.bflops, COCO["darknet-ref-prn"]["bflops"]) < 0.01
    assert rel(s.params_all / 1e6, 4.94) < 0.01  # the public cfg's count of all floats


@pytest.mark.parametrize("name", ["cspdensenet-ref-prn", "cspdensenetb-ref-prn"])
def test_csp_detector_rows(name):
    s = model_stats(name, 320)
    row = COCO[name]
    assert rel(s.params_all / 1e6, row["params_M"]) < 0.02
    assert rel(s.bflops, row["bflops"]) < 0.02


def test_cspdensenetb_ref_imagenet_row():
    s = model_stats("cspdensenetb-ref", 224)
    row = IMAGENET["cspdensenetb-ref"]
    assert rel(s.params / 1e6, row["params_M"]) < 0.02
    assert rel(s.bflops, row["bflops"]) < 0.02


def test_cspdensenet_ref_matches_the_documented_reconstruction():
    s = model_stats("cspdensenet-ref", 224)
    r = RECON["cspdensenet-ref"]
    assert rel(s.params / 1e6, r["params_M"]) < 0.02
    assert rel(s.bflops, r["bflops"]) < 0.02


@pytest.mark.parametrize("base", ["darknet-ref-prn", "cspdensenet-ref-prn", "cspdensenetb-ref-prn"])
def test_three_level_variant_adds_the_paper_delta(base):
    a, b = model_stats(base, 320), model_stats(base + "3l", 320)
    delta = RECON["prn3l_delta"]
    assert rel((b.params - a.params) / 1e6, delta["params_M"]) < 0.02
    assert rel(b.bflops - a.bflops, delta["bflops"]) < 0.02


def _block_cio(c: int, m: int, d: int, fusion: str) -> int:
    """CIO of the m dense layers of a stage whose input has c channels, at 1x1 resolution."""
    arch = Arch(stem=c, stages=(CSPDenseStage(2 * c, m, d, 0.5, fusion),), head=ClassifierHead(4))
    stats = analyze(CSPNet(build_graph(arch), None), size=2)
    return sum(r.cio for r in stats.rows if r.name.startswith("s2.d"))


@pytest.mark.parametrize("c, m, d", [(64, 4, 32), (128, 6, 16), (32, 3, 8), (256, 4, 64)])
def test_cio_of_dense_and_partial_dense_blocks_follow_section_3_1(c, m, d):
    dense = (c * m) + ((m * m + m) * d) / 2
    partial = ((c * m) + (m * m + m) * d) / 2
    assert _block_cio(c, m, d, "none") == dense
    assert _block_cio(c, m, d, "csp") == partial


def test_per_layer_rows_add_up():
    s = model_stats("cspdensenetb-ref-prn", 320)
    assert sum(r.share for r in s.rows) == pytest.approx(1.0)
    conv = [r for r in s.rows if r.op == "conv"]
    assert all(r.flops == 2 * r.macs for r in conv)
    assert all(r.macs == r.params * r.out_shape[2] * r.out_shape[3] for r in conv)
    pools = [r for r in s.rows if r.op == "maxpool"]
    assert all(r.flops == 4 * r.out_shape[1] * r.out_shape[2] * r.out_shape[3] for r in pools)
    assert all(r.flops == 0 for r in s.rows if r.op in ("concat", "split", "add", "upsample"))


# Rows we do not reproduce, each with the reason (RESULTS.md, issue 13). xfail(strict): a fix that
# brings one within tolerance fails here until it is taken off this list.
KNOWN_OUTSIDE = {
    "cspdensenet-ref": "reconstruction -5.3% BFLOPs; the paper's own detector rows imply 0.835",
    "csppeleenet-csp-g25": "+2.7% BFLOPs",
    "csppeleenet-first-g25": "fusion first as Fig. 3(c): +12% BFLOPs",
    "csppeleenet-first-g50": "fusion first as Fig. 3(c): +21% BFLOPs",
    "csppeleenet-first-g75": "fusion first as Fig. 3(c): +32% BFLOPs",
    "csppeleenet-last-g50": "fusion last as Fig. 3(d): -4.5% BFLOPs",
    "csppeleenet-last-g75": "fusion last as Fig. 3(d): -8.0% BFLOPs",
}


def _with_paper_rows() -> list:
    from hwcsp import list_models
    from hwcsp.paper import paper_row

    out = []
    for name in list_models():
        if paper_row(name) is None:
            continue
        marks = [pytest.mark.xfail(strict=True, reason=KNOWN_OUTSIDE[name])] if name in KNOWN_OUTSIDE else []
        out.append(pytest.param(name, marks=marks))
    return out


@pytest.mark.parametrize("name", _with_paper_rows())
def test_counts_are_within_the_tolerance_of_the_paper_row(name):
    from hwcsp.paper import paper_row
    from hwcsp.registry import get_entry

    e = get_entry(name)
    row = paper_row(name, e.paper_size)
    s = model_stats(name, e.paper_size)
    assert row.size == e.paper_size
    ours_params = s.params_all if row.convention == "all floats" else s.params
    assert rel(s.bflops, row.bflops) <= e.tolerance
    if row.params_M is not None:
        assert rel(ours_params / 1e6, row.params_M) <= e.tolerance


def test_table1_grid_is_pelee_with_gamma_and_fusion():
    """The grid differs from PeleeNet only inside the stages: stem and classifier are shared, and
    more bypass (gamma) always means fewer BFLOPs."""
    base = model_stats("peleenet", 224)
    for fusion in ("first", "last", "csp"):
        flops = [model_stats(f"csppeleenet-{fusion}-g{g}", 224).bflops for g in (25, 50, 75)]
        assert flops[0] > flops[1] > flops[2]
    grid = model_stats("csppeleenet-csp-g50", 224)
    assert [r.params for r in grid.rows if r.name.startswith("stem")] == [
        r.params for r in base.rows if r.name.startswith("stem")
    ]
    assert grid.bflops == model_stats("csppeleenet", 224).bflops


def test_table1_search_counts_the_registered_grid_exactly(tmp_path):
    """The structure search's analytic counts equal the built models' (every FLOP), so what it
    says of the other structures rests on the same arithmetic; its report names them."""
    from benchmarks import table1_search as ts

    assert ts.flops(None, 0.0) == sum(r.flops for r in model_stats("peleenet", 224).rows)
    for variant, fusion in (("fusion-first", "first"), ("fusion-last", "last"), ("csp", "csp")):
        for g in (25, 50, 75):
            built = sum(r.flops for r in model_stats(f"csppeleenet-{fusion}-g{g}", 224).rows)
            assert ts.flops(ts.FIG3[variant], g / 100) == built, (variant, g)
    assert ts.main(["--out", str(tmp_path)]) == 0
    doc = json.loads((tmp_path / "search.json").read_text())
    assert doc["structures"] == len(set(ts.structures())) == 70
    cols = doc["columns"]
    # the KNOWN_OUTSIDE rows, seen from the search: Fig. 3 misses first and last at 2%
    assert cols["fusion-first"]["fig3"]["worst"] > 0.02 and cols["fusion-last"]["fig3"]["worst"] > 0.02
    assert all(r["worst"] <= 0.02 for c in cols.values() for r in c["within"])
    assert "fusion-first" in (tmp_path / "search.md").read_text()


def test_fig8_cio_of_cspresnext50_vs_resnext50():
    """Fig. 8: CIO 32.6 M vs 34.4 M. The paper names no convention: under the closest of ours
    each model is within 3%, and CSP cuts the traffic under every convention."""
    from hwcsp.analysis import cio_by_convention

    plain, csp = (cio_by_convention(model_stats(m, 256)) for m in ("resnext50", "cspresnext50"))
    for cio, paper in ((plain, 34.4), (csp, 32.6)):
        assert min(abs(v / 1e6 - paper) / paper for v in cio.values()) <= 0.03
    assert all(csp[k] < plain[k] for k in plain)
    # the Darknet convention (conv and pooling layers) holds both within 3%
    assert rel(plain["darknet"] / 1e6, 34.4) <= 0.03 and rel(csp["darknet"] / 1e6, 32.6) <= 0.03
    # the streamed graph adds the shortcuts' sampling windows (ResNeXt's strided shortcuts only)
    assert plain["hwcsp"] > plain["darknet"] and csp["hwcsp"] == csp["darknet"]


def test_balance_table_shows_infeasible_budgets_and_reloaded_rows():
    """A budget below one MAC unit per MVAU is recorded, not a crash; rows read back from
    balance.json (string keys) render like fresh ones."""
    import json

    from benchmarks.balance import BUDGETS, int_budgets, table

    ok = {"bottleneck_cycles": 1000, "efficiency": 0.5}
    row = {"model": "m", "size": 8, "mvaus": 3, "macs": 2e9, "heaviest_share": 0.25}
    row["budgets"] = {BUDGETS[0]: {"infeasible": "3 MVAUs need 3 units"}, **{b: ok for b in BUDGETS[1:]}}
    md = table({"pair": [row]})
    # 1 000 cycles at 5 ns: 200 000 frames/s
    expected = (
        "| pair | m @8 | 3 | 2.000 | 25.0% | infeasible | 1,000 / 0.500 / 200,000 | 1,000 / 0.500 / 200,000 |"
    )
    assert md.splitlines()[2] == expected
    assert table({"pair": [int_budgets(json.loads(json.dumps(row)))]}) == md


def test_table2_heads_differ_from_efm_as_in_the_paper():
    """Table 2's head effects are smaller than a 3% tolerance, so each row's difference to the
    EFM row is held to 0.02 BFLOPs: one definition per head type (hwcsp.models.detectors)."""
    from hwcsp.paper import table2_rows

    rows = table2_rows()
    ours = {r["model"]: model_stats(r["model"], r["size"]).bflops for r in rows}
    assert len(rows) == 8
    efm = next(r for r in rows if r["head"] == "EFM")
    for r in rows:
        want = r["bflops"] - efm["bflops"]
        got = ours[r["model"]] - ours[efm["model"]]
        assert abs(got - want) <= 0.02, f"{r['head']}: {got:+.3f} BFLOPs from EFM, paper {want:+.3f}"
    # SAM costs what it costs on both fusions (a 1x1 gate of the fused width per level)
    assert ours["csppeleenet-efm-sam"] > ours["csppeleenet-efm"]
    assert ours["csppeleenet-cem-sam"] > ours["csppeleenet-cem"]


def test_table4_detectors_share_one_head_per_type():
    from hwcsp.models.detectors import HEADS
    from hwcsp.registry import get_entry

    for name in ("csppeleenet-efm-sam", "csppeleenet-ref-efm-sam", "cspdensenet-ref-efm-sam"):
        assert get_entry(name).arch.head == HEADS["efm-sam"]
    for name in ("csppeleenet-prn", "csppeleenet-ref-prn", "peleenet-prn"):
        assert get_entry(name).arch.head == HEADS["prn"]
