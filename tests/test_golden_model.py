"""The golden model as a whole: independence of the checker, coverage of the flow's op types, every
node of the real graph as its own small graph against FINN, accumulator safety and the float fast
path, and one clear GoldenError for each kind of bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from golden.accum import FLOAT32_EXACT, accumulator_table, mvau_acc_range
from golden.datatypes import parse_dtype
from golden.errors import GoldenError
from golden.execute import Program, execute
from golden.node import NodeView
from golden.ops import OPS, run_node
from golden.streams import folded_in_shape, folded_out_shape

try:
    from golden_helpers.finn_env import Finn, finn, random_values
except ImportError:  # tests/ imported as a package
    from tests.golden_helpers.finn_env import Finn, finn, random_values

__all__ = ["finn"]

REPO = Path(__file__).resolve().parents[1]
FORBIDDEN = ("torch", "brevitas", "qonnx", "finn", "hwcsp", "quant", "hls", "onnxruntime")


def quiet(*_a, **_k) -> None:
    pass


# ---------------------------------------------------------------------------------------------
# independence


def test_golden_imports_only_numpy_and_onnx(hw_dir: Path, tmp_path: Path) -> None:
    """Import every golden module and run the model and the vector writer in a fresh interpreter:
    nothing of torch, brevitas, qonnx, finn (or the project's own packages) may get imported."""
    modules = sorted(f"golden.{p.stem}" for p in (REPO / "golden").glob("*.py") if p.stem != "__init__")
    assert {"golden.execute", "golden.vectors", "golden.software", "golden.accum"} <= set(modules)
    code = f"""
import sys, importlib
import golden
for m in {modules!r}:
    importlib.import_module(m)
from pathlib import Path
from golden.vectors import write_vectors
write_vectors(Path({str(hw_dir)!r}), Path({str(tmp_path / "v")!r}), n=1)
bad = sorted(m for m in sys.modules if m.split(".")[0] in {FORBIDDEN!r})
print("FORBIDDEN", bad)
sys.exit(1 if bad else 0)
"""
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "FORBIDDEN []" in r.stdout


# ---------------------------------------------------------------------------------------------
# coverage of the flow's graphs


@pytest.fixture(scope="module")
def zoo_graphs(hw_dir: Path, tmp_path_factory) -> dict[str, Path]:
    """model.hw.onnx of the test configuration and of cspdensenet-ref-prn / darknet-ref-prn (small)."""
    from hls.flow import HlsRequest, run
    from hwcsp.buildcfg import BuildConfig
    from quant.export import export

    graphs = {"test config": hw_dir / "model.hw.onnx"}
    root = tmp_path_factory.mktemp("zoo")
    for name in ("cspdensenet-ref-prn", "darknet-ref-prn"):
        cfg = BuildConfig(name, 32, 0.25)
        export(cfg, cfg.path(root), log=quiet)
        out = run(HlsRequest(cfg.path(root), baseline=False, codegen=False, verify_frames=0), log=quiet)
        graphs[name] = out / "model.hw.onnx"
    return graphs


def test_every_op_type_of_the_flow_is_covered(
    zoo_graphs: dict[str, Path], flow_op_types: frozenset[str]
) -> None:
    """Every HW op type in the real graphs has golden semantics, a stream model and runs."""
    seen: dict[str, set[str]] = {}
    for label, path in zoo_graphs.items():
        model = onnx.load(str(path))
        types = {n.op_type for n in model.graph.node}
        seen[label] = types
        for node in model.graph.node:
            view = NodeView.from_onnx(node, model.graph)
            assert view.op_type in OPS, f"{label}: {node.op_type} has no golden semantics"
            for i in range(len(view.inputs)):
                if i not in view.inits:
                    folded_in_shape(view, i)
            for i in range(len(view.outputs)):
                folded_out_shape(view, i)
        shape = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
        x = np.random.default_rng(0).integers(0, 256, shape)
        out = execute(model, {model.graph.input[0].name: x})
        assert set(out) == {o.name for o in model.graph.output}
    union = set().union(*seen.values())
    print("op types:", sorted(union))
    expected = flow_op_types
    assert expected <= union, f"the flow no longer produces {sorted(expected - union)}: update this test"


def test_unknown_node_type_is_an_error_never_a_pass_through(hw_dir: Path) -> None:
    model = onnx.load(str(hw_dir / "model.hw.onnx"))
    pool = next(n for n in model.graph.node if n.op_type == "Pool_hls")
    pool.op_type = "VVAU_hls"
    with pytest.raises(GoldenError, match=r"Pool_hls_0.*VVAU_hls.*no golden semantics"):
        Program(model)
    with pytest.raises(GoldenError, match="no golden semantics"):
        run_node(NodeView.make("StreamingMaxPool_hls", {}), [np.zeros((1, 2, 2, 1))])


# ---------------------------------------------------------------------------------------------
# every node of the real graph as a one-node graph, full-range random inputs


def _one_node_model(finn: Finn, wrapper, node: onnx.NodeProto):
    inits = {i.name: i for i in wrapper.graph.initializer}
    streamed = [t for t in node.input if t not in inits]

    def vi(t: str) -> onnx.ValueInfoProto:
        return helper.make_tensor_value_info(t, TensorProto.FLOAT, wrapper.get_tensor_shape(t))

    graph = helper.make_graph(
        [node],
        "one",
        [vi(t) for t in streamed],
        [vi(t) for t in node.output],
        initializer=[inits[t] for t in node.input if t in inits],
    )
    model = finn.ModelWrapper(finn.qonnx_make_model(graph, producer_name="golden-tests"))
    for t in list(node.input) + list(node.output):
        model.set_tensor_datatype(t, wrapper.get_tensor_datatype(t))
    return model, streamed


def test_every_real_node_alone_matches_finn(finn: Finn, hw_dir: Path) -> None:
    """Each node of the test configuration, as its own graph, on 2 frames of random values over its
    input datatypes' whole range: golden (specialised node) == FINN (generic node), 0 mismatches."""
    generic = finn.ModelWrapper(str(hw_dir / "model.hw_generic.onnx"))
    hw = onnx.load(str(hw_dir / "model.hw.onnx"))
    rng = np.random.default_rng(77)
    nodes = integers = 0
    for gnode, hnode in zip(generic.graph.node, hw.graph.node, strict=True):
        assert (gnode.name, list(gnode.input)) == (hnode.name, list(hnode.input))
        model, streamed = _one_node_model(finn, generic, gnode)
        view = NodeView.from_onnx(hnode, hw.graph)
        for _ in range(2):
            feed = {
                t: random_values(rng, generic.get_tensor_datatype(t).name, tuple(generic.get_tensor_shape(t)))
                for t in streamed
            }
            ref = finn.execute_onnx(model, {k: v.astype(np.float32) for k, v in feed.items()})
            gold = run_node(view, [feed[t] for t in streamed])
            for t, g in zip(hnode.output, gold, strict=True):
                r = ref[t]
                assert g.size == r.size
                bad = int(np.count_nonzero(g.reshape(r.shape) != r))
                assert bad == 0, f"{hnode.name} ({hnode.op_type}) output {t}: {bad} of {r.size} differ"
                integers += r.size
        nodes += 1
    print(f"{nodes} nodes x 2 frames, {integers} integers, 0 mismatches")
    assert nodes == len(hw.graph.node) > 150


# ---------------------------------------------------------------------------------------------
# accumulators


def test_accumulator_table_of_the_real_graph(finn: Finn, hw_dir: Path) -> None:
    """Ranges equal qonnx's calculate_matvec_accumulator_range on the actual weights; all fit."""
    from qonnx.util.basic import calculate_matvec_accumulator_range

    wrapper = finn.ModelWrapper(str(hw_dir / "model.hw.onnx"))
    rows = accumulator_table(hw_dir / "model.hw.onnx")
    mvaus = [n for n in wrapper.graph.node if n.op_type.startswith("MVAU")]
    assert [r.node for r in rows] == [n.name for n in mvaus] and len(rows) > 20
    for row, node in zip(rows, mvaus, strict=True):
        w = wrapper.get_initializer(node.input[1])
        lo, hi = calculate_matvec_accumulator_range(w, finn.DataType[row.input_dtype])
        assert (row.acc_min, row.acc_max) == (lo, hi), row.node
        assert row.fits and row.arithmetic == "float32"
        assert parse_dtype(row.needed).bits <= parse_dtype(row.acc_dtype).bits


def _set_attr(node: onnx.NodeProto, name: str, value: str) -> None:
    for a in node.attribute:
        if a.name == name:
            a.s = value.encode()
            return
    raise AssertionError(name)


def test_undersized_accumulator_is_refused(hw_dir: Path) -> None:
    model = onnx.load(str(hw_dir / "model.hw.onnx"))
    node = next(n for n in model.graph.node if n.op_type.startswith("MVAU"))
    _set_attr(node, "accDataType", "INT12")
    with pytest.raises(GoldenError, match=rf"accumulator overflow.*{node.name}.*accDataType=INT12"):
        Program(model)
    Program(model, check_ranges=False)  # the referee can still be asked to run it
    head = onnx.load(str(hw_dir / "model.hw.onnx"))
    last = [n for n in head.graph.node if n.op_type.startswith("MVAU")][-1]
    _set_attr(last, "outputDataType", "INT12")  # noActivation: the raw sum leaves the node
    with pytest.raises(GoldenError, match=rf"{last.name}.*outputDataType=INT12"):
        Program(head)


def _mvau(w: np.ndarray, idt: str, wdt: str, vectors: int, acc: str = "INT64") -> NodeView:
    mw, mh = w.shape
    attrs = dict(MW=mw, MH=mh, SIMD=1, PE=1, inputDataType=idt, weightDataType=wdt)
    attrs |= dict(outputDataType=acc, accDataType=acc, noActivation=1, numInputVectors=[vectors])
    return NodeView.make("MVAU", attrs, inits={1: w})


@pytest.mark.parametrize(
    ("w1", "x1", "arith"),
    [(2, 4095, "float32"), (3, 4094, "float64")],
    ids=["2^24-1:float32", "over 2^24:float64"],
)
def test_float_fast_path_only_where_proven_exact(w1: int, x1: int, arith: str) -> None:
    """abs_bound = 4095*4095 + w1*4095: 2^24 - 1 takes float32; one step more takes float64, where
    the odd sum 16781307 (not a float32) comes out exact."""
    w = np.array([[4095], [w1]])
    node = _mvau(w, "UINT12", "INT13", 3)
    row = mvau_acc_range(node)
    assert row.abs_bound == 4095 * 4095 + w1 * 4095 and row.arithmetic == arith
    assert (row.abs_bound < FLOAT32_EXACT) == (arith == "float32")
    x = np.array([[4095, x1], [1, 0], [4095, 4095]])
    (y,) = run_node(node, [x])
    exact = [[int(a) * 4095 + int(b) * w1] for a, b in x.tolist()]
    assert y.tolist() == exact
    if arith == "float64":
        assert float(np.float32(exact[0][0])) != exact[0][0]  # float32 would have been wrong


def test_int64_path_beyond_float64() -> None:
    """|partial sums| up to 2^56: neither float is exact, golden uses int64."""
    rng = np.random.default_rng(1)
    w = rng.integers(-(2**31), 2**31, (4, 3))
    x = rng.integers(-(2**23), 2**23, (5, 4))
    node = _mvau(w, "INT24", "INT32", 5)
    assert mvau_acc_range(node).arithmetic == "int64"
    (y,) = run_node(node, [x])
    exact = [
        [sum(int(a) * int(b) for a, b in zip(row, col, strict=True)) for col in w.T.tolist()] for row in x
    ]
    assert y.tolist() == exact


def test_mvau_input_outside_its_datatype_is_refused() -> None:
    node = _mvau(np.ones((2, 1), dtype=np.int64), "UINT4", "INT2", 1)
    with pytest.raises(GoldenError, match="outside inputDataType UINT4"):
        run_node(node, [np.array([[16, 0]])])


# ---------------------------------------------------------------------------------------------
# bad input: one GoldenError each


def test_bad_model_files(hw_dir: Path, tmp_path: Path) -> None:
    raw = (hw_dir / "model.hw.onnx").read_bytes()
    (tmp_path / "truncated.onnx").write_bytes(raw[: len(raw) // 2])
    (tmp_path / "text.onnx").write_text("this is not an ONNX model\n")
    (tmp_path / "empty.onnx").write_bytes(b"")
    for name in ("truncated.onnx", "text.onnx", "empty.onnx"):
        with pytest.raises(GoldenError, match=r"not (a readable ONNX model|an ONNX model of a dataflow)"):
            Program(tmp_path / name)
    with pytest.raises(GoldenError, match="no such ONNX file"):
        Program(tmp_path / "missing.onnx")


def test_float_layer_inside_the_partition(hw_dir: Path) -> None:
    model = onnx.load(str(hw_dir / "model.hw.onnx"))
    first = model.graph.node[0]
    relu = helper.make_node("Relu", [first.output[0]], ["relu_out"], name="float_relu")
    for n in model.graph.node[1:]:
        n.input[:] = ["relu_out" if t == first.output[0] else t for t in n.input]
    model.graph.node.insert(1, relu)
    with pytest.raises(GoldenError, match=r"float_relu \(Relu.*float layer inside the partition"):
        Program(model)


def test_bad_graph_inputs(hw_dir: Path, io_spec: dict) -> None:
    prog = Program(hw_dir / "model.hw.onnx")
    name, shape = io_spec["input"]["name"], io_spec["input"]["shape"]
    good = np.zeros(shape, dtype=np.int64)
    with pytest.raises(GoldenError, match=r"shape \[1, 64, 63, 3\], expected \[1, 64, 64, 3\]"):
        prog.run({name: good[:, :, :63]})
    with pytest.raises(GoldenError, match=r"outside UINT8"):
        prog.run({name: good + 256})
    with pytest.raises(GoldenError, match=r"outside UINT8"):
        prog.run({name: good - 1})
    with pytest.raises(GoldenError, match="non-integer"):
        prog.run({name: good + 0.5})
    with pytest.raises(GoldenError, match="was not given"):
        prog.run({"x": good})


def test_vectors_cli_exits_non_zero_on_bad_input(hw_dir: Path, tmp_path: Path, capsys) -> None:
    from golden.vectors import main

    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "model.hw.onnx").write_bytes((hw_dir / "model.hw.onnx").read_bytes()[:1000])
    (bad / "io_spec.json").write_text((hw_dir / "io_spec.json").read_text())
    assert main([str(bad), "--out", str(tmp_path / "v")]) == 2
    assert "not a readable ONNX model" in capsys.readouterr().err
    assert main([str(tmp_path / "nowhere")]) == 2
    assert "no model.hw.onnx" in capsys.readouterr().err
    assert main([str(hw_dir), "--out", str(tmp_path / "v"), "--n", "0"]) == 2
    assert "at least 1" in capsys.readouterr().err
    spec = json.loads((hw_dir / "io_spec.json").read_text())
    spec["input"]["shape"] = [1, 32, 32, 3]
    (bad / "model.hw.onnx").write_bytes((hw_dir / "model.hw.onnx").read_bytes())
    (bad / "io_spec.json").write_text(json.dumps(spec))
    assert main([str(bad), "--out", str(tmp_path / "v")]) == 2
    assert "io_spec.json does not match model.hw.onnx" in capsys.readouterr().err
    assert not (tmp_path / "v").exists() and not list(tmp_path.glob(".v.*"))
