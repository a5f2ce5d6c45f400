"""The software side of the dataflow graph, as `io_spec.json` describes it.

The HW partition sees integers only: a UINT8 NHWC image in, integer head accumulators out.  The
float network it replaces is recovered around it: the input is `pixel * scale`, and each head output
is `(int + bias[c]) * scale` (per-channel integer bias, power-of-two scale), NHWC -> NCHW.  These
functions do exactly that, so a detector's float outputs can be rebuilt from golden's integers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from golden.datatypes import DType, graph_dtype_names, parse_dtype
from golden.errors import GoldenError


@dataclass(frozen=True)
class InputSpec:
    """The graph input: integer codes of `dtype`, NHWC `shape`; the float model sees `code * scale`."""

    name: str
    shape: tuple[int, ...]
    dtype: DType
    scale: float


@dataclass(frozen=True)
class OutputSpec:
    """One head: integer `dtype` NHWC `shape`; float value `(int + bias[c]) * scale`."""

    name: str
    qonnx_name: str
    shape: tuple[int, ...]
    dtype: DType
    scale: float
    bias: np.ndarray  # int64, one per channel
    stride: int | None
    anchors: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class IoSpec:
    """io_spec.json, parsed and validated."""

    input: InputSpec
    outputs: tuple[OutputSpec, ...]
    num_classes: int | None
    raw: dict[str, Any]

    def output(self, name: str) -> OutputSpec:
        """The output called `name` (HW tensor name or QONNX name)."""
        for o in self.outputs:
            if name in (o.name, o.qonnx_name):
                return o
        raise GoldenError(f"io_spec has no output {name!r}")


def _layout(d: dict, what: str) -> None:
    if d.get("layout", "NHWC") != "NHWC":
        raise GoldenError(f"io_spec {what}: layout {d.get('layout')!r}, only NHWC is supported")


def _shape(value: Any, what: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(s) for s in value)
    except (TypeError, ValueError) as e:
        raise GoldenError(f"io_spec {what}: bad shape {value!r}") from e
    if len(shape) != 4 or min(shape) < 1:
        raise GoldenError(f"io_spec {what}: shape {list(shape)} is not a positive NHWC shape")
    return shape


def load_io_spec(source: str | Path | dict) -> IoSpec:
    """Parse io_spec.json (a path or the loaded dict); a missing or malformed field is a GoldenError."""
    if isinstance(source, dict):
        raw = source
    else:
        try:
            raw = json.loads(Path(source).read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise GoldenError(f"{source}: not a readable io_spec.json ({e})") from e
    try:
        i = raw["input"]
        _layout(i, "input")
        inp = InputSpec(
            str(i["name"]), _shape(i["shape"], "input"), parse_dtype(i["dtype"]), float(i["scale"])
        )
        outs = []
        for o in raw["outputs"]:
            _layout(o, f"output {o.get('name')}")
            shape = _shape(o["shape"], f"output {o['name']}")
            bias = np.asarray(o["bias"], dtype=np.float64)
            if bias.shape != (shape[-1],) or not np.all(np.round(bias) == bias):
                raise GoldenError(f"io_spec output {o['name']}: bias must be {shape[-1]} integers")
            outs.append(
                OutputSpec(
                    name=str(o["name"]),
                    qonnx_name=str(o.get("qonnx_name", o["name"])),
                    shape=shape,
                    dtype=parse_dtype(o["dtype"]),
                    scale=float(o["scale"]),
                    bias=bias.astype(np.int64),
                    stride=None if o.get("stride") is None else int(o["stride"]),
                    anchors=tuple((int(a[0]), int(a[1])) for a in o.get("anchors", [])),
                )
            )
    except (KeyError, TypeError, ValueError) as e:
        if isinstance(e, GoldenError):
            raise
        raise GoldenError(f"io_spec is malformed: {type(e).__name__}: {e}") from e
    if not outs:
        raise GoldenError("io_spec lists no outputs")
    return IoSpec(inp, tuple(outs), raw.get("num_classes"), raw)


def check_against_graph(spec: IoSpec, graph: onnx.GraphProto) -> None:
    """The io_spec must describe the graph it comes with: names, shapes and datatypes."""

    def shape_of(vi: onnx.ValueInfoProto) -> tuple[int, ...]:
        return tuple(int(d.dim_value) for d in vi.type.tensor_type.shape.dim)

    inits = {t.name for t in graph.initializer}
    g_in = {vi.name: vi for vi in graph.input if vi.name not in inits}
    g_out = {vi.name: vi for vi in graph.output}
    dtypes = graph_dtype_names(graph)
    problems = []
    if list(g_in) != [spec.input.name]:
        problems.append(f"graph inputs {list(g_in)} vs io_spec input {spec.input.name!r}")
    elif shape_of(g_in[spec.input.name]) != spec.input.shape:
        problems.append(f"input shape {list(shape_of(g_in[spec.input.name]))} vs {list(spec.input.shape)}")
    elif dtypes.get(spec.input.name, spec.input.dtype.name) != spec.input.dtype.name:
        problems.append(f"input datatype {dtypes[spec.input.name]} vs {spec.input.dtype.name}")
    if sorted(g_out) != sorted(o.name for o in spec.outputs):
        problems.append(
            f"graph outputs {sorted(g_out)} vs io_spec outputs {sorted(o.name for o in spec.outputs)}"
        )
    else:
        for o in spec.outputs:
            if shape_of(g_out[o.name]) != o.shape:
                problems.append(f"output {o.name} shape {list(shape_of(g_out[o.name]))} vs {list(o.shape)}")
            if dtypes.get(o.name, o.dtype.name) != o.dtype.name:
                problems.append(f"output {o.name} datatype {dtypes[o.name]} vs {o.dtype.name}")
    if problems:
        raise GoldenError("io_spec.json does not match model.hw.onnx: " + "; ".join(problems))


def images_to_input(images: np.ndarray, spec: IoSpec) -> np.ndarray:
    """uint8 NCHW images (N, C, H, W) -> the graph input, int64 NHWC, N frames stacked on axis 0."""
    x = np.asarray(images)
    _, h, w, c = spec.input.shape
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4 or x.shape[1:] != (c, h, w):
        raise GoldenError(f"images of shape {list(x.shape)}, expected (N, {c}, {h}, {w}) (NCHW)")
    if x.dtype.kind == "f" and not np.all(np.round(x) == x):
        raise GoldenError("images hold non-integer values; pass the uint8 pixel codes")
    x = x.astype(np.int64)
    if x.size and (int(x.min()) < spec.input.dtype.min or int(x.max()) > spec.input.dtype.max):
        raise GoldenError(
            f"image values in [{int(x.min())}, {int(x.max())}] are outside {spec.input.dtype.name} "
            f"[{spec.input.dtype.min}, {spec.input.dtype.max}]"
        )
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1))


def input_to_float(x: np.ndarray, spec: IoSpec) -> np.ndarray:
    """The float NCHW tensor the network sees for integer NHWC input codes: code * scale."""
    return (np.asarray(x, dtype=np.float64) * spec.input.scale).transpose(0, 3, 1, 2)


def heads_to_float(
    outputs: dict[str, np.ndarray], spec: IoSpec, dtype: type = np.float32
) -> dict[str, np.ndarray]:
    """Integer head outputs (NHWC, N frames on axis 0) -> float NCHW: (int + bias) * scale.

    Computed in float64 (exact: the scale is a power of two) and cast to `dtype` — float32, the
    float network's type, rounds only when |int + bias| >= 2^24.  Keys are the HW output names.
    """
    result = {}
    for o in spec.outputs:
        if o.name not in outputs:
            raise GoldenError(f"heads_to_float: output {o.name!r} is missing")
        v = np.asarray(outputs[o.name])
        per_frame = int(np.prod(o.shape))
        if v.size == 0 or v.size % per_frame:
            raise GoldenError(
                f"heads_to_float: output {o.name!r} has {v.size} elements, not a multiple of {list(o.shape)}"
            )
        if v.dtype.kind == "f" and not np.all(np.round(v) == v):
            raise GoldenError(f"heads_to_float: output {o.name!r} holds non-integer values")
        v = v.astype(np.int64).reshape(-1, *o.shape[1:])
        ok = o.dtype.allowed(v)
        if not bool(np.all(ok)):
            raise GoldenError(f"heads_to_float: output {o.name!r} holds values outside {o.dtype.name}")
        f = (v + o.bias).astype(np.float64) * o.scale
        result[o.name] = np.ascontiguousarray(f.transpose(0, 3, 1, 2)).astype(dtype)
    return result
