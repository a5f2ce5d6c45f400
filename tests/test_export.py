"""QONNX export: exact against Brevitas' integer codes, deterministic, guarded, refusing bad input."""

import io
import json

import numpy as np
import onnx
import pytest
import torch
from brevitas.quant_tensor import QuantTensor
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.core.onnx_exec import execute_onnx

from hwcsp import list_models
from hwcsp.buildcfg import BuildConfig, ConfigMismatchError
from hwcsp.quant import is_power_of_two
from quant.calibrate import DegenerateDataError
from quant.checkpoint import CheckpointError, save_checkpoint
from quant.export import build_model, export, fold_batchnorm

DETECTORS = list_models("detect")  # every zoo detector (tests/test_zoo.py pins the list)


def quiet(*_a, **_k):
    pass


def brevitas_codes(net, x: torch.Tensor) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Integer codes of every activation-quantizer output and of every output (accumulator units)."""
    taps: dict = {}
    with torch.no_grad():
        outs = net(x, taps=taps)
    acts = {}
    for layer, _ in [("input", "input"), *net.act_calls(), *net.gate_calls()]:  # SAM's gates too
        t = taps[layer]
        assert isinstance(t, QuantTensor)
        acts[layer] = t.int().numpy().astype(np.int64)
    heads = {}
    for n, y in zip(net.graph.outputs(), outs, strict=True):
        conv = net.layers[n.inputs[0].replace(".", "_")].conv
        src = taps[net.graph.node(n.inputs[0]).inputs[0]]
        acc_scale = (conv.quant_weight().scale * src.scale).item()
        heads[n.name] = (y.numpy() / acc_scale, acc_scale)
    return acts, heads


def _detector_params() -> list:
    """The detectors of issue 14 (Tables 2 and 4, Fig. 7; `hwcsp.models.detectors`) take 1-3 min
    each here: `make test-all`. tests/test_heads.py runs this same qonnx == Brevitas comparison, in
    its chain, on the EFM(SAM) and CEM detectors in `make test`."""
    from hwcsp.registry import get_entry

    slow = [pytest.mark.slow]
    return [
        pytest.param(n, marks=slow if get_entry(n).fn.__module__ == "hwcsp.models.detectors" else [])
        for n in DETECTORS
    ]


@pytest.mark.parametrize("name", _detector_params())
def test_qonnx_execution_equals_brevitas_integer_codes(name, tmp_path):
    cfg = BuildConfig(name, 64, 0.25)
    r = export(cfg, tmp_path, log=quiet)
    spec = json.loads((tmp_path / "export.json").read_text())
    model = ModelWrapper(str(r.onnx_path))
    rng = np.random.default_rng(7)
    checked = 0
    for _ in range(2):
        codes = rng.integers(0, 256, (1, 3, 64, 64))
        x = torch.tensor(codes, dtype=torch.float32) / 256
        acts, heads = brevitas_codes(r.net, x)
        ctx = execute_onnx(model, {"input": x.numpy()}, return_full_exec_context=True)
        for a in spec["activations"]:
            tensor = "input.q" if a["layer"] == "input" else a["layer"]
            got = ctx[tensor] / a["scale"]
            assert np.array_equal(got, np.round(got)), tensor
            mism = int((got.astype(np.int64) != acts[a["layer"]]).sum())
            assert mism == 0, f"{name} {tensor}: {mism} mismatching codes"
            checked += 1
        for out, (ref, acc_scale) in heads.items():
            got = ctx[out] / acc_scale
            assert np.array_equal(ref, np.round(ref)) and np.array_equal(got, np.round(got))
            assert int((got != ref).sum()) == 0, out
            assert np.unique(got).size > 50  # outputs are alive, not constant
    assert checked == 2 * len(spec["activations"]) > 20


def test_export_is_deterministic_and_alive(tmp_path):
    cfg = BuildConfig("cspdensenetb-ref-prn", 64, 0.25)
    a = export(cfg, tmp_path / "a", log=quiet)
    b = export(cfg, tmp_path / "b", log=quiet)
    assert a.onnx_path.read_bytes() == b.onnx_path.read_bytes()
    assert (tmp_path / "a" / "export.json").read_text() == (tmp_path / "b" / "export.json").read_text()
    other = export(BuildConfig("cspdensenetb-ref-prn", 64, 0.25, seed=1), tmp_path / "c", log=quiet)
    assert other.onnx_path.read_bytes() != a.onnx_path.read_bytes()
    assert all(h.ok for h in a.health) and len(a.health) > 20
    assert min(h.code_share for h in a.health) >= 0.5 and max(h.zero_share for h in a.health) <= 0.9
    # every scale in the file is a power of two
    m = onnx.load(a.onnx_path)
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in m.graph.initializer}
    scales = [inits[n.input[1]] for n in m.graph.node if n.op_type == "Quant"]
    assert scales and all(is_power_of_two(float(v)) for s in scales for v in np.ravel(s))
    assert not [n for n in m.graph.node if n.op_type in ("Slice", "Gather", "BatchNormalization")]


def test_export_does_not_depend_on_the_thread_count(tmp_path):
    """Calibration's float reductions depend on torch's thread count; the export must not (an earlier
    test in the same process may have set any count)."""
    cfg = BuildConfig("cspdensenetb-ref-prn", 64, 0.25)
    n = torch.get_num_threads()
    try:
        files = []
        for k in (1, 3):
            torch.set_num_threads(k)
            files.append(export(cfg, tmp_path / str(k), log=quiet).onnx_path.read_bytes())
            assert torch.get_num_threads() == k  # the caller's setting is restored
    finally:
        torch.set_num_threads(n)
    assert files[0] == files[1]


def test_stale_build_directory_of_another_configuration_is_refused(tmp_path):
    export(BuildConfig("cspdensenetb-ref-prn", 64, 0.25), tmp_path, log=quiet)
    with pytest.raises(ConfigMismatchError, match="abits: found 4, asked 8"):
        export(BuildConfig("cspdensenetb-ref-prn", 64, 0.25, abits=8), tmp_path, log=quiet)


def _ckpt(tmp_path, net, **meta):
    m = {
        "model": "cspdensenetb-ref-prn",
        "size": 64,
        "width": 0.25,
        "wbits": 4,
        "abits": 4,
        "num_classes": 80,
        "quant": True,
        **meta,
    }
    p = tmp_path / "c.pt"
    save_checkpoint(p, net.state_dict(), m)
    return p


def test_checkpoint_export_reproduces_the_checkpointed_model(tmp_path):
    cfg = BuildConfig("cspdensenetb-ref-prn", 64, 0.25)
    seeded = export(cfg, tmp_path / "seeded", log=quiet)
    # a QAT checkpoint of the (unfolded) calibrated model
    net, _ = build_model(cfg, None)
    from quant.calibrate import calibrate_until_alive
    from quant.export import calibration_input

    calibrate_until_alive(net, calibration_input(64))
    p = _ckpt(tmp_path, net)
    r = export(cfg, tmp_path / "ckpt", ckpt=p, log=quiet)
    assert not r.calibrated
    assert r.config.ckpt_sha256 and r.config.dirname.endswith(r.config.ckpt_sha256[:8])
    assert r.onnx_path.read_bytes() == seeded.onnx_path.read_bytes()  # same weights, same file


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda p: None, "does not exist"),
        (lambda p: p.write_bytes(b"\x00" * 100), "cannot be read"),
        (lambda p: torch.save({"weights": torch.zeros(3)}, p), "not an hwcsp checkpoint"),
    ],
)
def test_bad_checkpoints_give_one_clear_error(tmp_path, make, match):
    p = tmp_path / "bad.pt"
    make(p)
    with pytest.raises(CheckpointError, match=match):
        export(BuildConfig("cspdensenetb-ref-prn", 64, 0.25), tmp_path / "out", ckpt=p, log=quiet)
    assert not (tmp_path / "out").exists()


def test_truncated_checkpoint_is_refused(tmp_path):
    cfg = BuildConfig("cspdensenetb-ref-prn", 64, 0.25)
    net, _ = build_model(cfg, None)
    p = _ckpt(tmp_path, net)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="cannot be read"):
        export(cfg, tmp_path / "out", ckpt=p, log=quiet)


def test_checkpoint_of_another_model_is_refused(tmp_path):
    cfg = BuildConfig("cspdensenetb-ref-prn", 64, 0.25)
    net, _ = build_model(cfg, None)
    p = _ckpt(tmp_path, net, size=128)
    with pytest.raises(CheckpointError, match="size: checkpoint has 128, asked 64"):
        export(cfg, tmp_path / "out", ckpt=p, log=quiet)


def test_degenerate_activations_are_refused(tmp_path):
    cfg = BuildConfig("cspdensenetb-ref-prn", 64, 0.25)
    net, _ = build_model(cfg, None)
    from quant.calibrate import calibrate_until_alive
    from quant.export import calibration_input

    calibrate_until_alive(net, calibration_input(64))
    with torch.no_grad():  # a dead layer: every pre-activation of s4.d0 negative
        net.layers["s4_d0"].bn.bias.fill_(-100.0)
    p = _ckpt(tmp_path, net)
    with pytest.raises(DegenerateDataError, match=r"s4\.d0.*zeros"):
        export(cfg, tmp_path / "out", ckpt=p, log=quiet)
    assert not (tmp_path / "out" / "model.qonnx.onnx").exists()


def test_folding_batchnorm_keeps_every_integer(tmp_path):
    cfg = BuildConfig("cspdensenetb-ref-prn", 64, 0.25)
    net, _ = build_model(cfg, None)
    from quant.calibrate import calibrate_until_alive
    from quant.export import calibration_input

    x = calibration_input(64)
    calibrate_until_alive(net, x)
    folded = fold_batchnorm(net)
    a, _ = brevitas_codes(net.eval(), x[:2])
    b, _ = brevitas_codes(folded, x[:2])
    assert a.keys() == b.keys()
    assert all(np.array_equal(a[k], b[k]) for k in a)
    buf = io.BytesIO()
    torch.save(folded.state_dict(), buf)  # plain tensors only
    assert not any(k.endswith("running_mean") for k in folded.state_dict())
