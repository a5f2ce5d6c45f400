"""QONNX export of a configuration, with BatchNorm folded and liveness checked.

Writes into the configuration's build directory:
- ``model.qonnx.onnx``: input ``input`` (float, p/256 of UINT8 pixels), outputs named after the
  model's output layers; every activation-quantizer output renamed to its layer's name, so
  later stages and tests can find it;
- ``export.json``: what the later stages need from the model without importing it (input
  scale, per-output stride and anchors, per-activation layer/group/bits/scale, liveness);
- ``config.json``: the configuration (the guard of the build directory).
"""

from __future__ import annotations

import copy
import io
import json
import random
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import brevitas.nn as qnn
import onnx
import torch

from golden.fsutil import atomic_write, sha256_file
from golden.node import constants_as_initializers
from hwcsp.buildcfg import BuildConfig
from hwcsp.graph import Output
from hwcsp.modules import ConvBN
from hwcsp.net import CSPNet, layer_key
from hwcsp.quant import INPUT_BITS, INPUT_SCALE, BiasQuant, WeightQuant
from hwcsp.registry import create_model, get_entry
from quant.calibrate import (
    DegenerateDataError,
    TensorHealth,
    activation_health,
    calibrate_until_alive,
    check_scales,
    images_to_input,
)
from quant.checkpoint import CheckpointError, check_matches, load_checkpoint

N_CALIB = 8


@dataclass
class ExportResult:
    onnx_path: Path
    config: BuildConfig
    calibrated: bool
    health: list[TensorHealth]
    net: CSPNet  # the exported (BatchNorm-folded) module


def fold_batchnorm(net: CSPNet) -> CSPNet:
    """A copy whose convs carry BatchNorm in their weights and integer biases."""
    out = copy.deepcopy(net).eval()
    for n in out.graph.nodes:
        if n.op != "conv":
            continue
        mod: ConvBN = out.layers[layer_key(n.name)]
        if mod.bn is None:
            continue
        w, b = mod.folded()
        c = mod.conv
        conv = qnn.QuantConv2d(
            c.in_channels,
            c.out_channels,
            c.kernel_size,
            stride=c.stride,
            padding=c.padding,
            groups=c.groups,
            bias=True,
            weight_quant=WeightQuant,
            weight_bit_width=int(c.quant_weight().bit_width),
            bias_quant=BiasQuant,
            return_quant_tensor=True,
        )
        with torch.no_grad():
            conv.weight.copy_(w)
            conv.bias.copy_(b)
        mod.conv, mod.bn = conv, None
    return out


def build_model(
    cfg: BuildConfig, ckpt: Path | None, loaded: tuple[dict, dict] | None = None
) -> tuple[CSPNet, bool]:
    """The quantized model of ``cfg``: from a checkpoint, or seeded (calibration still due)."""
    torch.manual_seed(cfg.seed)
    net = create_model(
        cfg.model,
        size=cfg.size,
        width=cfg.width,
        wbits=cfg.wbits,
        abits=cfg.abits,
        num_classes=cfg.num_classes,
    )
    if ckpt is None:
        return net, True
    state, meta = loaded or load_checkpoint(ckpt)
    check_matches(meta, ckpt, model=cfg.model, size=cfg.size, width=cfg.width, num_classes=cfg.num_classes)
    if meta.get("quant"):
        check_matches(meta, ckpt, wbits=cfg.wbits, abits=cfg.abits)
    missing, unexpected = net.load_state_dict(state, strict=False)
    # a float checkpoint lacks the activation scales (signed branches' too) and the frozen zero
    # biases of BN convs
    act_only = all(k.startswith(("acts.", "signed_acts.")) or k.endswith("conv.bias") for k in missing)
    if unexpected or not act_only:
        detail = f"missing {missing[:3]}, unexpected {unexpected[:3]}"
        raise CheckpointError(f"checkpoint '{ckpt}' does not fit {cfg.model}: {detail}")
    # A float checkpoint carries no activation scales: those are calibrated.
    return net, not meta.get("quant")


def calibration_input(
    size: int,
    n: int = N_CALIB,
    seed: int = 0,
    folder: Path | None = None,
    data: str | None = None,
    described: bool = False,
):
    """``n`` calibration images: the first of an image folder (an imported model's --calib), else
    of the checkpoint's training data when it is present (an .npz, class or COCO folder), else
    digits val images. ``described``: (tensor, where they came from)."""
    images, source = None, "digits val images"
    if folder is not None:
        from quant.data.folder import folder_images

        images, source = folder_images(folder, size, n), f"images of {folder}"
    elif data is not None:
        from quant.tasks import sample_images

        images = sample_images(data, size, n)
        source = f"training images of {data}" if images is not None else source
    if images is None:
        from quant.data import calibration_images

        images = calibration_images(size, n, seed)
    x = images_to_input(images)
    return (x, source) if described else x


def _rename_tensors(model: onnx.ModelProto, mapping: dict[str, str]) -> None:
    g = model.graph
    for node in g.node:
        node.input[:] = [mapping.get(i, i) for i in node.input]
        node.output[:] = [mapping.get(o, o) for o in node.output]
    for vi in list(g.value_info) + list(g.output) + list(g.input):
        vi.name = mapping.get(vi.name, vi.name)


def act_tensor_names(model: onnx.ModelProto, net: CSPNet) -> dict[str, str]:
    """Map Brevitas' per-call export names of activation quantizers to layer names.

    The i-th call of the activation module ``acts[g]`` exports as
    ``/<g>/act_quant/export_handler[_i]/Quant_output_0`` (calls happen in graph order); the
    input quantizer's output becomes ``input.q``.
    """
    found: dict[tuple[str, int], str] = {}
    pat = re.compile(r"^/([^/]+)/act_quant/export_handler(?:_(\d+))?/Quant_output_0$")
    mapping, count = {}, {}
    for node in model.graph.node:
        m = pat.match(node.output[0]) if node.op_type == "Quant" else None
        if m and m.group(1) == "input":
            mapping[node.output[0]] = "input.q"
        elif m and (m.group(1) in net.acts or m.group(1) in net.signed_acts or m.group(1) in net.gates):
            found[(m.group(1), int(m.group(2) or 0))] = node.output[0]
    calls = [(layer, layer_key(group)) for layer, group in net.act_calls()]
    calls += net.signed_calls() + net.gate_calls()
    for layer, k in calls:
        i = count.get(k, 0)
        count[k] = i + 1
        if (k, i) not in found:
            raise RuntimeError(f"export: no Quant node for activation call {i} of {k} ({layer})")
        mapping[found[(k, i)]] = layer
    if len(mapping) != len(found) + 1:
        raise RuntimeError("export: activation quantizer calls and exported Quant nodes disagree")
    return mapping


def to_qonnx(net: CSPNet, size: int) -> onnx.ModelProto:
    from brevitas.export import export_qonnx

    outs = [n.name for n in net.graph.outputs()]
    buf = io.BytesIO()
    export_qonnx(
        net.eval(),
        torch.zeros(1, 3, size, size),
        buf,
        input_names=["input"],
        output_names=outs,
        dynamo=False,
    )
    model = onnx.load_from_string(buf.getvalue())
    _rename_tensors(model, act_tensor_names(model, net))
    return tidy(model)


def tidy(model: onnx.ModelProto) -> onnx.ModelProto:
    """Shapes inferred and constant subgraphs (e.g. of F.pad) folded; tensor names kept."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.fold_constants import FoldConstants
    from qonnx.transformation.general import GiveUniqueNodeNames, RemoveUnusedTensors
    from qonnx.transformation.infer_shapes import InferShapes

    constants_as_initializers(model.graph)
    random.seed(0)  # qonnx names new tensors with python's global random generator
    w = ModelWrapper(model)
    for t in (
        InferShapes(),
        FoldConstants(exclude_op_types=["Quant"]),
        RemoveUnusedTensors(),
        GiveUniqueNodeNames(),
        InferShapes(),
    ):
        w = w.transform(t)
    w.model.producer_name = "hwcsp"
    return w.model


def spec_json(net: CSPNet, cfg: BuildConfig, health: list[TensorHealth], calibrated: bool) -> dict:
    acts = [
        {
            "layer": h.layer,
            "group": h.group,
            "bits": h.bits,
            "scale": h.scale,
            "codes_used": h.codes_used,
            "zero_share": round(h.zero_share, 4),
        }
        for h in health
    ]
    outputs = []
    for n in net.graph.outputs():
        o: Output = n.attrs
        outputs.append(
            {"name": n.name, "kind": o.kind, "stride": o.stride, "anchors": [list(a) for a in o.anchors]}
        )
    return {
        "config": asdict(cfg),
        "input": {
            "name": "input",
            "bits": INPUT_BITS,
            "signed": False,
            "scale": INPUT_SCALE,
            "layout": "NCHW",
        },
        "outputs": outputs,
        "activations": acts,
        "weights": "calibrated seed" if calibrated and not cfg.ckpt_sha256 else "checkpoint",
    }


def export(cfg: BuildConfig, out_dir: Path, ckpt: Path | None = None, log=print) -> ExportResult:
    """Export ``cfg`` into ``out_dir`` (files replaced atomically, directory guarded)."""
    out_dir = Path(out_dir)
    loaded = load_checkpoint(ckpt) if ckpt is not None else None
    if ckpt is not None and not cfg.ckpt_sha256:
        cfg = BuildConfig(**{**asdict(cfg), "ckpt_sha256": sha256_file(ckpt)})
    cfg.check_dir(out_dir)
    net, needs_calib = build_model(cfg, ckpt, loaded)
    folder = get_entry(cfg.model).calib
    data = loaded[1].get("data") if loaded is not None else None
    x, source = calibration_input(cfg.size, folder=folder, data=data, described=True)
    if needs_calib:
        log(
            f"export: {'seeded' if ckpt is None else 'float-checkpoint'} weights — calibrating "
            f"{'BatchNorm and ' if ckpt is None else ''}activation scales on {x.shape[0]} {source}"
        )
        calibrate_until_alive(net, x, set_bn=ckpt is None)
    net = fold_batchnorm(net)
    check_scales(net)
    health = activation_health(net, x)
    # the input's codes are the data's pixels at a fixed scale: nothing calibration chose
    bad = [h for h in health if not h.ok and h.layer != "input" and h.group != "gate"]
    if bad:
        raise DegenerateDataError(
            "export refused: activations are degenerate on the calibration images (need >= 50% of codes "
            "used and <= 90% zeros): " + "; ".join(h.describe() for h in bad)
        )
    model = to_qonnx(net, cfg.size)
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write(out_dir / "model.qonnx.onnx", model.SerializeToString(deterministic=True))
    spec = spec_json(net, cfg, health, needs_calib)
    atomic_write(out_dir / "export.json", json.dumps(spec, indent=1) + "\n")
    atomic_write(out_dir / "config.json", cfg.to_json())
    return ExportResult(out_dir / "model.qonnx.onnx", cfg, needs_calib, health, net)
