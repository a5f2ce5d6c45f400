"""The RTL layer types: one record per FINN layer that sim/rtl implements, and the building blocks.

A record (`RtlLayer`) says everything the rest of sim needs about a layer type: the FINN op types
it implements, its module file (`sim/rtl/<module>.sv`) and the modules it instantiates, its stream
ports, how its HDL parameters and memory images follow from a FINN node (the RTL parameters
mirror the node attributes one to one; images written with golden.memlayout + golden.packing),
why a node cannot be implemented, the latency it promises at full rate -- cycles from the first
input beat accepted to the first output beat (or to output beat `first_out`, for FMPadding's
leading pad rows), part of each module's documented contract (sim/README.md) -- and its cycle
model in golden.cycles. The per-node simulation (sim.plan, sim.graph), the stitched network
(sim.network), lint, area and the cocotb harness all read these records; adding a layer type is
one record here, its .sv file and its tests/test_rtl_<module>.py (sim/README.md, checklist).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from golden import cycles
from golden.datatypes import DType, parse_dtype
from golden.memlayout import mvau_weight_layout, mvau_weight_words, threshold_layout, threshold_words
from golden.node import NodeView
from golden.ops import attr, ints, quant_avg_pool_shift
from golden.packing import write_hex
from golden.streams import in_dtype, in_width, out_dtype

RTL_DIR = Path(__file__).resolve().parent / "rtl"

Params = dict[str, Any]
Writer = Callable[[Path], None]


def _dt(node: NodeView, key: str, default: str | None = None) -> DType:
    return parse_dtype(attr(node, key) if default is None else attr(node, key, default))


def _mem_writer(words: np.ndarray, bits: int) -> Writer:
    return lambda path: write_hex(path, [int(w) for w in words], bits)


def _supported(node: NodeView) -> str:
    return ""


@dataclass(frozen=True)
class RtlLayer:
    """One RTL layer type: a FINN layer and the sim/rtl module that implements it."""

    module: str  # sim/rtl/<module>.sv, top-level module of the same name
    op_types: tuple[str, ...]  # FINN op types without the backend suffix
    deps: tuple[str, ...]  # the modules it instantiates (building blocks), directly or not
    params: Callable[[NodeView], Params]  # HDL parameters of a node (ValueError: not implementable)
    latency: Callable[[NodeView], int]  # declared latency bound at full rate
    cycles: Callable[[NodeView], int]  # its cycle model in golden.cycles (what the tests measure)
    ports: tuple[int, int] = (1, 1)  # stream ports (inputs, outputs); unused ones are tied off
    files: Callable[[NodeView], dict[str, Writer]] = field(default=lambda node: {})  # memory images
    first_out: Callable[[NodeView], int] = field(default=lambda node: 0)  # the latency's output beat
    unsupported: Callable[[NodeView], str] = _supported  # why a node cannot run ("" when it can)
    # Load ports of its parameter memories (LOAD = 1: RAMs): port prefix -> memory parameter;
    # <prefix>_en, <prefix>_addr, <prefix>_data, tied off where the memories are ROMs; and their
    # (address, data) widths at a node's parameters.
    loads: tuple[tuple[str, str], ...] = ()
    load_widths: Callable[[Params], dict[str, tuple[int, int]]] = field(default=lambda params: {})
    # TDATA width of unused input port k at a node's parameters (tied to zero at that width).
    idle_in_width: Callable[[Params, int], int] | None = None

    @property
    def file(self) -> Path:
        return rtl_file(self.module)

    @property
    def test_file(self) -> str:
        """Its cocotb tests (pytest), relative to the repository."""
        return f"tests/test_rtl_{self.module}.py"


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


def _addr_bits(words: int) -> int:
    return max(1, math.ceil(math.log2(words))) if words > 1 else 1


def mvau_load_widths(p: Params) -> dict[str, tuple[int, int]]:
    """wld / tld port widths (the RTL's defaults NUM_STEPS = 1, T_BITS = 16 without activation)."""
    nf, sf = p["MH"] // p["PE"], p["MW"] // p["SIMD"]
    steps, t_bits = p.get("NUM_STEPS", 1), p.get("T_BITS", 16)
    return {
        "wld": (_addr_bits(nf * sf), p["PE"] * p["SIMD"] * p["W_BITS"]),
        "tld": (_addr_bits(nf), p["PE"] * steps * t_bits),
    }


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
    last one, then the register slice: ((K_H-1)*IFM_W + K_W-1)*CF + 1. Default style: the first
    output beat copies the first input beat, issued the cycle after it is written, then the
    registered ring read and the output queue: 3."""
    p = swg_params(node)
    if p["K_H"] == 1 and p["K_W"] == 1:
        return 1
    cf = p["CHANNELS"] // p["SIMD"]
    if p["PARALLEL"]:
        return ((p["K_H"] - 1) * p["IFM_W"] + p["K_W"] - 1) * cf + 1
    return 3


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


def thresholding_load_widths(p: Params) -> dict[str, tuple[int, int]]:
    return {"tld": (_addr_bits(p["CHANNELS"] // p["PE"]), p["PE"] * p["NUM_STEPS"] * p["T_BITS"])}


def pool_params(node: NodeView) -> Params:
    fxn = attr(node, "Function")
    if fxn not in ("MaxPool", "QuantAvgPool"):
        raise ValueError(f"pool: Function={fxn} is not implemented (MaxPool, QuantAvgPool)")
    kh, kw = ints(node, "KernelSize")
    dt = in_dtype(node)
    p: Params = {
        "CHANNELS": int(attr(node, "Channels")),
        "PE": int(attr(node, "PE", 1)),
        "K_H": kh,
        "K_W": kw,
        "BITS": dt.bits,
        "SIGNED": dt.signed,
    }
    if fxn == "QuantAvgPool":
        # the sum of K elements, and golden's (FINN's python) shift, which it checks against Size
        k = kh * kw
        lo, hi = dt.min * k, dt.max * k
        acc = max(int(hi).bit_length(), int(-lo - 1).bit_length()) + int(dt.signed)
        p |= {
            "AVG": True,
            "ACC_BITS": acc,
            "SHIFT": quant_avg_pool_shift(node, k),
            "O_BITS": out_dtype(node).bits,
        }
    return p


def global_acc_pool_params(node: NodeView) -> Params:
    vecs = ints(node, "numInputVectors", [1])
    if len(vecs) != 3 or vecs[0] != 1:
        raise ValueError("global_acc_pool: numInputVectors must be [1, H, W]")
    dt = in_dtype(node)
    return {
        "CHANNELS": int(attr(node, "NumChannels")),
        "PE": int(attr(node, "PE", 1)),
        "PIXELS": vecs[1] * vecs[2],
        "BITS": dt.bits,
        "SIGNED": dt.signed,
        "O_BITS": out_dtype(node).bits,
    }


def global_acc_pool_latency(node: NodeView) -> int:
    """Every beat of the frame but the last pixel's, then the first of those and the register
    slice: (PIXELS - 1) * CHANNELS / PE + 1."""
    p = global_acc_pool_params(node)
    return (p["PIXELS"] - 1) * (p["CHANNELS"] // p["PE"]) + 1


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


ELEMENTWISE_OPS = ("ElementwiseAdd", "ElementwiseMax", "ElementwiseMul")  # add.sv's OP = index


def add_params(node: NodeView) -> Params:
    if ints(node, "lhs_shape") != ints(node, "rhs_shape"):
        raise ValueError("add: broadcasting operands are not implemented")
    ldt, rdt, odt = in_dtype(node, 0), in_dtype(node, 1), out_dtype(node)
    return {
        "PE": int(attr(node, "PE", 1)),
        "OP": ELEMENTWISE_OPS.index(node.op_type),
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


# --------------------------------------------------------------------------------------------- refusals


def _params_streamed(node: NodeView) -> str:
    if 1 not in node.inits:
        mode = attr(node, "mem_mode", "internal_decoupled")
        return f"parameters from a stream (input 1 is no initializer, mem_mode {mode}) are not implemented"
    return ""


def mvau_unsupported(node: NodeView) -> str:
    if reason := _params_streamed(node):
        return reason
    if int(attr(node, "binaryXnorMode", 0)):
        return "binaryXnorMode (XNOR popcount) is not implemented"
    dts = [in_dtype(node, 0), in_dtype(node, 1), out_dtype(node, 0)]
    if any(dt.bipolar for dt in dts):
        return "BIPOLAR datatypes are not implemented"
    if int(attr(node, "TH", 1)) != 1:
        return "tiling (TH > 1) is not implemented"
    return ""


def swg_unsupported(node: NodeView) -> str:
    if int(attr(node, "M", 1)) != 1:
        return "multiple output windows per cycle (M > 1) are not implemented"
    if ints(node, "ConvKernelDim") != [1, 1] and 1 in ints(node, "IFMDim"):
        return "1-D sliding windows (IFMDim with a 1, FINN's 1-D cycle model) are not implemented"
    return ""


def thresholding_unsupported(node: NodeView) -> str:
    if reason := _params_streamed(node):
        return reason
    if out_dtype(node).bipolar:
        return "BIPOLAR output is not implemented"
    return ""


def add_unsupported(node: NodeView) -> str:
    if node.inits:
        return "a constant operand (initializer) is not implemented: add takes two streams"
    return ""


# --------------------------------------------------------------------------------------------- the records

# The building blocks (no FINN ports) and the modules each instantiates.
BLOCKS: dict[str, tuple[str, ...]] = {
    "ram_1r1w": (),
    "rom": (),
    "axis_skid": (),
    "credit_fifo": (),
    "widen": (),
    "threshold_compare": (),
    "wmem": ("rom", "ram_1r1w"),
    "swg_pointwise": ("axis_skid",),
    "swg_window": ("ram_1r1w", "credit_fifo"),
    "swg_parallel": ("ram_1r1w", "axis_skid"),
}
# The building blocks with tests of their own (tests/test_rtl_memories.py, cocotb sim/tb/<module>_tests.py).
MEMORIES = ("ram_1r1w", "rom")

_RECORDS = (
    RtlLayer(
        "mvau", ("MVAU",), ("threshold_compare", "wmem", "rom", "ram_1r1w", "credit_fifo"),
        mvau_params, mvau_latency, cycles.mvau_cycles, files=mvau_files, unsupported=mvau_unsupported,
        loads=(("wld", "WEIGHT_FILE"), ("tld", "THRESH_FILE")), load_widths=mvau_load_widths,
    ),
    RtlLayer(
        "swg", ("ConvolutionInputGenerator",),
        ("swg_pointwise", "swg_window", "swg_parallel", "axis_skid", "ram_1r1w", "credit_fifo"),
        swg_params, swg_latency, cycles.swg_rtl_cycles, unsupported=swg_unsupported,
    ),
    RtlLayer(
        "fmpad", ("FMPadding",), ("axis_skid",), fmpad_params, lambda node: 1, cycles.fmpadding_cycles,
        first_out=fmpad_first_out,
    ),
    RtlLayer(
        "thresholding", ("Thresholding",), ("threshold_compare", "wmem", "rom", "ram_1r1w", "credit_fifo"),
        thresholding_params, lambda node: 2, cycles.output_beats_cycles, files=thresholding_files,
        unsupported=thresholding_unsupported, loads=(("tld", "THRESH_FILE"),),
        load_widths=thresholding_load_widths,
    ),
    RtlLayer("pool", ("Pool",), ("axis_skid",), pool_params, pool_latency, cycles.pool_cycles),
    RtlLayer(
        "global_acc_pool", ("GlobalAccPool",), ("axis_skid",), global_acc_pool_params,
        global_acc_pool_latency, cycles.input_beats_cycles,
    ),
    RtlLayer(
        "concat", ("StreamingConcat",), ("widen", "axis_skid"), concat_params, lambda node: 1,
        cycles.output_beats_cycles, ports=(4, 1),
        idle_in_width=lambda p, k: ((p["SIMD"] * p.get(f"I_BITS{k}", 8) + 7) // 8) * 8,  # RTL default 8
    ),
    RtlLayer(
        "split", ("StreamingSplit",), ("axis_skid",), split_params, lambda node: 1, cycles.input_beats_cycles,
        ports=(1, 4),
    ),
    RtlLayer(
        "dup", ("DuplicateStreams",), ("axis_skid",), dup_params, lambda node: 1, cycles.output_beats_cycles,
        ports=(1, 4),
    ),
    RtlLayer(
        "add", ELEMENTWISE_OPS, ("axis_skid",), add_params, lambda node: 1,
        cycles.output_beats_cycles, ports=(2, 1), unsupported=add_unsupported,
    ),
    RtlLayer(
        "upsample", ("UpsampleNearestNeighbour",), ("ram_1r1w", "credit_fifo"), upsample_params,
        lambda node: 2, cycles.output_beats_cycles,
    ),
    RtlLayer("dwc", ("StreamingDataWidthConverter",), (), dwc_params, dwc_latency, cycles.dwc_cycles),
    RtlLayer(
        "fifo", ("StreamingFIFO",), ("credit_fifo", "ram_1r1w"), fifo_params, fifo_latency,
        cycles.fifo_cycles,
    ),
)  # fmt: skip

# module -> record, in the library's order; FINN op type -> record.
LAYERS: dict[str, RtlLayer] = {r.module: r for r in _RECORDS}
BY_OP_TYPE: dict[str, RtlLayer] = {op: r for r in _RECORDS for op in r.op_types}
# Every module: the building blocks first, then each layer.
MODULES: tuple[str, ...] = (*BLOCKS, *LAYERS)


def rtl_file(module: str) -> Path:
    return RTL_DIR / f"{module}.sv"


def sources(module: str) -> list[Path]:
    """The module's file and those of every module it instantiates, top first."""
    if module in LAYERS:
        deps = LAYERS[module].deps
    elif module in BLOCKS:
        deps = BLOCKS[module]
    else:
        raise KeyError(f"no RTL module {module!r}; known: {', '.join(MODULES)}")
    return [rtl_file(module)] + [rtl_file(d) for d in deps]


def layer_of(node: NodeView) -> RtlLayer | None:
    """The record implementing `node`'s op type, or None."""
    return BY_OP_TYPE.get(node.op_type)


def unsupported_reason(node: NodeView) -> str:
    """Why the RTL library cannot run `node` ("" when it can); `params` may refuse more (ValueError)."""
    layer = layer_of(node)
    if layer is None:
        return f"no RTL module for op type {node.full_op_type}"
    return layer.unsupported(node)
