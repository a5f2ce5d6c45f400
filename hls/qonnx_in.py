"""A user's own QONNX export as a build directory: ``hwcsp hls --qonnx FILE.onnx``.

The zoo's build directories come from ``quant.export``; this module makes the same three files
(``model.qonnx.onnx``, ``export.json``, ``config.json``) from any QONNX file that follows the
hardware rules, so that the flow and every later stage (golden, sim, verify, rtl) run unchanged:

- the file is normalised the way FINN users run ``qonnx.util.cleanup`` first: initializers
  listed as graph inputs (torch's dynamo exporter) dropped, ``Constant`` nodes folded, shapes
  inferred; the graph input is renamed ``input`` and its Quant output ``input.q`` (the names
  ``io_spec.json`` and the references use); every other tensor keeps the user's name;
- the rules are checked by lowering the model once (``hls.lower``: depthwise convolution, a
  scale that is not a power of two, a float op such as a BatchNorm or a sigmoid inside the
  partition, joins of different scales, an op with no hardware layer) *before* anything is
  written: a refused model leaves no directory behind;
- the directory is ``qonnx-<file stem>-<H>x<W>-…-<sha8 of the file>``; its ``config.json``
  carries the file's hash where a zoo build carries its checkpoint's.

The input must be an unsigned 8-bit Quant with a power-of-two scale (the hardware streams UINT8
pixels). A float input (no input Quant) and a signed one are refused with the fix: quantize the
input with an unsigned 8-bit fixed-point quantizer, shifting signed data by 128 codes in software.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

from golden.fsutil import atomic_dir, sha256_file
from golden.node import QUANT_OPS, constants_as_initializers, load_model
from hls.lower import LoweringError, lower_qonnx
from hwcsp.buildcfg import BITS_RANGE, BuildConfig
from hwcsp.errors import UserError

INPUT, INPUT_Q = "input", "input.q"  # the names io_spec.json and the references expect


class QonnxInputError(UserError, ValueError):
    pass


def load_user_qonnx(path: Path) -> onnx.ModelProto:
    """The file as an ONNX model (``golden.node.load_model``: a missing, corrupt or empty file is
    one clear error) that has Quant nodes."""
    model = load_model(path)
    if not any(n.op_type == "Quant" for n in model.graph.node):
        raise QonnxInputError(
            f"{path} has no Quant nodes: not a QONNX export (export with brevitas.export.export_qonnx)"
        )
    return model


def _rename(g: onnx.GraphProto, old: str, new: str) -> None:
    if old == new:
        return
    if any(new in (*n.input, *n.output) for n in g.node) or any(t.name == new for t in g.initializer):
        raise QonnxInputError(f"tensor name {new!r} is taken in the graph; rename that tensor")
    for n in g.node:
        n.input[:] = [new if t == old else t for t in n.input]
        n.output[:] = [new if t == old else t for t in n.output]
    for vi in (*g.input, *g.output, *g.value_info):
        if vi.name == old:
            vi.name = new


def normalize(model: onnx.ModelProto) -> onnx.ModelProto:
    """The model as the flow expects an export (see module docstring); raises on a graph input
    that is not one NCHW image."""
    import random

    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.fold_constants import FoldConstants
    from qonnx.transformation.general import RemoveUnusedTensors
    from qonnx.transformation.infer_shapes import InferShapes

    model = onnx.ModelProto.FromString(model.SerializeToString())
    g = model.graph
    inits = {t.name for t in g.initializer}
    for vi in [vi for vi in g.input if vi.name in inits]:
        g.input.remove(vi)
    if len(g.input) != 1:
        raise QonnxInputError(
            f"the model has {len(g.input)} graph inputs ({', '.join(i.name for i in g.input)}); "
            "one image input is needed"
        )
    dims = [d.dim_value for d in g.input[0].type.tensor_type.shape.dim]
    if len(dims) != 4 or min(dims) < 1 or dims[0] != 1:
        raise QonnxInputError(
            f"graph input {g.input[0].name}: shape {dims}; one NCHW image (1, C, H, W) of fixed size "
            "is needed"
        )
    constants_as_initializers(g)
    for node in list(g.node):
        if node.op_type == "Identity":
            g.node.remove(node)
            _rename_uses(g, node.output[0], node.input[0])
    gin = g.input[0].name
    firsts = [n for n in g.node if gin in n.input]
    _rename(g, gin, INPUT)
    outs = {o.name for o in g.output}
    if len(firsts) == 1 and firsts[0].op_type == "Quant" and firsts[0].output[0] not in outs:
        _rename(g, firsts[0].output[0], INPUT_Q)
    used = set()
    for i, node in enumerate(g.node):  # names for error messages: the user's, unique
        if not node.name or node.name in used:
            node.name = f"{node.op_type}_{i}"
        used.add(node.name)
    random.seed(0)  # qonnx names new tensors with python's global random generator
    w = ModelWrapper(model)
    folds = FoldConstants(exclude_op_types=list(QUANT_OPS))
    for t in (InferShapes(), folds, RemoveUnusedTensors(), InferShapes()):
        w = w.transform(t)
    _check_outputs(w.model.graph)
    return w.model


def _check_outputs(g: onnx.GraphProto) -> None:
    """Every graph output must be computed from the image (a QuantTensor returned by the last
    layer exports its scale, zero point and bit width as constant outputs)."""
    live = {INPUT}
    for n in g.node:  # topological order (ONNX requires it)
        if live.intersection(n.input):
            live.update(n.output)
    const = [o.name for o in g.output if o.name not in live]
    if const:
        raise QonnxInputError(
            f"graph outputs {', '.join(const)} do not depend on the input (a QuantTensor's scale, "
            "zero point or bit width?): export with return_quant_tensor=False on the last layer"
        )


def _rename_uses(g: onnx.GraphProto, old: str, new: str) -> None:
    """A removed Identity ``new -> old``: its consumers read ``new``; when ``old`` is a graph
    output (whose name must stay), ``new`` is renamed ``old`` everywhere instead."""
    if old in {o.name for o in g.output}:
        old, new = new, old
    for n in g.node:
        n.input[:] = [new if t == old else t for t in n.input]
        n.output[:] = [new if t == old else t for t in n.output]


def _quant_facts(model: onnx.ModelProto) -> list[dict]:
    """One record per activation Quant (input first): tensor, bits, scale, signedness."""
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    acts = []
    for n in model.graph.node:
        if n.op_type != "Quant" or n.input[0] in inits:
            continue
        scale = np.asarray(inits[n.input[1]], dtype=np.float64).reshape(-1)
        signed = next((helper.get_attribute_value(a) for a in n.attribute if a.name == "signed"), 1)
        acts.append(
            {
                "layer": INPUT if n.output[0] == INPUT_Q else n.output[0],
                "node": n.name,
                "bits": int(np.asarray(inits[n.input[3]]).reshape(-1)[0]),
                "scale": float(scale[0]),
                "signed": bool(signed),
            }
        )
    acts.sort(key=lambda a: a["layer"] != INPUT)
    return acts


def _weight_bits(model: onnx.ModelProto) -> list[tuple[str, int]]:
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    uses = {i: n for n in model.graph.node for i in n.input}
    out = []
    for n in model.graph.node:
        if n.op_type == "Quant" and n.input[0] in inits:
            user = uses.get(n.output[0])
            if user is not None and list(user.input).index(n.output[0]) == 1:  # a weight, not a bias
                out.append((n.name, int(np.asarray(inits[n.input[3]]).reshape(-1)[0])))
    return out


def _check_bits(model: onnx.ModelProto, acts: list[dict]) -> tuple[int, int]:
    lo, hi = BITS_RANGE
    weights = _weight_bits(model)
    for name, bits in weights:
        if not lo <= bits <= hi:
            raise QonnxInputError(f"{name}: {bits}-bit weights; the hardware supports {lo} to {hi} bits")
    for a in acts[1:]:
        if not lo <= a["bits"] <= hi:
            raise QonnxInputError(
                f"{a['node']}: {a['bits']}-bit activations; the hardware supports {lo} to {hi} bits"
            )
    wbits = max((b for _, b in weights), default=hi)
    abits = max((a["bits"] for a in acts[1:]), default=hi)
    return wbits, abits


def _check_input(model: onnx.ModelProto, acts: list[dict]) -> None:
    first = [n for n in model.graph.node if INPUT in n.input]
    if not acts or acts[0]["layer"] != INPUT:
        what = ", ".join(f"{n.name} ({n.op_type})" for n in first) or "nothing"
        raise QonnxInputError(
            f"the graph input feeds {what}, not one input Quant: a float input has no hardware "
            "stream; quantize it first with an unsigned 8-bit fixed-point quantizer (Brevitas: "
            "QuantIdentity(act_quant=Uint8ActPerTensorFixedPoint))"
        )
    a = acts[0]
    if a["signed"] or a["bits"] != 8:
        raise QonnxInputError(
            f"{a['node']}: the input Quant is {'signed ' if a['signed'] else ''}{a['bits']}-bit; the "
            "hardware streams unsigned 8-bit pixels: shift signed data by 128 codes in software and "
            "quantize with an unsigned 8-bit fixed-point quantizer"
        )


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower() or "model"


def build_config(path: Path, model: onnx.ModelProto, wbits: int, abits: int) -> BuildConfig:
    _, _, h, w = (d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim)
    return BuildConfig(
        model=f"qonnx-{_slug(Path(path).stem)}-{h}x{w}",
        size=max(h, w),
        wbits=wbits,
        abits=abits,
        num_classes=1,
        ckpt_sha256=sha256_file(path),
    )


def export_spec(path: Path, cfg: BuildConfig, model: onnx.ModelProto, acts: list[dict]) -> dict:
    """export.json of a user's model: its source, input, outputs (raw feature maps) and the
    activation quantizers the verification compares tensor by tensor."""
    inp = acts[0]
    return {
        "config": json.loads(cfg.to_json()),
        "source": {"qonnx": Path(path).name, "sha256": cfg.ckpt_sha256},
        "input": {"name": INPUT, "bits": 8, "signed": False, "scale": inp["scale"], "layout": "NCHW"},
        "outputs": [{"name": o.name, "kind": "raw"} for o in model.graph.output],
        "activations": [
            {k: a[k] for k in ("layer", "bits", "scale", "signed")} | {"group": a["layer"]} for a in acts
        ],
    }


def prepare_build_dir(path: Path, build_root: Path, log=print) -> Path:
    """The build directory of the QONNX file ``path`` (made atomically when missing, after the
    rules are checked; reused when its config matches)."""
    path = Path(path)
    model = normalize(load_user_qonnx(path))
    acts = _quant_facts(model)
    _check_input(model, acts)
    wbits, abits = _check_bits(model, acts)
    cfg = build_config(path, model, wbits, abits)
    d = cfg.path(Path(build_root))
    cfg.check_dir(d)
    if all((d / f).is_file() for f in ("model.qonnx.onnx", "config.json", "export.json")):
        log(f"qonnx: reusing {d} (config.json matches)")
        return d
    try:
        lower_qonnx(model)  # the hardware rules, before anything is written
    except LoweringError as e:
        raise QonnxInputError(f"{path.name}: {e}") from e
    with atomic_dir(d) as tmp:
        (tmp / "model.qonnx.onnx").write_bytes(model.SerializeToString(deterministic=True))
        (tmp / "config.json").write_text(cfg.to_json())
        (tmp / "export.json").write_text(json.dumps(export_spec(path, cfg, model, acts), indent=1) + "\n")
    log(f"qonnx: wrote {d} from {path}")
    return d
