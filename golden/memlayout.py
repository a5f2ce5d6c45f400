"""MVAU weight and threshold memories as hardware words (one python int per address).

Weights (MVAU): depth NF*SF with NF = MH/PE, SF = MW/SIMD; the word at address nf*SF + sf holds,
for PE lane p and SIMD lane s, W[sf*SIMD + s, nf*PE + p] at bit offset (p*SIMD + s)*wbits.  This is
FINN's get_hw_compatible_weight_tensor order (rows of W^T interleaved over PEs, (PE, WMEM, SIMD))
re-packed with golden.packing's convention (element 0 in the LSBs) -- identical, bit for bit, to the
memblock.dat FINN writes for mem_mode internal_decoupled with TH=1.  BIPOLAR weights are stored as
0/1 codes, signed weights as two's complement.

Thresholds (MVAU with activation, Thresholding): depth TMEM = channels/PE; the word at address t
holds, for PE lane p and step i, T[t*PE + p, i] at bit offset (p*numSteps + i)*tbits.  A single
threshold row is first broadcast to every channel, as FINN does.  See golden/README.md for where
FINN's own .dat differs (step order within a lane).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from golden.datatypes import DType, encode, parse_dtype
from golden.errors import GoldenError
from golden.node import NodeView
from golden.ops import attr
from golden.packing import pack


@dataclass(frozen=True)
class MemLayout:
    """Geometry of a parameter memory: `depth` words of `lanes` elements, `elem_bits` each."""

    depth: int
    lanes: int
    elem_bits: int
    dtype: DType

    @property
    def word_bits(self) -> int:
        """Bits of one memory word (lanes * elem_bits, no padding)."""
        return self.lanes * self.elem_bits


def _div(node: NodeView, n: int, p: int, what: str) -> int:
    if p < 1 or n % p:
        raise GoldenError(f"node {node.name} ({node.full_op_type}): {what}={p} does not divide {n}")
    return n // p


def _weights(node: NodeView) -> np.ndarray:
    if 1 not in node.inits:
        raise GoldenError(f"node {node.name} (MVAU): weights are not an initializer")
    return np.asarray(node.inits[1])


def mvau_weight_layout(node: NodeView) -> MemLayout:
    """Depth NF*SF, PE*SIMD lanes of weightDataType bits."""
    if node.op_type != "MVAU":
        raise GoldenError(f"node {node.name} ({node.full_op_type}) is not an MVAU")
    mw, mh = int(attr(node, "MW")), int(attr(node, "MH"))
    pe, simd = int(attr(node, "PE")), int(attr(node, "SIMD"))
    depth = _div(node, mh, pe, "PE") * _div(node, mw, simd, "SIMD")
    dt = parse_dtype(attr(node, "weightDataType"))
    return MemLayout(depth=depth, lanes=pe * simd, elem_bits=dt.bits, dtype=dt)


def mvau_weight_matrix(node: NodeView) -> np.ndarray:
    """Weights as (depth, PE, SIMD): entry [nf*SF + sf, p, s] = W[sf*SIMD + s, nf*PE + p]."""
    lay = mvau_weight_layout(node)
    mw, mh = int(attr(node, "MW")), int(attr(node, "MH"))
    pe, simd = int(attr(node, "PE")), int(attr(node, "SIMD"))
    w = _weights(node)
    if w.shape != (mw, mh):
        raise GoldenError(f"node {node.name} (MVAU): weights of shape {list(w.shape)}, expected [{mw}, {mh}]")
    nf, sf = mh // pe, mw // simd
    # W[sf*SIMD + s, nf*PE + p] -> [nf, sf, p, s]
    t = w.reshape(sf, simd, nf, pe).transpose(2, 0, 3, 1)
    return t.reshape(lay.depth, pe, simd)


def mvau_weight_words(node: NodeView) -> np.ndarray:
    """(depth,) object array of python ints: the weight memory in address order."""
    lay = mvau_weight_layout(node)
    codes = encode(mvau_weight_matrix(node), lay.dtype)
    words = pack(codes.astype(np.int64), lay.elem_bits, lay.lanes, signed=False)
    return np.array(words, dtype=object)


def _threshold_geometry(node: NodeView) -> tuple[int, int, np.ndarray]:
    """(channels, PE, thresholds (channels, steps)) of an MVAU or Thresholding node."""
    if node.op_type == "MVAU":
        if int(attr(node, "noActivation", 0)):
            raise GoldenError(f"node {node.name} (MVAU): noActivation=1, there are no thresholds")
        ch, ind = int(attr(node, "MH")), 2
    elif node.op_type == "Thresholding":
        ch, ind = int(attr(node, "NumChannels")), 1
    else:
        raise GoldenError(f"node {node.name} ({node.full_op_type}) has no threshold memory")
    if ind not in node.inits:
        raise GoldenError(f"node {node.name} ({node.full_op_type}): thresholds are not an initializer")
    t = np.asarray(node.inits[ind])
    if t.ndim != 2 or t.shape[0] not in (1, ch):
        raise GoldenError(f"node {node.name}: thresholds of shape {list(t.shape)} for {ch} channels")
    if t.dtype.kind == "f":
        raise GoldenError(f"node {node.name}: thresholds are not integers (run RoundAndClipThresholds)")
    return ch, int(attr(node, "PE")), np.broadcast_to(t, (ch, t.shape[1])).astype(np.int64)


def threshold_layout(node: NodeView, dtype: DType | None = None) -> MemLayout:
    """Depth channels/PE, PE*numSteps lanes.  Element type: `dtype` if given, else weightDataType
    (Thresholding) or accDataType (MVAU, whose threshold type lives only on the graph tensor)."""
    ch, pe, t = _threshold_geometry(node)
    if dtype is None:
        key = "weightDataType" if node.op_type == "Thresholding" else "accDataType"
        dtype = parse_dtype(attr(node, key, "INT32"))
        if node.op_type == "MVAU":  # a threshold of acc max + 1 ("never") needs one bit more
            dtype = _widened(dtype, t)
    return MemLayout(depth=_div(node, ch, pe, "PE"), lanes=pe * t.shape[1], elem_bits=dtype.bits, dtype=dtype)


def _widened(dtype: DType, t: np.ndarray) -> DType:
    """``dtype``, or the narrowest integer type that holds both its range and the values ``t``."""
    lo, hi = float(np.min(t, initial=dtype.min)), float(np.max(t, initial=dtype.max))
    if lo >= dtype.min and hi <= dtype.max:
        return dtype
    signed = lo < 0

    def fits(b: int) -> bool:
        return -(2 ** (b - 1)) <= lo and hi < 2 ** (b - 1) if signed else hi < 2**b

    bits = next(b for b in range(2, 65) if fits(b))
    return parse_dtype(f"{'INT' if signed else 'UINT'}{bits}")


def threshold_matrix(node: NodeView) -> np.ndarray:
    """Thresholds as (TMEM, PE, steps): entry [t, p, i] = T[t*PE + p, i] (FINN's PE interleave)."""
    ch, pe, t = _threshold_geometry(node)
    return t.reshape(ch // pe, pe, t.shape[1])


def check_threshold_range(node: NodeView) -> None:
    """A Thresholding node's thresholds lie in [input min, input max + 1].

    FINN's Thresholding RTL compares an unsigned input against its thresholds as unsigned numbers,
    so a threshold outside that range (which can never change the output anyway) would compare
    wrongly there; FINN's RoundAndClipThresholds establishes the range, golden holds it."""
    if node.op_type != "Thresholding":
        return
    idt = parse_dtype(attr(node, "inputDataType"))
    t = np.asarray(_threshold_geometry(node)[2], dtype=np.float64)
    bad = (t < idt.min) | (t > idt.max + 1)
    if bad.any():
        v = t[bad].flat[0]
        raise GoldenError(
            f"node {node.name} (Thresholding): {int(bad.sum())} threshold(s) outside "
            f"[{idt.min}, {idt.max + 1}] for input {idt.name}, e.g. {v:g}; FINN's Thresholding RTL "
            "compares them as the input's type (clip them: RoundAndClipThresholds)"
        )


def threshold_words(node: NodeView, dtype: DType | None = None) -> np.ndarray:
    """(TMEM,) object array of python ints: the threshold memory in address order (a Thresholding
    node's thresholds checked against its input range first)."""
    check_threshold_range(node)
    lay = threshold_layout(node, dtype)
    codes = encode(threshold_matrix(node), lay.dtype)
    words = pack(codes.astype(np.int64), lay.elem_bits, lay.lanes, signed=False)
    return np.array(words, dtype=object)
