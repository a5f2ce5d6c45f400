"""Darknet ``.weights`` files: the float parameters of a cfg's layers, in the order darknet writes them.

Layout (AlexeyAB/darknet, ``load_weights``): a header of int32 major, minor, revision, then ``seen``
(images trained on) as uint64 when major*10 + minor >= 2 (both < 1000), else int32; then, for every
layer in cfg order that has parameters, float32 arrays:

- ``[convolutional]``: biases (filters); scales, rolling means, rolling variances (filters each) when
  ``batch_normalize=1``; weights (filters x channels/groups x size x size);
- ``[connected]``: biases (outputs); weights (outputs x inputs); then scales, means, variances when
  batch-normalized.

The layer shapes come from a walk over the cfg's sections (``parse_cfg``, the one cfg parser), at
full width and the cfg's own input size (``[connected]`` reads a flattened map). The file must hold
exactly the parameters the cfg implies: a short or long file is refused, naming both counts.

Darknet normalizes with ``(x - mean) / (sqrt(var) + 1e-6)``, PyTorch with ``sqrt(var + eps)``:
``torch_batchnorm`` converts, so the imported BatchNorm computes what darknet's did.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from hwcsp.darknet_cfg import CfgError, Section, parse_cfg

DARKNET_BN_EPS = 1e-6  # added to sqrt(var), not to var


class WeightsError(CfgError):
    """A .weights file that does not belong to its cfg, or that is not a Darknet weights file."""


@dataclass(frozen=True)
class Header:
    major: int
    minor: int
    revision: int
    seen: int

    @property
    def seen_is_64bit(self) -> bool:
        return self.major * 10 + self.minor >= 2


@dataclass
class LayerParams:
    """One layer's parameters. ``weights`` is (filters, C/groups, k, k) or (outputs, inputs)."""

    index: int  # darknet layer index (0 = the first section after [net])
    kind: str  # "convolutional" or "connected"
    line: int  # where the section starts in the cfg, for messages
    biases: np.ndarray
    weights: np.ndarray
    bn: tuple[np.ndarray, np.ndarray, np.ndarray] | None  # scales, rolling means, rolling variances

    @property
    def floats(self) -> int:
        return self.biases.size + self.weights.size + (3 * self.biases.size if self.bn else 0)


@dataclass(frozen=True)
class _Shape:
    c: int
    h: int
    w: int


@dataclass(frozen=True)
class ParamLayout:
    """What the cfg says the file holds for one layer (no data)."""

    index: int
    kind: str
    line: int
    outputs: int
    weight_shape: tuple[int, ...]
    bn: bool

    @property
    def floats(self) -> int:
        n = int(np.prod(self.weight_shape)) + self.outputs
        return n + (3 * self.outputs if self.bn else 0)


def param_layout(sections: list[Section]) -> list[ParamLayout]:
    """The parameter-carrying layers of a cfg with their shapes, in file order."""
    net = sections[0]
    x = _Shape(net.int("channels", 3), net.int("height", 0), net.int("width", 0))
    shapes: list[_Shape] = []
    out: list[ParamLayout] = []
    for i, s in enumerate(sections[1:]):
        if s.kind == "convolutional":
            filters, k, groups = s.int("filters"), s.int("size", 1), s.int("groups", 1)
            if groups < 1 or x.c % groups or filters % groups:
                raise WeightsError(
                    f"[convolutional] at line {s.line}: groups={groups} does not divide "
                    f"{x.c} input channels and {filters} filters"
                )
            stride = s.int("stride", 1)
            pad = k // 2 if s.int("pad", 0) else s.int("padding", 0)
            h, w = ((d + 2 * pad - k) // stride + 1 if d else 0 for d in (x.h, x.w))
            bn = s.int("batch_normalize", 0) == 1
            out.append(ParamLayout(i, s.kind, s.line, filters, (filters, x.c // groups, k, k), bn))
            x = _Shape(filters, h, w)
        elif s.kind == "connected":
            n_out = s.int("output")
            n_in = x.c * max(x.h, 1) * max(x.w, 1)
            out.append(ParamLayout(i, s.kind, s.line, n_out, (n_out, n_in), s.int("batch_normalize", 0) == 1))
            x = _Shape(n_out, 1, 1)
        elif s.kind == "maxpool":
            k, stride = s.int("size", 1), s.int("stride", 1)
            pad = s.int("padding", k - 1)
            c = s.int("out_channels", x.c) if s.get("maxpool_depth") else x.c
            x = _Shape(c, *((d + pad - k) // stride + 1 if d else 0 for d in (x.h, x.w)))
        elif s.kind == "avgpool":
            x = _Shape(x.c, 1, 1)
        elif s.kind == "upsample":
            st = s.int("stride", 2)
            x = _Shape(x.c, x.h * st, x.w * st)
        elif s.kind == "route":
            srcs = [shapes[o + i if o < 0 else o] for o in _refs(s, i)]
            groups = s.int("groups", 1)
            x = _Shape(sum(t.c for t in srcs) // groups, srcs[0].h, srcs[0].w)
        elif s.kind in ("shortcut", "softmax", "yolo", "dropout", "sam", "scale_channels"):
            pass  # the previous layer's shape
        else:
            raise WeightsError(f"[{s.kind}] at line {s.line}: unknown layer type for a .weights file")
        shapes.append(x)
    return out


def _refs(s: Section, i: int) -> list[int]:
    refs = s.ints("layers")
    for o in refs:
        j = o + i if o < 0 else o
        if not 0 <= j < i:
            raise WeightsError(f"[route] at line {s.line}: layer {o} is out of range (this is layer {i})")
    return refs


def expected_floats(cfg_text: str) -> int:
    """Floats after the header of a .weights file for ``cfg_text`` (Darknet's "all floats" count)."""
    return sum(p.floats for p in param_layout(parse_cfg(cfg_text)))


def read_header(data: bytes) -> tuple[Header, int]:
    """The header and its length in bytes (16 or 20)."""
    if len(data) < 16:
        raise WeightsError(f"not a Darknet .weights file: {len(data)} bytes, shorter than any header")
    major, minor, revision = struct.unpack_from("<3i", data, 0)
    if not (0 <= major < 1000 and 0 <= minor < 1000 and revision >= 0):
        raise WeightsError(
            f"not a supported Darknet .weights header: version {major}.{minor}.{revision} "
            "(major and minor must be below 1000; transposed files are not supported)"
        )
    if major * 10 + minor >= 2:
        if len(data) < 20:
            raise WeightsError("truncated .weights header (a 64-bit 'seen' needs 20 bytes)")
        (seen,) = struct.unpack_from("<Q", data, 12)
        return Header(major, minor, revision, seen), 20
    (seen,) = struct.unpack_from("<i", data, 12)
    return Header(major, minor, revision, seen), 16


def read_weights(data: bytes, cfg_text: str) -> tuple[Header, list[LayerParams]]:
    """Every parameter-carrying layer of ``cfg_text`` with its arrays (float32) from ``data``."""
    header, offset = read_header(data)
    layout = param_layout(parse_cfg(cfg_text))
    need = sum(p.floats for p in layout)
    have, rest = divmod(len(data) - offset, 4)
    if rest or have != need:
        raise WeightsError(
            f"the .weights file holds {len(data) - offset} bytes after its {offset}-byte header "
            f"({have} floats{' and a partial one' if rest else ''}); the cfg's "
            f"{len(layout)} layers with parameters need {need} floats ({4 * need} bytes)"
        )
    floats = np.frombuffer(data, dtype="<f4", offset=offset)
    pos = 0

    def take(n: int) -> np.ndarray:
        nonlocal pos
        a = floats[pos : pos + n].astype(np.float32)
        pos += n
        return a

    layers = []
    for p in layout:
        biases = take(p.outputs)
        bn = None
        if p.kind == "convolutional":
            if p.bn:
                bn = (take(p.outputs), take(p.outputs), take(p.outputs))
            weights = take(int(np.prod(p.weight_shape))).reshape(p.weight_shape)
        else:
            weights = take(int(np.prod(p.weight_shape))).reshape(p.weight_shape)
            if p.bn:
                bn = (take(p.outputs), take(p.outputs), take(p.outputs))
        layers.append(LayerParams(p.index, p.kind, p.line, biases, weights, bn))
    return header, layers


def torch_batchnorm(
    bn: tuple[np.ndarray, np.ndarray, np.ndarray], eps: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(weight, running_mean, running_var) of a PyTorch BatchNorm with ``eps`` that computes what
    darknet's ``scale * (x - mean) / (sqrt(var) + 1e-6)`` does: the variance is kept and the
    difference of the two denominators goes into the weight (exact for every var >= 0, where
    converting the variance would go negative for var < eps)."""
    scale, mean, var = (np.asarray(a, dtype=np.float64) for a in bn)
    if (var < 0).any():
        raise WeightsError("a BatchNorm variance in the .weights file is negative")
    weight = scale * np.sqrt(var + eps) / (np.sqrt(var) + DARKNET_BN_EPS)
    return weight.astype(np.float32), mean.astype(np.float32), var.astype(np.float32)
