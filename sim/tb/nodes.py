"""FINN nodes for the RTL tests: attribute sets written out, random weights and thresholds.

These build the *configuration* of a layer (its attributes and initializers) the way FINN's
transformations would leave it; the layer's *behaviour* always comes from golden.
"""

from __future__ import annotations

import numpy as np

from golden.datatypes import parse_dtype, smallest_dtype
from golden.node import NodeView


def _acc_dtype(lo: int, hi: int) -> str:
    """FINN's minimize_accumulator_width choice for an accumulator range [lo, hi]."""
    if lo < 0:
        return smallest_dtype(min(lo, -hi - 1)).name
    return smallest_dtype(hi).name


def mvau(
    mw: int,
    mh: int,
    simd: int,
    pe: int,
    idt: str,
    wdt: str,
    odt: str | None,
    vecs: list[int],
    seed: int,
    narrow: bool = False,
) -> NodeView:
    """MVAU with random weights; odt None means noActivation (output = accumulator).

    With an activation, thresholds are 2^obits - 1 sorted random values inside the accumulator
    range of each channel, and ActVal is the output type's minimum (FINN's convention)."""
    rng = np.random.default_rng(seed)
    i, w = parse_dtype(idt), parse_dtype(wdt)
    wlo = w.min + 1 if narrow and w.signed else w.min
    weights = rng.integers(wlo, w.max + 1, size=(mw, mh), dtype=np.int64)
    weights.reshape(-1)[0] = wlo
    weights.reshape(-1)[-1] = w.max
    # Per output channel: exact range of x . W over every input vector.
    col_lo = np.minimum(weights * i.min, weights * i.max).sum(axis=0)
    col_hi = np.maximum(weights * i.min, weights * i.max).sum(axis=0)
    acc = _acc_dtype(int(col_lo.min()), int(col_hi.max()))
    attrs = {
        "MW": mw,
        "MH": mh,
        "SIMD": simd,
        "PE": pe,
        "inputDataType": idt,
        "weightDataType": wdt,
        "accDataType": acc,
        "numInputVectors": vecs,
        "mem_mode": "internal_decoupled",
    }
    if odt is None:
        attrs |= {"noActivation": 1, "outputDataType": acc, "ActVal": 0}
        return NodeView.make("MVAU", attrs, {1: weights}, backend="hls")
    o = parse_dtype(odt)
    steps = (1 << o.bits) - 1
    # Thresholds concentrated where the accumulators of random inputs land (about the middle of
    # the range), so that every output level occurs.
    centre = (col_lo + col_hi) / 2
    spread = np.maximum((col_hi - col_lo) / 8, steps)
    t = centre[:, None] + rng.uniform(-1, 1, size=(mh, steps)) * spread[:, None]
    t = np.sort(np.clip(np.round(t), col_lo[:, None], col_hi[:, None]).astype(np.int64), axis=1)
    attrs |= {"noActivation": 0, "outputDataType": odt, "ActVal": o.min if o.signed else 0}
    return NodeView.make("MVAU", attrs, {1: weights, 2: t}, backend="hls")


def thresholding(ch: int, pe: int, idt: str, tdt: str, odt: str, vecs: list[int], seed: int) -> NodeView:
    """Thresholding with numSteps = 2^obits - 1 sorted random thresholds per channel."""
    rng = np.random.default_rng(seed)
    i, o, t = parse_dtype(idt), parse_dtype(odt), parse_dtype(tdt)
    steps = (1 << o.bits) - 1
    lo, hi = max(i.min, t.min), min(i.max, t.max)
    thr = np.sort(rng.integers(lo, hi + 1, size=(ch, steps), dtype=np.int64), axis=1)
    attrs = {
        "NumChannels": ch,
        "PE": pe,
        "numSteps": steps,
        "inputDataType": idt,
        "weightDataType": tdt,
        "outputDataType": odt,
        "numInputVectors": vecs,
        "ActVal": o.min if o.signed else 0,
    }
    return NodeView.make("Thresholding", attrs, {1: thr}, backend="hls")


def swg(
    ifm: tuple[int, int],
    k: tuple[int, int],
    stride: tuple[int, int],
    ch: int,
    simd: int,
    dt: str,
    depthwise: int = 0,
    parallel: int = 0,
) -> NodeView:
    oh = (ifm[0] - k[0]) // stride[0] + 1
    ow = (ifm[1] - k[1]) // stride[1] + 1
    attrs = {
        "ConvKernelDim": list(k),
        "IFMChannels": ch,
        "IFMDim": list(ifm),
        "OFMDim": [oh, ow],
        "SIMD": simd,
        "Stride": list(stride),
        "Dilation": [1, 1],
        "inputDataType": dt,
        "outputDataType": dt,
        "depthwise": depthwise,
        "parallel_window": parallel,
    }
    return NodeView.make("ConvolutionInputGenerator", attrs, backend="rtl")


def fmpad(img: tuple[int, int], pad: list[int], ch: int, simd: int, dt: str) -> NodeView:
    attrs = {"ImgDim": list(img), "Padding": pad, "NumChannels": ch, "SIMD": simd, "inputDataType": dt}
    return NodeView.make("FMPadding", attrs, backend="rtl")


def pool(
    ch: int, pe: int, k: tuple[int, int], odims: tuple[int, int], dt: str, avg: bool = False
) -> NodeView:
    """MaxPool, or QuantAvgPool keeping the input width (FINN's InferPool of QuantAvgPool2d with
    obits = ibits: AccumBits = bits of (2^ibits - 1) * K, Size = AccumBits - obits)."""
    attrs = {
        "Channels": ch,
        "PE": pe,
        "KernelSize": list(k),
        "Function": "QuantAvgPool" if avg else "MaxPool",
        "OutImgDims": list(odims),
        "InputDataType": dt,
        "OutputDataType": dt,
        "BatchSize": 1,
    }
    if avg:
        d = parse_dtype(dt)
        acc = int(((1 << d.bits) - 1) * k[0] * k[1]).bit_length()  # qonnx's get_accum_size
        attrs |= {"AccumBits": acc, "Size": acc - d.bits}
    return NodeView.make("Pool", attrs, backend="hls")


def global_acc_pool(ch: int, pe: int, hw: tuple[int, int], dt: str) -> NodeView:
    """GlobalAccPool (its output type, H*W times the input's range, is golden.streams')."""
    attrs = {"NumChannels": ch, "PE": pe, "inputDataType": dt, "numInputVectors": [1, *hw]}
    return NodeView.make("GlobalAccPool", attrs, backend="hls")


def concat(cps: list[int], simd: int, dts: list[str], vecs: list[int]) -> NodeView:
    attrs = {"SIMD": simd, "ChannelsPerStream": cps, "inputDataTypes": dts, "numInputVectors": vecs}
    return NodeView.make("StreamingConcat", attrs, backend="hls")


def split(cps: list[int], simd: int, dt: str, vecs: list[int]) -> NodeView:
    attrs = {"SIMD": simd, "ChannelsPerStream": cps, "inputDataType": dt, "numInputVectors": vecs}
    return NodeView.make("StreamingSplit", attrs, backend="hls")


def dup(n: int, ch: int, pe: int, dt: str, vecs: list[int]) -> NodeView:
    attrs = {
        "NumOutputStreams": n,
        "NumChannels": ch,
        "PE": pe,
        "inputDataType": dt,
        "numInputVectors": vecs,
    }
    return NodeView.make("DuplicateStreams", attrs, backend="hls")


def add(shape: list[int], pe: int, ldt: str, rdt: str, odt: str, op: str = "ElementwiseAdd") -> NodeView:
    attrs = {
        "lhs_shape": shape,
        "rhs_shape": shape,
        "out_shape": shape,
        "lhs_dtype": ldt,
        "rhs_dtype": rdt,
        "out_dtype": odt,
        "PE": pe,
    }
    return NodeView.make(op, attrs, backend="hls")


def upsample(hi: int, wi: int, ho: int, wo: int, ch: int, simd: int, dt: str) -> NodeView:
    attrs = {
        "HI": hi,
        "WI": wi,
        "HO": ho,
        "WO": wo,
        "NumChannels": ch,
        "SIMD": simd,
        "inputDataType": dt,
        "batchSize": 1,
    }
    return NodeView.make("UpsampleNearestNeighbour", attrs, backend="hls")


def dwc(shape: list[int], in_elems: int, out_elems: int, dt: str) -> NodeView:
    bits = parse_dtype(dt).bits
    attrs = {
        "inShape": shape,
        "outShape": shape,
        "inWidth": in_elems * bits,
        "outWidth": out_elems * bits,
        "dataType": dt,
    }
    return NodeView.make("StreamingDataWidthConverter", attrs, backend="rtl")


def fifo(shape: list[int], elems: int, depth: int, dt: str) -> NodeView:
    folded = [*shape[:-1], shape[-1] // elems, elems]
    attrs = {"depth": depth, "folded_shape": folded, "normal_shape": shape, "dataType": dt}
    return NodeView.make("StreamingFIFO", attrs, backend="rtl")
