"""golden.vectors on the test configuration: manifest, tensors, beats, memories (against FINN's own
hardware-compatible tensors), determinism, multi-frame layout, atomic writes."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import onnx
import pytest

from golden.datatypes import decode, parse_dtype
from golden.errors import GoldenError
from golden.execute import execute, topo_order
from golden.node import NodeView
from golden.packing import read_hex, unpack
from golden.streams import from_beats
from golden.vectors import write_vectors

try:
    from golden_helpers.finn_env import Finn, finn
except ImportError:  # tests/ imported as a package
    from tests.golden_helpers.finn_env import Finn, finn

__all__ = ["finn"]

FRAMES, SEED = 3, 5


@pytest.fixture(scope="module")
def vectors(hw_dir: Path, tmp_path_factory) -> Path:
    return write_vectors(hw_dir, tmp_path_factory.mktemp("vec") / "vectors", n=FRAMES, seed=SEED)


@pytest.fixture(scope="module")
def manifest(vectors: Path) -> dict:
    return json.loads((vectors / "manifest.json").read_text())


def _tree(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def test_manifest_describes_the_graph(hw_dir: Path, vectors: Path, manifest: dict) -> None:
    raw = (hw_dir / "model.hw.onnx").read_bytes()
    model = onnx.load(str(hw_dir / "model.hw.onnx"))
    assert manifest["graph_sha256"] == hashlib.sha256(raw).hexdigest()
    assert manifest["node_order"] == [n.name for n in topo_order(model.graph)]
    assert (manifest["frames"], manifest["seed"]) == (FRAMES, SEED)
    assert (vectors / "io_spec.json").read_bytes() == (hw_dir / "io_spec.json").read_bytes()
    acc = manifest["accumulators"]
    assert len(acc) == sum(n.op_type.startswith("MVAU") for n in model.graph.node)
    assert all(r["fits"] for r in acc)
    for node in manifest["nodes"]:
        assert (vectors / node["dir"]).is_dir()
        assert node["folding"] and node["exp_cycles_per_frame"] > 0
        for port in node["inputs"] + node["outputs"]:
            if port.get("initializer"):
                continue
            assert port["beats"] == FRAMES * port["beats_per_frame"]
            assert port["padded_width"] % 8 == 0 and port["padded_width"] >= port["stream_width"]
            assert port["stream_width"] == port["elems_per_beat"] * port["elem_bits"]
        if node["generic_op_type"] == "MVAU":
            assert "weights" in node["memories"]
            assert ("thresholds" in node["memories"]) != bool(node["attributes"]["noActivation"])
        if node["generic_op_type"] == "Thresholding":
            assert set(node["memories"]) == {"thresholds"}


def test_tensors_hold_all_frames_back_to_back(hw_dir: Path, vectors: Path, manifest: dict) -> None:
    """Each tensor file = golden's execute of the same N frames; frame k = a single-frame run."""
    inp = manifest["graph_inputs"][0]
    x = np.load(vectors / inp["npy"])
    assert x.shape[0] == FRAMES and x.dtype == np.uint8
    expect = np.random.default_rng(SEED).integers(0, 256, x.shape)
    assert np.array_equal(x, expect)
    gold = execute(hw_dir / "model.hw.onnx", {inp["tensor"]: x}, return_all=True)
    one = execute(hw_dir / "model.hw.onnx", {inp["tensor"]: x[1:2]}, return_all=True)
    assert set(manifest["tensors"]) == set(gold)
    for t, info in manifest["tensors"].items():
        v = np.load(vectors / info["npy"])
        assert v.dtype == np.dtype(info["npy_dtype"]) and list(v.shape) == info["shape"]
        assert np.array_equal(v, gold[t]), t
        n = info["frame_shape"][0]
        assert np.array_equal(v[n : 2 * n], one[t]), t
    spec = json.loads((hw_dir / "io_spec.json").read_text())
    for o in manifest["graph_outputs"]:
        heads = np.load(vectors / o["float_nchw"])
        meta = next(s for s in spec["outputs"] if s["name"] == o["tensor"])
        ints = gold[o["tensor"]].transpose(0, 3, 1, 2) + np.asarray(meta["bias"]).reshape(1, -1, 1, 1)
        assert heads.dtype == np.float32 and np.array_equal(heads, (ints * meta["scale"]).astype(np.float32))


def test_hex_streams_decode_to_the_tensors(hw_dir: Path, vectors: Path, manifest: dict) -> None:
    """Every stream file: one padded-width beat per line, unpacks (element 0 in the LSBs, two's
    complement) and un-permutes (golden.streams.from_beats) to the tensor, frame by frame."""
    model = onnx.load(str(hw_dir / "model.hw.onnx"))
    views = {n.name: NodeView.from_onnx(n, model.graph) for n in model.graph.node}
    ports = 0
    for node in manifest["nodes"]:
        view = views[node["name"]]
        for output, key in ((False, "inputs"), (True, "outputs")):
            for port in node[key]:
                if port.get("initializer"):
                    continue
                lines = (vectors / port["hex"]).read_text().splitlines()
                assert len(lines) == port["beats"]
                assert {len(line) for line in lines} == {port["padded_width"] // 4}
                beats = read_hex(vectors / port["hex"])
                assert max(beats) < 1 << port["stream_width"]  # zero padding, never sign-extended
                dt = parse_dtype(port["dtype"])
                epb = port["elems_per_beat"]
                codes = unpack(beats, dt.bits, epb, False, (len(beats), epb))
                values = decode(codes, dt)
                tensor = np.load(vectors / port["npy"])
                per = port["beats_per_frame"]
                for f in range(FRAMES):
                    logical = from_beats(view, values[f * per : (f + 1) * per], port["index"], output=output)
                    n = port["frame_shape"][0]
                    assert np.array_equal(logical.ravel(), tensor[f * n : (f + 1) * n].ravel()), port["hex"]
                ports += 1
    assert ports > 300


def _words(words: list[int], m: dict) -> np.ndarray:
    """A memory file's words as (depth, lanes) element values."""
    codes = unpack(words, m["elem_bits"], m["lanes"], False, (m["depth"], m["lanes"]))
    return decode(codes, parse_dtype(m["dtype"]))


def test_memories_match_finn_hw_compatible_tensors(finn: Finn, hw_dir: Path, vectors: Path, manifest) -> None:
    """weights.hex / thresholds.hex of every MVAU and Thresholding node of the real graph hold FINN's
    get_hw_compatible_weight_tensor / get_hw_compatible_threshold_tensor of that node."""
    wrapper = finn.ModelWrapper(str(hw_dir / "model.hw.onnx"))
    nodes = {n.name: n for n in wrapper.graph.node}
    checked = 0
    for entry in manifest["nodes"]:
        mems = entry["memories"]
        if not mems:
            continue
        node = nodes[entry["name"]]
        op = finn.getCustomOp(node)
        if "weights" in mems:
            m = mems["weights"]
            w = wrapper.get_initializer(node.input[1])
            hw = op.get_hw_compatible_weight_tensor(w)  # (1, PE, WMEM, SIMD), SIMD reversed
            pe, simd = op.get_nodeattr("PE"), op.get_nodeattr("SIMD")
            words = read_hex(vectors / m["file"])
            assert len(words) == m["depth"] == op.calc_wmem() and m["word_bits"] == pe * simd * m["elem_bits"]
            got = _words(words, m)
            expect = np.flip(hw[0], axis=-1).transpose(1, 0, 2).reshape(m["depth"], pe * simd)
            assert np.array_equal(got, expect), entry["name"]
            checked += 1
        if "thresholds" in mems:
            m = mems["thresholds"]
            t = wrapper.get_initializer(node.input[2 if entry["generic_op_type"] == "MVAU" else 1])
            hw = op.get_hw_compatible_threshold_tensor(t)  # (1, PE, TMEM, steps)
            pe, steps = hw.shape[1], hw.shape[3]
            words = read_hex(vectors / m["file"])
            assert len(words) == m["depth"] == hw.shape[2] and m["lanes"] == pe * steps
            got = _words(words, m)
            expect = hw[0].transpose(1, 0, 2).reshape(m["depth"], pe * steps)
            assert np.array_equal(got, expect), entry["name"]
            checked += 1
    assert checked > 30


def test_same_seed_gives_a_byte_identical_directory(hw_dir: Path, vectors: Path, tmp_path: Path) -> None:
    again = write_vectors(hw_dir, tmp_path / "again", n=FRAMES, seed=SEED)
    a, b = _tree(vectors), _tree(again)
    assert list(a) == list(b)
    assert [k for k in a if a[k] != b[k]] == []
    other = write_vectors(hw_dir, tmp_path / "other", n=FRAMES, seed=SEED + 1)
    assert _tree(other)["tensors/input.npy"] != a["tensors/input.npy"]


def test_given_inputs_and_atomic_replacement(hw_dir: Path, io_spec: dict, tmp_path: Path) -> None:
    from golden.software import images_to_input, load_io_spec
    from quant.data import calibration_images

    out = tmp_path / "vectors"
    out.mkdir()
    (out / "stale.txt").write_text("from an older run")
    x = images_to_input(calibration_images(64, 2, seed=1), load_io_spec(io_spec))
    write_vectors(hw_dir, out, inputs=x)
    m = json.loads((out / "manifest.json").read_text())
    assert m["frames"] == 2 and m["seed"] is None and not (out / "stale.txt").exists()
    assert np.array_equal(np.load(out / "tensors" / "input.npy"), x)
    with pytest.raises(GoldenError, match="expected"):
        write_vectors(hw_dir, out, inputs=x[:, :, :, :2])
    with pytest.raises(GoldenError, match="n=3 but the given inputs hold 2 frames"):
        write_vectors(hw_dir, out, n=3, inputs=x)
    assert json.loads((out / "manifest.json").read_text()) == m  # a failed run leaves the old one
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vectors"]


@pytest.mark.parametrize("bits", [1, 2, 3, 4, 5, 8, 13, 19, 24, 32, 56, 57, 63])
def test_hex_lines_equals_write_hex_of_pack(bits: int, tmp_path: Path) -> None:
    """The vectorised hex writer produces write_hex(pack(...))'s bytes, padding widths included."""
    from golden.packing import hex_lines, pack, write_hex

    rng = np.random.default_rng(bits)
    for epb, width in ((1, None), (3, None), (7, bits * 7 + 9)):
        codes = rng.integers(0, 1 << bits, 11 * epb, dtype=np.uint64)
        beats = pack(codes.astype(object), bits, epb, signed=False)
        write_hex(tmp_path / "ref.hex", beats, width or epb * bits)
        assert hex_lines(codes, bits, epb, width) == (tmp_path / "ref.hex").read_bytes(), (epb, width)
