"""The references golden is refereed against on real graphs, all compared in integer codes.

* FINN's python execution (`execute_onnx`) of `model.hw_generic.onnx`: every tensor;
* qonnx's execution of the QONNX export: the outputs (`(int + bias) * scale`) and every
  activation-quantizer output through `tensor_map.json`;
* Brevitas' integer codes of the BN-folded net (`ExportResult.net`): the same tensors.

`Tally` counts tensors, integers and mismatching integers so tests can report what they covered.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


@dataclass
class Tally:
    """Tensors and integers compared, and how many integers differed (with the first offenders)."""

    tensors: int = 0
    integers: int = 0
    mismatches: int = 0
    detail: list[str] = field(default_factory=list)

    def add(self, what: str, golden: np.ndarray, ref: np.ndarray) -> None:
        ref = np.asarray(ref)
        assert np.array_equal(ref, np.round(ref)), f"{what}: reference is not integral"
        gold = np.asarray(golden)
        if gold.size != ref.size:
            bad = ref.size
        else:
            bad = int(np.count_nonzero(gold.reshape(ref.shape) != ref.astype(np.int64)))
        self.tensors += 1
        self.integers += ref.size
        self.mismatches += bad
        if bad and len(self.detail) < 8:
            self.detail.append(f"{what}: {bad} of {ref.size}")

    def __str__(self) -> str:
        return f"{self.tensors} tensors, {self.integers} integers, {self.mismatches} mismatches" + (
            f" ({'; '.join(self.detail)})" if self.detail else ""
        )


@dataclass
class Graphs:
    """One hls variant with what the references need: models, io_spec, tensor map, scales."""

    hw_dir: Path
    io_spec: dict
    tensor_map: dict[str, str]
    act_scales: dict[str, float]
    generic: Any  # qonnx ModelWrapper of model.hw_generic.onnx
    qonnx: Any  # qonnx ModelWrapper of model.qonnx.onnx

    @classmethod
    def load(cls, hw_dir: Path, finn: Any) -> Graphs:
        hw_dir = Path(hw_dir)
        export = json.loads((hw_dir.parent / "export.json").read_text())
        tensor_map = json.loads((hw_dir / "tensor_map.json").read_text())
        missing = [a["layer"] for a in export["activations"] if a["layer"] not in tensor_map]
        assert not missing, f"tensor_map.json lacks activation layers {missing}"
        return cls(
            hw_dir=hw_dir,
            io_spec=json.loads((hw_dir / "io_spec.json").read_text()),
            tensor_map=tensor_map,
            act_scales={a["layer"]: a["scale"] for a in export["activations"]},
            generic=finn.ModelWrapper(str(hw_dir / "model.hw_generic.onnx")),
            qonnx=finn.ModelWrapper(str(hw_dir.parent / "model.qonnx.onnx")),
        )


def nchw(a: np.ndarray) -> np.ndarray:
    return a.transpose(0, 3, 1, 2) if a.ndim == 4 else a


def against_finn(g: Graphs, finn: Any, golden: dict[str, np.ndarray], x: np.ndarray, tally: Tally) -> None:
    """Every tensor of one frame: golden (return_all, this frame) vs FINN's generic-graph execution."""
    ref = finn.execute_onnx(g.generic, {g.io_spec["input"]["name"]: x.astype(np.float32)}, True)
    missing = [t for t in golden if t not in ref]
    assert not missing, f"FINN's context lacks {missing[:4]}"
    for t, v in golden.items():
        tally.add(f"finn:{t}", v, ref[t])


def _outputs_and_acts(
    g: Graphs,
    golden: dict[str, np.ndarray],
    ref_outputs: dict[str, np.ndarray],
    ref_acts: dict[str, np.ndarray],
) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, golden NCHW ints, reference NCHW ints) for the outputs and every mapped activation."""
    pairs = []
    for o in g.io_spec["outputs"]:
        bias = np.asarray(o["bias"]).reshape(1, -1, 1, 1)
        ref = ref_outputs[o["qonnx_name"]]
        ref = ref[:, :, None, None] if ref.ndim == 2 else ref  # a classifier's logits: 1x1 maps
        pairs.append((o["name"], nchw(golden[o["name"]]) + bias, ref))
    for layer, hw in g.tensor_map.items():
        pairs.append((layer, nchw(golden[hw]), ref_acts[layer]))
    return pairs


def against_qonnx(g: Graphs, finn: Any, golden: dict[str, np.ndarray], x: np.ndarray, tally: Tally) -> None:
    """Outputs and activations of one frame: golden vs qonnx's execution of the QONNX export."""
    scale = g.io_spec["input"]["scale"]
    ctx = finn.execute_onnx(g.qonnx, {"input": (nchw(x) * scale).astype(np.float32)}, True)
    outs = {o["qonnx_name"]: ctx[o["qonnx_name"]] / o["scale"] for o in g.io_spec["outputs"]}
    acts = {
        layer: ctx["input.q" if layer == "input" else layer] / g.act_scales[layer] for layer in g.tensor_map
    }
    for name, gold, ref in _outputs_and_acts(g, golden, outs, acts):
        tally.add(f"qonnx:{name}", gold, ref)


def brevitas_codes(net: Any, g: Graphs, x: np.ndarray) -> tuple[dict, dict]:
    """Brevitas integer codes (NCHW) of every activation quantizer and the outputs at io_spec's scale."""
    import torch

    taps: dict = {}
    inp = torch.as_tensor(nchw(x), dtype=torch.float32) * g.io_spec["input"]["scale"]
    with torch.no_grad():
        outs = net(inp, taps=taps)
    outs = [outs] if torch.is_tensor(outs) else outs  # a classifier returns its logits alone
    acts = {layer: taps[layer].int().numpy().astype(np.int64) for layer in g.tensor_map}
    names = [n.name for n in net.graph.outputs()]
    heads = {}
    for name, y in zip(names, outs, strict=True):
        o = next(o for o in g.io_spec["outputs"] if o["qonnx_name"] == name)
        heads[name] = y.numpy().astype(np.float64) / o["scale"]
    return acts, heads


def against_brevitas(g: Graphs, net: Any, golden: dict[str, np.ndarray], x: np.ndarray, tally: Tally) -> None:
    """Outputs and activations (all frames of `x` at once): golden vs Brevitas' integer codes."""
    acts, heads = brevitas_codes(net, g, x)
    for name, gold, ref in _outputs_and_acts(g, golden, heads, acts):
        tally.add(f"brevitas:{name}", gold, ref)


def chain_tally(hw: Path, net: Any | None, finn: Any, x: np.ndarray) -> Tally:
    """Golden on ``hw``'s folded graph vs FINN's python execution of the generic graph (every
    tensor) and qonnx on the export (one frame: FINN is the slow one), and vs the zoo's Brevitas
    module ``net`` (outputs and every activation, all frames of the integer input ``x``, NHWC;
    None for a user's QONNX file, which has no zoo module)."""
    import onnx

    from golden.execute import Program
    from golden.software import load_io_spec

    spec = load_io_spec(hw / "io_spec.json")
    gold = Program(onnx.load(str(hw / "model.hw.onnx"))).run({spec.input.name: x}, return_all=True)
    g, tally = Graphs.load(hw, finn), Tally()
    one = {k: v[:1] for k, v in gold.items()}
    against_finn(g, finn, one, x[:1], tally)
    against_qonnx(g, finn, one, x[:1], tally)
    if net is not None:
        against_brevitas(g, net, gold, x, tally)
    return tally
