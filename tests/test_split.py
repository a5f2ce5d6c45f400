"""MVAUs split by output rows (hls/split.py): choices, budget rule, FINN exactness, golden, RTL."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper

from golden.cycles import rtl_cycles
from golden.node import NodeView
from hls.constants import MAX_STREAM_BITS
from hls.flow import HlsRequest, run
from hls.folding import balance, folding_units, mvau_unit
from hls.split import Split, split_candidates, split_views

try:
    from golden_helpers.finn_env import finn
    from golden_helpers.refs import Graphs, Tally, against_finn
except ImportError:  # tests/ imported as a package
    from tests.golden_helpers.finn_env import finn
    from tests.golden_helpers.refs import Graphs, Tally, against_finn

__all__ = ["finn"]

SPLIT_BUDGET = 96  # on the test configuration two splits lower the bottleneck (by 1/9, measured)
PLAIN_BUDGET = 256  # here the best bottleneck needs no split


def quiet(*_a, **_k) -> None:
    pass


def _copy_export(exported: Path, dst: Path) -> Path:
    dst.mkdir(parents=True)
    for f in ("config.json", "export.json", "model.qonnx.onnx"):
        shutil.copyfile(exported / f, dst / f)
    return dst


@pytest.fixture(scope="module")
def split_dir(exported: Path, tmp_path_factory) -> Path:
    d = _copy_export(exported, tmp_path_factory.mktemp("split") / exported.name)
    return run(HlsRequest(d, macs=SPLIT_BUDGET, baseline=False), log=quiet)


def _attrs(n: onnx.NodeProto) -> dict:
    return {a.name: helper.get_attribute_value(a) for a in n.attribute}


def _through(graph: onnx.GraphProto, tensor: str, upstream: bool = False) -> onnx.NodeProto:
    """The consumer (or with ``upstream`` the producer) of ``tensor``, looking through width
    converters and FIFOs."""
    while True:
        n = next(n for n in graph.node if tensor in (n.output if upstream else n.input))
        if not n.op_type.startswith(("StreamingDataWidthConverter", "StreamingFIFO")):
            return n
        tensor = n.input[0] if upstream else n.output[0]


def test_split_choices_are_legal_and_only_where_plain_folding_costs_more(hw_dir):
    m = onnx.load(hw_dir / "model.hw.onnx")
    mvaus = [n for n in m.graph.node if n.op_type.startswith("MVAU")]
    n_split = 0
    for node in mvaus:
        u = mvau_unit(node, split=True)
        plain = [c for c in u.choices if not c.split]
        for c in (c for c in u.choices if c.split):
            n_split += 1
            (a,) = c.attrs.values()
            s = Split.from_attr(a["split"])
            v = NodeView.from_onnx(node, m.graph)
            mh, mw = int(v.attrs["MH"]), int(v.attrs["MW"])
            assert 0 < s.mh_a < mh and mw % s.simd == 0
            assert s.mh_a % s.pe_a == 0 and (mh - s.mh_a) % s.pe_b == 0
            assert s.mh_a % s.cat_simd == 0 and (mh - s.mh_a) % s.cat_simd == 0
            assert c.cost == (s.pe_a + s.pe_b) * s.simd
            assert c.cycles == max(rtl_cycles(x) for x in split_views(v, s))
            # the fewest PEs any fold reaching these cycles can have
            fold = max(s.mh_a // s.pe_a, (mh - s.mh_a) // s.pe_b)
            assert s.pe_a + s.pe_b == math.ceil(mh / fold)
            # offered only where every plain folding at least as fast costs more MAC units
            assert all(p.cost > c.cost for p in plain if p.cycles <= c.cycles)
    assert n_split > 0


def test_split_candidates_cover_every_non_divisor_fold():
    v = NodeView(
        "m", "MVAU", "hls",
        {"MH": 12, "MW": 18, "weightDataType": "INT4", "inputDataType": "UINT4", "outputDataType": "UINT4",
         "numInputVectors": [1, 4, 4], "noActivation": 0},
    )  # fmt: skip
    folds = {}
    for s, _cycles, cost in split_candidates(v, MAX_STREAM_BITS):
        fold = max(s.mh_a // s.pe_a, (12 - s.mh_a) // s.pe_b)
        folds.setdefault(s.simd, set()).add(fold)
        assert cost == s.simd * math.ceil(12 / fold)
    # folds 5, 7, 8, 9, 10, 11 do not divide 12; 2, 3, 4, 6 are plain
    assert all(f == {5, 7, 8, 9, 10, 11} for f in folds.values()) and sorted(folds) == [1, 2, 3, 6, 9, 18]


def test_splits_only_when_the_budget_needs_them(hw_dir):
    m = onnx.load(hw_dir / "model.hw.onnx")
    plain = balance(m.graph, mac_budget=SPLIT_BUDGET)
    split = balance(m.graph, mac_budget=SPLIT_BUDGET, split=True)
    picked = {k: Split.from_attr(a["split"]) for k, a in split.attrs.items() if "split" in a}
    assert split.target < plain.target and split.mac_units <= SPLIT_BUDGET and len(picked) == 2
    # fewest splits: undoing any one of them breaks the budget
    units = {u.names[0]: u for u in folding_units(m.graph, split=True)}
    for name in picked:
        extra = units[name].best(split.target, split=False).cost - units[name].best(split.target).cost
        assert split.mac_units + extra > SPLIT_BUDGET
    for budget in (PLAIN_BUDGET, 2048):  # no smaller bottleneck to gain: no split
        r = balance(m.graph, mac_budget=budget, split=True)
        assert not any("split" in a for a in r.attrs.values())
        assert r.target == balance(m.graph, mac_budget=budget).target
    # a cycle target never needs one (PE = MH reaches any target)
    r = balance(m.graph, target_cycles=split.target, split=True)
    assert not any("split" in a for a in r.attrs.values())


def test_split_graph_structure_and_report(split_dir):
    m = onnx.load(split_dir / "model.hw.onnx")
    rep = json.loads((split_dir / "report" / "estimates.json").read_text())
    splits = rep["folding"]["splits"]
    assert len(splits) == 2
    for sp in splits:
        cat = next(n for n in m.graph.node if sp["output"] in n.output)
        assert cat.op_type == "StreamingConcat_hls"
        assert _attrs(cat)["ChannelsPerStream"] == sp["rows"] and _attrs(cat)["SIMD"] == sp["concat_SIMD"]
        parts = []
        for t in cat.input:
            while not (p := next(n for n in m.graph.node if t in n.output)).op_type.startswith("MVAU"):
                t = p.input[0]
            parts.append(p)
        assert [_attrs(p)["MH"] for p in parts] == sp["rows"] and [_attrs(p)["PE"] for p in parts] == sp["PE"]
        assert {_attrs(p)["SIMD"] for p in parts} == {sp["SIMD"]}
        dup = _through(m.graph, parts[0].input[0], upstream=True)
        assert dup.op_type == "DuplicateStreams_hls" and {_through(m.graph, o).name for o in dup.output} == {
            p.name for p in parts
        }
        w = [
            onnx.numpy_helper.to_array(next(i for i in m.graph.initializer if i.name == p.input[1]))
            for p in parts
        ]
        assert w[0].shape[1] + w[1].shape[1] == sp["MH"]
    md = (split_dir / "report" / "report.md").read_text()
    assert "MVAUs split by output rows: 2" in md and "## MVAUs split by output rows" in md
    s = rep["summary"]
    assert s["mac_units"] <= SPLIT_BUDGET and s["bottleneck_cycles"] == rep["folding"]["target_cycles"]
    assert rep["verification"]["mismatches"] == 0 and rep["verification"]["integers_compared"] > 0
    for n in m.graph.node:  # every new node has its generated code
        assert (split_dir / "hls" / n.name / "README.md").is_file()


def test_split_graph_golden_equals_finn(split_dir, finn):
    from golden.execute import execute

    io = json.loads((split_dir / "io_spec.json").read_text())
    x = np.random.default_rng(5).integers(0, 256, (3, *io["input"]["shape"][1:]))
    gold = execute(split_dir / "model.hw.onnx", {io["input"]["name"]: x}, return_all=True)
    g = Graphs.load(split_dir, finn)
    tally = Tally()
    for f in range(x.shape[0]):
        against_finn(g, finn, {k: v[f : f + 1] for k, v in gold.items()}, x[f : f + 1], tally)
    assert tally.mismatches == 0 and tally.tensors == 3 * len(gold), str(tally)


def test_split_network_rtl_is_bit_exact_at_the_bottleneck(split_dir, tmp_path):
    """The stitched RTL of the split graph: bit-exact; with a frame of buffering on every stream it
    runs at the balanced bottleneck (the analytic FIFO depths are sized for liveness only)."""
    from golden.vectors import write_vectors
    from sim.network import simulate_network

    vec = write_vectors(split_dir, tmp_path / "vectors", n=3, seed=0)
    rep = simulate_network(split_dir, vec, out_dir=tmp_path / "sim", frames=3, extra_fifo=1.0, progress=quiet)
    assert rep["verdict"] == "pass" and rep["bit_exact"], rep.get("reason")
    assert all(o["mismatch_ints"] == 0 and o["received"] == o["beats"] for o in rep["outputs"])
    bottleneck = json.loads((split_dir / "report" / "estimates.json").read_text())["summary"][
        "bottleneck_cycles"
    ]
    assert rep["interval"] == rep["bottleneck"]["exp_cycles"] == bottleneck


def test_split_flow_is_deterministic_and_no_split_is_a_separate_variant(split_dir, exported, tmp_path):
    d = _copy_export(exported, tmp_path / exported.name)
    again = run(HlsRequest(d, macs=SPLIT_BUDGET, baseline=False, codegen=False), log=quiet)
    # (model.hw.onnx differs by the code-generation paths: this run generates no code)
    for f in ("model.hw_generic.onnx", "folding.json", "tensor_map.json", "io_spec.json"):
        assert (again / f).read_bytes() == (split_dir / f).read_bytes(), f
    plain = run(HlsRequest(d, macs=SPLIT_BUDGET, split=False, baseline=False, codegen=False), log=quiet)
    assert plain.name == f"hls-m{SPLIT_BUDGET}-nosplit"
    rep = json.loads((plain / "report" / "estimates.json").read_text())
    ours = json.loads((split_dir / "report" / "estimates.json").read_text())
    assert rep["folding"]["splits"] == [] and not any(
        n.op_type.startswith("StreamingConcat") and "split" in n.output[0]
        for n in onnx.load(plain / "model.hw.onnx").graph.node
    )
    assert rep["summary"]["bottleneck_cycles"] > ours["summary"]["bottleneck_cycles"]
