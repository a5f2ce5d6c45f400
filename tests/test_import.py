"""`hwcsp import darknet` (quant.importer): a cfg and .weights become a model every command accepts.

The network below has every cfg construct that changes how weights map onto modules: BatchNorm and
plain convolutions, a leaky activation (becomes ReLU, with the warning), a strided shortcut onto more
channels (the linear conv computed as two), a partial residual from a layer with more channels (PRN:
that conv computed as two) and a [connected] classifier. Its .weights file is written byte by byte
here. The imported float model is checked against a direct implementation of Darknet's layer
arithmetic (torch.nn.functional on the file's arrays, not the project's modules); then the imported
model runs the integer chain (export, hls, golden == FINN == qonnx == Brevitas, 0 mismatches) under
its own name, and the command's refusals exit 2 with one line and write nothing.
"""

from __future__ import annotations

import json
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from hwcsp.darknet_weights import read_weights

try:
    from golden_helpers.cli import hwcsp
    from golden_helpers.finn_env import Finn, finn
    from golden_helpers.refs import chain_tally
except ImportError:  # tests/ imported as a package
    from tests.golden_helpers.cli import hwcsp
    from tests.golden_helpers.finn_env import Finn, finn
    from tests.golden_helpers.refs import chain_tally

__all__ = ["finn"]

ROOT = Path(__file__).resolve().parents[1]
_C = "[convolutional]\n{bn}filters={f}\nsize={k}\nstride={s}\npad=1\nactivation={a}\n"


def conv(f: int, k: int, s: int = 1, a: str = "relu", bn: bool = True) -> str:
    return _C.format(bn="batch_normalize=1\n" if bn else "", f=f, k=k, s=s, a=a)


CFG = "\n".join(
    [
        "[net]\nwidth=32\nheight=32\nchannels=3\n",
        conv(16, 3, 2, "leaky"),  # 0
        conv(8, 3),  # 1
        conv(16, 1, a="linear"),  # 2
        "[shortcut]\nfrom=-3\nactivation=relu\n",  # 3: 16 + 16
        conv(24, 3, 2, "linear"),  # 4
        "[shortcut]\nfrom=-2\nactivation=relu\n",  # 5: layer 3 sampled (stride 2) onto the first 16 of 24
        conv(16, 1),  # 6
        conv(8, 3, bn=False),  # 7
        "[shortcut]\nfrom=-2\nactivation=relu\n",  # 8: the first 8 of layer 6's 16 onto 8 (PRN)
        "[avgpool]\n",  # 9
        "[connected]\noutput=10\nactivation=linear\n",  # 10
        "[softmax]\n",
    ]
)


def _weights(seed: int = 0) -> bytes:
    """A .weights file for CFG with the statistics of a trained network (He-scaled weights,
    BatchNorm scales near 1, small means, positive variances), in Darknet's order."""
    from hwcsp.darknet_cfg import parse_cfg
    from hwcsp.darknet_weights import param_layout

    rng = np.random.default_rng(seed)
    parts = []
    for q in param_layout(parse_cfg(CFG)):
        n = q.outputs
        fan_in = int(np.prod(q.weight_shape[1:]))
        w = rng.normal(0.0, np.sqrt(2.0 / fan_in), int(np.prod(q.weight_shape)))
        bn = [rng.uniform(0.5, 1.5, n), rng.normal(0.0, 0.1, n), rng.uniform(0.5, 2.0, n)] if q.bn else []
        b = rng.normal(0.0, 0.1, n)
        parts += [b, w, *bn] if q.kind == "connected" else [b, *bn, w]
    return struct.pack("<iiiQ", 0, 2, 0, 12345) + np.concatenate(parts).astype("<f4").tobytes()


def darknet_forward(x: torch.Tensor, data: bytes) -> torch.Tensor:
    """Darknet's arithmetic for CFG on the file's arrays (leaky computed as ReLU, the hardware rule)."""
    _, layers = read_weights(data, CFG)
    p = {q.index: q for q in layers}

    def cv(i: int, t: torch.Tensor, stride: int = 1) -> torch.Tensor:
        q = p[i]
        w = torch.from_numpy(q.weights.astype(np.float64))
        y = F.conv2d(t, w, stride=stride, padding=w.shape[-1] // 2)
        if q.bn is None:
            return y + torch.from_numpy(q.biases.astype(np.float64))[None, :, None, None]
        s, m, v = (torch.from_numpy(a.astype(np.float64))[None, :, None, None] for a in q.bn)
        b = torch.from_numpy(q.biases.astype(np.float64))[None, :, None, None]
        return s * (y - m) / (v.sqrt() + 1e-6) + b

    r = torch.relu
    x0 = r(cv(0, x, 2))
    x1 = r(cv(1, x0))
    x2 = cv(2, x1)
    x3 = r(x2 + x0)
    x4 = cv(4, x3, 2)
    x5 = x4.clone()
    x5[:, :16] += x3[:, :, ::2, ::2]  # Darknet adds a finer, narrower map onto the first channels
    x5 = r(x5)
    x6 = r(cv(6, x5))
    x7 = r(cv(7, x6))
    x8 = r(x7 + x6[:, :8])
    g = x8.mean(dim=(2, 3))
    fc = p[10]
    return g @ torch.from_numpy(fc.weights.astype(np.float64)).T + torch.from_numpy(
        fc.biases.astype(np.float64)
    )


@pytest.fixture()
def imported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    cfg, weights = tmp_path / "My Tiny.cfg", tmp_path / "tiny.weights"
    cfg.write_text(CFG)
    weights.write_bytes(_weights())
    models = tmp_path / "models"
    monkeypatch.setenv("HWCSP_MODELS", str(models))
    return {"cfg": cfg, "weights": weights, "models": models, "tmp": tmp_path}


def _hwcsp(*args: str, models: Path) -> subprocess.CompletedProcess:
    return hwcsp(*args, timeout=600, HWCSP_MODELS=str(models))


def test_import_stores_the_model_and_darknets_arithmetic_holds(imported: dict) -> None:
    from hwcsp.net import CSPNet
    from hwcsp.registry import create_model, get_entry, list_models
    from quant.checkpoint import load_checkpoint

    p = _hwcsp(
        "import",
        "darknet",
        str(imported["cfg"]),
        "--weights",
        str(imported["weights"]),
        models=imported["models"],
    )
    assert p.returncode == 0, p.stderr
    assert p.stdout == "my-tiny\n"  # the default name comes from the file name
    assert "leaky: layers 0" in p.stderr and "hwcsp train my-tiny --init" in p.stderr
    d = imported["models"] / "my-tiny"
    assert sorted(f.name for f in d.iterdir()) == ["model.cfg", "model.json", "weights.pt"]
    rec = json.loads((d / "model.json").read_text())
    assert (rec["task"], rec["size"], rec["classes"], rec["converted"]) == (
        "classify",
        32,
        10,
        {"leaky": [0]},
    )

    assert "my-tiny" in list_models("classify")
    e = get_entry("my-tiny")
    assert e.checkpoint == d / "weights.pt" and e.tag == f"cfg{rec['cfg_sha256'][:8]}"
    state, meta = load_checkpoint(e.checkpoint)
    assert (meta["model"], meta["size"], meta["quant"], meta["num_classes"]) == ("my-tiny", 32, False, 10)
    net = create_model("my-tiny", quant=False)
    assert isinstance(net, CSPNet)
    net.load_state_dict(state)
    net.eval().double()
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    with torch.no_grad():
        ours = net(x)
    ref = darknet_forward(x, imported["weights"].read_bytes())
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)  # float32-stored parameters
    assert ref.abs().max() > 0.1  # not a vacuous comparison


def test_imported_model_runs_the_integer_chain_by_name(imported: dict, finn: Finn, tmp_path: Path) -> None:
    """`hwcsp export NAME` takes the imported weights by default, in a build directory that carries
    the cfg's and the checkpoint's hashes; that configuration through the hls lowering: golden ==
    FINN == qonnx == Brevitas, 0 mismatching integers."""

    from golden.fsutil import sha256_file
    from golden.software import load_io_spec
    from hls.flow import HlsRequest, run
    from hwcsp.buildcfg import BuildConfig
    from quant.export import export

    args = ["import", "darknet", str(imported["cfg"]), "--weights", str(imported["weights"])]
    assert _hwcsp(*args, models=imported["models"]).returncode == 0
    build = tmp_path / "build"
    p = _hwcsp("export", "my-tiny", "--build-root", str(build), models=imported["models"])
    assert p.returncode == 0, p.stderr
    assert "using the imported weights" in p.stderr
    ckpt = imported["models"] / "my-tiny" / "weights.pt"
    rec = json.loads((imported["models"] / "my-tiny" / "model.json").read_text())
    (d,) = build.iterdir()
    assert d.name == f"my-tiny-s32-w1-w4a4-cfg{rec['cfg_sha256'][:8]}-{sha256_file(ckpt)[:8]}"
    assert json.loads((d / "export.json").read_text())["weights"] == "checkpoint"

    # the same configuration in-process, for the Brevitas module the comparison needs
    cfg = BuildConfig.from_dict(json.loads((d / "config.json").read_text()))
    r = export(cfg, cfg.path(tmp_path / "b2"), ckpt, log=lambda *a: None)
    assert r.onnx_path.read_bytes() == (d / "model.qonnx.onnx").read_bytes()
    hw = run(
        HlsRequest(r.onnx_path.parent, baseline=False, codegen=False, verify_frames=1), log=lambda *a: None
    )
    spec = load_io_spec(hw / "io_spec.json")
    x = np.random.default_rng(17).integers(0, 256, (2, *spec.input.shape[1:]))
    tally = chain_tally(hw, r.net, finn, x)
    assert tally.mismatches == 0 and tally.integers > 0, str(tally)


def test_calibration_folder_feeds_the_export_and_names_the_build(imported: dict, tmp_path: Path) -> None:
    from PIL import Image

    from quant.data.folder import folder_digest, folder_images

    calib = tmp_path / "calib"
    calib.mkdir()
    rng = np.random.default_rng(3)
    shapes = [(40, 50, 3), (32, 32), (20, 64, 3), (32, 32, 3), (48, 48, 3), (32, 40, 3)]  # grey, aspects
    for i, shape in enumerate(shapes):  # brightness and contrast differ from image to image
        img = np.clip(rng.normal(40 * i, 10 + 12 * i, shape), 0, 255).astype(np.uint8)
        Image.fromarray(img).save(calib / f"im{i}.png")
    (calib / "notes.txt").write_text("not an image")
    x = folder_images(calib, 32, 8)
    assert x.shape == (8, 3, 32, 32) and x.dtype == np.uint8
    assert (x[6] == x[0]).all() and not (x[1] == x[0]).all()  # name order, cycled
    assert (x[1, 0] == x[1, 2]).all()  # the grey image became RGB

    args = [
        "import",
        "darknet",
        str(imported["cfg"]),
        "--weights",
        str(imported["weights"]),
        "--calib",
        str(calib),
    ]
    assert _hwcsp(*args, models=imported["models"]).returncode == 0
    build = tmp_path / "build"
    p = _hwcsp("export", "my-tiny", "--build-root", str(build), models=imported["models"])
    assert p.returncode == 0, p.stderr
    assert f"activation scales on 8 images of {calib}" in p.stdout, p.stdout
    (d,) = build.iterdir()
    assert f"-cal{folder_digest(calib)[:8]}-" in d.name


def test_every_command_takes_the_imported_name(imported: dict, tmp_path: Path) -> None:
    """info, hls, sim (every node in its RTL module) and verify (the stitched network at its
    bottleneck) by name; the thresholds of its signed branch lay outside the accumulator's range
    (clipped by the lowering, one bit wider in the threshold memory: the RTL runs them)."""
    args = ["import", "darknet", str(imported["cfg"]), "--weights", str(imported["weights"])]
    models, root = imported["models"], ["--build-root", str(tmp_path / "build")]
    assert _hwcsp(*args, models=models).returncode == 0
    p = _hwcsp("info", "my-tiny", *root, models=models)
    assert p.returncode == 0 and "my-tiny @32" in p.stdout, p.stderr
    for cmd in ("sim", "verify"):
        p = _hwcsp(cmd, "my-tiny", *root, models=models)
        assert p.returncode == 0, (cmd, p.stdout[-2000:], p.stderr[-2000:])
    (hw,) = (tmp_path / "build").glob("my-tiny-s32-*/hls-m2048")
    rep = json.loads((hw / "report" / "rtl_network.json").read_text())
    assert rep["verdict"] == "pass" and rep["bit_exact"] and rep["measured"]["ratio"] <= 1.05, rep
    nodes = json.loads((hw / "sim" / "report.json").read_text())["nodes"]
    assert nodes and all(e["verdict"] == "pass" and e["mismatch_ints"] == 0 for e in nodes)


@pytest.mark.parametrize(
    "args, match",
    [
        (["--weights", "{other}"], "the cfg's 7 layers with parameters need"),
        (["--strict"], "--strict: activations that are not ReLU or linear (leaky: layers 0)"),
        (["--name", "resnet10"], "'resnet10' is a zoo model"),
        (["--name", "Bad Name"], "model name 'Bad Name'"),
        (["--weights", "{missing}"], "cannot read the weights"),
        (["--calib", "{other}"], "is not a directory"),
        (["--calib", "{empty}"], "no .png, .jpg, .jpeg, .bmp files in"),
    ],
    ids=[
        "weights-of-another-cfg",
        "strict",
        "zoo-name",
        "bad-name",
        "missing-weights",
        "calib-file",
        "calib-empty",
    ],
)
def test_refusals_exit_2_with_one_line_and_write_nothing(imported: dict, args: list[str], match: str) -> None:
    other = imported["tmp"] / "other.weights"
    other.write_bytes(_weights()[:-8])
    empty = imported["tmp"] / "empty"
    empty.mkdir()
    args = [a.format(other=other, missing=imported["tmp"] / "nope.weights", empty=empty) for a in args]
    p = _hwcsp("import", "darknet", str(imported["cfg"]), *args, models=imported["models"])
    assert p.returncode == 2 and match in p.stderr, p.stderr
    assert len([ln for ln in p.stderr.splitlines() if "error" in ln]) == 1 and "Traceback" not in p.stderr
    assert not imported["models"].exists() or not any(imported["models"].iterdir())


def test_unsupported_layers_are_refused_naming_the_line(imported: dict) -> None:
    bad = imported["tmp"] / "bad.cfg"
    bad.write_text(CFG.replace("[avgpool]\n", "[avgpool]\n\n[dropout]\nprobability=.5\n"))
    p = _hwcsp("import", "darknet", str(bad), models=imported["models"])
    assert p.returncode == 2 and "[dropout] at line" in p.stderr and "not supported" in p.stderr, p.stderr


SHARED_CFG = ROOT.parent / "shared" / "reference" / "darknet-cfg"
# ../shared/reference/architectures.md, "computed" column: params (M; all floats for the detector),
# BFLOPs at the cfg's own size
REFERENCE = {
    "darknet": (7.314, 0.967),
    "resnet10": (5.240, 2.273),
    "resnext50": (22.191, 10.111),
    "csresnext50": (20.499, 7.930),
    "yolov3-tiny-prn": (4.940, 3.467),
}


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_imported_public_cfgs_reproduce_the_reference_counts(name: str, imported: dict) -> None:
    from hwcsp.analysis import model_stats
    from hwcsp.registry import zoo_models
    from quant.importer import import_darknet

    path = SHARED_CFG / f"{name}.cfg"
    if not path.exists():
        pytest.skip(f"{path} is absent (the public cfgs live in ../shared/)")
    rec = import_darknet(path, name=f"pub-{name}", known=zoo_models(), log=lambda *a: None)
    s = model_stats(rec.name, rec.size)
    params, bflops = REFERENCE[name]
    ours = s.params_all if rec.task == "detect" else s.params
    assert abs(ours / 1e6 - params) / params <= 0.005, (ours, params)
    assert abs(s.bflops - bflops) / bflops <= 0.005, (s.bflops, bflops)


def test_an_import_in_this_process_is_listed_at_once(imported: dict) -> None:
    from hwcsp.registry import list_models
    from quant.importer import import_darknet

    assert "later" not in list_models()
    import_darknet(imported["cfg"], name="later", log=lambda *a: None)
    assert "later" in list_models("classify")


MAXOUT_CFG = "\n".join(
    [
        "[net]\nwidth=32\nheight=32\nchannels=3\n",
        conv(12, 3, 2),
        "[maxpool]\nmaxpool_depth=1\nout_channels=4\nsize=1\nstride=1\n",  # 12 -> 4: max of 3 chunks
        conv(8, 3),
        conv(6, 1, a="linear", bn=False),
        "[yolo]\nmask=0\nanchors=10,14\nclasses=1\nnum=1\n",
    ]
)


SAM_CFG = "\n".join(
    [
        "[net]\nwidth=32\nheight=32\nchannels=3\n",
        conv(8, 3, 2),
        conv(8, 3, a="logistic", bn=False),  # SAM's gate (conv with bias)
        "[sam]\nfrom=-2\n",
        conv(8, 3),
        conv(6, 1, a="linear", bn=False),
        "[yolo]\nmask=0\nanchors=10,14\nclasses=1\nnum=1\n",
    ]
)


@pytest.mark.parametrize(
    "name, op, count", [("maxout-net", "ElementwiseMax_hls", 2), ("sam-net", "ElementwiseMul_hls", 1)]
)
def test_heads_ops_run_the_integer_chain(
    finn: Finn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name, op, count
) -> None:
    """Darknet's maxout (EFM's compression: a split, then a tree of ElementwiseMax) and [sam] (a
    sigmoid gate as thresholds, an ElementwiseMul, a requantization) through export, the hls
    lowering and golden == FINN == qonnx == Brevitas, 0 mismatching integers."""
    # its own store: the session's would list these two in every later `hwcsp models`
    monkeypatch.setenv("HWCSP_MODELS", str(tmp_path / "models"))
    import onnx

    from golden.software import load_io_spec
    from hls.flow import HlsRequest, run
    from hwcsp.buildcfg import BuildConfig
    from quant.export import export
    from quant.importer import import_darknet

    cfg_file = tmp_path / f"{name}.cfg"
    cfg_file.write_text(MAXOUT_CFG if name == "maxout-net" else SAM_CFG)
    rec = import_darknet(cfg_file, log=lambda *a: None)
    cfg = BuildConfig(model=rec.name, size=32, num_classes=1)
    r = export(cfg, cfg.path(tmp_path / "build"), None, log=lambda *a: None)
    hw = run(
        HlsRequest(r.onnx_path.parent, baseline=False, codegen=False, verify_frames=1), log=lambda *a: None
    )
    ops = [n.op_type for n in onnx.load(str(hw / "model.hw.onnx")).graph.node]
    assert ops.count(op) == count, ops
    spec = load_io_spec(hw / "io_spec.json")
    x = np.random.default_rng(5).integers(0, 256, (2, *spec.input.shape[1:]))
    tally = chain_tally(hw, r.net, finn, x)
    assert tally.mismatches == 0 and tally.integers > 0, str(tally)
