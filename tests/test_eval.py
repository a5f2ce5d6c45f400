"""Evaluation through pycocotools (known answers), integer execution plumbing, eval/detect CLI, bad input."""

import json

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

import hwcsp
from hwcsp.cli import build_parser
from hwcsp.cli import main as cli
from quant.anchors import Level, levels_of_graph, levels_to_json
from quant.calibrate import calibrate_until_alive
from quant.checkpoint import save_checkpoint
from quant.evaluate import EvalError, IntModel, digits_eval_set, evaluate
from quant.export import calibration_input
from quant.targets import assign

LEVELS = [
    Level(32, ((40.0, 40.0), (20.0, 30.0), (30.0, 45.0))),
    Level(16, ((10.0, 10.0), (8.0, 14.0), (12.0, 20.0))),
]


def perfect_outputs(
    boxes: np.ndarray, labels: np.ndarray, swap: dict[int, int] | None = None
) -> list[torch.Tensor]:
    """Head logits that decode exactly to the given boxes (optionally with some labels changed)."""
    t = [{"boxes": torch.tensor(boxes), "labels": torch.tensor(labels)}]
    outs = [torch.full((1, 3 * 15, 4, 4), -20.0), torch.full((1, 3 * 15, 8, 8), -20.0)]
    for out, asg in zip(outs, assign(t, LEVELS, [(4, 4), (8, 8)], (128, 128)), strict=True):
        for a, gy, gx, txy, twh, lab in zip(asg.a, asg.gy, asg.gx, asg.txy, asg.twh, asg.label, strict=True):
            v = out[0, a * 15 : a * 15 + 15, gy, gx]
            v[:2] = torch.logit(txy.double().clamp(1e-6, 1 - 1e-6)).float()
            v[2:4] = twh
            v[4] = 20.0
            v[5 + (swap or {}).get(int(lab), int(lab))] = 20.0
    return outs


class Oracle:
    """A runner replaying head outputs made from the ground truth, image by image in eval order."""

    def __init__(self, evalset, swap=None):
        from quant.data import DigitsConfig, DigitsDetection

        ds = DigitsDetection("val", DigitsConfig(size=128), length=len(evalset))
        self.items = [ds[i] for i in range(len(evalset))]
        self.i, self.swap = 0, swap

    def __call__(self, batch):
        outs = []
        for _ in batch:
            s = self.items[self.i]
            self.i += 1
            outs.append(perfect_outputs(s.boxes, s.labels, self.swap))
        return [torch.cat([o[k] for o in outs]) for k in range(2)]


@pytest.fixture(scope="module")
def val16():
    return digits_eval_set(128, 16)


def test_cocoeval_scores_perfect_detections_one(val16):
    r = evaluate(Oracle(val16), val16, LEVELS, 128, batch=5)
    assert r.map50 == pytest.approx(1.0) and r.map50_95 > 0.99
    assert r.images == 16 and r.detections >= sum(len(a) for a in [val16.gt["annotations"]])


def test_cocoeval_penalises_wrong_classes(val16):
    # every "3" reported as "8": class 3 has no true positive (AP 0) and class 8 gains false positives
    r = evaluate(Oracle(val16, swap={3: 8}), val16, LEVELS, 128, batch=16)
    cats = {a["category_id"] for a in val16.gt["annotations"]}
    assert 4 in cats and 9 in cats  # category id = label + 1
    assert r.map50 <= (len(cats) - 1) / len(cats) + 1e-6
    assert r.map50 > 0.5


def test_nothing_detected_scores_zero(val16):
    empty = lambda b: [torch.full((len(b), 45, 4, 4), -20.0), torch.full((len(b), 45, 8, 8), -20.0)]  # noqa: E731
    r = evaluate(empty, val16, LEVELS, 128)
    assert r.map50 == 0 and r.detections == 0


# ----------------------------------------------------------------------------- integer execution
def _fake_hw_graph(d, w: np.ndarray, bias: np.ndarray, scale: float) -> None:
    """A stride-8 'patchify' conv as FINN HW nodes (SWG + MVAU) with its io_spec, on 16x16 images."""
    hw = "finn.custom_op.fpgadataflow.hls"
    swg = helper.make_node(
        "ConvolutionInputGenerator_hls",
        ["input"],
        ["cols"],
        domain=hw,
        name="swg",
        IFMDim=[16, 16],
        OFMDim=[2, 2],
        ConvKernelDim=[8, 8],
        Stride=[8, 8],
        Dilation=[1, 1],
        IFMChannels=3,
        SIMD=3,
        inputDataType="UINT8",
        outputDataType="UINT8",
    )
    mvau = helper.make_node(
        "MVAU_hls",
        ["cols", "W"],
        ["head"],
        domain=hw,
        name="mvau",
        MW=192,
        MH=7,
        SIMD=1,
        PE=1,
        numInputVectors=[1, 2, 2],
        inputDataType="UINT8",
        weightDataType="INT8",
        outputDataType="INT32",
        noActivation=1,
    )
    g = helper.make_graph(
        [swg, mvau],
        "fake",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 16, 16, 3])],
        [helper.make_tensor_value_info("head", TensorProto.FLOAT, [1, 2, 2, 7])],
        initializer=[numpy_helper.from_array(w.astype(np.float32), "W")],
    )
    onnx.save(helper.make_model(g), d / "model.hw.onnx")
    spec = {
        "input": {
            "name": "input",
            "layout": "NHWC",
            "dtype": "UINT8",
            "scale": 2**-8,
            "shape": [1, 16, 16, 3],
        },
        "outputs": [
            {
                "name": "head",
                "layout": "NHWC",
                "dtype": "INT32",
                "scale": scale,
                "bias": bias.tolist(),
                "shape": [1, 2, 2, 7],
                "stride": 8,
                "anchors": [[8, 8]],
                "kind": "yolo",
            }
        ],
    }
    (d / "io_spec.json").write_text(json.dumps(spec))


def test_integer_runner_applies_bias_scale_and_layout(tmp_path):
    rng = np.random.default_rng(0)
    w = rng.integers(-8, 8, (192, 7))  # rows ordered (kh, kw, C) as the sliding window emits them
    bias = rng.integers(-500, 500, 7)
    scale = 2.0**-10
    _fake_hw_graph(tmp_path, w, bias, scale)
    im = IntModel.open(tmp_path, "make hls")
    assert im.strides() == [8]
    images = rng.integers(0, 256, (3, 16, 16, 3)).astype(np.uint8)
    (got,) = im.runner([8])(images)
    # reference: the same conv in torch on the codes, NCHW
    k = torch.tensor(w.reshape(8, 8, 3, 7).transpose(3, 2, 0, 1), dtype=torch.float64)
    x = torch.tensor(images.transpose(0, 3, 1, 2), dtype=torch.float64)
    ref = (torch.nn.functional.conv2d(x, k, stride=8) + torch.tensor(bias).view(1, -1, 1, 1)) * scale
    assert got.shape == (3, 7, 2, 2)
    assert torch.equal(got.double(), ref)  # exact: integers times a power of two


def test_integer_mode_without_hls_output_says_to_run_make_hls(tmp_path):
    with pytest.raises(EvalError, match=r"model\.hw\.onnx.*run `make hls MODEL=m`"):
        IntModel.open(tmp_path, "make hls MODEL=m")
    _fake_hw_graph(tmp_path, np.zeros((192, 7)), np.zeros(7, np.int64), 1.0)
    spec = json.loads((tmp_path / "io_spec.json").read_text())
    spec["outputs"][0]["shape"] = [1, 4, 4, 7]
    (tmp_path / "io_spec.json").write_text(json.dumps(spec))
    with pytest.raises(EvalError, match=r"does not match model\.hw\.onnx"):
        IntModel.open(tmp_path, "make hls")


# ----------------------------------------------------------------------------- CLI
def _tiny_ckpt(path, **meta_over):
    """A calibrated (untrained) QAT checkpoint of the tiny detector, with fitted-looking anchors."""
    torch.manual_seed(0)
    net = hwcsp.create_model("cspdensenetb-ref-prn", size=64, width=0.25, num_classes=10)
    calibrate_until_alive(net, calibration_input(64))
    levels = [Level(lv.stride, tuple((w / 8, h / 8) for w, h in lv.anchors)) for lv in levels_of_graph(net)]
    meta = {
        "model": "cspdensenetb-ref-prn",
        "size": 64,
        "width": 0.25,
        "wbits": 4,
        "abits": 4,
        "num_classes": 10,
        "quant": True,
        **levels_to_json(levels),
        "classes": [str(i) for i in range(10)],
        **meta_over,
    }
    save_checkpoint(path, net.state_dict(), meta)
    return path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return _tiny_ckpt(tmp_path_factory.mktemp("ckpt") / "tiny.pt")


@pytest.mark.parametrize("mode", ["float", "qat"])
def test_eval_cli_writes_a_record(tiny, tmp_path, mode, capsys):
    rc = cli(
        [
            "eval",
            "cspdensenetb-ref-prn",
            "--ckpt",
            str(tiny),
            "--mode",
            mode,
            "--images",
            "8",
            "--build-root",
            str(tmp_path),
        ]
    )
    assert rc == 0
    out = capsys.readouterr().out
    assert f"eval {mode}: mAP@0.5" in out
    (rec,) = tmp_path.glob(f"*/eval/{mode}-digits-val-s64-seed0-n8.json")
    r = json.loads(rec.read_text())
    assert r["images"] == 8 and len(r["coco_stats"]) == 12 and 0 <= r["map50"] <= 1


def test_eval_int_mode_without_hls_build_fails_clearly(tiny, tmp_path, capsys):
    rc = cli(
        ["eval", "cspdensenetb-ref-prn", "--ckpt", str(tiny), "--mode", "int", "--build-root", str(tmp_path)]
    )
    err = capsys.readouterr().err
    assert rc == 2 and "run `make hls MODEL=cspdensenetb-ref-prn SIZE=64 WIDTH=0.25 WBITS=4 ABITS=4" in err
    assert len(err.strip().splitlines()) == 1
    assert not list(tmp_path.rglob("*.json"))


def test_detect_draws_boxes(tiny, tmp_path, capsys):
    from quant.data import DigitsConfig, DigitsDetection

    img = tmp_path / "in.png"
    Image.fromarray(DigitsDetection("val", DigitsConfig(size=64), length=1)[0].image).save(img)
    out = tmp_path / "out.png"
    rc = cli(
        ["detect", "cspdensenetb-ref-prn", "--ckpt", str(tiny), str(img), "-o", str(out), "--conf", "0.0001"]
    )
    assert rc == 0 and "detections" in capsys.readouterr().out
    with Image.open(out) as im:
        assert im.size == (512, 512)  # enlarged 8x for legible labels
        a = np.asarray(im.convert("RGB"))
    base = np.asarray(Image.open(img).convert("RGB").resize((512, 512), Image.NEAREST))
    assert (a != base).any()  # something was drawn
    # the form: the model comes from the checkpoint
    out2 = tmp_path / "out2.png"
    assert cli(["detect", "--ckpt", str(tiny), str(img), "-o", str(out2), "--conf", "0.0001"]) == 0
    assert out2.read_bytes() == out.read_bytes()


@pytest.fixture(scope="module")
def bad_ckpts(tmp_path_factory):
    p = tmp_path_factory.mktemp("bad")
    (p / "corrupt.pt").write_bytes(b"PK\x03\x04 not really a zip" * 10)
    torch.save({"weights": torch.zeros(3)}, p / "foreign.pt")
    _tiny_ckpt(p / "other_model.pt", model="cspdensenet-ref-prn")
    return p


@pytest.mark.parametrize(
    "name, extra, match",
    [
        ("corrupt.pt", [], "cannot be read"),
        ("foreign.pt", [], "not an hwcsp checkpoint"),
        ("other_model.pt", [], "another configuration (model: checkpoint has 'cspdensenet-ref-prn'"),
        (None, ["--size", "96"], "size: checkpoint has 64, asked 96"),
        ("missing.pt", [], "does not exist"),
    ],
)
def test_bad_checkpoints_fail_with_one_clear_line(tiny, bad_ckpts, tmp_path, capsys, name, extra, match):
    ckpt = bad_ckpts / name if name else tiny
    build = tmp_path / "build"
    img = tmp_path / "x.png"
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(img)
    for cmd, more in (
        ("eval", []),
        ("detect", [str(img), "-o", str(build / "out.png")]),
        ("train", ["--init", str(ckpt)]),
    ):
        args = [cmd, "cspdensenetb-ref-prn", "--ckpt", str(ckpt), "--build-root", str(build), *extra, *more]
        assert cli(args) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and match in err[0], (cmd, err)
    assert not build.exists()


def test_eval_refuses_data_with_other_classes(tiny, tmp_path, capsys):
    from quant.data import write_coco
    from quant.data.digits import DigitsConfig, DigitsDetection

    ds = DigitsDetection("val", DigitsConfig(size=64), length=2)
    root = write_coco(tmp_path / "coco", [ds[0], ds[1]], [f"c{i}" for i in range(10)])
    rc = cli(
        [
            "eval",
            "cspdensenetb-ref-prn",
            "--ckpt",
            str(tiny),
            "--data",
            str(root),
            "--build-root",
            str(tmp_path / "b"),
        ]
    )
    err = capsys.readouterr().err
    assert rc == 2 and "differ from the checkpoint's classes" in err
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize(
    "corrupt, match",
    [
        (lambda doc: doc["annotations"][0].update(category_id=99), "unknown category id 99"),
        (lambda doc: doc["annotations"][0].update(bbox=[50.0, 50.0, 40.0, 10.0]), "lies outside image"),
    ],
)
def test_bad_coco_json_fails_train_and_eval_cleanly(tiny, tmp_path, capsys, corrupt, match):
    from quant.data import write_coco
    from quant.data.digits import CLASS_NAMES, DigitsConfig, DigitsDetection

    ds = DigitsDetection("val", DigitsConfig(size=64), length=2)
    root = write_coco(tmp_path / "coco", [ds[0], ds[1]], CLASS_NAMES)
    doc = json.loads((root / "instances.json").read_text())
    corrupt(doc)
    (root / "instances.json").write_text(json.dumps(doc))
    build = tmp_path / "build"
    for args in (
        ["eval", "cspdensenetb-ref-prn", "--ckpt", str(tiny), "--data", str(root)],
        [
            "train",
            "cspdensenetb-ref-prn",
            "--size",
            "64",
            "--width",
            "0.25",
            "--mode",
            "float",
            "--data",
            str(root),
        ],
        ["train", "cspdensenetb-ref-prn", "--init", str(tiny), "--data", str(root)],
    ):
        assert cli([*args, "--build-root", str(build)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and match in err[0], err
    assert not build.exists()


def test_integer_execution_of_the_hls_build_equals_qat(tmp_path):
    """`hwcsp hls` of the shipped trained checkpoint; golden running its model.hw.onnx gives heads
    equal to the QAT model's, hence the same detections and mAP."""
    from quant.args import shipped_checkpoint
    from quant.commands import Loaded

    ckpt = str(shipped_checkpoint("cspdensenetb-ref-prn", 128, 0.5, 4, 4))
    build = tmp_path / "build"
    cfg = ["cspdensenetb-ref-prn", "--ckpt", ckpt, "--build-root", str(build)]
    assert cli(["hls", *cfg, "--no-baseline"]) == 0
    loaded = {m: Loaded(build_parser().parse_args(["eval", *cfg, "--mode", m])) for m in ("qat", "int")}
    val = digits_eval_set(128, 100)
    images = np.stack([val.image(i) for i in range(4)])
    for a, b in zip(loaded["qat"].runner(images), loaded["int"].runner(images), strict=True):
        assert torch.equal(a, b)
    ev = {m: evaluate(ld.runner, val, ld.levels, 128, m) for m, ld in loaded.items()}
    assert ev["qat"].detections > 0
    assert ev["qat"].map50 == ev["int"].map50 and ev["qat"].detections == ev["int"].detections


def test_shipped_checkpoint_is_the_default_and_detects(tmp_path, capsys):
    """The shipped W4A4 digits detector: under 2 MB, loads with weights_only, is the default
    checkpoint of its configuration, and its QAT execution stays within 3 points of the float
    model's mAP@0.5 (0.912 on these 1000 val images, benchmarks/RESULTS.md)."""
    from quant.args import shipped_checkpoint
    from quant.checkpoint import load_checkpoint

    ckpt = shipped_checkpoint("cspdensenetb-ref-prn", 128, 0.5, 4, 4)
    assert ckpt is not None and ckpt.stat().st_size < 2_000_000
    _, meta = load_checkpoint(ckpt)
    assert (meta["model"], meta["size"], meta["width"], meta["wbits"], meta["abits"], meta["quant"]) == (
        "cspdensenetb-ref-prn",
        128,
        0.5,
        4,
        4,
        True,
    )
    args = ["cspdensenetb-ref-prn", "--size", "128", "--width", "0.5", "--build-root", str(tmp_path)]
    assert cli(["eval", *args, "--threads", "2"]) == 0
    out, err = capsys.readouterr()
    assert f"using the shipped trained checkpoint {ckpt}" in err and "eval qat:" in out
    (rec,) = tmp_path.glob("*/eval/qat-digits-val-s128-seed0-n1000.json")
    assert json.loads(rec.read_text())["map50"] >= 0.912 - 0.03
