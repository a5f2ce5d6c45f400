"""Golden on the real graph of the test configuration: zero mismatching integers against FINN's
python execution of the generic graph (every tensor), qonnx's execution of the QONNX export and
Brevitas' integer codes (outputs and every activation-quantizer output, through the tensor map).

Frames: 32 seeded random UINT8 images and 8 dataset images (quant.data.calibration_images), run by
golden in one batched call.  A trained checkpoint under checkpoints/ adds its own configuration.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from golden.execute import Program, execute
from golden.software import heads_to_float, images_to_input, load_io_spec

try:
    from golden_helpers.finn_env import Finn, finn
    from golden_helpers.refs import Graphs, Tally, against_brevitas, against_finn, against_qonnx, nchw
except ImportError:  # tests/ imported as a package
    from tests.golden_helpers.finn_env import Finn, finn
    from tests.golden_helpers.refs import Graphs, Tally, against_brevitas, against_finn, against_qonnx, nchw

__all__ = ["finn"]

N_RANDOM = 32
N_IMAGES = 8
REPO = Path(__file__).resolve().parents[1]


def quiet(*_a, **_k) -> None:
    pass


def test_frames(io_spec: dict, size: int) -> np.ndarray:
    """32 seeded random frames then 8 dataset images, NHWC UINT8 codes."""
    from quant.data import calibration_images

    rng = np.random.default_rng(2024)
    shape = io_spec["input"]["shape"]
    rand = rng.integers(0, 256, (N_RANDOM * shape[0], *shape[1:]))
    images = images_to_input(calibration_images(size, N_IMAGES, seed=11), load_io_spec(io_spec))
    return np.concatenate([rand, images])


test_frames.__test__ = False  # a helper, not a test


@pytest.fixture(scope="module")
def golden_run(hw_dir: Path, io_spec: dict, test_config) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    x = test_frames(io_spec, test_config.size)
    return x, execute(hw_dir / "model.hw.onnx", {io_spec["input"]["name"]: x}, return_all=True)


@pytest.fixture(scope="module")
def net(exported: Path, test_config, tmp_path_factory):
    """The BN-folded Brevitas net behind the shared export (re-exported: the export is deterministic)."""
    from quant.export import export

    r = export(test_config, tmp_path_factory.mktemp("reexport"), log=quiet)
    assert r.onnx_path.read_bytes() == (exported / "model.qonnx.onnx").read_bytes()
    return r.net


def frame(ctx: dict[str, np.ndarray], f: int) -> dict[str, np.ndarray]:
    return {k: v[f : f + 1] for k, v in ctx.items()}


def test_golden_equals_finn_at_every_tensor(finn: Finn, hw_dir: Path, golden_run) -> None:
    x, gold = golden_run
    g = Graphs.load(hw_dir, finn)
    tally = Tally()
    for f in range(x.shape[0]):
        against_finn(g, finn, frame(gold, f), x[f : f + 1], tally)
    print(f"golden vs FINN python execution, {x.shape[0]} frames: {tally}")
    assert tally.mismatches == 0, str(tally)
    assert tally.tensors == x.shape[0] * len(gold) and len(gold) > 150


def test_golden_equals_qonnx_and_brevitas(finn: Finn, hw_dir: Path, golden_run, net) -> None:
    x, gold = golden_run
    g = Graphs.load(hw_dir, finn)
    tq, tb = Tally(), Tally()
    for f in range(x.shape[0]):
        against_qonnx(g, finn, frame(gold, f), x[f : f + 1], tq)
    against_brevitas(g, net, gold, x, tb)
    print(f"golden vs qonnx, {x.shape[0]} frames: {tq}\ngolden vs Brevitas codes: {tb}")
    assert tq.mismatches == 0, str(tq)
    assert tb.mismatches == 0, str(tb)
    per_frame = len(g.io_spec["outputs"]) + len(g.tensor_map)
    assert tq.tensors == x.shape[0] * per_frame and tb.tensors == per_frame
    # the outputs are alive: the comparison is not one of constants
    assert all(np.unique(gold[o["name"]]).size > 50 for o in g.io_spec["outputs"])


def test_software_side_rebuilds_the_float_heads(finn: Finn, hw_dir: Path, golden_run, net) -> None:
    """heads_to_float(golden) equals the float network's outputs: qonnx bit for bit, Brevitas to rounding."""
    import torch

    x, gold = golden_run
    spec = load_io_spec(hw_dir / "io_spec.json")
    heads = heads_to_float({o.name: gold[o.name] for o in spec.outputs}, spec)
    g = Graphs.load(hw_dir, finn)
    for f in range(3):
        ctx = finn.execute_onnx(
            g.qonnx, {"input": (nchw(x[f : f + 1]) * spec.input.scale).astype(np.float32)}
        )
        for o in spec.outputs:
            assert heads[o.name][f : f + 1].shape == ctx[o.qonnx_name].shape
            assert np.array_equal(heads[o.name][f : f + 1], ctx[o.qonnx_name]), o.name
    with torch.no_grad():
        outs = net(torch.as_tensor(nchw(x), dtype=torch.float32) * spec.input.scale)
    for o, y in zip(spec.outputs, outs, strict=True):
        np.testing.assert_allclose(heads[o.name], y.numpy(), rtol=0, atol=o.scale * 1e-3)


def _checkpoints() -> list[Path]:
    d = REPO / "checkpoints"
    return sorted(p for p in d.rglob("*") if p.suffix in (".pt", ".pth", ".ckpt")) if d.is_dir() else []


def _found_checkpoints() -> list[tuple[Path, dict]]:
    from quant.checkpoint import CheckpointError, load_checkpoint

    found = []
    for p in _checkpoints():
        try:
            found.append((p, load_checkpoint(p)[1]))
        except CheckpointError:
            continue
    return found


def _check_checkpoint(finn: Finn, path: Path, meta: dict, tmp_path: Path) -> Tally:
    """Export the checkpoint, lower it, and referee golden on 4 dataset images of its size."""
    from hls.flow import HlsRequest, run
    from hwcsp.buildcfg import BuildConfig
    from quant.data import calibration_images
    from quant.export import export

    cfg = BuildConfig(
        meta["model"], int(meta["size"]), float(meta["width"]), int(meta["wbits"]), int(meta["abits"]),
        num_classes=int(meta["num_classes"]),
    )  # fmt: skip
    d = tmp_path / path.stem
    r = export(cfg, d, ckpt=path, log=quiet)
    hw = run(HlsRequest(d, baseline=False, codegen=False), log=quiet)
    spec = json.loads((hw / "io_spec.json").read_text())
    x = images_to_input(calibration_images(cfg.size, 4, seed=3), load_io_spec(spec))
    gold = Program(hw / "model.hw.onnx").run({spec["input"]["name"]: x}, return_all=True)
    g = Graphs.load(hw, finn)
    tally = Tally()
    for f in range(x.shape[0]):
        against_finn(g, finn, frame(gold, f), x[f : f + 1], tally)
        against_qonnx(g, finn, frame(gold, f), x[f : f + 1], tally)
    against_brevitas(g, r.net, gold, x, tally)
    print(f"{path.name} ({cfg.dirname}), 4 dataset images: {tally}")
    return tally


def test_trained_checkpoints_on_dataset_images(finn: Finn, tmp_path: Path) -> None:
    """Every trained checkpoint under checkpoints/ (one ships), at its own configuration: golden ==
    FINN / qonnx / Brevitas at every tensor on dataset images (about 20 s for the shipped one)."""
    found = _found_checkpoints()
    assert found, "no trained checkpoint under checkpoints/ (one ships with the repository)"
    for path, meta in found:
        tally = _check_checkpoint(finn, path, meta, tmp_path)
        assert tally.mismatches == 0, f"{path.name}: {tally}"
