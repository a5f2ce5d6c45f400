"""Training: float then QAT on a tiny detector, loss falls, export exact against qonnx, reproducible,
resumable, run directory contents."""

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from brevitas.quant_tensor import QuantTensor
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.core.onnx_exec import execute_onnx

from hwcsp.buildcfg import BuildConfig
from quant.checkpoint import load_checkpoint
from quant.export import export
from quant.train import TrainConfig, TrainError, train

TINY = TrainConfig(
    model="cspdensenetb-ref-prn",
    size=64,
    width=0.25,
    mode="float",
    train_images=48,
    val_images=0,
    epochs=3,
    batch=16,
    lr=1e-2,
    warmup=2,
    cache=None,
    threads=1,
    log_every=1,
    progress=False,
)


def quiet(*_a, **_k):
    pass


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    f = train(replace(TINY, out=str(root / "float")), log=quiet)
    q = train(
        replace(TINY, mode="qat", init=str(f.last), out=str(root / "qat")),
        log=quiet,
    )
    return f, q


def step_losses(metrics):
    return [m["loss"] for m in metrics if m["kind"] == "step"]


def epoch_losses(metrics):
    return [m["loss"] for m in metrics if m["kind"] == "epoch"]


def test_qat_from_the_float_checkpoint_lowers_the_loss(runs):
    f, q = runs
    assert len(step_losses(q.metrics)) == 3 * 3  # 48 images / batch 16, 3 epochs
    fl, ql = epoch_losses(f.metrics), epoch_losses(q.metrics)  # each epoch sees all 48 images
    assert ql[-1] < 0.9 * ql[0], ql
    assert ql[0] < 1.5 * fl[-1], (fl, ql)  # QAT starts where the float model ended, not from scratch
    epochs = [m for m in q.metrics if m["kind"] == "epoch"]
    assert [e["epoch"] for e in epochs] == [1, 2, 3] and all(e["img_s"] > 0 for e in epochs)


def test_run_directory_holds_loadable_checkpoints_and_metrics(runs):
    f, q = runs
    for r, quant in ((f, False), (q, True)):
        names = sorted(p.name for p in r.run_dir.iterdir())
        n = r.epochs
        want = [f"epoch-{i:03d}.pt" for i in range(1, n + 1)] + ["last.pt", "metrics.jsonl", "resume.pt"]
        assert names == sorted([*want, "train.json"])  # nothing temporary left behind
        state, meta = load_checkpoint(r.last)  # weights_only=True inside
        assert all(isinstance(v, torch.Tensor) for v in state.values())
        assert (
            meta["quant"] is quant and meta["epoch"] == n and meta["classes"] == [str(i) for i in range(10)]
        )
        assert meta["strides"] == [32, 16] and [len(a) for a in meta["anchors"]] == [3, 3]
        assert meta["seed"] == 0 and meta["size"] == 64 and meta["width"] == 0.25
        lines = (r.run_dir / "metrics.jsonl").read_text().splitlines()
        assert [json.loads(x)["kind"] for x in lines].count("epoch") == n
    _, fmeta = load_checkpoint(f.last)
    _, qmeta = load_checkpoint(q.last)
    assert qmeta["anchors"] == fmeta["anchors"]  # QAT keeps the float model's anchors
    assert qmeta["init"]["sha256"] and qmeta["wbits"] == 4 and fmeta["wbits"] is None


def brevitas_codes(net, x):
    taps: dict = {}
    with torch.no_grad():
        outs = net(x, taps=taps)
    acts = {layer: taps[layer].int().numpy() for layer, _ in [("input", "input"), *net.act_calls()]}
    heads = {}
    for n, y in zip(net.graph.outputs(), outs, strict=True):
        conv = net.layers[n.inputs[0].replace(".", "_")].conv
        src = taps[net.graph.node(n.inputs[0]).inputs[0]]
        assert isinstance(src, QuantTensor)
        acc = (conv.quant_weight().scale * src.scale).item()
        heads[n.name] = (y.numpy() / acc, acc)
    return acts, heads


def test_export_of_the_qat_checkpoint_is_exact_against_qonnx(runs, tmp_path):
    _, q = runs
    cfg = BuildConfig("cspdensenetb-ref-prn", 64, 0.25, 4, 4, num_classes=10)
    r = export(cfg, tmp_path, ckpt=q.last, log=quiet)
    assert not r.calibrated and all(h.ok for h in r.health)
    spec = json.loads((tmp_path / "export.json").read_text())
    model = ModelWrapper(str(r.onnx_path))
    from quant.export import calibration_input

    x = calibration_input(64, 2, seed=3)
    for i in range(2):
        acts, heads = brevitas_codes(r.net, x[i : i + 1])
        ctx = execute_onnx(model, {"input": x[i : i + 1].numpy()}, return_full_exec_context=True)
        for a in spec["activations"]:
            got = ctx["input.q" if a["layer"] == "input" else a["layer"]] / a["scale"]
            assert np.array_equal(got, np.round(got)) and np.array_equal(
                got.astype(np.int64), acts[a["layer"]]
            )
        for out, (ref, acc) in heads.items():
            got = ctx[out] / acc
            assert np.array_equal(ref, np.round(ref)) and np.array_equal(got, ref), out
    # the trained QAT model in eval mode computes what the export computes
    from quant.export import build_model

    net, _ = build_model(cfg, q.last)
    with torch.no_grad():
        for a, b in zip(net.eval()(x), r.net(x), strict=True):
            assert torch.equal(a, b)


def test_fixed_seed_reproduces_and_resume_continues_exactly(runs, tmp_path):
    f, _ = runs
    again = train(replace(TINY, out=str(tmp_path / "again")), log=quiet)
    a, _ = load_checkpoint(f.last)
    b, _ = load_checkpoint(again.last)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # interrupted after epoch 1, then resumed: the same weights as the uninterrupted run
    cut = replace(TINY, out=str(tmp_path / "cut"))
    r1 = train(replace(cut, stop_after=2), log=quiet)
    assert r1.epochs == 2 and not (tmp_path / "cut" / "epoch-003.pt").exists()
    with pytest.raises(TrainError, match="already holds a run; pass --resume"):
        train(cut, log=quiet)
    r2 = train(replace(cut, resume=True), log=quiet)
    c, meta = load_checkpoint(r2.last)
    assert meta["epoch"] == 3 and all(torch.equal(a[k], c[k]) for k in a)
    assert step_losses(r2.metrics) == step_losses(f.metrics)
    with pytest.raises(TrainError, match="another configuration"):
        train(replace(cut, resume=True, lr=1e-3), log=quiet)


def test_another_seed_changes_the_weights(runs, tmp_path):
    f, _ = runs
    other = train(replace(TINY, seed=1, epochs=1, out=str(tmp_path / "s1")), log=quiet)
    a, _ = load_checkpoint(f.last)
    b, mb = load_checkpoint(other.last)
    assert not torch.equal(a["layers.stem.conv.weight"], b["layers.stem.conv.weight"]) and mb["seed"] == 1


def test_training_on_a_coco_folder(tmp_path):
    from quant.data import write_digits_coco

    root = write_digits_coco(tmp_path / "coco", "train", n=16, size=64, progress=False)
    r = train(
        replace(TINY, data=str(root), train_images=None, epochs=1, val_images=4, out=str(tmp_path / "run")),
        log=quiet,
    )
    _, meta = load_checkpoint(r.last)
    assert meta["data"] == str(root) and meta["classes"] == [str(i) for i in range(10)]
    (epoch,) = [m for m in r.metrics if m["kind"] == "epoch"]
    assert 0 <= epoch["val_map50"] <= 1 and epoch["val_images"] == 4
