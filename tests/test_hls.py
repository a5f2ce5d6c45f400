"""The hls flow on the test configuration: outputs, exactness, cycle models, FIFOs, folding, bad input."""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from golden.cycles import finn_cycles
from golden.node import CODEGEN_ATTRS, NodeView
from golden.streams import folded_in_shape, folded_out_shape
from hls.flow import FlowInputError, HlsRequest, run
from hls.folding import FoldingError, Unit, assign, balance, balance_units, folding_units, mac_units
from hls.lower import LoweringError, lower_qonnx

ROOT = Path(__file__).parents[1]


def finn():
    from hls.finn_env import boot

    boot(Path("/tmp") / "hwcsp-test-finn")


def load(p: Path) -> onnx.ModelProto:
    return onnx.load(p)


def test_outputs_are_complete(hw_dir):
    for f in (
        "model.hw.onnx",
        "model.hw_generic.onnx",
        "folding.json",
        "io_spec.json",
        "tensor_map.json",
        "config.json",
        "report/estimates.json",
        "report/report.md",
        "report/cycles_per_layer.png",
        "report/timings.json",
    ):
        assert (hw_dir / f).is_file(), f
    m = load(hw_dir / "model.hw.onnx")
    for n in m.graph.node:
        d = hw_dir / "hls" / n.name
        assert (d / "README.md").is_file()
        attr = {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
        assert attr["code_gen_dir_ipgen"] == f"hls/{n.name}".encode()
        if n.domain.endswith(".hls"):
            assert (d / f"top_{n.name}.cpp").is_file()
        else:
            assert any(p.suffix in (".v", ".sv") for p in d.iterdir())
    text = [
        p.read_text(errors="replace")
        for p in (hw_dir / "hls").rglob("*")
        if p.suffix in (".cpp", ".tcl", ".v", ".sv")
    ]
    assert text and not any("/tmp/" in t or str(ROOT) in t for t in text), (
        "absolute paths left in generated code"
    )
    folding = json.loads((hw_dir / "folding.json").read_text())
    assert "Defaults" in folding and any("PE" in v for k, v in folding.items() if k.startswith("MVAU"))


def test_every_node_is_an_integer_hw_layer(hw_dir):
    m = load(hw_dir / "model.hw.onnx")
    from golden.datatypes import graph_dtype_names

    dtypes = graph_dtype_names(m.graph)
    assert all(n.domain.startswith("finn.custom_op.fpgadataflow.") for n in m.graph.node)
    tensors = {t for n in m.graph.node for t in list(n.input) + list(n.output)}
    inits = {i.name for i in m.graph.initializer}
    for t in tensors - inits:
        assert "FLOAT" not in dtypes.get(t, "FLOAT32"), f"{t} is {dtypes.get(t)}"
    kinds = {n.op_type for n in m.graph.node}
    for op in (
        "MVAU_hls",
        "ConvolutionInputGenerator_rtl",
        "FMPadding_rtl",
        "Pool_hls",
        "StreamingConcat_hls",
        "StreamingSplit_hls",
        "DuplicateStreams_hls",
        "ElementwiseAdd_hls",
        "UpsampleNearestNeighbour_hls",
        "Thresholding_hls",
        "StreamingFIFO_rtl",
    ):
        assert op in kinds, op


def test_generic_and_specialised_graphs_differ_only_in_suffix_and_backend_attributes(hw_dir):
    finn()
    from finn.custom_op.fpgadataflow import custom_op as generic_ops

    spec, gen = load(hw_dir / "model.hw.onnx"), load(hw_dir / "model.hw_generic.onnx")
    assert [i.name for i in spec.graph.input] == [i.name for i in gen.graph.input]
    assert [o.name for o in spec.graph.output] == [o.name for o in gen.graph.output]
    si = {i.name: numpy_helper.to_array(i) for i in spec.graph.initializer}
    gi = {i.name: numpy_helper.to_array(i) for i in gen.graph.initializer}
    assert si.keys() == gi.keys() and all(np.array_equal(si[k], gi[k]) for k in si)
    assert len(spec.graph.node) == len(gen.graph.node)
    for s, g in zip(spec.graph.node, gen.graph.node, strict=True):
        base, backend = s.op_type.rsplit("_", 1)
        assert g.op_type == base and backend in ("hls", "rtl")
        assert (
            s.domain == f"finn.custom_op.fpgadataflow.{backend}" and g.domain == "finn.custom_op.fpgadataflow"
        )
        assert (s.name, list(s.input), list(s.output)) == (g.name, list(g.input), list(g.output))
        sa = {a.name: a for a in s.attribute}
        ga = {a.name: a for a in g.attribute}
        assert all(sa[k] == ga[k] for k in ga), s.name
        generic_attrs = set(generic_ops[base](g).get_nodeattr_types()) - set(CODEGEN_ATTRS)
        assert not (set(sa) - set(ga)) & generic_attrs, f"{s.name}: a generic attribute was dropped"


def test_finn_execution_of_generic_graph_equals_qonnx_on_new_seeds(hw_dir, exported, io_spec):
    finn()
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx

    q = ModelWrapper(str(exported / "model.qonnx.onnx"))
    g = ModelWrapper(str(hw_dir / "model.hw_generic.onnx"))
    rng = np.random.default_rng(1234)
    compared = 0
    for _ in range(2):
        x = rng.integers(0, 256, io_spec["input"]["shape"])
        ref = execute_onnx(q, {"input": (x.transpose(0, 3, 1, 2) / 256).astype(np.float32)})
        got = execute_onnx(g, {"input": x.astype(np.float32)})
        for o in io_spec["outputs"]:
            acc = ref[o["qonnx_name"]] / o["scale"] - np.asarray(o["bias"]).reshape(1, -1, 1, 1)
            assert np.array_equal(acc, got[o["name"]].transpose(0, 3, 1, 2))
            compared += acc.size
    assert compared > 5000
    est = json.loads((hw_dir / "report" / "estimates.json").read_text())
    assert est["verification"]["mismatches"] == 0 and est["verification"]["integers_compared"] > 10000
    assert "**0 mismatches**" in (hw_dir / "report" / "report.md").read_text()


def test_cycle_model_equals_finn_for_every_node(hw_dir):
    finn()
    from qonnx.custom_op.registry import getCustomOp

    m = load(hw_dir / "model.hw.onnx")
    checked = 0
    for n in m.graph.node:
        ours = finn_cycles(NodeView.from_onnx(n, m.graph))
        theirs = int(getCustomOp(n).get_exp_cycles())
        if n.op_type.startswith(("StreamingDataWidthConverter", "StreamingFIFO")):
            assert theirs == 0  # FINN has no model for these; ours counts beats
            v = NodeView.from_onnx(n, m.graph)
            beats = max(int(np.prod(folded_in_shape(v)[:-1])), int(np.prod(folded_out_shape(v)[:-1])))
            assert ours == beats
        else:
            assert ours == theirs, n.name
            checked += 1
    assert checked > 40


def test_reconvergent_paths_get_their_analytic_fifo(hw_dir):
    m = load(hw_dir / "model.hw.onnx")
    est = json.loads((hw_dir / "report" / "estimates.json").read_text())
    fifos = est["folding"]["fifos"]
    nodes = {n.name: n for n in m.graph.node}
    producer = {o: n for n in m.graph.node for o in n.output}
    joins = [n for n in m.graph.node if n.op_type.startswith(("StreamingConcat", "ElementwiseAdd"))]
    assert len(joins) > 5

    def source(t):  # producer of t, looking through width converters and FIFOs
        n = producer[t]
        while n.op_type.startswith(("StreamingDataWidthConverter", "StreamingFIFO", "DuplicateStreams")):
            n = producer[n.input[0]]
        return n

    for j in joins:
        if not any(f["join"] == j.name for f in fifos):
            # balanced branches need no FIFO: only the split-filter concat (two 1x1 convs of one input)
            a, b = (source(i) for i in j.input)
            assert a.op_type == b.op_type == "MVAU_hls" and source(a.input[0]) is source(b.input[0]), j.name
    for f in fifos:
        j = nodes[f["join"]]
        p = producer[j.input[f["input_index"]]]
        assert p.op_type == "StreamingFIFO_rtl"
        depth = {a.name: onnx.helper.get_attribute_value(a) for a in p.attribute}["depth"]
        assert depth >= f["depth"]
    # hand-checked case: a padded 3x3 dense layer beside its bypass on a W-wide map needs the
    # window's (K-1)W + K pixels minus the one-row, one-column padding shift: W + 1 pixels of lead
    dense = [f for f in fifos if f["join"].startswith("StreamingConcat") and f["lookahead_pixels"] > 0]
    shapes = {o.name: o for o in m.graph.value_info}
    first = dense[0]
    w = shapes[nodes[first["join"]].output[0]].type.tensor_type.shape.dim[2].dim_value
    assert first["lookahead_pixels"] == w + 1


def test_balancer_is_optimal_against_brute_force(hw_dir):
    m = load(hw_dir / "model.hw.onnx")
    mvaus = [u for u in folding_units(m.graph) if u.macs][:3]
    for u in mvaus:  # keep the brute force small
        u.choices = [c for c in u.choices if c.cost <= 24]
    for budget in (6, 12, 20, 40):
        best = min(
            (
                max(c.cycles for c in combo)
                for combo in itertools.product(*(u.choices for u in mvaus))
                if sum(c.cost for c in combo) <= budget
            ),
            default=None,
        )
        r = balance_units(mvaus, mac_budget=budget)
        assert r.target == best and r.mac_units <= budget


def test_balancer_respects_constraints_and_beats_finn(hw_dir):
    from qonnx.core.modelwrapper import ModelWrapper

    from hls.baseline import setfolding_sweep
    from hls.steps import insert_dwc

    finn()
    m = load(hw_dir / "model.hw.onnx")
    units = folding_units(m.graph)
    for budget in (64, 512):
        r = balance(m.graph, mac_budget=budget)
        assert r.mac_units <= budget
        cheaper = [c for c in sorted({c.cycles for u in units for c in u.choices}) if r.floor <= c < r.target]
        if cheaper:  # the next smaller bottleneck does not fit the budget
            assert assign(units, cheaper[-1])[1] > budget
        for name, attrs in r.attrs.items():
            v = NodeView.from_onnx(next(n for n in m.graph.node if n.name == name), m.graph)
            if v.op_type == "MVAU":
                assert int(v.attrs["MH"]) % attrs["PE"] == 0 and int(v.attrs["MW"]) % attrs["SIMD"] == 0
        wm = ModelWrapper(m)
        from hls.folding import apply_folding, bottleneck

        apply_folding(wm, r.attrs)
        ours = bottleneck(insert_dwc(wm).graph)[0]
        base = setfolding_sweep(ModelWrapper(load(hw_dir / "model.hw.onnx")), budget, n_targets=20)
        assert base is not None and base.sweep >= 20
        assert ours <= base.bottleneck_cycles
        assert mac_units(insert_dwc(wm).graph) <= budget


def test_flow_is_deterministic(hw_dir, exported, tmp_path):
    """A second build gives the same bytes; FINN's SetFolding sweep (report only; the shared build
    skips it) changes the report files and nothing else -- not the graph's tensor names."""
    copy = tmp_path / exported.name
    copy.mkdir()
    for f in ("config.json", "export.json", "model.qonnx.onnx"):
        shutil.copyfile(exported / f, copy / f)
    out = run(HlsRequest(copy, baseline=True), log=lambda *a: None)
    files = sorted(p.relative_to(hw_dir) for p in hw_dir.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
    differ = [f for f in files if (hw_dir / f).read_bytes() != (out / f).read_bytes()]
    assert differ == [Path(f"report/{f}") for f in ("estimates.json", "report.md", "timings.json")]
    est = json.loads((out / "report" / "estimates.json").read_text())
    assert est["folding"]["baseline"] is not None


@pytest.fixture
def export_copy(exported, tmp_path):
    d = tmp_path / exported.name
    d.mkdir()
    for f in ("config.json", "export.json", "model.qonnx.onnx"):
        shutil.copyfile(exported / f, d / f)
    return d


def test_truncated_qonnx_is_refused(export_copy):
    p = export_copy / "model.qonnx.onnx"
    p.write_bytes(p.read_bytes()[:2000])
    with pytest.raises(FlowInputError, match="not a readable ONNX model"):
        run(HlsRequest(export_copy, codegen=False, baseline=False), log=lambda *a: None)
    assert not (export_copy / "hls-m2048").exists()


def test_onnx_without_quantization_is_refused(export_copy):
    m = load(export_copy / "model.qonnx.onnx")
    for n in m.graph.node:
        if n.op_type == "Quant":
            n.op_type, n.domain = "Identity", ""
            del n.input[1:]
            del n.attribute[:]
    onnx.save(m, export_copy / "model.qonnx.onnx")
    with pytest.raises(FlowInputError, match="not a QONNX model"):
        run(HlsRequest(export_copy, codegen=False, baseline=False), log=lambda *a: None)


def _brevitas_qonnx(layer) -> onnx.ModelProto:
    import io

    import brevitas.nn as qnn
    import torch
    from brevitas.export import export_qonnx

    from hwcsp.quant import ActQuant, BiasQuant, InputQuant, WeightQuant

    net = torch.nn.Sequential(
        qnn.QuantIdentity(act_quant=InputQuant, return_quant_tensor=True),
        qnn.QuantConv2d(
            3,
            8,
            3,
            padding=1,
            weight_quant=WeightQuant,
            weight_bit_width=8,
            bias_quant=BiasQuant,
            return_quant_tensor=True,
        ),
        qnn.QuantReLU(act_quant=ActQuant, bit_width=4, return_quant_tensor=True),
        layer,
    ).eval()
    buf = io.BytesIO()
    export_qonnx(net, torch.rand(1, 3, 8, 8), buf, input_names=["input"], dynamo=False)
    from quant.export import tidy

    return tidy(onnx.load_from_string(buf.getvalue()))


def test_depthwise_convolution_in_the_graph_is_refused():
    import brevitas.nn as qnn

    from hwcsp.quant import BiasQuant, WeightQuant

    dw = qnn.QuantConv2d(
        8,
        8,
        3,
        padding=1,
        groups=8,
        weight_quant=WeightQuant,
        weight_bit_width=4,
        bias_quant=BiasQuant,
        return_quant_tensor=False,
    )
    with pytest.raises(LoweringError, match="depthwise"):
        lower_qonnx(_brevitas_qonnx(dw))


def test_sigmoid_in_the_graph_is_refused():
    import torch

    class Sig(torch.nn.Module):
        def forward(self, x):
            return torch.sigmoid(x.value)

    with pytest.raises(LoweringError, match="Sigmoid"):
        lower_qonnx(_brevitas_qonnx(Sig()))


def test_impossible_budgets_are_refused(export_copy):
    with pytest.raises(FlowInputError, match="below the minimum"):
        run(HlsRequest(export_copy, macs=3, codegen=False, baseline=False), log=lambda *a: None)
    with pytest.raises(FlowInputError, match="below the floor"):
        run(HlsRequest(export_copy, target_fps=1e9, codegen=False, baseline=False), log=lambda *a: None)
    assert not list(export_copy.glob("hls-*")) and not list(export_copy.glob(".hls-*"))


def test_temporaries_of_a_killed_run_are_removed_by_the_next_run(export_copy):
    """A run killed half-way leaves its hidden directories behind; the next run of the same
    variant removes them (their process is gone), even when it fails itself."""
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = [export_copy / f".hls-m3.tmp-{dead.pid}-x", export_copy / f".finn-work-hls-m3.tmp-{dead.pid}-y"]
    for d in stale:
        (d / "partial").mkdir(parents=True)
    with pytest.raises(FlowInputError, match="below the minimum"):
        run(HlsRequest(export_copy, macs=3, codegen=False, baseline=False), log=lambda *a: None)
    assert not [p for p in export_copy.iterdir() if p.name.startswith(".")]


def cli(*args, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hwcsp.cli", *args], cwd=cwd, capture_output=True, text=True)


def test_cli_refuses_unknown_model_and_stale_export(exported, tmp_path):
    r = cli("hls", "cspdensenet-ref-pr", cwd=tmp_path)
    assert r.returncode == 2 and "unknown model" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    root = tmp_path / "b"
    d = root / exported.name
    shutil.copytree(exported, d, ignore=shutil.ignore_patterns("hls-*"))
    cfg = json.loads((d / "config.json").read_text())
    cfg["seed"] = 7  # another configuration's export sits in this directory
    (d / "config.json").write_text(json.dumps(cfg))
    r = cli(
        "hls",
        "cspdensenetb-ref-prn",
        "--size",
        "64",
        "--width",
        "0.25",
        "--build-root",
        str(root),
        cwd=tmp_path,
    )
    assert r.returncode == 2 and "another configuration" in r.stderr and "seed" in r.stderr
    assert not list(d.glob("hls-*"))


@pytest.mark.slow
def test_main_job_at_full_size(tmp_path):
    """`make hls MODEL=cspdensenet-ref-prn` (320x320, width 1, default budget)."""
    r = cli("hls", "cspdensenet-ref-prn", "--build-root", str(tmp_path), cwd=ROOT)
    assert r.returncode == 0, r.stderr[-2000:]
    out = tmp_path / "cspdensenet-ref-prn-s320-w1-w4a4" / "hls-m2048"
    est = json.loads((out / "report" / "estimates.json").read_text())
    assert est["verification"]["mismatches"] == 0
    assert est["summary"]["mac_units"] <= 2048
    assert est["folding"]["baseline"]["bottleneck_cycles"] >= est["summary"]["bottleneck_cycles"]


def test_folding_error_names_the_problem():
    from hls.folding import Choice

    units = [Unit([f"m{i}"], [Choice({f"m{i}": {"PE": 1, "SIMD": 1}}, 10, 1, 2)], macs=5) for i in range(2)]
    with pytest.raises(FoldingError, match="below the minimum of 2"):
        balance_units(units, mac_budget=1)
    with pytest.raises(FoldingError, match="below the floor of 10"):
        balance_units(units, target_cycles=9)


def test_flow_steps_are_named_and_run_in_order():
    from hls.flow import STEPS, FlowContext, Step, default_steps, resolve_steps, run_steps

    req = HlsRequest(Path("b"))
    assert default_steps(req) == list(STEPS) and default_steps(req)[-2:] == ["codegen", "report"]
    assert "codegen" not in default_steps(HlsRequest(Path("b"), codegen=False))
    assert resolve_steps(["fold", "split"]) == [STEPS["fold"], STEPS["split"]]
    with pytest.raises(ValueError, match="unknown hls step"):
        resolve_steps(["no-such-step"])
    lines = []
    ctx = FlowContext(work=Path("w"))
    todo = [Step("a", "add one", lambda m, c: m + 1), Step("b", "double", lambda m, c: m * 2)]
    assert run_steps(1, ctx, todo, lines.append) == 4
    assert lines[0] == "hls [1/2] add one ..." and lines[2] == "hls [2/2] double ..." and len(lines) == 4
    assert list(ctx.timings) == ["add one", "double"]


def test_sized_fifo_depths_never_go_below_the_liveness_bound():
    from hls.fifo import FifoDecision, merged_fifos

    live = [FifoDecision("cat", 1, "dup", 3, 10), FifoDecision("add", 0, "dup", 1, 6)]
    merged = merged_fifos(live, {("cat", 1): 4, ("add", 0): 32, ("cat2", 0): 8})
    got = {key: depth for key, (depth, _) in merged.items()}
    assert got == {("cat", 1): 10, ("add", 0): 32, ("cat2", 0): 8}
