"""How each RTL module is configured from a FINN node, and what latency it declares.

For every module: the HDL parameters derived from the node attributes (the RTL parameters mirror
them one to one), the memory images it loads (written with golden.memlayout + golden.packing), and
the latency it promises at full rate -- cycles from the first input beat accepted to the first
output beat (or to output beat `first_out`, for FMPadding's leading pad rows) -- as a formula of
the parameters. The latency constants are part of each module's documented contract (README).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from golden.datatypes import DType, parse_dtype
from golden.memlayout import mvau_weight_layout, mvau_weight_words, threshold_layout, threshold_words
from golden.node import NodeView
from golden.ops import attr, ints
from golden.packing import write_hex
from golden.streams import in_dtype, in_width, out_dtype

Params = dict[str, Any]
Writer = Callable[[Path], None]


def _dt(node: NodeView, key: str, default: str | None = None) -> DType:
    return parse_dtype(attr(node, key) if default is None else attr(node, key, default))


def _mem_writer(words: np.ndarray, bits: int) -> Writer:
    return lambda path: write_hex(path, [int(w) for w in words], bits)


@dataclass(frozen=True)
class Binding:
    params: Callable[[NodeView], Params]
    latency: Callable[[NodeView], int]
    files: Callable[[NodeView], dict[str, Writer]] = field(default=lambda node: {})
    first_out: Callable[[NodeView], int] = field(default=lambda node: 0)


# --------------------------------------------------------------------------------------------- mvau


def mvau_params(node: NodeView) -> Params:
    idt, wdt = _dt(node, "inputDataType"), _dt(node, "weightDataType")
    adt, odt = _dt(node, "accDataType", "INT32"), _dt(node, "outputDataType")
    no_act = int(attr(node, "noActivation", 0))
    p: Params = {
        "MW": int(attr(node, "MW")),
        "MH": int(attr(node, "MH")),
        "SIMD": int(attr(node, "SIMD")),
        "PE": int(attr(node, "PE")),
        "I_BITS": idt.bits,
        "I_SIGNED": idt.signed,
        "W_BITS": wdt.bits,
        "W_SIGNED": wdt.signed,
        "ACC_BITS": adt.bits,
        "ACC_SIGNED": adt.signed,
        "NO_ACT": bool(no_act),
        "O_BITS": odt.bits,
        "ACT_VAL": int(attr(node, "ActVal", 0)),
    }
    if not no_act:
        tl = threshold_layout(node)
        p |= {"NUM_STEPS": tl.lanes // p["PE"], "T_BITS": tl.elem_bits, "T_SIGNED": tl.dtype.signed}
    return p


def mvau_files(node: NodeView) -> dict[str, Writer]:
    files = {"WEIGHT_FILE": _mem_writer(mvau_weight_words(node), mvau_weight_layout(node).word_bits)}
    if not int(attr(node, "noActivation", 0)):
        files["THRESH_FILE"] = _mem_writer(threshold_words(node), threshold_layout(node).word_bits)
    return files


def mvau_latency(node: NodeView) -> int:
    """SF input beats, then the 4-stage pipeline and the output queue: SF + 4."""
    return int(attr(node, "MW")) // int(attr(node, "SIMD")) + 4


# --------------------------------------------------------------------------------------------- swg


def swg_params(node: NodeView) -> Params:
    h, w = ints(node, "IFMDim")
    oh, ow = ints(node, "OFMDim")
    kh, kw = ints(node, "ConvKernelDim")
    sh, sw = ints(node, "Stride", [1, 1])
    if ints(node, "Dilation", [1, 1]) != [1, 1]:
        raise ValueError("swg: only dilation 1 is implemented")
    return {
        "IFM_H": h,
        "IFM_W": w,
        "OFM_H": oh,
        "OFM_W": ow,
        "K_H": kh,
        "K_W": kw,
        "S_H": sh,
        "S_W": sw,
        "CHANNELS": int(attr(node, "IFMChannels")),
        "SIMD": int(attr(node, "SIMD")),
        "BITS": in_dtype(node).bits,
        "DEPTHWISE": bool(int(attr(node, "depthwise", 0))),
        "PARALLEL": bool(int(attr(node, "parallel_window", 0))),
    }


def swg_latency(node: NodeView) -> int:
    """1x1 kernels: 1 (register slice). Parallel window: the beats before the first window's
    last one, then the register slice: ((K_H-1)*IFM_W + K_W-1)*CF + 1. Default style: the
    preload of buffer_min_size beats, then the registered ring read and the output queue:
    buffer_min_size + 2."""
    p = swg_params(node)
    if p["K_H"] == 1 and p["K_W"] == 1:
        return 1
    cf = p["CHANNELS"] // p["SIMD"]
    if p["PARALLEL"]:
        return ((p["K_H"] - 1) * p["IFM_W"] + p["K_W"] - 1) * cf + 1
    return ((p["K_H"] - 1) * p["IFM_W"] + p["K_W"]) * cf + 2


# --------------------------------------------------------------------------------------------- fmpad


def fmpad_params(node: NodeView) -> Params:
    h, w = ints(node, "ImgDim")
    top, left, bottom, right = ints(node, "Padding", [1, 1, 1, 1])
    return {
        "IMG_H": h,
        "IMG_W": w,
        "PAD_T": top,
        "PAD_L": left,
        "PAD_B": bottom,
        "PAD_R": right,
        "CHANNELS": int(attr(node, "NumChannels")),
        "SIMD": int(attr(node, "SIMD", 1)),
        "BITS": in_dtype(node).bits,
    }


def fmpad_first_out(node: NodeView) -> int:
    """The first output beat that carries input data: after the top rows and left columns."""
    p = fmpad_params(node)
    ow = p["IMG_W"] + p["PAD_L"] + p["PAD_R"]
    return (p["PAD_T"] * ow + p["PAD_L"]) * (p["CHANNELS"] // p["SIMD"])


# --------------------------------------------------------------------------------------------- others


def thresholding_params(node: NodeView) -> Params:
    idt, odt = _dt(node, "inputDataType"), _dt(node, "outputDataType")
    tl = threshold_layout(node)
    return {
        "CHANNELS": int(attr(node, "NumChannels")),
        "PE": int(attr(node, "PE")),
        "NUM_STEPS": int(attr(node, "numSteps", 1)),
        "I_BITS": idt.bits,
        "I_SIGNED": idt.signed,
        "T_BITS": tl.elem_bits,
        "T_SIGNED": tl.dtype.signed,
        "O_BITS": odt.bits,
        "ACT_VAL": int(attr(node, "ActVal", 0)),
    }


def thresholding_files(node: NodeView) -> dict[str, Writer]:
    return {"THRESH_FILE": _mem_writer(threshold_words(node), threshold_layout(node).word_bits)}


def pool_params(node: NodeView) -> Params:
    if attr(node, "Function") != "MaxPool":
        raise ValueError("pool: only Function=MaxPool is implemented")
    kh, kw = ints(node, "KernelSize")
    dt = in_dtype(node)
    return {
        "CHANNELS": int(attr(node, "Channels")),
        "PE": int(attr(node, "PE", 1)),
        "K_H": kh,
        "K_W": kw,
        "BITS": dt.bits,
        "SIGNED": dt.signed,
    }


def pool_latency(node: NodeView) -> int:
    """The K window beats, then the register slice: K."""
    return int(np.prod(ints(node, "KernelSize")))


def _per_stream(cps: list[int], n_max: int, what: str) -> None:
    if not 1 <= len(cps) <= n_max:
        raise ValueError(f"{what}: 1..{n_max} streams supported, got {len(cps)}")


def concat_params(node: NodeView) -> Params:
    cps = ints(node, "ChannelsPerStream")
    _per_stream(cps, 4, "concat")
    p: Params = {"N_INPUTS": len(cps), "SIMD": int(attr(node, "SIMD")), "O_BITS": out_dtype(node).bits}
    for i, c in enumerate(cps):
        dt = in_dtype(node, i)
        p |= {f"C{i}": c, f"I_BITS{i}": dt.bits, f"I_SIGNED{i}": dt.signed}
    return p


def split_params(node: NodeView) -> Params:
    cps = ints(node, "ChannelsPerStream")
    _per_stream(cps, 4, "split")
    p: Params = {"N_OUTPUTS": len(cps), "SIMD": int(attr(node, "SIMD")), "BITS": in_dtype(node).bits}
    p |= {f"C{i}": c for i, c in enumerate(cps)}
    return p


def dup_params(node: NodeView) -> Params:
    n = int(attr(node, "NumOutputStreams"))
    _per_stream([0] * n, 4, "dup")
    return {
        "N_OUTPUTS": n,
        "CHANNELS": int(attr(node, "NumChannels")),
        "PE": int(attr(node, "PE")),
        "BITS": in_dtype(node).bits,
    }


def add_params(node: NodeView) -> Params:
    if ints(node, "lhs_shape") != ints(node, "rhs_shape"):
        raise ValueError("add: broadcasting operands are not implemented")
    ldt, rdt, odt = in_dtype(node, 0), in_dtype(node, 1), out_dtype(node)
    return {
        "PE": int(attr(node, "PE", 1)),
        "L_BITS": ldt.bits,
        "L_SIGNED": ldt.signed,
        "R_BITS": rdt.bits,
        "R_SIGNED": rdt.signed,
        "O_BITS": odt.bits,
    }


def upsample_params(node: NodeView) -> Params:
    return {
        "HI": int(attr(node, "HI")),
        "WI": int(attr(node, "WI")),
        "HO": int(attr(node, "HO")),
        "WO": int(attr(node, "WO")),
        "CHANNELS": int(attr(node, "NumChannels")),
        "SIMD": int(attr(node, "SIMD")),
        "BITS": in_dtype(node).bits,
    }


def dwc_params(node: NodeView) -> Params:
    return {"IN_WIDTH": int(attr(node, "inWidth")), "OUT_WIDTH": int(attr(node, "outWidth"))}


def dwc_latency(node: NodeView) -> int:
    """The input words that make up the first output word, then one register: ceil(out/in)."""
    return math.ceil(int(attr(node, "outWidth")) / int(attr(node, "inWidth")))


FIFO_REG_DEPTH_MAX = 16  # the RTL default of REG_DEPTH_MAX


def fifo_params(node: NodeView) -> Params:
    return {"WIDTH": in_width(node), "DEPTH": int(attr(node, "depth"))}


def fifo_latency(node: NodeView) -> int:
    """Register FIFO: 1. RAM FIFO: write, RAM read, prefetch queue: 3."""
    return 1 if int(attr(node, "depth")) <= FIFO_REG_DEPTH_MAX else 3


BINDINGS: dict[str, Binding] = {
    "mvau": Binding(mvau_params, mvau_latency, mvau_files),
    "swg": Binding(swg_params, swg_latency),
    "fmpad": Binding(fmpad_params, lambda node: 1, first_out=fmpad_first_out),
    "thresholding": Binding(thresholding_params, lambda node: 2, thresholding_files),
    "pool": Binding(pool_params, pool_latency),
    "concat": Binding(concat_params, lambda node: 1),
    "split": Binding(split_params, lambda node: 1),
    "dup": Binding(dup_params, lambda node: 1),
    "add": Binding(add_params, lambda node: 1),
    "upsample": Binding(upsample_params, lambda node: 2),
    "dwc": Binding(dwc_params, dwc_latency),
    "fifo": Binding(fifo_params, fifo_latency),
}
